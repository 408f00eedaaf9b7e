"""Routing jobs: offer a waiting contact to the next supporter, escalate, cancel.

Every job runs inside an app context (the worker pushes one), takes ids only, and
carries the attempt it belongs to: a late or duplicated job finds its attempt stale and
does nothing. One job at a time per contact (a Redis lock) keeps the steps ordered.
"""

from __future__ import annotations

import logging
import time
from contextvars import ContextVar
from datetime import timedelta

from sqlalchemy import select

from hotline import routing, twilio_api
from hotline.contacts import event
from hotline.errors import TwilioApiError
from hotline.extensions import db, jobs, redis_conn, settings
from hotline.models import (Channel, Contact, ContactMode, ContactState, EventKind, Offer,
                            OfferState)
from hotline.urls import public_url
from workers import texts

log = logging.getLogger(__name__)

#: How long one routing step may hold a contact's lock (it makes a few REST calls).
LOCK_SECONDS = 60
#: Grace past ring + accept time before a silent offer is expired by the safety net.
EXPIRY_GRACE_SECONDS = 60
#: Offers tried per step when Twilio refuses calls, before giving up on this step.
MAX_DIAL_FAILURES = 10
#: The routing step under way collects the durations of its decisions here (ms).
_DECISIONS: ContextVar[list[tuple[float, float]] | None] = ContextVar("routing_decisions",
                                                                      default=None)


def route(contact_id: int, attempt: int) -> str:
    """One routing step for a waiting contact; returns what it did (for tests and logs).

    Its log line gives the milliseconds of each routing decision (pick and reserve the
    next supporters, ``routing.offer_next``), wall-clock and CPU, and of the whole step:
    ids and times only.
    """
    started = time.perf_counter()
    decisions: list[tuple[float, float]] = []  # (wall ms, CPU ms) of each
    token = _DECISIONS.set(decisions)
    try:
        did = _route(contact_id, attempt)
    finally:
        _DECISIONS.reset(token)
    log.info("contact %s attempt %s routed: %s (decisions %s ms, cpu %s ms, step %.1f ms)",
             contact_id, attempt, did or "-",
             "+".join(f"{wall:.1f}" for wall, _ in decisions) or "none",
             "+".join(f"{cpu:.1f}" for _, cpu in decisions) or "none",
             (time.perf_counter() - started) * 1000)
    return did


def _offer_next(contact: Contact, tier: int, limit: int | None = 1) -> list[Offer]:
    """``routing.offer_next``, timed for the step's log line."""
    started, cpu = time.perf_counter(), time.thread_time()
    try:
        return routing.offer_next(db.session, contact, tier, limit=limit)
    finally:
        decisions = _DECISIONS.get()
        if decisions is not None:
            decisions.append(((time.perf_counter() - started) * 1000,
                              (time.thread_time() - cpu) * 1000))


def _route(contact_id: int, attempt: int) -> str:
    with redis_conn.client.lock(f"hotline:lock:contact:{contact_id}", timeout=LOCK_SECONDS,
                                blocking_timeout=LOCK_SECONDS):
        session = db.session
        contact = _current(session, contact_id)
        if routing.is_stale(contact, attempt):
            return "stale"
        did = []
        if contact.escalated and not contact.tier2_rung:
            did.append(_ring_backup(contact))
        if not routing.ringing(contact, routing.TIER_PEER):
            if _offer_peer(contact):
                return ",".join(d for d in did + ["tier1"] if d)  # a phone rings now
            did.append(_escalate(contact))
        session.refresh(contact)
        if not routing.ringing(contact):
            contact.exhausted = True
            event(session, contact, EventKind.EXHAUSTED)
            session.commit()
            if contact.mode == ContactMode.CALLBACK.value:
                from hotline import callbacks
                callbacks.nobody_free(session, contact)
            elif contact.channel == Channel.SMS.value:
                _tell_nobody_is_free(contact)
            did.append("exhausted")
        return ",".join(d for d in did if d)


def _current(session, contact_id: int) -> Contact | None:
    """The contact as it is now, in one SELECT whether or not this session knew it."""
    known = session.identity_map.get(session.identity_key(Contact, contact_id))
    if known is None:
        return session.get(Contact, contact_id)
    session.refresh(known)
    return known


def _offer_peer(contact: Contact) -> bool:
    """Ring the next tier-1 supporter; skips any whose call Twilio refuses."""
    for _ in range(MAX_DIAL_FAILURES):
        offers = _offer_next(contact, routing.TIER_PEER)
        if not offers:
            return False
        if _dial(offers[0]):
            return True
        db.session.refresh(contact)
    return False


def _escalate(contact: Contact) -> str:
    """Tier 1 has nobody left: mark the contact escalated and ring the backup tier."""
    if not contact.escalated:
        contact.escalated = True
        event(db.session, contact, EventKind.ESCALATED, tier=routing.TIER_BACKUP)
    if contact.tier2_rung:
        db.session.commit()
        return ""
    return _ring_backup(contact)  # commits the escalation with it


def _ring_backup(contact: Contact) -> str:
    """Ring every free tier-2 supporter at once; the first to press 1 wins."""
    contact.tier2_rung = True
    db.session.commit()
    offers = _offer_next(contact, routing.TIER_BACKUP, limit=None)
    rung = sum(_dial(offer) for offer in offers)
    return f"tier2x{rung}"


def _tell_nobody_is_free(contact: Contact) -> None:
    """A text request found nobody: say so honestly and offer a callback or the crisis line."""
    from hotline import contacts
    from hotline.conversations import clinician_number
    from hotline.models import ContactState
    contacts.leave_queue(db.session, contact, ContactState.OPTIONS)
    number = clinician_number(contact)
    if number:
        texts.send(number, texts.text_flows().message(
            contact.language, "nobody", crisis=settings().CRISIS_LINE_NUMBER))


def _text_offer(offer: Offer) -> bool:
    """Offer a text request to a supporter by SMS; the reply YES or PASS decides."""
    cfg = settings()
    minutes = max(1, cfg.SMS_ACCEPT_SECONDS // 60)
    if texts.send(offer.supporter.phone, texts.text_flows().message(
            "en", "offer", minutes=minutes)) is None:
        routing.close_offer(db.session, offer, OfferState.FAILED)
        return False
    event(db.session, offer.contact, EventKind.OFFERED, tier=offer.tier)
    db.session.commit()
    jobs.enqueue_in(timedelta(seconds=cfg.SMS_ACCEPT_SECONDS), expire_offer, offer.id)
    return True


def _dial(offer: Offer) -> bool:
    """Call the offer's supporter from the hotline number; False if Twilio refused."""
    if offer.contact.mode == ContactMode.TEXT.value:
        return _text_offer(offer)
    cfg = settings()
    call = twilio_api.OutboundCall(
        to=offer.supporter.phone,
        url=public_url("offer.answer", offer_id=offer.id),
        status_callback=public_url("offer.status", offer_id=offer.id),
        timeout=cfg.RING_SECONDS)
    try:
        offer.call_sid = twilio_api.create_call(cfg, call)
    except TwilioApiError as exc:
        log.warning("offer %s: call not placed (%s)", offer.id, exc)
        routing.close_offer(db.session, offer, OfferState.FAILED)
        return False
    event(db.session, offer.contact, EventKind.OFFERED, tier=offer.tier)
    db.session.commit()
    jobs.enqueue_in(timedelta(seconds=cfg.RING_SECONDS + cfg.ACCEPT_SECONDS
                              + EXPIRY_GRACE_SECONDS), expire_offer, offer.id)
    return True


def expire_offer(offer_id: int) -> str:
    """Safety net: an offer whose status callback never came is ended and routing goes on."""
    offer = db.session.get(Offer, offer_id)
    if offer is None or offer.state != OfferState.RINGING.value:
        return "done"
    text = offer.contact.mode == ContactMode.TEXT.value
    if not text:
        _hang_up(offer)
    if routing.close_offer(db.session, offer, OfferState.NO_ANSWER):
        if text:  # only the job that closed it tells the supporter, and only once
            _hang_up(offer)
        jobs.enqueue(route, offer.contact_id, offer.attempt)
    return "expired"


def cancel_offers(contact_id: int, keep_offer_id: int | None = None) -> int:
    """Stop every supporter call still ringing for a contact (caller left, or someone won)."""
    ringing = db.session.scalars(select(Offer).where(
        Offer.contact_id == contact_id, Offer.state == OfferState.RINGING.value,
        Offer.id != (keep_offer_id or 0)).order_by(Offer.id)).all()
    canceled = 0
    for offer in ringing:
        if close_answered(offer, OfferState.CANCELED) if offer.answered else \
                routing.close_offer(db.session, offer, OfferState.CANCELED):
            _hang_up(offer)
            canceled += 1
    log.info("contact %s: %s offers canceled", contact_id, canceled)
    return canceled


def close_answered(offer: Offer, state: OfferState) -> bool:
    """Close an offer whose supporter is still on its call: they stay reserved until the
    call's status callback frees them (``routing.close_offer(keep=True)``), or, should
    that never come, ``free_supporter`` a minute later."""
    won = routing.close_offer(db.session, offer, state, keep=True)
    if won:
        jobs.enqueue_in(timedelta(seconds=EXPIRY_GRACE_SECONDS), free_supporter, offer.id)
    return won


def free_supporter(offer_id: int) -> str:
    """Safety net of ``close_answered``: free the supporter if the offer still holds them."""
    offer = db.session.get(Offer, offer_id)
    if offer is None or offer.state == OfferState.RINGING.value:
        return "nothing to do"
    freed = routing.release(db.session, offer.supporter_id, offer.token)
    db.session.commit()
    return "freed" if freed else "already free"


def _hang_up(offer: Offer) -> None:
    """End the supporter's leg at Twilio, best effort; a text offer is withdrawn by text."""
    if offer.contact.mode == ContactMode.TEXT.value:
        key = "offer_taken" if offer.contact.state == ContactState.CONNECTED.value else "offer_expired"
        texts.send(offer.supporter.phone, texts.text_flows().message("en", key))
        return
    if not offer.call_sid:
        return
    try:
        twilio_api.end_call(settings(), offer.call_sid, answered=offer.answered)
    except TwilioApiError as exc:
        log.info("offer %s: end call: %s", offer.id, exc)


def call_clinician(contact_id: int) -> str:
    """A peer accepted a "call me" text request: call the clinician and bridge them."""
    from hotline.conversations import clinician_number
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
    from hotline.conversations import clinician_number
    contact = db.session.get(Contact, contact_id)
    number = clinician_number(contact) if contact is not None else None
    if number is None:
        return "no number"
    texts.send(number, texts.text_flows().message(contact.language, "missed_call"))
    contact.sealed_number = None
    db.session.commit()
    return "told"
