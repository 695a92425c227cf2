"""PostgreSQL: a generated geometry column with a GiST index for bounding-box filters.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None

POINT_TABLES = ("work_orders", "reports")


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in POINT_TABLES:
        op.execute(f"ALTER TABLE {table} ADD COLUMN geom geometry(Point, 4326) GENERATED "
                   "ALWAYS AS (ST_SetSRID(ST_MakePoint(lon, lat), 4326)) STORED")
        op.execute(f"CREATE INDEX ix_{table}_geom ON {table} USING gist (geom)")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in POINT_TABLES:
        op.execute(f"DROP INDEX ix_{table}_geom")
        op.execute(f"ALTER TABLE {table} DROP COLUMN geom")
