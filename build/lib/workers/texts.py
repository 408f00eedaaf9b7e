"""Text jobs: send a template text, close a quiet conversation, ask about check-ins.

Arguments are ids and stamps only: never a number, never a message body.
"""

from __future__ import annotations

import logging

from hotline.telephony import message_records
from hotline.privacy import primitives as privacy
from hotline.followups.consent import flows
from hotline.text.conversations import close_quiet
from hotline.core.extensions import db, settings
from hotline.telephony import outbound
from hotline.models import Consent, Contact
from hotline.roster import care

log = logging.getLogger(__name__)

#: Kept under their old names for the jobs below and their callers.
text_flows = outbound.text_flows
send = outbound.send_text


def redact(message_sid: str) -> str:
    """A redaction job queued by an earlier version: the sid is filed for the auditor's
    sweep (``message_records``), which redacts until Twilio confirms."""
    message_records.file_sid(db.session, message_sid, message_records.OUTBOUND)
    db.session.commit()
    return "filed"


def close_if_idle(contact_id: int, stamp: int) -> str:
    """Close a text conversation nobody has written in since ``stamp``."""
    return close_quiet(db.session, contact_id, stamp)


def ask_consent(contact_id: int) -> str:
    """Text the one-line check-in question to a caller who hung up right after the call."""
    contact = db.session.get(Contact, contact_id)
    if contact is None or contact.consent != Consent.ASKED.value or not contact.sealed_number:
        return "nothing to do"
    number = privacy.unseal(contact.sealed_number, settings())
    send(number, flows().message(contact.language, "consent_text"))
    return "asked"


def after_contact(contact_id: int) -> str:
    """The supporter's text after a connected call (thanks, SUPPORT, the cool-down)."""
    return care.send_after_contact(db.session, contact_id)


def tell_paused(supporter_id: int) -> str:
    """The kind text to a supporter switched OFF after missed offers."""
    return care.send_paused(db.session, supporter_id)
