"""Who is offered next: round-robin and atomic reservation. When to escalate is the
escalation policy's (``hotline.escalation``).

Round-robin is "least recently offered first" over the eligible supporters of a tier,
kept in the database (``Supporter.last_offered_at``), so it holds across calls,
processes and restarts. Picking and reserving are one transaction ending in a
conditional UPDATE that only succeeds while the supporter is free, so two contacts
routed at the same moment never get the same supporter, on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from functools import cache

from sqlalchemy import (
    Insert,
    Integer,
    String,
    Update,
    bindparam,
    case,
    cast,
    literal,
    select,
    update,
)
from sqlalchemy.orm import Session, make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value

from hotline.monitoring import counters
from hotline.roster import shifts, training
from hotline.models import (CallbackRequest, Contact, ContactMode, ContactState, Offer, OfferState,
                            Supporter, UtcDateTime, utcnow)

TIER_PEER = 1
TIER_BACKUP = 2


def is_stale(contact: Contact | None, attempt: int) -> bool:
    """A routing step for an attempt that is no longer current does nothing."""
    return (contact is None or contact.attempt != attempt
            or contact.state != ContactState.WAITING.value)


#: Least recently offered first; never offered before anyone; ties by id.
ROUND_ROBIN = (Supporter.last_offered_at.is_not(None), Supporter.last_offered_at, Supporter.id)


def reserve(session: Session, supporter_id: int, token: str) -> bool:
    """Atomically take a free supporter for ``token``; False if someone was faster."""
    return _reserve(session, supporter_id, token, utcnow()) is not None


def _reserve(session: Session, supporter_id: int, token: str,
             now: datetime) -> Supporter | None:
    """The conditional UPDATE behind ``reserve``; returns the supporter it took, or None."""
    row = session.execute(_reserve_statement(), {
        "supporter_id": supporter_id, "token": token, **shifts.eligible_params(now),
        **training.params(now)},
    ).mappings().one_or_none()
    return None if row is None else _as_loaded(session, Supporter, row)


@cache
def _reserve_statement() -> Update:
    """Built once: routing runs it for every offer."""
    now = bindparam("now", type_=UtcDateTime())
    table = Supporter.__table__
    return (update(table).where(
        Supporter.id == bindparam("supporter_id"), Supporter.busy_with.is_(None),
        Supporter.active.is_(True), shifts.eligible_bound(), training.current_bound())
        .values(busy_with=bindparam("token"), busy_since=now, last_offered_at=now)
        .returning(*table.c))


def _as_loaded(session: Session, model: type, row: Mapping) -> object:
    """The ORM object of a row this transaction just wrote and read back with RETURNING:
    updated in place if the session holds it, else added as loaded (no SELECT either way).
    """
    known = session.identity_map.get(session.identity_key(model, row["id"]))
    if known is None:
        known = model(**row)
        make_transient_to_detached(known)
        session.add(known)
    else:
        for key, value in row.items():
            set_committed_value(known, key, value)
    return known


def release(session: Session, supporter_id: int, token: str) -> bool:
    """Free a supporter, only if still held by ``token`` (a late release changes nothing)."""
    result = session.execute(update(Supporter).where(
        Supporter.id == supporter_id, Supporter.busy_with == token).values(
        busy_with=None, busy_since=None))
    return result.rowcount == 1


def hold(session: Session, supporter_id: int, token: str) -> bool:
    """Reserve a supporter for ``token`` only if they are free right now (never one held
    for anything else): a supporter whose offer was closed (and who was freed) while their
    phone still plays a goodbye on its leg; ``release`` with the same token frees them."""
    result = session.execute(update(Supporter).where(
        Supporter.id == supporter_id, Supporter.busy_with.is_(None)).values(
        busy_with=token, busy_since=utcnow()))
    return result.rowcount == 1


def transfer(session: Session, supporter_id: int, old: str, new: str) -> bool:
    """Move a reservation from an offer to the contact it was accepted for."""
    result = session.execute(update(Supporter).where(
        Supporter.id == supporter_id, Supporter.busy_with == old).values(busy_with=new))
    return result.rowcount == 1


def offer_next(session: Session, contact: Contact, tier: int, limit: int | None = 1,
               exclude: Iterable[int] = (), later: Iterable[int] = ()) -> list[Offer]:
    """Reserve up to ``limit`` supporters of ``tier`` for ``contact``; None = everyone free.

    Each new Offer is committed with its reservation; supporters already offered this
    contact in the current attempt are skipped, and so are those in ``exclude``; those in
    ``later`` come after everyone else (the escalation runner's candidate filters), and
    in a ring-all (``limit`` None) are rung only when nobody else was.

    Order: supporters who speak the caller's language first, but only as a filter: when
    none of them is free, everyone eligible is offered (a human in another language beats
    no human at all); then least recently offered first. It is decided in SQL, in the
    INSERT of the offer itself, whatever the size of the roster: on PostgreSQL one
    statement picks (locking the supporter's row, skipping rows another transaction is
    taking), inserts the offer and reserves, then the commit; elsewhere an INSERT ...
    SELECT, a conditional UPDATE (SQLite serialises writers) and the commit.
    """
    tried = {o.supporter_id for o in contact.offers if o.attempt == contact.attempt}
    tried |= set(exclude)  # the escalation runner's hard filters
    # A callback's supporters rung for an earlier try of the same request come last: none
    # is rung for it again before the others have had it (and so do the runner's soft
    # preferences' ``later``).
    soft = set(later)
    missed = sorted(set(missed_earlier(session, contact)) | soft)
    made: list[Offer] = []
    speakers_only = False  # ring-all: once a speaker is found, only speakers
    one_statement = session.get_bind().dialect.name == "postgresql"
    while limit is None or len(made) < limit:
        now = utcnow()
        params = {"p_contact": contact.id, "p_attempt": contact.attempt, "p_tier": tier,
                  "p_exclude": sorted(tried), "p_speaks": f"%,{contact.language},%",
                  "p_missed": missed,
                  **shifts.eligible_params(now), **training.params(now)}
        if one_statement:
            picked = _pick_and_reserve(session, params, speakers_only)
        else:
            picked = _pick_then_reserve(session, params, speakers_only, now)
        if picked is None:
            break
        offer, supporter = picked
        tried.add(offer.supporter_id)
        if supporter is None:  # taken meanwhile (only where rows are not locked)
            session.rollback()
            continue
        session.commit()
        made.append(offer)
        speakers_only = speakers_only or contact.language in supporter.language_list
        if limit is None and offer.supporter_id not in soft:
            tried |= soft  # ring-all: the soft preferences' ``later`` only if nobody else
    return made


def missed_earlier(session: Session, contact: Contact) -> list[int]:
    """Supporters offered an earlier try of the callback request ``contact`` is a try of."""
    if contact.mode != ContactMode.CALLBACK.value:
        return []
    callback = session.scalar(select(CallbackRequest).where(
        CallbackRequest.attempt_contact_id == contact.id))
    if callback is None:
        return []
    earlier = select(Contact.id).where(
        Contact.mode == ContactMode.CALLBACK.value, Contact.caller_key == contact.caller_key,
        Contact.id != contact.id, Contact.created_at >= callback.requested_at)
    return sorted(set(session.scalars(select(Offer.supporter_id).where(
        Offer.contact_id.in_(earlier)))))


def _pick_then_reserve(session: Session, params: dict, speakers_only: bool, now: datetime,
                       ) -> tuple[Offer, Supporter | None] | None:
    """Insert the offer to the next supporter, then reserve them (two statements): None if
    nobody is free; the supporter is None if someone else reserved them in between."""
    row = session.execute(_pick_statement(speakers_only), params).mappings().one_or_none()
    if row is None:
        return None
    offer = _as_loaded(session, Offer, row)
    return offer, _reserve(session, offer.supporter_id, offer.token, now)


def _pick_and_reserve(session: Session, params: dict, speakers_only: bool,
                      ) -> tuple[Offer, Supporter] | None:
    """PostgreSQL: pick, insert the offer and reserve in one statement (one round trip)."""
    row = session.execute(_one_statement(speakers_only), params).mappings().one_or_none()
    if row is None:
        return None
    offer = _as_loaded(session, Offer, {key.removeprefix("offer_"): value
                                        for key, value in row.items()
                                        if key.startswith("offer_")})
    supporter = _as_loaded(session, Supporter, {key: value for key, value in row.items()
                                                if not key.startswith("offer_")})
    return offer, supporter


@cache
def _pick_statement(speakers_only: bool) -> Insert:
    """INSERT INTO offers ... SELECT the next free supporter, built once per variant.

    Free: the tier, active, available (``hotline.roster.shifts``), trained
    (``hotline.roster.training``), not reserved, not yet tried
    for this attempt. Those who missed an earlier try of the same callback request last;
    then the caller's language first, then ``ROUND_ROBIN``.
    """
    speaks = (literal(",") + Supporter.languages + literal(",")).like(bindparam("p_speaks"))
    tier = bindparam("p_tier", type_=Integer)
    where = [Supporter.tier == tier, Supporter.active.is_(True),
             shifts.eligible_bound(), training.current_bound(), Supporter.busy_with.is_(None),
             Supporter.id.not_in(bindparam("p_exclude", expanding=True))]
    chosen = (select(bindparam("p_contact", type_=Integer), Supporter.id,
                     bindparam("p_attempt", type_=Integer), tier,
                     bindparam("now", type_=UtcDateTime()))
              .where(*where, *([speaks] if speakers_only else []))
              .order_by(case((Supporter.id.in_(bindparam("p_missed", expanding=True)), 1),
                             else_=0),
                        case((speaks, 0), else_=1), *ROUND_ROBIN).limit(1)
              .with_for_update(skip_locked=True, of=Supporter))
    offers = Offer.__table__
    return offers.insert().from_select(
        ["contact_id", "supporter_id", "attempt", "tier", "created_at"], chosen).returning(
        *offers.c)


@cache
def _one_statement(speakers_only: bool) -> Update:
    """WITH made AS (``_pick_statement``) UPDATE supporters SET busy_with = 'offer:' || id
    ... FROM made: the pick's row lock holds from the SELECT to the reservation."""
    made = _pick_statement(speakers_only).cte("made")
    now = bindparam("now", type_=UtcDateTime())
    table = Supporter.__table__
    return (update(table).where(table.c.id == made.c.supporter_id)
            .values(busy_with=literal("offer:") + cast(made.c.id, String), busy_since=now,
                    last_offered_at=now)
            .returning(*(column.label(f"offer_{column.key}") for column in made.c), *table.c))


def ringing(contact: Contact, tier: int | None = None) -> list[Offer]:
    """Offers of the current attempt still ringing, optionally of one tier."""
    return [o for o in contact.offers if o.attempt == contact.attempt
            and o.state == OfferState.RINGING.value and (tier is None or o.tier == tier)]


def close_offer(session: Session, offer: Offer, state: OfferState, keep: bool = False) -> bool:
    """End a ringing offer with ``state`` and free its supporter; False if already ended.

    ``keep``: the supporter's phone may still be on this call (they picked up and hear the
    offer or a goodbye, or it still rings while it is stopped), so they stay reserved
    until it has ended: the close that comes with the call's status callback frees them,
    even though the offer had ended before. Without it, their next call could ring while
    this one still plays.
    """
    won = session.execute(update(Offer).where(
        Offer.id == offer.id, Offer.state == OfferState.RINGING.value).values(
        state=state.value, ended_at=utcnow())).rowcount == 1
    if won:
        counters.count_on_commit(session, "offers", result=state.value)
    if not keep:  # a no-op unless this offer still holds its supporter
        release(session, offer.supporter_id, offer.token)
    session.commit()
    session.refresh(offer)
    return won


def answer_offer(session: Session, offer: Offer) -> bool:
    """Note that the supporter picked up, only while the offer still rings; False when it
    was closed meanwhile (another supporter accepted, the caller left): that call is not
    theirs to take. Conditional, so ``runner.cancel_offers`` closing it at the same moment
    either sees the pick-up (and hangs up, as a cancel stops no answered call) or makes
    this one False: never a supporter freed while on a call still asking for a 1."""
    won = session.execute(update(Offer).where(
        Offer.id == offer.id, Offer.state == OfferState.RINGING.value).values(
        answered=True)).rowcount == 1
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
        counters.count_on_commit(session, "offers", result=OfferState.ACCEPTED.value)
    session.commit()
    session.refresh(offer)
    return won


def contact_token(contact_id: int) -> str:
    """What ``Supporter.busy_with`` holds while a supporter is on a contact."""
    return f"contact:{contact_id}"
