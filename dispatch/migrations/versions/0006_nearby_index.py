"""SQLite: an index for the duplicate check, open orders of a category near a point.

The check asks for one category within a small longitude/latitude box; with only the
(category, state) index SQLite read every open order of the category. PostgreSQL answers the
same question from a GiST point index.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30
"""
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.create_index("ix_work_orders_category_lonlat", "work_orders",
                        ["category", "lon", "lat"])


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.drop_index("ix_work_orders_category_lonlat", table_name="work_orders")
