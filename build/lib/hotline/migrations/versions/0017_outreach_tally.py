"""outreach tally: outreach texts sent per local day, for the statistics

Revision ID: 0017
Revises: 0016

``outreach_days``: (local day, texts sent), incremented in the transaction that marks an
outreach sent. The outreach rows are deleted after the quiet period; this keeps the count
and nothing else (no id, number, key or referrer).
"""
import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "outreach_days",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("sent", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("day", name=op.f("pk_outreach_days")),
    )


def downgrade() -> None:
    op.drop_table("outreach_days")
