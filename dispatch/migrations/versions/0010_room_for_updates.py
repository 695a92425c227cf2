"""PostgreSQL: leave a fifth of each page of work_orders and outbox free for updated rows.

Intake under load is mostly "me too" reports, each updating its order's report count, and every
delivered event updates its outbox row. With room on the page PostgreSQL keeps the new row
version there and touches none of the table's indexes (a heap-only update); on full pages each
update also writes an entry into every index, the GiST point index among them.

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
