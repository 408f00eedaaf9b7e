"""roles and units: a supporter's role and units; a caller's match request

Revision ID: 0013
Revises: 0011

``supporters.role`` and ``supporters.units`` (names from ivr_flows/roster.yaml); the
caller's match request (``match_role``, ``match_unit``) on an open contact, and on a
callback request while it keeps its sealed number, for routing only: both are erased when
the contact reaches its outcome (the request: when its number goes). Nullable, no backfill.
"""
import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("supporters") as batch:
        batch.add_column(sa.Column("role", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("units", sa.String(length=200), nullable=False,
                                   server_default=""))
    for table in ("contacts", "callback_requests"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("match_role", sa.String(length=32), nullable=True))
            batch.add_column(sa.Column("match_unit", sa.String(length=512), nullable=True))


def downgrade() -> None:
    for table in ("callback_requests", "contacts"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("match_unit")
            batch.drop_column("match_role")
    with op.batch_alter_table("supporters") as batch:
        batch.drop_column("units")
        batch.drop_column("role")
