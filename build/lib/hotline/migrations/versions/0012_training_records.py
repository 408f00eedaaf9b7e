"""training records: a supporter's training date and refresher date; training reminders

Revision ID: 0012
Revises: 0011

``supporters.trained_on`` and ``supporters.refresher_due`` (dates, null = no record) and
``training_reminders``, the idempotency records of the refresher reminders and the
coordinators' weekly digest.

Existing supporters get no record: nobody knows when they were trained, and inventing a
date would put untrained people in front of clinicians. With HOTLINE_REQUIRE_TRAINING on
(the default) they are not offered contacts until a coordinator records their training
(``hotline supporters train PHONE --on DATE`` or the roster page); the dashboard and
``hotline worker`` say so loudly (docs/operations.md, "Training records"). A program that
must keep ringing them meanwhile sets HOTLINE_REQUIRE_TRAINING=0 until it has.
"""
import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("supporters", schema=None) as batch_op:
        batch_op.add_column(sa.Column("trained_on", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("refresher_due", sa.Date(), nullable=True))
    op.create_table(
        "training_reminders",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=80), nullable=False),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("supporter_id", sa.Integer(), nullable=True),
        sa.Column("recipient", sa.String(length=20), nullable=True),
        sa.Column("for_date", sa.Date(), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("sending_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("message_sid", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["supporter_id"], ["supporters.id"],
                                name=op.f("fk_training_reminders_supporter_id_supporters")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_training_reminders")),
        sa.UniqueConstraint("key", name=op.f("uq_training_reminders_key")),
    )
    with op.batch_alter_table("training_reminders", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_training_reminders_due_at"), ["due_at"])
        batch_op.create_index(batch_op.f("ix_training_reminders_supporter_id"),
                              ["supporter_id"])


def downgrade() -> None:
    op.drop_table("training_reminders")
    with op.batch_alter_table("supporters", schema=None) as batch_op:
        batch_op.drop_column("refresher_due")
        batch_op.drop_column("trained_on")
