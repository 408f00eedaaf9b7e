"""dashboard: accounts, weekly shifts, availability overrides, statistics indexes

Revision ID: 0003
Revises: 0002
"""
from alembic import op
import sqlalchemy as sa


revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=True),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("invite_hash", sa.String(length=64), nullable=True),
        sa.Column("invite_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_login_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("email", name=op.f("uq_users_email")),
        sa.UniqueConstraint("invite_hash", name=op.f("uq_users_invite_hash")),
    )
    op.create_table(
        "shifts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("supporter_id", sa.Integer(), nullable=False),
        sa.Column("start_minute", sa.Integer(), nullable=False),
        sa.Column("end_minute", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["supporter_id"], ["supporters.id"],
                                name=op.f("fk_shifts_supporter_id_supporters")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shifts")),
    )
    with op.batch_alter_table("shifts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_shifts_supporter_id"), ["supporter_id"],
                              unique=False)
    op.create_table(
        "availability_overrides",
        sa.Column("supporter_id", sa.Integer(), nullable=False),
        sa.Column("off_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("set_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["supporter_id"], ["supporters.id"],
                                name=op.f("fk_availability_overrides_supporter_id_supporters")),
        sa.PrimaryKeyConstraint("supporter_id", name=op.f("pk_availability_overrides")),
    )
    with op.batch_alter_table("contact_events", schema=None) as batch_op:
        batch_op.create_index("ix_contact_events_kind_at", ["kind", "at"], unique=False)
        batch_op.create_index("ix_contact_events_contact_kind", ["contact_id", "kind"],
                              unique=False)
    with op.batch_alter_table("offers", schema=None) as batch_op:
        batch_op.create_index("ix_offers_created_at", ["created_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("offers", schema=None) as batch_op:
        batch_op.drop_index("ix_offers_created_at")
    with op.batch_alter_table("contact_events", schema=None) as batch_op:
        batch_op.drop_index("ix_contact_events_contact_kind")
        batch_op.drop_index("ix_contact_events_kind_at")
    op.drop_table("availability_overrides")
    with op.batch_alter_table("shifts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_shifts_supporter_id"))
    op.drop_table("shifts")
    op.drop_table("users")
