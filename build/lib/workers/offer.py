"""Routing jobs: thin adapters that take ids and call the escalation runner.

Every job runs inside an app context (the worker pushes one) and takes ids only; the
policy's steps, the lock per contact and the staleness of an attempt are the runner's
(``hotline.escalation.runner``). Jobs are enqueued by name from
``hotline.lifecycle.effects``.
"""

from __future__ import annotations

import logging

from hotline.telephony import api as twilio_api
from hotline.text.conversations import clinician_number
from hotline.core.errors import TwilioApiError
from hotline.escalation import runner
from hotline.core.extensions import db, settings
from hotline.telephony import outbound
from hotline.models import Contact
from hotline.core.urls import public_url

log = logging.getLogger(__name__)


def route(contact_id: int, attempt: int) -> str:
    """One step of the escalation policy for a waiting contact."""
    return runner.step(contact_id, attempt)


def expire_offer(offer_id: int) -> str:
    """Safety net: an offer whose status callback never came is ended, routing goes on."""
    return runner.expire_offer(offer_id)


def cancel_offers(contact_id: int, keep_offer_id: int | None = None) -> int:
    """Stop every supporter call still ringing for a contact (caller left, or someone won)."""
    return runner.cancel_offers(contact_id, keep_offer_id)


def free_supporter(offer_id: int) -> str:
    """Safety net of a closed offer whose supporter was still on the call."""
    return runner.free_supporter(offer_id)


def call_clinician(contact_id: int) -> str:
    """A peer accepted a "call me" text request: call the clinician and bridge them."""
    contact = db.session.get(Contact, contact_id)
    number = clinician_number(contact) if contact is not None else None
    if number is None:
        return "no number"
    cfg = settings()
    call = twilio_api.OutboundCall(
        to=number, url=public_url("voice.clinician_answer", contact_id=contact_id),
        status_callback=public_url("voice.clinician_status", contact_id=contact_id),
        timeout=cfg.RING_SECONDS)
    try:
        twilio_api.create_call(cfg, call)
    except TwilioApiError as exc:
        log.warning("contact %s: clinician call not placed (%s)", contact_id, exc)
        return "failed"
    return "calling"


def tell_missed_call(contact_id: int) -> str:
    """The clinician did not pick up the peer's call: tell them how to ask again."""
    contact = db.session.get(Contact, contact_id)
    number = clinician_number(contact) if contact is not None else None
    if number is None:
        return "no number"
    outbound.send_text(number, outbound.text_flows().message(contact.language, "missed_call"))
    contact.sealed_number = None
    db.session.commit()
    return "told"
