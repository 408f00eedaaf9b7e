"""message sids: the message records at Twilio still to redact or delete

Revision ID: 0009
Revises: 0007

One row per message the hotline knows at Twilio (sid and direction only, never a body
or a number). The auditor redacts each until Twilio confirms; retention deletes them at
Twilio after HOTLINE_TWILIO_LOG_DAYS. The sids already known (follow-up texts, incoming
texts of the last week) are filed as not yet redacted: redacting twice is harmless.
"""
import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "message_sids",
        sa.Column("sid", sa.String(length=64), nullable=False),
        sa.Column("direction", sa.String(length=8), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("redacted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("tries", sa.Integer(), nullable=False),
        sa.Column("next_try_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("sid", name=op.f("pk_message_sids")),
    )
    op.create_index(op.f("ix_message_sids_created_at"), "message_sids", ["created_at"])
    op.create_index("ix_message_sids_pending", "message_sids", ["redacted_at", "next_try_at"])
    op.execute("INSERT INTO message_sids (sid, direction, created_at, tries) "
               "SELECT message_sid, 'inbound', received_at, 0 FROM inbound_messages")
    op.execute("INSERT INTO message_sids (sid, direction, created_at, tries) "
               "SELECT message_sid, 'outbound', COALESCE(sent_at, due_at), 0 FROM followups "
               "WHERE message_sid IS NOT NULL AND message_sid NOT IN "
               "(SELECT sid FROM message_sids)")


def downgrade() -> None:
    op.drop_index("ix_message_sids_pending", table_name="message_sids")
    op.drop_index(op.f("ix_message_sids_created_at"), table_name="message_sids")
    op.drop_table("message_sids")
