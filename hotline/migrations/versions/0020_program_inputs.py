"""program inputs: staff headcount, turnover and supporters trained, per quarter

Revision ID: 0020
Revises: 0019

``program_inputs``: one row per calendar quarter ("2026-Q1") with the three figures a
coordinator enters for the leadership report (staff, never clinicians or contacts).
"""
import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "program_inputs",
        sa.Column("quarter", sa.String(length=7), nullable=False),
        sa.Column("staff_headcount", sa.Integer(), nullable=True),
        sa.Column("turnover_percent", sa.Float(), nullable=True),
        sa.Column("supporters_trained", sa.Integer(), nullable=True),
        sa.Column("updated_by", sa.String(length=254), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("quarter", name=op.f("pk_program_inputs")),
    )


def downgrade() -> None:
    op.drop_table("program_inputs")
