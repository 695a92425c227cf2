"""PostgreSQL: leave a fifth of each page of work_orders and outbox free for updated rows.

Intake under load is mostly "me too" reports, each updating its order's report count, and every
delivery round first claims its outbox rows. Where an update changes no indexed column and the
page has room, PostgreSQL keeps the new row version on that page and touches none of the
table's indexes (a heap-only update); on a full page the update also writes an entry into every
index, the GiST point index among them. Pages written from now on keep the room.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30
"""
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

TABLES = ("work_orders", "outbox")
FILLFACTOR = 80


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in TABLES:
            op.execute(f"ALTER TABLE {table} SET (fillfactor = {FILLFACTOR})")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in TABLES:
            op.execute(f"ALTER TABLE {table} RESET (fillfactor)")
