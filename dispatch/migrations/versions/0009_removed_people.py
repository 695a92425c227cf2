"""Gridworkers and dispatchers taken off the roster are kept, marked ``removed_at``.

Deleting their rows let SQLite give a removed person's id to the next one added, so old work
orders and trails would have pointed at somebody else.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30
"""
import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

TABLES = ("gridworkers", "dispatchers")


def upgrade() -> None:
    for table in TABLES:
        op.add_column(table, sa.Column('removed_at', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_column('removed_at')
