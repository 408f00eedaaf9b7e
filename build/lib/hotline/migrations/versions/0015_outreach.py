"""outreach: a discreet text to a colleague someone referred

Revision ID: 0015
Revises: 0014

``outreach``: one row per text offering a referred colleague a call from a peer. No
referrer column (who referred is never stored); the number sealed only while pending; the
keyed hash kept for the quiet period. ``users.role`` gains the value "referrer" (a string
column: no change needed).
"""
import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "outreach",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("caller_key", sa.String(length=64), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("sealed_number", sa.String(length=512), nullable=True),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("contact_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["contact_id"], ["contacts.id"],
                                name="fk_outreach_contact_id_contacts"),
        sa.PrimaryKeyConstraint("id", name="pk_outreach"),
    )
    op.create_index("ix_outreach_caller_key", "outreach", ["caller_key"])
    op.create_index("ix_outreach_created_at", "outreach", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_outreach_created_at", table_name="outreach")
    op.drop_index("ix_outreach_caller_key", table_name="outreach")
    op.drop_table("outreach")
