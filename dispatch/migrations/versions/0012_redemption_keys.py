"""Redemptions keep the key a retried one is recognised by, unique per person.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-30
"""
import sqlalchemy as sa
from alembic import op

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('redemptions', sa.Column('idempotency_key', sa.String(100), nullable=True))
    op.create_index('uq_redemptions_key', 'redemptions', ['user_id', 'idempotency_key'],
                    unique=True)


def downgrade() -> None:
    op.drop_index('uq_redemptions_key', table_name='redemptions')
    with op.batch_alter_table('redemptions') as batch:
        batch.drop_column('idempotency_key')
