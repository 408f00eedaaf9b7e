"""A caller's match request, as escalation candidate filters (``runner.CANDIDATE_FILTERS``).

A caller may ask (voice menu, SMS keyword) for:

* **a peer in my role** (``Contact.match_role``): a soft, timed preference. In each ring
  step, supporters of that role are offered first. For ``HOTLINE_MATCH_WAIT_SECONDS``
  from the moment the contact was queued, the others of the step's tier are *held* (not
  offered) while a supporter of the role in that tier is still in play: on duty (busy or
  free), not excluded, not yet tried for this attempt. When none is, the hold ends at
  once; otherwise when the time is up, the runner steps again and anyone is offered.
* **not someone from my unit** (``Contact.match_unit``): a hard exclusion. A supporter of
  that unit is never offered, in any tier, ring-all included, by any channel. When that
  leaves nobody, the runner's usual "nobody free" follows at once: a caller hears the
  options (callback or crisis line) on the next wait loop, not after the longest wait.

A contact without a request costs nothing here (no query). The request itself lives on
the open contact only and is erased with its outcome (``hotline.lifecycle.contacts``).
"""

from __future__ import annotations

import logging
from datetime import timedelta

from cryptography.fernet import InvalidToken

from sqlalchemy import bindparam, literal, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from hotline.core.extensions import settings
from hotline.escalation import policy as policies
from hotline.escalation.policy import Step
from hotline.privacy import primitives as privacy
from hotline.models import Contact, ContactState, Offer, OfferState, Supporter, utcnow
from hotline.roster import shifts

log = logging.getLogger(__name__)


def of_unit(unit: str):
    """SQL: the supporter belongs to ``unit`` (``units`` is comma separated)."""
    return (literal(",") + Supporter.units + literal(",")).like(f"%,{unit},%")


def candidates(session: Session, contact: Contact, ring: Step):
    """The request's say about ``ring``'s supporters (``runner.Candidates``)."""
    # runner imports this module for its list of filters: the class is taken at call time
    from hotline.escalation.runner import Candidates
    said = Candidates()
    if not contact.match_role and not contact.match_unit:
        return said
    unit = unit_of(contact)
    if unit:
        said.exclude = set(session.scalars(select(Supporter.id).where(of_unit(unit))))
    if contact.match_role:
        role = Supporter.role == contact.match_role
        tier = [Supporter.tier == ring.tier, Supporter.active.is_(True), shifts.eligible()]
        # Role first in every step (after the wait too); the others only after them.
        said.later = set(session.scalars(select(Supporter.id).where(*tier, ~role)))
        until = hold_until(contact)
        if until is not None and utcnow() < until:
            over = {o.supporter_id for o in contact.offers if o.attempt == contact.attempt
                    and o.state != OfferState.RINGING.value}
            said.awaited = set(session.scalars(select(Supporter.id).where(*tier, role))) \
                - over - said.exclude
            said.hold = set(session.scalars(select(Supporter.id).where(
                *tier, ~role, Supporter.busy_with.is_(None)))) - said.exclude
            said.hold_until = until
    return said


def unit_of(contact: Contact) -> str | None:
    """The unit the caller asked to keep away (sealed on the contact), or None."""
    if not contact.match_unit:
        return None
    try:
        return privacy.unseal(contact.match_unit, settings())
    except InvalidToken:  # its seal key was dropped mid-contact: routing must go on
        log.warning("contact %s: the unit asked for cannot be opened", contact.id)
        return None


def hold_until(contact: Contact):
    """When the role-first wait of the contact's current attempt ends (None: no wait)."""
    seconds = settings().MATCH_WAIT_SECONDS
    if not contact.match_role or not seconds or contact.queued_at is None:
        return None
    return contact.queued_at + timedelta(seconds=seconds)


def role_peer_in_play(session: Session, contact: Contact, tiers) -> bool:
    """Whether a supporter of the caller's role may still be offered this attempt, in any
    of ``tiers``: on duty, not of the excluded unit, not already tried and done."""
    if not contact.match_role:
        return False
    done = select(Offer.supporter_id).where(
        Offer.contact_id == contact.id, Offer.attempt == contact.attempt,
        Offer.state != OfferState.RINGING.value)
    where = [Supporter.role == contact.match_role, Supporter.tier.in_(tiers),
             Supporter.active.is_(True), shifts.eligible(), Supporter.id.not_in(done)]
    unit = unit_of(contact)
    if unit:
        where.append(~of_unit(unit))
    return session.scalar(select(Supporter.id).where(*where).limit(1)) is not None


def fallback_due(session: Session, contact: Contact, tiers) -> bool:
    """The role-first wait is over for this caller: its time is up, or no peer of the role
    is left to offer (then at once: waiting for nobody helps no one)."""
    until = hold_until(contact)
    if not contact.match_role:
        return False
    return until is None or utcnow() >= until or not role_peer_in_play(session, contact, tiers)


def ring_tiers(contact: Contact) -> list[int]:
    """The tiers ringing for the contact now: the first step's, and the second's once it
    escalated (a tier with no peer of the role offers the others at once: the caller is
    told then, not when a later tier would have had one)."""
    policy = policies.current()
    second = [policy.second.tier] if policy.second is not None and contact.escalated else []
    return [policy.first.tier, *second]


#: The fall-back's one write, a conditional UPDATE: the role erased only while the caller
#: waits with one, so of two racing deliveries of the same wait poll exactly one matches,
#: and only that one tells the caller (``fall_back``).
_C = Contact.__table__.c
_ERASE_ROLE = update(Contact.__table__).where(
    _C.id == bindparam("row_id"), _C.state == ContactState.WAITING.value,
    _C.match_role.is_not(None)).values(match_role=None)


def fall_back(session: Session, contact: Contact) -> bool:
    """A waiting caller's role-first wait is over (``fallback_due``): the role is erased
    there and then (it has no more use) and True says to tell them so, once: only the
    call whose UPDATE erased it is told (commits)."""
    if contact.state != ContactState.WAITING.value or not fallback_due(
            session, contact, ring_tiers(contact)):
        return False
    erased = session.execute(_ERASE_ROLE, {"row_id": contact.id}).rowcount == 1
    session.commit()
    if erased:
        set_committed_value(contact, "match_role", None)
    return erased
