"""team debriefs: the debrief (a day and a count afterwards) and facilitators' reminders

Revision ID: 0016
Revises: 0014

``debriefs``: while scheduled, when it starts, its minutes, its facilitators and the keyed
hash of its meeting code; at the end all of that is cleared, leaving the day and the
number of participants. ``debrief_reminders``: the facilitators' reminder texts (sent
exactly once, as follow-ups are), deleted at the end.
"""
import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "debriefs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("participants", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("minutes", sa.Integer(), nullable=True),
        sa.Column("facilitator_id", sa.Integer(), nullable=True),
        sa.Column("second_facilitator_id", sa.Integer(), nullable=True),
        sa.Column("code_hash", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(["facilitator_id"], ["supporters.id"],
                                name=op.f("fk_debriefs_facilitator_id_supporters")),
        sa.ForeignKeyConstraint(["second_facilitator_id"], ["supporters.id"],
                                name=op.f("fk_debriefs_second_facilitator_id_supporters")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_debriefs")),
        sa.UniqueConstraint("code_hash", name=op.f("uq_debriefs_code_hash")),
    )
    op.create_index(op.f("ix_debriefs_day"), "debriefs", ["day"])
    op.create_index(op.f("ix_debriefs_state"), "debriefs", ["state"])
    op.create_table(
        "debrief_reminders",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("debrief_id", sa.Integer(), nullable=False),
        sa.Column("supporter_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("sending_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["debrief_id"], ["debriefs.id"],
                                name=op.f("fk_debrief_reminders_debrief_id_debriefs")),
        sa.ForeignKeyConstraint(["supporter_id"], ["supporters.id"],
                                name=op.f("fk_debrief_reminders_supporter_id_supporters")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_debrief_reminders")),
    )
    op.create_index(op.f("ix_debrief_reminders_debrief_id"), "debrief_reminders",
                    ["debrief_id"])
    op.create_index(op.f("ix_debrief_reminders_due_at"), "debrief_reminders", ["due_at"])


def downgrade() -> None:
    op.drop_table("debrief_reminders")
    op.drop_table("debriefs")
