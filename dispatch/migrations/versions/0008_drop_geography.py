"""PostgreSQL: drop the geography point columns; the geometry ones and their GiST indexes stay.

The duplicate check now finds its candidates with a box on the GiST-indexed ``geom`` column and
measures geodesic distances itself, as on SQLite; no query reads ``geog`` any more, and every
stored report and work order paid for computing and indexing it.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30
"""
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

POINT_TABLES = ("work_orders", "reports")


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in POINT_TABLES:
        op.execute(f"DROP INDEX ix_{table}_geog")
        op.execute(f"ALTER TABLE {table} DROP COLUMN geog")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in POINT_TABLES:
        op.execute(f"ALTER TABLE {table} ADD COLUMN geog geography(Point, 4326) GENERATED "
                   "ALWAYS AS (ST_SetSRID(ST_MakePoint(lon, lat), 4326)::geography) STORED")
        op.execute(f"CREATE INDEX ix_{table}_geog ON {table} USING gist (geog)")
