"""What leaves the hotline while a contact moves on: template texts (never a body a user
wrote) and the end of a supporter's call. The runner, the auditor and the jobs share these.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from flask import current_app

from hotline.privacy import keys
from hotline.telephony import message_records
from hotline.telephony import api as twilio_api
from hotline.core.errors import TwilioApiError
from hotline.core.extensions import db, settings
from hotline.models.states import ContactMode, ContactState
from hotline.models import Offer
from hotline.core.urls import public_url

if TYPE_CHECKING:
    from hotline.text.words import TextFlows

log = logging.getLogger(__name__)


def text_flows() -> TextFlows:
    """The validated text-path flows of the current app."""
    return current_app.extensions["hotline.texts"]


def send_text(to: str, body: str) -> str | None:
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


def hang_up(offer: Offer) -> None:
    """End the supporter's leg at Twilio, best effort; a text offer is withdrawn by text."""
    if offer.contact.mode == ContactMode.TEXT.value:
        key = "offer_taken" if offer.contact.state == ContactState.CONNECTED.value \
            else "offer_expired"
        send_text(offer.supporter.phone, text_flows().message("en", key))
        return
    if not offer.call_sid:
        return
    try:
        twilio_api.end_call(settings(), offer.call_sid, answered=offer.answered)
    except TwilioApiError as exc:
        log.info("offer %s: end call: %s", offer.id, exc)
