"""alerts: the coordinators' open alerts, one row per condition that holds

Revision ID: 0018
Revises: 0017

``alerts``: the condition's name, when it opened, when it was last sent, and the banner's
line (counts and times only: never a caller's number or words).
"""
import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alerts",
        sa.Column("condition", sa.String(length=40), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("notified_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("summary", sa.String(length=400), nullable=False),
        sa.PrimaryKeyConstraint("condition", name=op.f("pk_alerts")),
    )


def downgrade() -> None:
    op.drop_table("alerts")
