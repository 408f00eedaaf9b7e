"""Text jobs: send a template text, close a quiet conversation, ask about check-ins.

Arguments are ids and stamps only: never a number, never a message body.
"""

from __future__ import annotations

import logging

from flask import current_app

from hotline import keys, message_records, privacy, twilio_api
from hotline.errors import TwilioApiError
from hotline.extensions import db, settings
from hotline.models import Consent, Contact, ContactMode, ContactState
from hotline.texting import TextFlows
from hotline.urls import public_url

log = logging.getLogger(__name__)

def text_flows() -> TextFlows:
    """The validated text-path flows of the current app."""
    return current_app.extensions["hotline.texts"]


def send(to: str, body: str) -> str | None:
    """Text ``to`` from the hotline unless that number opted out; returns the sid or None.

    The sid is filed for redaction at Twilio now (committing), and again by the status
    callback, so a worker dying right after the send still leaves it known."""
    if keys.opted_out(db.session, to, settings()):  # under any live key version
        return None
    try:
        sid = twilio_api.send_message(settings(), to, body,
                                      status_callback=public_url("sms.status"))
    except TwilioApiError as exc:
        log.warning("text not sent: %s", exc)
        return None
    message_records.file_sid(db.session, sid, message_records.OUTBOUND)
    db.session.commit()
    return sid


def redact(message_sid: str) -> str:
    """A redaction job queued by an earlier version: the sid is filed for the auditor's
    sweep (``message_records``), which redacts until Twilio confirms."""
    message_records.file_sid(db.session, message_sid, message_records.OUTBOUND)
    db.session.commit()
    return "filed"


def close_if_idle(contact_id: int, stamp: int) -> str:
    """Close a text conversation nobody has written in since ``stamp``."""
    from hotline.conversations import Conversation, Inbound, end_conversation

    contact = db.session.get(Contact, contact_id)
    if (contact is None or contact.state != ContactState.CONNECTED.value
            or contact.mode != ContactMode.TEXT.value or contact.last_activity_at is None
            or int(contact.last_activity_at.timestamp()) != stamp):
        return "active"
    conv = Conversation(db.session, text_flows(), Inbound(number="", body=""))
    for out in end_conversation(conv, contact, idle=True):
        send(out.to, out.body)
    db.session.commit()
    log.info("contact %s closed after a quiet period", contact_id)
    return "closed"


def ask_consent(contact_id: int) -> str:
    """Text the one-line check-in question to a caller who hung up right after the call."""
    from hotline.consent import flows
    contact = db.session.get(Contact, contact_id)
    if contact is None or contact.consent != Consent.ASKED.value or not contact.sealed_number:
        return "nothing to do"
    number = privacy.unseal(contact.sealed_number, settings())
    send(number, flows().message(contact.language, "consent_text"))
    return "asked"
