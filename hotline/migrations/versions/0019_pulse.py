"""pulse: the staff pulse survey's windows and anonymous responses

Revision ID: 0019
Revises: 0018

``pulse_windows``: a title, when it opened and closed. ``pulse_responses``: a random id (not a
sequence: no submission order), the window, a coarse role and the answers; no time, no
address, nothing that links a ballot to anyone (hotline/models/pulse.py).
"""
import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pulse_windows",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=120), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pulse_windows")),
    )
    op.create_index(op.f("ix_pulse_windows_closed_at"), "pulse_windows", ["closed_at"])
    op.create_table(
        "pulse_responses",
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("window_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("burnout", sa.SmallInteger(), nullable=False),
        sa.Column("knows_line", sa.Boolean(), nullable=False),
        sa.Column("used_line", sa.Boolean(), nullable=False),
        sa.Column("likely", sa.SmallInteger(), nullable=False),
        sa.ForeignKeyConstraint(["window_id"], ["pulse_windows.id"],
                                name=op.f("fk_pulse_responses_window_id_pulse_windows")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pulse_responses")),
    )
    op.create_index(op.f("ix_pulse_responses_window_id"), "pulse_responses", ["window_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_pulse_responses_window_id"), table_name="pulse_responses")
    op.drop_table("pulse_responses")
    op.drop_index(op.f("ix_pulse_windows_closed_at"), table_name="pulse_windows")
    op.drop_table("pulse_windows")
