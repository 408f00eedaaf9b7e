"""retention: monthly aggregates of folded events and scores

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27 09:00:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('monthly_aggregates',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('month', sa.Date(), nullable=False),
    sa.Column('channel', sa.String(length=8), nullable=False),
    sa.Column('kind', sa.String(length=24), nullable=False),
    sa.Column('tier', sa.Integer(), nullable=True),
    sa.Column('outcome', sa.String(length=20), nullable=True),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_monthly_aggregates'))
    )
    with op.batch_alter_table('monthly_aggregates', schema=None) as batch_op:
        batch_op.create_index('ix_monthly_aggregates_month_kind', ['month', 'kind'],
                              unique=False)

    op.create_table('monthly_scores',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('month', sa.Date(), nullable=False),
    sa.Column('channel', sa.String(length=8), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('value', sa.Integer(), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_monthly_scores'))
    )
    with op.batch_alter_table('monthly_scores', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_monthly_scores_month'), ['month'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('monthly_scores', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_monthly_scores_month'))
    op.drop_table('monthly_scores')
    with op.batch_alter_table('monthly_aggregates', schema=None) as batch_op:
        batch_op.drop_index('ix_monthly_aggregates_month_kind')
    op.drop_table('monthly_aggregates')
