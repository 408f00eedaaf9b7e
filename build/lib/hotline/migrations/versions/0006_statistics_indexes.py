"""statistics indexes: every dashboard query read from an index, on 1,000,000 events

Revision ID: 0006
Revises: 0005

The statistics of a period (``hotline.statistics.queries``) start from the ``started`` events in it,
then look up each of those contacts' other events. These indexes let both databases
answer from the index alone: the started events with their contact and channel, each
contact's first outcome (a partial index of the outcome events only), the callback
tries, offers and talk time per supporter. (kind, at) and offers' (created_at) are
prefixes of the new ones, so they go.
"""
import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

OUTCOME_SET = sa.text("outcome IS NOT NULL")


def upgrade() -> None:
    op.create_index("ix_contact_events_kind_at_contact", "contact_events",
                    ["kind", "at", "contact_id", "channel"], unique=False)
    op.drop_index("ix_contact_events_kind_at", table_name="contact_events")
    op.create_index("ix_contact_events_outcome", "contact_events",
                    ["contact_id", "id", "outcome", "at"], unique=False,
                    sqlite_where=OUTCOME_SET, postgresql_where=OUTCOME_SET)
    op.create_index("ix_contacts_mode", "contacts", ["mode", "id"], unique=False)
    op.create_index("ix_contacts_connected_at", "contacts",
                    ["connected_at", "supporter_id", "ended_at"], unique=False)
    op.create_index("ix_offers_created_at_supporter", "offers",
                    ["created_at", "supporter_id", "state"], unique=False)
    op.drop_index("ix_offers_created_at", table_name="offers")


def downgrade() -> None:
    op.create_index("ix_offers_created_at", "offers", ["created_at"], unique=False)
    op.drop_index("ix_offers_created_at_supporter", table_name="offers")
    op.drop_index("ix_contacts_connected_at", table_name="contacts")
    op.drop_index("ix_contacts_mode", table_name="contacts")
    op.drop_index("ix_contact_events_outcome", table_name="contact_events")
    op.create_index("ix_contact_events_kind_at", "contact_events", ["kind", "at"],
                    unique=False)
    op.drop_index("ix_contact_events_kind_at_contact", table_name="contact_events")
