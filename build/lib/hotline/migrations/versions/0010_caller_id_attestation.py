"""caller id attestation: whether a call's number was vouched for by its carrier

Revision ID: 0010
Revises: 0009

``contacts.caller_verified`` is true only for a call whose caller ID Twilio reported as
STIR/SHAKEN full attestation (StirVerstat TN-Validation-Passed-A). A yes to check-in texts
on any other call is confirmed by text first (hotline/consent.py). Existing contacts are
false: their questions, if still open, are answered by text anyway.
"""
import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("caller_verified", sa.Boolean(), nullable=False,
                                      server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.drop_column("caller_verified")
