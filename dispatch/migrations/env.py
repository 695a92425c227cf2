"""Alembic environment: runs the migrations on the connection gridline hands over.

Autogenerate compares the tables of :mod:`dispatch.schema` alone, not what PostGIS owns (see
:mod:`dispatch.migrations.compare`).
"""

from alembic import context

from dispatch.migrations.compare import compare_options
from dispatch.schema import metadata

config = context.config
connection = config.attributes.get("connection")


def configure(connection) -> None:
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True,
                      **compare_options(connection.dialect.name))


if connection is None:  # the alembic command line: connect from the configured URL
    from sqlalchemy import create_engine

    engine = create_engine(config.get_main_option("sqlalchemy.url"))
    with engine.begin() as connection:
        configure(connection)
        context.run_migrations()
else:
    configure(connection)
    with context.begin_transaction():
        context.run_migrations()
