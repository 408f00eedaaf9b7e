"""The one runner of the escalation policy, for calls, texts and callbacks alike.

``step`` is what the routing job runs (``workers.offer.route`` takes ids and calls it):
one step of the policy for a waiting contact. ``on_wait`` is what the queue's wait
webhook asks: stay, or leave for the options; and it escalates when the policy's time for
the second step has come. Both escalate through ``escalate``: there is one decision.

The steps (``hotline.escalation.policy``, from ``ivr_flows/escalation.yaml``):
  1. the first ring step: its tier's free supporters, one at a time (``at_once`` at a
     time: each that rings out or passes is replaced by the next in turn), or all at once;
  2. the second ring step, if any: when the first has nobody left, or when the caller has
     waited its ``after_seconds`` (the wait webhook), every free supporter of its tier;
  3. nobody_free: when nothing rings any more the contact is *exhausted*: a caller leaves
     the queue for the options (the wait webhook sees it), a text hears "nobody is free",
     a callback try is over. A caller also leaves after the step's ``after_seconds``.

Every step carries the attempt it belongs to: a late or duplicated job finds its attempt
stale and does nothing. One step at a time per contact (a Redis lock) keeps them ordered.

Hook for eligibility filters and soft preferences: ``CANDIDATE_FILTERS``.
Each entry is called with (session, contact, ring step) and returns ``Candidates``:
supporter ids that must not be offered this contact (a hard filter, e.g. trained-only
routing or unit exclusion), and ids offered only after everyone else (a soft preference,
e.g. a cool-down). They go into the same SQL pick as round-robin (``routing.offer_next``).
A timed soft preference (a peer in the caller's role first, ``hotline.escalation.matching``)
also *holds* ids until a time while the ids it ``awaited`` are still in play (not excluded
by any filter): when holding leaves nothing to ring, the runner neither escalates nor
gives up, it steps again when the hold ends.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from hotline.callbacks import requests as callbacks
from hotline.lifecycle import contacts
from hotline.lifecycle import routing
from hotline.telephony import api as twilio_api
from hotline.core.errors import TwilioApiError
from hotline.escalation import matching
from hotline.escalation import policy as policies
from hotline.escalation.policy import Step
from hotline.core.extensions import db, redis_conn, settings
from hotline.lifecycle import effects, transitions
from hotline.telephony import outbound
from hotline.models.states import Channel, ContactMode, ContactState, EventKind, OfferState
from hotline.models import Contact, ContactEvent, Offer, utcnow
from hotline.roster import care
from hotline.core.urls import public_url

log = logging.getLogger(__name__)

#: How long one routing step may hold a contact's lock (it makes a few REST calls).
LOCK_SECONDS = 60
#: Offers tried per step when Twilio refuses calls, before giving up on this step.
MAX_DIAL_FAILURES = 10
#: The routing step under way collects the durations of its decisions here (ms).
_DECISIONS: ContextVar[list[tuple[float, float]] | None] = ContextVar("routing_decisions",
                                                                      default=None)


@dataclass
class Candidates:
    """What a candidate filter says about the supporters of one ring step."""
    exclude: set[int] = field(default_factory=set)   # never offered (hard filter)
    later: set[int] = field(default_factory=set)     # offered after the others (soft)
    hold: set[int] = field(default_factory=set)      # not offered before hold_until...
    awaited: set[int] = field(default_factory=set)   # ...while any of these is in play
    hold_until: datetime | None = None


#: The eligibility hook: (session, contact, step) -> Candidates.
CANDIDATE_FILTERS: list[Callable[[Session, Contact, Step], Candidates]] = [
    matching.candidates]
#: When the holds met by the routing step under way end (the runner steps again then).
_HELD: ContextVar[list[datetime] | None] = ContextVar("routing_held", default=None)


def care_for_supporters(session: Session, contact: Contact, ring: Step) -> Candidates:
    """Caring for supporters (``hotline.roster.care``): today's cap is a hard filter; the
    cool-down a soft one, offered after every other free supporter of the step (in a
    ring-all, only when nobody else is free). Each rule that held a free supporter back
    is noted once per contact, for the statistics (counts only)."""
    tried = {o.supporter_id for o in contact.offers if o.attempt == contact.attempt}
    held = care.held_back(session, ring.tier, tried)
    if held.capped:
        _note(session, contact, EventKind.CARE_CAP, ring.tier)
    if held.cooling and held.others:  # someone else goes first
        _note(session, contact, EventKind.CARE_COOLDOWN, ring.tier)
    return Candidates(exclude=held.capped, later=held.cooling)


def _note(session: Session, contact: Contact, kind: EventKind, tier: int) -> None:
    """One event of ``kind`` per contact (committed now: the pick may roll back)."""
    if session.scalar(select(ContactEvent.id).where(ContactEvent.contact_id == contact.id,
                                                    ContactEvent.kind == kind.value)) is None:
        contacts.event(session, contact, kind, tier=tier)
        session.commit()


CANDIDATE_FILTERS.append(care_for_supporters)


def step(contact_id: int, attempt: int) -> str:
    """One step of the policy for a waiting contact; returns what it did (tests, logs).

    Its log line gives the milliseconds of each routing decision (pick and reserve the
    next supporters, ``routing.offer_next``), wall-clock and CPU, and of the whole step:
    ids and times only.
    """
    started = time.perf_counter()
    decisions: list[tuple[float, float]] = []  # (wall ms, CPU ms) of each
    token, held = _DECISIONS.set(decisions), _HELD.set([])
    try:
        did = _step(contact_id, attempt)
    finally:
        _DECISIONS.reset(token)
        _HELD.reset(held)
    log.info("contact %s attempt %s routed: %s (decisions %s ms, cpu %s ms, step %.1f ms)",
             contact_id, attempt, did or "-",
             "+".join(f"{wall:.1f}" for wall, _ in decisions) or "none",
             "+".join(f"{cpu:.1f}" for _, cpu in decisions) or "none",
             (time.perf_counter() - started) * 1000)
    return did


def _step(contact_id: int, attempt: int) -> str:
    policy = policies.current()
    first, second = policy.first, policy.second
    with redis_conn.client.lock(f"hotline:lock:contact:{contact_id}", timeout=LOCK_SECONDS,
                                blocking_timeout=LOCK_SECONDS):
        session = db.session
        contact = _current(session, contact_id)
        if routing.is_stale(contact, attempt):
            return "stale"
        did = []
        if second is not None and contact.escalated and not contact.tier2_rung:
            did.append(_ring_all(contact, second))
        room = _room(contact, first)
        if room is None or room > 0:
            if _ring_first(contact, first, room):
                if _HELD.get():  # rings a peer of the caller's role; the others held
                    _step_again_at(contact, max(_HELD.get()))
                return ",".join(d for d in did + [f"tier{first.tier}"] if d)  # rings now
            session.refresh(contact)
            if routing.is_stale(contact, attempt):  # accepted, or the caller left, meanwhile
                session.commit()
                return ",".join(d for d in did + ["stale"] if d)
            if routing.ringing(contact, first.tier):  # nobody more, but the step still rings
                session.commit()
            elif _HELD.get():  # the tier's others wait for a peer of the caller's role
                session.commit()
            elif escalate(session, contact):
                did.append(_ring_all(contact, second))  # commits the escalation with it
            else:
                session.commit()
        session.refresh(contact)
        if _HELD.get():
            _step_again_at(contact, max(_HELD.get()))
            if not routing.ringing(contact):
                did.append("holding")
        elif not routing.ringing(contact):
            _nobody_free(session, contact)
            did.append("exhausted")
        return ",".join(d for d in did if d)


def _step_again_at(contact: Contact, when: datetime) -> None:
    """A hold ends at ``when``: the next step of this attempt then (one job per attempt)."""
    effects.apply([effects.route(contact.id, contact.attempt,
                                 after=max(when - utcnow(), timedelta(seconds=1)))])


#: Escalation's one write, a conditional UPDATE: the flag is set only on a waiting contact
#: that has not escalated yet, so of two racing escalations (two deliveries of the wait
#: webhook, or it and a routing step) exactly one matches, and only it writes the event
#: and starts the step. RETURNING gives what the event needs (``contacts.BRIEF``).
_C = Contact.__table__.c
_ESCALATE = update(Contact.__table__).where(
    _C.id == bindparam("row_id"), _C.state == ContactState.WAITING.value,
    _C.escalated.is_not(True)).values(escalated=True).returning(*contacts.BRIEF)


def escalate(session: Session, contact: Contact) -> bool:
    """The one decision to move past the first ring step: the contact is marked escalated
    (its event once, in the caller's transaction, by whichever escalation set the flag).
    True when the policy's second step has yet to ring for this attempt; False when there
    is none, or it has rung."""
    second = policies.current().second
    if second is None:
        return False
    if not contact.escalated and _escalated_now(session, contact, second.tier) is None:
        session.refresh(contact)  # escalated meanwhile by the wait webhook (or it left)
        return bool(contact.escalated) and not contact.tier2_rung
    return not contact.tier2_rung


def _escalated_now(session: Session, contact, tier: int):
    """``_ESCALATE`` for ``contact`` (loaded, or a light view with its id) and, if it
    matched, the ESCALATED event; the ``BRIEF`` row when it matched, else None. The
    transaction stays open for the caller to commit."""
    session.flush()  # pending changes first (a Core statement does not autoflush)
    won = session.execute(_ESCALATE, {"row_id": contact.id}).one_or_none()
    if won is not None:
        contacts.event(session, won, EventKind.ESCALATED, tier=tier)
        if isinstance(contact, Contact):
            set_committed_value(contact, "escalated", True)
    return won


def on_wait(session: Session, contact, queue_seconds: int) -> bool:
    """The queue's wait webhook asks: True when the caller should leave the queue (for
    the options); else they stay, and the second step starts if its time has come.

    ``contact`` may be a light view (``contacts.glance``: state, exhausted, escalated,
    id): the poll builds no ORM object, and escalates by id in one conditional UPDATE
    (``_ESCALATE``), so a repeated or concurrent delivery of the same poll escalates,
    writes its event and starts the step once (``telephony.idempotency``)."""
    policy = policies.current()
    waiting = contact.state == ContactState.WAITING.value
    if contact.state != ContactState.CONNECTED.value and (
            not waiting or contact.exhausted
            or queue_seconds >= policy.final.after_seconds):
        return True
    second = policy.second
    if (waiting and second is not None and queue_seconds >= second.after_seconds
            and not contact.escalated):
        won = _escalated_now(session, contact, second.tier)
        session.commit()
        if won is not None:
            effects.apply([effects.route(won.id, won.attempt)])
    return False


def _current(session: Session, contact_id: int) -> Contact | None:
    """The contact as it is now, in one SELECT whether or not this session knew it."""
    known = session.identity_map.get(session.identity_key(Contact, contact_id))
    if known is None:
        return session.get(Contact, contact_id)
    session.refresh(known)
    return known


def _candidates(session: Session, contact: Contact, ring: Step) -> Candidates:
    """Every candidate filter's say, together."""
    together = Candidates()
    for candidate_filter in CANDIDATE_FILTERS:
        said = candidate_filter(session, contact, ring)
        together.exclude |= said.exclude
        together.later |= said.later
        together.hold |= said.hold
        together.awaited |= said.awaited
        if said.hold_until is not None:
            together.hold_until = max(filter(None, (together.hold_until, said.hold_until)))
    return together


def _offer_next(contact: Contact, ring: Step, limit: int | None) -> list[Offer]:
    """``routing.offer_next`` for one ring step, timed for the step's log line."""
    started, cpu = time.perf_counter(), time.thread_time()
    try:
        said = _candidates(db.session, contact, ring)
        exclude = said.exclude
        if said.hold and said.awaited - said.exclude:  # held while an awaited one may come
            exclude = exclude | said.hold
            held = _HELD.get()
            if held is not None:
                held.append(said.hold_until)
        return routing.offer_next(db.session, contact, ring.tier, limit=limit,
                                  exclude=exclude, later=said.later)
    finally:
        decisions = _DECISIONS.get()
        if decisions is not None:
            decisions.append(((time.perf_counter() - started) * 1000,
                              (time.thread_time() - cpu) * 1000))


def _room(contact: Contact, ring: Step) -> int | None:
    """How many more supporters the first step may ring now: ``at_once`` less those of its
    tier still ringing (so a pass or a ring-out is replaced by the next in turn, never
    more); a ring-all rings everyone free (None) once nothing of it rings any more."""
    ringing = len(routing.ringing(contact, ring.tier))
    if ring.limit is None:
        return 0 if ringing else None
    return max(0, ring.limit - ringing)


def _ring_first(contact: Contact, ring: Step, room: int | None) -> bool:
    """The first step: ring its next ``room`` supporters (None: all of them); skips any
    whose call Twilio refuses, taking the next instead. False when none rang (nobody of
    its tier is left)."""
    rang, attempt = False, contact.attempt
    for _ in range(MAX_DIAL_FAILURES):
        offers = _offer_next(contact, ring, room)
        if not offers:
            return rang
        rung = sum(_dial(offer, ring) for offer in offers)
        rang = rang or rung > 0
        if rung and (room is None or rung >= room):
            return True
        if room is not None:
            room -= rung
        db.session.refresh(contact)
        if routing.is_stale(contact, attempt):  # no more offers for a contact taken or gone
            return rang
    return rang


def _ring_all(contact: Contact, ring: Step) -> str:
    """The second step: ring every free supporter of its tier at once (or the next one);
    the first to accept wins."""
    contact.tier2_rung = True
    db.session.commit()
    holds = len(_HELD.get() or ())
    offers = _offer_next(contact, ring, ring.limit)
    rung = sum(_dial(offer, ring) for offer in offers)
    if len(_HELD.get() or ()) > holds:  # some were held: ring the step again when it ends
        contact.tier2_rung = False
        db.session.commit()
    return f"tier{ring.tier}x{rung}"


def _nobody_free(session: Session, contact: Contact) -> None:
    """Nothing rings any more: the policy's last step, by channel."""
    contact.exhausted = True
    contacts.event(session, contact, EventKind.EXHAUSTED)
    session.commit()
    if contact.mode == ContactMode.CALLBACK.value:
        effects.apply(callbacks.nobody_free(session, contact))
    elif contact.channel == Channel.SMS.value:
        _tell_nobody_is_free(session, contact)
    # A caller on the phone: the wait webhook sees ``exhausted`` and plays the options.


def _tell_nobody_is_free(session: Session, contact: Contact) -> None:
    """A text request found nobody: say so honestly and offer a callback or the crisis line."""
    from hotline.text.conversations import clinician_number  # conversations is the text path's
    contacts.leave_queue(session, contact, ContactState.OPTIONS)
    session.commit()
    number = clinician_number(contact)
    if number:
        outbound.send_text(number, outbound.text_flows().message(
            contact.language, "nobody", crisis=settings().CRISIS_LINE_NUMBER))


def _text_offer(offer: Offer, ring: Step) -> bool:
    """Offer a text request to a supporter by SMS; the reply YES or PASS decides."""
    minutes = max(1, ring.text_accept_seconds // 60)
    if outbound.send_text(offer.supporter.phone, outbound.text_flows().message(
            "en", "offer", minutes=minutes)) is None:
        routing.close_offer(db.session, offer, OfferState.FAILED)
        return False
    contacts.event(db.session, offer.contact, EventKind.OFFERED, tier=offer.tier)
    db.session.commit()
    effects.apply([effects.expire_offer(offer.id,
                                        timedelta(seconds=ring.text_accept_seconds))])
    return True


def _dial(offer: Offer, ring: Step) -> bool:
    """Call the offer's supporter from the hotline number; False if Twilio refused."""
    if not _still_wanted(offer):  # closed, or its contact taken, while others were dialled
        # No call will be placed (nor offer text sent): closed if the cancel missed it, and
        # free them (``cancel_offers`` keeps a voice supporter reserved, as a call might be).
        routing.close_offer(db.session, offer, OfferState.CANCELED)
        return False
    if offer.contact.mode == ContactMode.TEXT.value:
        return _text_offer(offer, ring)
    cfg = settings()
    call = twilio_api.OutboundCall(
        to=offer.supporter.phone,
        url=public_url("offer.answer", offer_id=offer.id),
        status_callback=public_url("offer.status", offer_id=offer.id),
        timeout=ring.timeout_seconds)
    try:
        offer.call_sid = twilio_api.create_call(cfg, call)
    except TwilioApiError as exc:
        log.warning("offer %s: call not placed (%s)", offer.id, exc)
        routing.close_offer(db.session, offer, OfferState.FAILED)
        return False
    contacts.event(db.session, offer.contact, EventKind.OFFERED, tier=offer.tier)
    db.session.commit()
    if _closed_while_dialing(offer):
        return False
    effects.apply([effects.expire_offer(offer.id, timedelta(
        seconds=ring.timeout_seconds + ring.accept_seconds
        + transitions.EXPIRY_GRACE_SECONDS))])
    return True


def _closed_while_dialing(offer: Offer) -> bool:
    """The offer ended while its call was being placed (another supporter accepted, the
    caller left): ``cancel_offers`` found no call to stop yet, so the call just placed is
    stopped here; its supporter stays reserved until it has (the leg's status callback)."""
    if _still_wanted(offer):
        return False
    effects.apply(transitions.close_answered(db.session, offer, OfferState.CANCELED))
    outbound.hang_up(offer)  # refreshed by the close: a pick-up meanwhile is hung up as one
    return True


def _still_wanted(offer: Offer) -> bool:
    """The offer still rings, and for its contact's current attempt, as committed now
    (``cancel_offers`` closes offers in another process). The contact too: taken or left
    after this step found it waiting, but before its offers were committed, the cancel
    found none of them to stop; reading the contact after that commit, either this sees
    the change or the cancel sees the offers."""
    row = db.session.execute(select(Offer.state, Contact.state, Contact.attempt).join(
        Contact, Contact.id == Offer.contact_id).where(Offer.id == offer.id)).one_or_none()
    return row is not None and row[0] == OfferState.RINGING.value \
        and row[1] == ContactState.WAITING.value and row[2] == offer.attempt


def expire_offer(offer_id: int) -> str:
    """Safety net: an offer whose status callback never came is ended and routing goes on."""
    offer = db.session.get(Offer, offer_id)
    if offer is None or offer.state != OfferState.RINGING.value:
        return "done"
    text = offer.contact.mode == ContactMode.TEXT.value
    if not text:
        outbound.hang_up(offer)
    done = transitions.offer_over(db.session, offer, OfferState.NO_ANSWER)
    if done.won and text:  # only the job that closed it tells the supporter, and only once
        outbound.hang_up(offer)
    effects.apply(done)
    return "expired"


def cancel_offers(contact_id: int, keep_offer_id: int | None = None) -> int:
    """Stop every supporter call still ringing for a contact (caller left, or someone won)."""
    ringing = db.session.scalars(select(Offer).where(
        Offer.contact_id == contact_id, Offer.state == OfferState.RINGING.value,
        Offer.id != (keep_offer_id or 0)).order_by(Offer.id)).all()
    canceled = 0
    for offer in ringing:
        if offer.contact.mode == ContactMode.TEXT.value:
            if routing.close_offer(db.session, offer, OfferState.CANCELED):
                outbound.hang_up(offer)  # the "taken" text
                canceled += 1
            continue
        # A voice supporter stays reserved past the close: Twilio answers a cancel before
        # the phone has stopped, and a call may still be being placed (``_dial`` frees
        # them when it places none). Freed at once, the next contact's routing could ring
        # them while this call still rang. The leg's status callback frees them, or
        # ``free_supporter`` should it never come (or the auditor, should that be lost).
        placed, answered = offer.call_sid, offer.answered
        if placed and not answered:
            outbound.hang_up(offer)  # first: a worker dying after the close leaves no ring
        done = transitions.close_answered(db.session, offer, OfferState.CANCELED)
        effects.apply(done)  # refreshed the offer
        if not done.won:
            continue
        canceled += 1
        # Answered before the close (a cancel stops no answered call: hung up as one), or
        # placed while we closed it (``_dial`` stops it too). A pick-up after the close is
        # refused (``routing.answer_offer`` writes one only while the offer rings).
        if offer.call_sid and (offer.answered or not placed):
            outbound.hang_up(offer)
    log.info("contact %s: %s offers canceled", contact_id, canceled)
    return canceled


def free_supporter(offer_id: int) -> str:
    """Safety net of ``close_answered``: free the supporter if the offer still holds them."""
    offer = db.session.get(Offer, offer_id)
    if offer is None or offer.state == OfferState.RINGING.value:
        return "nothing to do"
    freed = routing.release(db.session, offer.supporter_id, offer.token)
    db.session.commit()
    return "freed" if freed else "already free"
