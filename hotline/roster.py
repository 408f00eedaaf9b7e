"""The roster: adding, finding and switching supporters on and off."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from hotline import flows
from hotline.errors import HotlineError
from hotline.models import Supporter
from hotline.phones import normalize

TIERS = (1, 2)


def known_languages() -> tuple[str, ...]:
    """Languages the program offers (ivr_flows/languages.yaml); a supporter may speak several."""
    return flows.offered()


class RosterError(HotlineError, ValueError):
    """A roster change was refused; the message says why."""


def add(session: Session, name: str, phone: str, tier: int = 1,
        languages: tuple[str, ...] = ("en",)) -> Supporter:
    """Add a supporter (phone stored as E.164); refuses bad input with a clear message."""
    name = (name or "").strip()
    if not name:
        raise RosterError("a name is required")
    if tier not in TIERS:
        raise RosterError(f"tier must be 1 (peer supporter) or 2 (backup), not {tier}")
    known = known_languages()
    unknown = [code for code in languages if code not in known]
    if unknown or not languages:
        raise RosterError(f"languages must be among {', '.join(known)}")
    e164 = normalize(phone)
    existing = session.scalar(select(Supporter).where(Supporter.phone == e164))
    if existing is not None and not existing.active:
        raise RosterError(f"{existing.name} was taken off the roster with this number: "
                          f"restore them with `hotline supporters restore {e164}`")
    if existing is not None:
        raise RosterError("a supporter with this phone number already exists")
    supporter = Supporter(name=name, phone=e164, tier=tier, languages=",".join(languages))
    session.add(supporter)
    session.commit()
    return supporter


def find(session: Session, phone: str) -> Supporter:
    """The supporter with this phone number, or RosterError."""
    supporter = session.scalar(select(Supporter).where(Supporter.phone == normalize(phone)))
    if supporter is None:
        raise RosterError("no supporter has this phone number")
    return supporter


def set_available(session: Session, phone: str, available: bool) -> Supporter:
    """Switch a supporter on (ready for contacts) or off."""
    supporter = find(session, phone)
    supporter.available = available
    session.commit()
    return supporter


def deactivate(session: Session, phone: str) -> Supporter:
    """Take a supporter off the roster; their history stays for statistics."""
    supporter = find(session, phone)
    supporter.active = False
    supporter.available = False
    session.commit()
    return supporter


def restore(session: Session, phone: str) -> Supporter:
    """Put a supporter taken off the roster back on it, following their shifts (none are
    left: they went with them), so not offered contacts until given shifts or switched ON."""
    from hotline import shifts
    supporter = find(session, phone)
    if supporter.active:
        raise RosterError(f"{supporter.name} is already on the roster")
    supporter.active = True
    shifts.back_to_schedule(session, supporter)
    session.commit()
    return supporter


def removed(session: Session) -> list[Supporter]:
    """Supporters taken off the roster (kept for statistics), by name."""
    return list(session.scalars(select(Supporter).where(Supporter.active.is_(False))
                                .order_by(Supporter.name)))


def everyone(session: Session) -> list[Supporter]:
    """Active supporters, by tier then name."""
    return list(session.scalars(select(Supporter).where(Supporter.active.is_(True))
                                .order_by(Supporter.tier, Supporter.name)))
