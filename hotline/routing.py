"""Who is offered next: round-robin, atomic reservation, escalation decisions.

Round-robin is "least recently offered first" over the eligible supporters of a tier,
kept in the database (``Supporter.last_offered_at``), so it holds across calls,
processes and restarts. Picking and reserving are one step: a conditional UPDATE that
only succeeds while the supporter is free, so two contacts routed at the same moment
never get the same supporter, on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from hotline import shifts
from hotline.models import (Contact, ContactState, Offer, OfferState, Supporter, utcnow)
from hotline.settings import Settings

TIER_PEER = 1
TIER_BACKUP = 2


def is_stale(contact: Contact | None, attempt: int) -> bool:
    """A routing step for an attempt that is no longer current does nothing."""
    return (contact is None or contact.attempt != attempt
            or contact.state != ContactState.WAITING.value)


def escalation_due(queue_seconds: int, settings: Settings) -> bool:
    """The caller has waited long enough for the backup tier to ring."""
    return queue_seconds >= settings.BACKUP_AFTER_SECONDS


def must_leave_queue(contact: Contact, queue_seconds: int, settings: Settings) -> bool:
    """The caller should leave the queue and hear the options."""
    return contact.exhausted or queue_seconds >= settings.MAX_WAIT_SECONDS


def candidates(session: Session, tier: int, language: str,
               exclude: Iterable[int] = ()) -> list[Supporter]:
    """Free, available supporters of ``tier`` in round-robin order (available: switched
    ON, or on shift and not switched OFF; see ``hotline.shifts``).

    Supporters who speak the caller's language come first only as a filter: when none
    of them is free, everyone eligible is offered (a human in another language beats
    no human at all).
    """
    rows = session.scalars(
        select(Supporter).where(
            Supporter.tier == tier, Supporter.active.is_(True),
            shifts.eligible(), Supporter.busy_with.is_(None),
            Supporter.id.not_in(list(exclude)))
        .order_by(Supporter.last_offered_at.is_not(None), Supporter.last_offered_at,
                  Supporter.id)).all()
    speaking = [s for s in rows if language in s.language_list]
    return speaking or list(rows)


def reserve(session: Session, supporter_id: int, token: str) -> bool:
    """Atomically take a free supporter for ``token``; False if someone was faster."""
    now = utcnow()
    result = session.execute(update(Supporter).where(
        Supporter.id == supporter_id, Supporter.busy_with.is_(None),
        Supporter.active.is_(True), shifts.eligible(now)).values(
        busy_with=token, busy_since=now, last_offered_at=now))
    return result.rowcount == 1


def release(session: Session, supporter_id: int, token: str) -> bool:
    """Free a supporter, only if still held by ``token`` (a late release changes nothing)."""
    result = session.execute(update(Supporter).where(
        Supporter.id == supporter_id, Supporter.busy_with == token).values(
        busy_with=None, busy_since=None))
    return result.rowcount == 1


def transfer(session: Session, supporter_id: int, old: str, new: str) -> bool:
    """Move a reservation from an offer to the contact it was accepted for."""
    result = session.execute(update(Supporter).where(
        Supporter.id == supporter_id, Supporter.busy_with == old).values(busy_with=new))
    return result.rowcount == 1


def offer_next(session: Session, contact: Contact, tier: int, limit: int | None = 1,
               ) -> list[Offer]:
    """Reserve up to ``limit`` supporters of ``tier`` for ``contact``; None = everyone free.

    Each new Offer is committed with its reservation; supporters already offered this
    contact in the current attempt are skipped.
    """
    tried = {o.supporter_id for o in contact.offers if o.attempt == contact.attempt}
    made: list[Offer] = []
    for supporter in candidates(session, tier, contact.language, tried):
        if limit is not None and len(made) >= limit:
            break
        offer = Offer(contact_id=contact.id, supporter_id=supporter.id,
                      attempt=contact.attempt, tier=tier)
        session.add(offer)
        session.flush()
        if reserve(session, supporter.id, offer.token):
            session.commit()
            made.append(offer)
        else:
            session.rollback()
    return made


def ringing(contact: Contact, tier: int | None = None) -> list[Offer]:
    """Offers of the current attempt still ringing, optionally of one tier."""
    return [o for o in contact.offers if o.attempt == contact.attempt
            and o.state == OfferState.RINGING.value and (tier is None or o.tier == tier)]


def close_offer(session: Session, offer: Offer, state: OfferState) -> bool:
    """End a ringing offer with ``state`` and free its supporter; False if already ended."""
    won = session.execute(update(Offer).where(
        Offer.id == offer.id, Offer.state == OfferState.RINGING.value).values(
        state=state.value, ended_at=utcnow())).rowcount == 1
    if won:
        release(session, offer.supporter_id, offer.token)
    session.commit()
    session.refresh(offer)
    return won


def accept_offer(session: Session, offer: Offer) -> bool:
    """Mark a ringing offer accepted and move its reservation onto the contact."""
    won = session.execute(update(Offer).where(
        Offer.id == offer.id, Offer.state == OfferState.RINGING.value).values(
        state=OfferState.ACCEPTED.value)).rowcount == 1
    if won:
        transfer(session, offer.supporter_id, offer.token, contact_token(offer.contact_id))
    session.commit()
    session.refresh(offer)
    return won


def contact_token(contact_id: int) -> str:
    """What ``Supporter.busy_with`` holds while a supporter is on a contact."""
    return f"contact:{contact_id}"
