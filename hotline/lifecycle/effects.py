"""What a transition needs done after its commit, as data; and the one place that does it.

A transition (``hotline.lifecycle.transitions``, ``hotline.escalation.runner``) changes
rows and returns effects; the adapter that called it (a webhook, a job) commits, then
hands them to ``apply``. Jobs are enqueued by their dotted names (RQ imports the function
in the worker), so nothing in ``hotline`` imports ``workers``; job ids, delays and the
queue's front are exactly what each caller used to pass.

Why after the commit: a job that runs before the commit it depends on would read the old
rows (a routing job finding the contact not yet waiting), and a transaction rolled back
must not leave jobs behind.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta

from hotline.core.extensions import jobs

log = logging.getLogger(__name__)

#: The RQ jobs, by dotted name (``workers/`` holds them, as thin adapters).
ROUTE = "workers.offer.route"
CANCEL_OFFERS = "workers.offer.cancel_offers"
EXPIRE_OFFER = "workers.offer.expire_offer"
FREE_SUPPORTER = "workers.offer.free_supporter"
CALL_CLINICIAN = "workers.offer.call_clinician"
TELL_MISSED_CALL = "workers.offer.tell_missed_call"
START_CALLBACK_TRY = "workers.callbacks.start_try"
TEXT_CALLBACK_MISSED = "workers.callbacks.text_missed"
CLOSE_IF_IDLE = "workers.texts.close_if_idle"
ASK_CONSENT = "workers.texts.ask_consent"
SEND_FOLLOWUP = "workers.followups.send_followup"
AFTER_CONTACT = "workers.texts.after_contact"
TELL_PAUSED = "workers.texts.tell_paused"
SEND_TRAINING_REMINDER = "workers.training.send_reminder"


@dataclass(frozen=True)
class Effect:
    """One job to enqueue: ``job`` (a dotted name) with ``args`` (ids and stamps only,
    never a number or a text), now or after ``delay``.

    ``best_effort``: a Redis failure is logged and forgotten (the auditor repairs what the
    job would have done); otherwise it propagates to the adapter, which decides.
    """
    job: str
    args: tuple = ()
    delay: timedelta | None = None
    job_id: str | None = None
    at_front: bool = False
    best_effort: bool = False


def route(contact_id: int, attempt: int, at_front: bool = False,
          after: timedelta | None = None) -> Effect:
    """Run the escalation policy's next step for the contact (``escalation.runner``), now
    or ``after`` a while (a hold's end: one job per attempt, a later hold replaces it)."""
    if after is not None:
        return Effect(ROUTE, (contact_id, attempt), delay=after,
                      job_id=f"hotline-route-{contact_id}-{attempt}-held")
    return Effect(ROUTE, (contact_id, attempt), at_front=at_front)


def cancel_offers(contact_id: int, keep_offer_id: int | None = None) -> Effect:
    """Stop every supporter call still ringing for the contact (but ``keep_offer_id``),
    at the queue's front: each moment a phone rings for a caller already connected (or
    gone) is a supporter's moment spent for nothing, and a pick-up told "taken"."""
    args = (contact_id,) if keep_offer_id is None else (contact_id, keep_offer_id)
    return Effect(CANCEL_OFFERS, args, at_front=True)


def expire_offer(offer_id: int, after: timedelta) -> Effect:
    """The safety net of a ringing offer whose status never comes."""
    return Effect(EXPIRE_OFFER, (offer_id,), delay=after)


def free_supporter(offer_id: int, after: timedelta) -> Effect:
    """The safety net of an offer closed while its supporter was still on the call; should
    Redis refuse it, the auditor frees them (``auditor._free_held``), so a cancel goes on
    stopping the other phones and a goodbye is still answered."""
    return Effect(FREE_SUPPORTER, (offer_id,), delay=after, best_effort=True)


def call_clinician(contact_id: int) -> Effect:
    return Effect(CALL_CLINICIAN, (contact_id,))


def tell_missed_call(contact_id: int) -> Effect:
    return Effect(TELL_MISSED_CALL, (contact_id,))


def start_callback_try(callback_id: int, job_id: str, delay: timedelta) -> Effect:
    """The next try of a callback request, under its deterministic job id."""
    return Effect(START_CALLBACK_TRY, (callback_id,), job_id=job_id,
                  delay=delay if delay > timedelta(0) else None)


def text_callback_missed(callback_id: int) -> Effect:
    return Effect(TEXT_CALLBACK_MISSED, (callback_id,))


def close_if_idle(contact_id: int, stamp: int, after: timedelta) -> Effect:
    """Close a quiet text conversation; best effort (the auditor closes it otherwise)."""
    return Effect(CLOSE_IF_IDLE, (contact_id, stamp), delay=after, best_effort=True)


def ask_consent(contact_id: int) -> Effect:
    return Effect(ASK_CONSENT, (contact_id,))


def after_contact(contact_id: int) -> Effect:
    """The supporter's text after a connected contact (``hotline.roster.care``)."""
    return Effect(AFTER_CONTACT, (contact_id,))


def tell_paused(supporter_id: int) -> Effect:
    """The kind text of an automatic pause after missed offers (``hotline.roster.care``)."""
    return Effect(TELL_PAUSED, (supporter_id,))


def apply(effects: Iterable[Effect]) -> None:
    """Enqueue each effect's job, in order. Call it after the commit of the transition
    that returned them."""
    for effect in effects:
        try:
            _enqueue(effect)
        except Exception:
            if not effect.best_effort:
                raise
            log.warning("%s not scheduled for %s", effect.job.rsplit(".", 1)[-1],
                        effect.args[:1])


def _enqueue(effect: Effect) -> None:
    options = {"job_id": effect.job_id} if effect.job_id else {}
    if effect.delay is not None:
        jobs.enqueue_in(effect.delay, effect.job, *effect.args, **options)
    elif effect.at_front:
        jobs.enqueue(effect.job, *effect.args, at_front=True, **options)
    else:
        jobs.enqueue(effect.job, *effect.args, **options)
