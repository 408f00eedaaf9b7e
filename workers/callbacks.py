"""Callback jobs: start a try (ring a peer, then the clinician), or text after the last."""

from __future__ import annotations

import logging

from hotline import contacts, privacy
from hotline.consent import flows
from hotline.extensions import db, settings
from hotline.lifecycle import effects
from hotline.models import (CallbackRequest, CallbackState, Contact, ContactMode,
                            ContactState, EventKind, utcnow)
from workers import texts

log = logging.getLogger(__name__)


def start_try(callback_id: int) -> str:
    """Open a new try for a pending callback and route it to the next supporter.

    The try is created already queued, in the same commit that marks the request
    "calling": a worker killed after that commit leaves a waiting contact with nothing
    ringing, which the auditor routes again; killed before it, the request is still
    "pending" and the auditor starts it again. Either way the callback is never lost.
    """
    callback = db.session.get(CallbackRequest, callback_id, with_for_update=True)
    if callback is None or callback.state != CallbackState.PENDING.value or not callback.sealed_number:
        db.session.rollback()
        return "nothing to do"
    original = db.session.get(Contact, callback.contact_id)
    now = utcnow()
    attempt = Contact(channel=original.channel, caller_key=original.caller_key,
                      language=original.language, mode=ContactMode.CALLBACK.value,
                      state=ContactState.WAITING.value, attempt=1, queued_at=now,
                      sealed_number=callback.sealed_number)
    db.session.add(attempt)
    db.session.flush()
    contacts.event(db.session, attempt, EventKind.STARTED, at=now)
    contacts.event(db.session, attempt, EventKind.QUEUED, at=now)
    callback.state = CallbackState.CALLING.value
    callback.attempt_contact_id = attempt.id
    db.session.commit()
    effects.apply([effects.route(attempt.id, attempt.attempt)])
    log.info("callback %s: try for contact %s", callback_id, attempt.id)
    return "started"


def text_missed(callback_id: int) -> str:
    """After the last try: a discreet text saying how to ask again; the number goes."""
    callback = db.session.get(CallbackRequest, callback_id)
    if callback is None or not callback.sealed_number:
        return "nothing to do"
    original = db.session.get(Contact, callback.contact_id)
    number = privacy.unseal(callback.sealed_number, settings())
    texts.send(number, flows().message(original.language, "callback_missed"))
    callback.sealed_number = None
    db.session.commit()
    return "texted"
