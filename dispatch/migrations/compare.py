"""What Alembic's autogenerate compares: the tables of :mod:`dispatch.schema`, nothing else.

A migrated PostgreSQL database also holds what PostGIS owns (``spatial_ref_sys``) and the
generated point columns with their GiST indexes that the migrations add in SQL (declared as
``schema.POSTGIS_*``); those are left out, but only when they are what they claim to be. An
index the tables declare for one database alone (``Index.ddl_if(dialect=...)``) is compared
only there. Anything else that differs is a real difference.
"""

from __future__ import annotations

from geoalchemy2 import Geography, Geometry

from dispatch.schema import POSTGIS_COLUMNS, POSTGIS_INDEXES, POSTGIS_TABLES


def compare_options(dialect: str) -> dict:
    """Options for ``context.configure`` / ``MigrationContext.configure`` on ``dialect``."""

    def include_object(obj, name, type_, reflected, compare_to) -> bool:
        if not reflected:  # declared in the tables
            return type_ != "index" or _made_on(obj, dialect)
        if compare_to is not None or dialect != "postgresql":
            return True
        if type_ == "table":
            return name not in POSTGIS_TABLES
        if type_ == "column":
            return not (name in POSTGIS_COLUMNS.get(obj.table.name, ())
                        and isinstance(obj.type, (Geography, Geometry)))
        if type_ == "index":
            return name not in POSTGIS_INDEXES
        return True

    return {"include_object": include_object}


def _made_on(index, dialect: str) -> bool:
    """Whether the index is created on ``dialect`` (SQLAlchemy keeps ``ddl_if`` here)."""
    condition = getattr(index, "_ddl_if", None)
    if condition is None or condition.dialect is None:
        return True
    wanted = condition.dialect
    return dialect == wanted if isinstance(wanted, str) else dialect in wanted
