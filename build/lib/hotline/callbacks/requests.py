"""Callbacks: a peer calls the clinician back, as promised, on a bounded schedule.

A request keeps the number sealed until the callback is done or given up. Each try is a
contact of its own (mode "callback"; the statistics count the request once, not its
tries), routed like a call: a supporter is rung first ("press 1 to call the clinician
back"), then the clinician, and both are bridged with the hotline number as caller ID.

The promise is only what the roster can keep (``promise``): "within N minutes" when
someone is offered contacts now or a shift starts within those minutes; else the start of
the next shift (program time zone), the first try waiting for it; else "as soon as
someone is available". Every spoken or texted promise also gives the crisis line.

The schedule: the first try at the promise, then one try every CALLBACK_RETRY_MINUTES,
CALLBACK_MAX_TRIES tries in all. Every try counts, whether no supporter could take it or
the clinician did not answer; after the last, the clinician gets a discreet text and the
number goes. Within a request, supporters rung for an earlier try come last
(``hotline.lifecycle.routing.missed_earlier``), so nobody is rung again for it before the
others have had it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from hotline.lifecycle import contacts
from hotline.privacy import primitives as privacy
from hotline.roster import shifts
from hotline.core.extensions import settings
from hotline.lifecycle import effects, transitions
from hotline.lifecycle.effects import Effect
from hotline.models import (CallbackRequest, CallbackState, Contact, ContactMode, ContactState,
                            EventKind, Outcome, utcnow)
from flask import current_app

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Promise:
    """What the caller is told, and when the first try starts."""
    kind: str              # "within" (N minutes), "at" (the next shift), "later"
    first_try: datetime
    by: datetime           # the promise, for the statistics (kept or late)
    shift_start: datetime | None = None

    #: The prompt (voice.yaml) and message (sms.yaml) of each kind.
    PROMPTS = {"within": "callback_promise", "at": "callback_promise_at",
               "later": "callback_promise_later"}
    MESSAGES = {"within": "callback", "at": "callback_at", "later": "callback_later"}

    def when(self, lang: str, with_zone: bool = False) -> str:
        """The next shift's start on the program's clock in ``lang``: "Monday 08:00"
        (texts add the zone's abbreviation, "Monday 08:00 EST"); day names are the
        ``weekdays`` prompt of ivr_flows/voice.yaml."""
        if self.shift_start is None:
            return ""
        local = self.shift_start.astimezone(shifts.program_zone())
        day = current_app.extensions["hotline.flows"].prompt(lang, "weekdays")[local.weekday()]
        return f"{day} {local:%H:%M}" + (f" {local:%Z}" if with_zone else "")


def promise(session: Session, now: datetime | None = None) -> Promise:
    """The callback the roster can keep, decided when the caller asks."""
    now = now or utcnow()
    window = timedelta(minutes=settings().CALLBACK_PROMISE_MINUTES)
    if shifts.offered_now(session, now):
        return Promise("within", now, now + window)
    start = shifts.next_shift_start(session, now, shifts.program_zone())
    if start is not None and start - now <= window:
        return Promise("within", start, now + window)
    if start is not None:
        return Promise("at", start, start + window, start)
    return Promise("later", now, now + window)


def request(session: Session, contact: Contact, number: str,
            promised: Promise | None = None) -> CallbackRequest:
    """Record a callback for ``contact`` (the number sealed on the request only, the
    contact's copy forgotten in the same commit), then schedule its first try at the
    promise."""
    promised = promised or promise(session)
    callback = CallbackRequest(
        contact_id=contact.id, sealed_number=privacy.seal(number, settings()),
        promised_by=promised.by,
        # The caller's match request goes with the request to each try (the contact's own
        # copy is erased with its outcome below); ``_over`` erases it.
        match_role=contact.match_role, match_unit=contact.match_unit)
    session.add(callback)
    session.flush()
    transitions.finish(session, contact, Outcome.CALLBACK_REQUESTED, cancel=False)
    effects.apply([_next_try(callback, max(timedelta(0), promised.first_try - utcnow()))])
    return callback


def _over(callback: CallbackRequest) -> None:
    """The request reached its end (done, or given up): its match request goes."""
    callback.match_role = callback.match_unit = None


def try_job_id(callback: CallbackRequest) -> str:
    """The RQ job id of a request's next try: the auditor leaves a try still scheduled
    alone (a first try may wait hours for the next shift)."""
    return f"hotline-callback-{callback.id}-try-{callback.tries + 1}"


def _next_try(callback: CallbackRequest, delay: timedelta) -> Effect:
    return effects.start_callback_try(callback.id, try_job_id(callback), delay)


def of_try(session: Session, attempt: Contact) -> CallbackRequest | None:
    """The request a callback try belongs to."""
    return session.scalar(select(CallbackRequest).where(
        CallbackRequest.attempt_contact_id == attempt.id))


def reached(session: Session, attempt: Contact) -> None:
    """The clinician picked up and is bridged: the callback is done, the number goes
    (in the caller's transaction)."""
    callback = of_try(session, attempt)
    if callback is None:
        return
    callback.state = CallbackState.DONE.value
    callback.completed_at = utcnow()
    callback.sealed_number = None
    _over(callback)
    attempt.sealed_number = None
    log.info("callback %s done (%s the promise)", callback.id,
             "within" if callback.completed_at <= callback.promised_by else "after")


def start_try(session: Session, callback_id: int) -> str:
    """Open a new try for a pending callback and route it to the next supporter.

    The try is created already queued, in the same commit that marks the request
    "calling": a worker killed after that commit leaves a waiting contact with nothing
    ringing, which the auditor routes again; killed before it, the request is still
    "pending" and the auditor starts it again. Either way the callback is never lost.
    """
    callback = session.get(CallbackRequest, callback_id, with_for_update=True)
    if (callback is None or callback.state != CallbackState.PENDING.value
            or not callback.sealed_number):
        session.rollback()
        return "nothing to do"
    original = session.get(Contact, callback.contact_id)
    now = utcnow()
    attempt = Contact(channel=original.channel, caller_key=original.caller_key,
                      language=original.language, mode=ContactMode.CALLBACK.value,
                      state=ContactState.WAITING.value, attempt=1, queued_at=now,
                      sealed_number=callback.sealed_number, match_role=callback.match_role,
                      match_unit=callback.match_unit)
    session.add(attempt)
    session.flush()
    contacts.event(session, attempt, EventKind.STARTED, at=now)
    contacts.event(session, attempt, EventKind.QUEUED, at=now)
    callback.state = CallbackState.CALLING.value
    callback.attempt_contact_id = attempt.id
    session.commit()
    effects.apply([effects.route(attempt.id, attempt.attempt)])
    log.info("callback %s: try for contact %s", callback_id, attempt.id)
    return "started"


def missed(session: Session, attempt: Contact) -> list[Effect]:
    """The clinician did not answer: the try is over."""
    return _try_over(session, attempt)


def nobody_free(session: Session, attempt: Contact) -> list[Effect]:
    """No supporter took the try: it is over, and counts like any other."""
    transitions.finish(session, attempt, Outcome.FAILED, cancel=False)  # nothing rings
    return _try_over(session, attempt)


def _try_over(session: Session, attempt: Contact) -> list[Effect]:
    """Count the try; schedule the next, or after the last give up with a discreet text."""
    callback = of_try(session, attempt)
    attempt.sealed_number = None
    session.commit()
    if callback is None or callback.state != CallbackState.CALLING.value:
        return []
    callback.tries += 1
    give_up = callback.tries >= settings().CALLBACK_MAX_TRIES
    callback.state = CallbackState.FAILED.value if give_up else CallbackState.PENDING.value
    if give_up:
        _over(callback)
    session.commit()
    log.info("callback %s: try %s of %s over", callback.id, callback.tries,
             settings().CALLBACK_MAX_TRIES)
    if give_up:
        return [effects.text_callback_missed(callback.id)]
    return [_next_try(callback, timedelta(minutes=settings().CALLBACK_RETRY_MINUTES))]
