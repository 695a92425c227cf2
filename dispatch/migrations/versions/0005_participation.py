"""Participation: the points ledger, the points supermarket, compounds, service orders and
check-ins at service stations.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29
"""
import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def _at(name, nullable=False):
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table('points_accounts',
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('balance', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('user_id'),
    sa.CheckConstraint('balance >= 0', name='ck_points_accounts_not_negative')
    )
    op.create_table('points_ledger',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('amount', sa.Integer(), nullable=False),
    sa.Column('balance_after', sa.Integer(), nullable=False),
    sa.Column('cause', sa.String(length=20), nullable=False),
    sa.Column('ref', sa.String(length=64), nullable=True),
    sa.Column('key', sa.String(length=100), nullable=True),
    sa.Column('community_code', sa.String(length=64), nullable=True),
    sa.Column('actor', sa.String(length=100), nullable=False),
    sa.Column('note', sa.Text(), nullable=False),
    _at('at'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('key', name='uq_points_ledger_key')
    )
    op.create_index('ix_points_ledger_user', 'points_ledger', ['user_id', 'id'])
    op.create_index('ix_points_ledger_community_at', 'points_ledger', ['community_code', 'at'])
    op.create_table('supermarket_items',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('price', sa.Integer(), nullable=False),
    sa.Column('stock', sa.Integer(), nullable=False),
    sa.Column('community_code', sa.String(length=64), nullable=True),
    sa.Column('station_id', sa.String(length=64), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    _at('created_at'),
    sa.PrimaryKeyConstraint('id'),
    sa.CheckConstraint('stock >= 0', name='ck_supermarket_items_stock')
    )
    op.create_table('redemptions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('item_id', sa.Integer(), nullable=False),
    sa.Column('quantity', sa.Integer(), nullable=False),
    sa.Column('points', sa.Integer(), nullable=False),
    sa.Column('state', sa.String(length=20), nullable=False),
    _at('reserved_at'),
    _at('closed_at', nullable=True),
    sa.Column('closed_by', sa.String(length=100), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['item_id'], ['supermarket_items.id']),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_redemptions_user', 'redemptions', ['user_id'])
    op.create_table('compounds',
    sa.Column('code', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('community_code', sa.String(length=64), nullable=True),
    sa.Column('property_company', sa.String(length=200), nullable=True),
    sa.Column('built_year', sa.Integer(), nullable=False),
    sa.Column('geometry', sa.LargeBinary(), nullable=False),
    sa.Column('west', sa.Float(), nullable=False),
    sa.Column('south', sa.Float(), nullable=False),
    sa.Column('east', sa.Float(), nullable=False),
    sa.Column('north', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('code')
    )
    op.create_index('ix_compounds_box', 'compounds', ['west', 'east', 'south', 'north'])
    op.create_table('service_orders',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('service', sa.String(length=40), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('lon', sa.Float(), nullable=False),
    sa.Column('lat', sa.Float(), nullable=False),
    sa.Column('community_code', sa.String(length=64), nullable=True),
    sa.Column('street_code', sa.String(length=64), nullable=True),
    sa.Column('compound_code', sa.String(length=64), nullable=True),
    sa.Column('state', sa.String(length=20), nullable=False),
    sa.Column('provider_kind', sa.String(length=20), nullable=True),
    sa.Column('provider', sa.String(length=200), nullable=True),
    sa.Column('taken_by', sa.String(length=100), nullable=True),
    _at('created_at'),
    _at('due_at'),
    _at('done_at', nullable=True),
    sa.Column('overdue', sa.Boolean(), nullable=False),
    sa.Column('rating', sa.Integer(), nullable=True),
    sa.Column('comment', sa.Text(), nullable=True),
    sa.Column('work_order_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_service_orders_user', 'service_orders', ['user_id'])
    op.create_index('ix_service_orders_open', 'service_orders', ['state', 'due_at'])
    op.create_table('service_order_audit',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('service_order_id', sa.Integer(), nullable=False),
    _at('at'),
    sa.Column('actor', sa.String(length=100), nullable=False),
    sa.Column('role', sa.String(length=20), nullable=False),
    sa.Column('action', sa.String(length=30), nullable=False),
    sa.Column('from_state', sa.String(length=20), nullable=True),
    sa.Column('to_state', sa.String(length=20), nullable=True),
    sa.Column('note', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['service_order_id'], ['service_orders.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_service_order_audit_order', 'service_order_audit',
                    ['service_order_id'])
    op.create_table('station_checkins',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('station_id', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    _at('at'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_station_checkins_station', 'station_checkins', ['station_id'])


def downgrade() -> None:
    op.drop_index('ix_station_checkins_station', table_name='station_checkins')
    op.drop_table('station_checkins')
    op.drop_index('ix_service_order_audit_order', table_name='service_order_audit')
    op.drop_table('service_order_audit')
    op.drop_index('ix_service_orders_open', table_name='service_orders')
    op.drop_index('ix_service_orders_user', table_name='service_orders')
    op.drop_table('service_orders')
    op.drop_index('ix_compounds_box', table_name='compounds')
    op.drop_table('compounds')
    op.drop_index('ix_redemptions_user', table_name='redemptions')
    op.drop_table('redemptions')
    op.drop_table('supermarket_items')
    op.drop_index('ix_points_ledger_community_at', table_name='points_ledger')
    op.drop_index('ix_points_ledger_user', table_name='points_ledger')
    op.drop_table('points_ledger')
    op.drop_table('points_accounts')
