"""supporter care: cool-down, missed offers in a row, quiet, and the automatic pause

Revision ID: 0014
Revises: 0011

``supporters.cooldown_until``: after a connected contact the supporter is offered another
only when nobody else is free until then (HOTLINE_COOLDOWN_MINUTES; READY clears it).
``supporters.missed_in_row``: offers in a row let ring out or met with silence (a yes or a
decline resets it); at HOTLINE_MAX_MISSED_OFFERS the supporter is switched OFF, and
``availability_overrides.auto_paused`` marks that OFF as the hotline's, not theirs (any
later switch replaces the row). ``supporters.quiet``: no thank-you text after contacts.
Existing supporters start with no cool-down, no misses, texts on.
"""
import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("supporters", schema=None) as batch_op:
        batch_op.add_column(sa.Column("cooldown_until", sa.DateTime(timezone=True),
                                      nullable=True))
        batch_op.add_column(sa.Column("missed_in_row", sa.Integer(), nullable=False,
                                      server_default="0"))
        batch_op.add_column(sa.Column("quiet", sa.Boolean(), nullable=False,
                                      server_default=sa.false()))
    with op.batch_alter_table("availability_overrides", schema=None) as batch_op:
        batch_op.add_column(sa.Column("auto_paused", sa.Boolean(), nullable=False,
                                      server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("availability_overrides", schema=None) as batch_op:
        batch_op.drop_column("auto_paused")
    with op.batch_alter_table("supporters", schema=None) as batch_op:
        batch_op.drop_column("quiet")
        batch_op.drop_column("missed_in_row")
        batch_op.drop_column("cooldown_until")
