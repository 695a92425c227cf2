"""Draft boundary versions: started from a base version, edited revision by revision.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""
import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('boundary_versions') as batch:
        batch.add_column(sa.Column('draft', sa.Boolean(), nullable=False,
                                   server_default=sa.false()))
        batch.add_column(sa.Column('base_version', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('revision', sa.Integer(), nullable=False,
                                   server_default='0'))
        batch.create_foreign_key('fk_boundary_versions_base', 'boundary_versions',
                                 ['base_version'], ['id'])
    op.create_table('boundary_edits',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('version_id', sa.Integer(), nullable=False),
    sa.Column('revision', sa.Integer(), nullable=False),
    sa.Column('operation', sa.String(length=20), nullable=False),
    sa.Column('params', sa.JSON(), nullable=False),
    sa.Column('summary', sa.Text(), nullable=False),
    sa.Column('actor', sa.String(length=100), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['version_id'], ['boundary_versions.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_boundary_edits_version', 'boundary_edits', ['version_id'])


def downgrade() -> None:
    op.drop_index('ix_boundary_edits_version', table_name='boundary_edits')
    op.drop_table('boundary_edits')
    with op.batch_alter_table('boundary_versions') as batch:
        batch.drop_constraint('fk_boundary_versions_base', type_='foreignkey')
        batch.drop_column('revision')
        batch.drop_column('base_version')
        batch.drop_column('draft')
