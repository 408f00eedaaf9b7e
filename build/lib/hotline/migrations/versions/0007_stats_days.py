"""statistics cache: exact counts of settled local days, and of past periods

Revision ID: 0007
Revises: 0006

``hotline.statistics.queries`` keeps the additive counts of each local day that can no longer change
(see ``hotline.models.stats_days``), and a past period's repeat callers and scores, so a
year's statistics read about 370 small rows and query only the last days. The tables
start empty: the first view (or the nightly purge) fills them.
"""
import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "stats_days",
        sa.Column("zone", sa.String(length=64), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("counts", sa.Text(), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("zone", "day", name=op.f("pk_stats_days")),
    )
    op.create_table(
        "stats_periods",
        sa.Column("zone", sa.String(length=64), nullable=False),
        sa.Column("first", sa.Date(), nullable=False),
        sa.Column("last", sa.Date(), nullable=False),
        sa.Column("counts", sa.Text(), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("zone", "first", "last", name=op.f("pk_stats_periods")),
    )


def downgrade() -> None:
    op.drop_table("stats_periods")
    op.drop_table("stats_days")
