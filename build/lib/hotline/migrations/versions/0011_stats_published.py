"""published statistics: the counts a month was first published with

Revision ID: 0011
Revises: 0010

A late event for a settled day changed a published month's counts, and so its hidden
cells: a reader holding both versions could difference them (a reply count shown <11,
then 11, was 10). ``stats_published`` keeps each published month's exact counts as first
published (``hotline.disclosure.joint``); every later view shows that version. The table
starts empty: the next view or nightly warm-up fills it.
"""
import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "stats_published",
        sa.Column("zone", sa.String(length=64), nullable=False),
        sa.Column("period", sa.String(length=16), nullable=False),
        sa.Column("first", sa.Date(), nullable=False),
        sa.Column("counts", sa.Text(), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("zone", "period", name=op.f("pk_stats_published")),
    )


def downgrade() -> None:
    op.drop_table("stats_published")
