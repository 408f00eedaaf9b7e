"""Callbacks: a peer calls the clinician back, within the promised time.

A request keeps the number sealed until the callback is done or given up. Each try is a
contact of its own (mode "callback"), routed like a call: a supporter is rung first
("press 1 to call the clinician back"), then the clinician, and both are bridged with the
hotline number as caller ID. An unanswered try is retried after CALLBACK_RETRY_MINUTES, at
most CALLBACK_MAX_TRIES times, then the clinician gets a discreet text.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from hotline import contacts, privacy
from hotline.extensions import jobs, settings
from hotline.models import CallbackRequest, Contact, Outcome, utcnow

log = logging.getLogger(__name__)

#: With nobody free to call back, try again this often until this long past the promise.
GIVE_UP_AFTER_PROMISE = timedelta(hours=2)


def request(session: Session, contact: Contact, number: str) -> CallbackRequest:
    """Record a callback for ``contact`` and start the first try."""
    from workers.callbacks import start_try
    cfg = settings()
    callback = CallbackRequest(
        contact_id=contact.id, sealed_number=privacy.seal(number, cfg),
        promised_by=utcnow() + timedelta(minutes=cfg.CALLBACK_PROMISE_MINUTES))
    session.add(callback)
    session.flush()
    contacts.finish(session, contact, Outcome.CALLBACK_REQUESTED)
    jobs.enqueue(start_try, callback.id)
    return callback


def of_try(session: Session, attempt: Contact) -> CallbackRequest | None:
    """The request a callback try belongs to."""
    return session.scalar(select(CallbackRequest).where(
        CallbackRequest.attempt_contact_id == attempt.id))


def reached(session: Session, attempt: Contact) -> None:
    """The clinician picked up and is bridged: the callback is done, the number goes."""
    callback = of_try(session, attempt)
    if callback is None:
        return
    callback.state = "done"
    callback.completed_at = utcnow()
    callback.sealed_number = None
    attempt.sealed_number = None
    session.commit()
    log.info("callback %s done (%s the promise)", callback.id,
             "within" if callback.completed_at <= callback.promised_by else "after")


def missed(session: Session, attempt: Contact) -> None:
    """The clinician did not answer: try again later, or text them after the last try."""
    callback = of_try(session, attempt)
    attempt.sealed_number = None
    session.commit()
    if callback is None:
        return
    callback.tries += 1
    _retry_or_give_up(session, callback, callback.tries >= settings().CALLBACK_MAX_TRIES)


def _retry_or_give_up(session: Session, callback: CallbackRequest, give_up: bool) -> None:
    """Schedule the next try, or give up with a discreet text."""
    from workers.callbacks import start_try, text_missed
    callback.state = "failed" if give_up else "pending"
    session.commit()
    if give_up:
        jobs.enqueue(text_missed, callback.id)
    else:
        jobs.enqueue_in(timedelta(minutes=settings().CALLBACK_RETRY_MINUTES), start_try,
                        callback.id)


def nobody_free(session: Session, attempt: Contact) -> None:
    """No supporter could take the try: retry later, without counting it against the caller."""
    callback = of_try(session, attempt)
    contacts.finish(session, attempt, Outcome.FAILED)
    attempt.sealed_number = None
    session.commit()
    if callback is not None:
        _retry_or_give_up(session, callback,
                          utcnow() > callback.promised_by + GIVE_UP_AFTER_PROMISE)
