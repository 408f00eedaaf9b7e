"""Caring for supporters: the cool-down after a contact, the daily cap, the automatic pause
after missed offers, and the thank-you text after each contact.

* **Cool-down** (``HOTLINE_COOLDOWN_MINUTES``, 10; 0 off): once a supporter is freed from
  a *connected* contact, ``Supporter.cooldown_until`` is set. Until then they are offered
  a contact only after every other free supporter of the ring step (a soft preference):
  a caller is never left waiting, nor sent to the options, while a supporter who is on,
  free and willing (they may decline without penalty) could take the call. ``READY``
  ends it early.
* **Cap** (``HOTLINE_MAX_CONTACTS_PER_DAY``, 4; 0 none): a supporter who has had that many
  connected contacts since the program's local midnight is not offered another that day
  (a hard filter: they were told so). Counted from ``contacts`` (``connected_at``), so
  nothing new is stored and the day turns over on its own at local midnight.
* **Automatic pause** (``HOTLINE_MAX_MISSED_OFFERS``, 3; 0 never): offers in a row that
  rang out (no answer) or met silence count in ``Supporter.missed_in_row``; a yes or a
  decline resets it. At the limit they are switched OFF, the one manual OFF of
  ``hotline.roster.shifts`` (so every page shows it and it never rings), marked
  ``auto_paused``; texting ON brings them back.
* **After each connected contact** a short text thanks them and reminds them SUPPORT
  reaches a peer for themselves (nothing about the clinician); ``QUIET`` toggles it.

The hard and soft filters reach routing through the escalation runner's
``CANDIDATE_FILTERS`` (``hotline.escalation.runner``), in the same SQL pick as
round-robin. This module only reads and writes supporter rows and composes texts from
``ivr_flows/sms.yaml``; nothing here commits unless it says so.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from hotline.core.extensions import settings
from hotline.models import AvailabilityOverride, Contact, Supporter, utcnow
from hotline.models.states import CONNECTED_OUTCOMES
from hotline.roster import shifts
from hotline.telephony import outbound

log = logging.getLogger(__name__)


@dataclass
class HeldBack:
    """What the care rules say about the free supporters of one ring step."""
    cooling: set[int] = field(default_factory=set)  # cooling down: offered after the others
    capped: set[int] = field(default_factory=set)   # at today's cap: not offered
    others: int = 0                                 # free supporters neither rule holds back


def day_start(now: datetime) -> datetime:
    """The program's local midnight that began ``now``'s day (an aware instant)."""
    zone = shifts.program_zone()
    local = now.astimezone(zone)
    return local.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(now.tzinfo)


def contacts_today(session: Session, supporter_ids: set[int], now: datetime) -> dict[int, int]:
    """Connected contacts since local midnight, by supporter (only those with any)."""
    if not supporter_ids:
        return {}
    return dict(session.execute(
        select(Contact.supporter_id, func.count()).where(
            Contact.supporter_id.in_(sorted(supporter_ids)),
            Contact.outcome.in_(CONNECTED_OUTCOMES),
            Contact.connected_at >= day_start(now))
        .group_by(Contact.supporter_id)).all())


def held_back(session: Session, tier: int, tried: set[int],
              now: datetime | None = None) -> HeldBack:
    """The free supporters of ``tier`` (active, available now, not reserved, not yet
    ``tried`` for this contact) that the cool-down or the cap hold back."""
    cfg = settings()
    held = HeldBack()
    if not (cfg.COOLDOWN_MINUTES or cfg.MAX_CONTACTS_PER_DAY):
        return held
    now = now or utcnow()
    free = {sid: until for sid, until in session.execute(
        select(Supporter.id, Supporter.cooldown_until).where(
            Supporter.tier == tier, Supporter.active.is_(True),
            Supporter.busy_with.is_(None), shifts.eligible(now))) if sid not in tried}
    if cfg.MAX_CONTACTS_PER_DAY:
        held.capped = {sid for sid, n in contacts_today(session, set(free), now).items()
                       if n >= cfg.MAX_CONTACTS_PER_DAY}
    if cfg.COOLDOWN_MINUTES:
        held.cooling = {sid for sid, until in free.items() if sid not in held.capped
                        and until is not None and until > now}
    held.others = len(set(free) - held.capped - held.cooling)
    return held


# --- after a contact ----------------------------------------------------------------------

def contact_over(session: Session, supporter_id: int, contact: Contact) -> bool:
    """The supporter was just freed from ``contact`` (by whichever adapter freed them): a
    connected contact starts their cool-down. True when the after-contact text is due
    (``after_contact_text``); the caller commits, then sends it."""
    if contact.outcome not in CONNECTED_OUTCOMES:
        return False
    supporter = session.get(Supporter, supporter_id)
    if supporter is None:
        return False
    minutes = settings().COOLDOWN_MINUTES
    supporter.cooldown_until = utcnow() + timedelta(minutes=minutes) if minutes else None
    supporter.missed_in_row = 0  # they answered
    return True


def after_contact_text(session: Session, supporter: Supporter) -> str | None:
    """The text after a connected contact: thanks, SUPPORT, the cool-down (unless QUIET);
    today's cap when reached (always: it changes what they may expect). None: no text."""
    cfg = settings()
    now = utcnow()
    capped = bool(cfg.MAX_CONTACTS_PER_DAY) and contacts_today(
        session, {supporter.id}, now).get(supporter.id, 0) >= cfg.MAX_CONTACTS_PER_DAY
    lang = language(supporter)
    flows = outbound.text_flows()
    parts = []
    if not supporter.quiet:
        parts.append(flows.message(lang, "care_thanks"))
        if cfg.COOLDOWN_MINUTES and not capped:
            parts.append(flows.message(lang, "care_cooldown", minutes=cfg.COOLDOWN_MINUTES))
    if capped:
        parts.append(flows.message(lang, "care_cap"))
    return " ".join(parts) or None


def send_after_contact(session: Session, contact_id: int) -> str:
    """Text the supporter of a connected contact that is over (the job, the auditor)."""
    contact = session.get(Contact, contact_id)
    supporter = session.get(Supporter, contact.supporter_id) \
        if contact is not None and contact.supporter_id else None
    body = after_contact_text(session, supporter) if supporter is not None else None
    if body is None:
        return "nothing to send"
    return "sent" if outbound.send_text(supporter.phone, body) else "not sent"


# --- missed offers and the automatic pause ------------------------------------------------

def offer_missed(session: Session, supporter_id: int) -> bool:
    """One more offer rang out or met silence. True when this one switches them OFF (the
    caller commits, then texts ``care_paused``): only a supporter who was offered contacts
    now is paused (one already OFF just starts again from none)."""
    missed = session.execute(update(Supporter).where(Supporter.id == supporter_id).values(
        missed_in_row=Supporter.missed_in_row + 1).returning(Supporter.missed_in_row)).scalar()
    limit = settings().MAX_MISSED_OFFERS
    if missed is None or not limit or missed < limit:
        return False
    supporter = session.get(Supporter, supporter_id)
    session.refresh(supporter)
    supporter.missed_in_row = 0
    if not supporter.active or supporter.id not in shifts.offered_now(session):
        return False
    supporter.available = False  # the manual OFF (shifts' listener writes its row)
    session.flush()
    off = session.get(AvailabilityOverride, supporter.id)
    if off is not None:
        off.auto_paused = True
    log.info("supporter %s paused after %s missed offers", supporter.id, missed)
    return True


def offer_answered(session: Session, supporter_id: int) -> None:
    """A yes or a decline: they are there, whatever came before."""
    session.execute(update(Supporter).where(Supporter.id == supporter_id,
                                            Supporter.missed_in_row != 0)
                    .values(missed_in_row=0))


def send_paused(session: Session, supporter_id: int) -> str:
    """The kind text of an automatic pause, and how to come back (the job)."""
    supporter = session.get(Supporter, supporter_id)
    if supporter is None:
        return "gone"
    body = outbound.text_flows().message(language(supporter), "care_paused")
    return "sent" if outbound.send_text(supporter.phone, body) else "not sent"


def paused(session: Session, supporter_id: int) -> bool:
    """Whether the supporter is OFF by the automatic pause (not by their own switch)."""
    off = session.get(AvailabilityOverride, supporter_id)
    return off is not None and bool(off.auto_paused)


# --- the supporter's commands -------------------------------------------------------------

def ready(supporter: Supporter) -> None:
    """READY: the cool-down is over now (the cap and a pause are not)."""
    supporter.cooldown_until = None


def toggle_quiet(supporter: Supporter) -> bool:
    """QUIET: the thank-you texts off, or on again; returns whether they are now off."""
    supporter.quiet = not supporter.quiet
    return supporter.quiet


def language(supporter: Supporter) -> str:
    """The language texts to the supporter are in: English if they speak it, as the
    supporter's leg of a call does."""
    languages = supporter.language_list
    return "en" if "en" in languages or not languages else languages[0]


# --- what the coordinators see ------------------------------------------------------------
#
# Each supporter's state now (staff, shown on "Available now"). How often each rule took a
# supporter out of an offer is counted only in the published statistics (settled months
# and quarters, suppressed jointly: ``hotline.disclosure.report.CARE_TABLES``), never over
# a rolling window, which two views a day apart could difference.

def states(session: Session, now: datetime | None = None) -> dict[int, str]:
    """Each active supporter's cool-down or cap now, in words (none: no entry)."""
    cfg = settings()
    now = now or utcnow()
    rows = dict(session.execute(select(Supporter.id, Supporter.cooldown_until).where(
        Supporter.active.is_(True))).all())
    said: dict[int, str] = {}
    if cfg.MAX_CONTACTS_PER_DAY:
        for sid, n in contacts_today(session, set(rows), now).items():
            if n >= cfg.MAX_CONTACTS_PER_DAY:
                said[sid] = (f"today's limit reached ({n} contacts): not offered again "
                             f"until midnight")
    if cfg.COOLDOWN_MINUTES:
        for sid, until in rows.items():
            if sid not in said and until is not None and until > now:
                said[sid] = (f"cooling down after a contact until {shifts.local_time(until)}"
                             f" (offered only if nobody else is free; READY ends it)")
    return said
