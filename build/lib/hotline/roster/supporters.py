"""The roster: the one set of rules for adding, changing, switching, taking off and
restoring supporters. The CLI (``hotline supporters ...``) and the dashboard (pages and
JSON API) are thin adapters over these functions, so the same input is refused with the
same message on both, and taking someone off the roster leaves the same state whichever
way it was done.

Taking a supporter off the roster (``deactivate``) means, whatever the path:

* ``active`` is false: routing never offers them a contact, and their texts are no longer
  read as a supporter's;
* their weekly shifts are deleted, and they hold no manual switch (neither ON nor an
  ``AvailabilityOverride`` OFF): a roster entry restored months later must not start
  ringing by a schedule nobody has looked at since;
* offers still ringing them are withdrawn (``canceled``) and their reservation freed: they
  can no longer accept (their YES is no longer read as a supporter's, and pressing 1 now
  hears "taken"), so the contact must not wait for them. That is an offer's state change,
  so it is the lifecycle's (``hotline.lifecycle.transitions.take_off_roster``, which calls
  ``deactivate`` first): from the dashboard the contact goes on to its next step at once;
  the CLI starts no job queue, so the auditor routes it on within its next pass;
* a contact they are on now is left alone: a clinician is never cut off by a roster
  change; they are freed when it ends;
* their past contacts stay (statistics), as does the row, so ``restore`` can bring it back.

``restore`` makes them active again in the same clean state (no shifts, not switched
ON or OFF, so not offered until given shifts or switched ON), whatever an older version
left behind.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from hotline.core import flows
from hotline.roster import roles as role_lists
from hotline.roster import shifts, training
from hotline.core.errors import HotlineError
from hotline.models import Shift, Supporter
from hotline.core.phones import normalize

TIERS = (1, 2)
MAX_NAME = 120
#: Manual modes: ON and OFF are what the supporter can text; "schedule" clears both.
MODES = ("on", "off", "schedule")


#: ``update``'s default for a field the caller does not change.
KEEP = object()


def known_roles() -> tuple[str, ...]:
    """Roles the program lists (ivr_flows/roster.yaml); a supporter has one, or none given."""
    return role_lists.current().names("roles")


def known_units() -> tuple[str, ...]:
    """Units the program lists (ivr_flows/roster.yaml); a supporter has any number."""
    return role_lists.current().names("units")


def known_languages() -> tuple[str, ...]:
    """Languages the program offers (ivr_flows/languages.yaml); a supporter may speak several."""
    return flows.offered()


class RosterError(HotlineError, ValueError):
    """A roster change was refused. ``errors`` maps each refused field to why (``field`` is
    the first), so a form shows every error at once, each next to its field; the message is
    all of them. ``restore`` is a supporter taken off the roster whom the caller should
    offer to restore instead (each adapter says how: a button, a command)."""

    def __init__(self, message: str = "", field: str | None = None,
                 errors: dict[str, str] | None = None,
                 restore: Supporter | None = None) -> None:
        self.errors = errors or ({field: message} if field else {})
        super().__init__(message or "; ".join(self.errors.values()))
        self.field = next(iter(self.errors), None)
        self.restore = restore


@dataclass(frozen=True)
class Details:
    """A supporter's checked details: name, phone (E.164), tier, languages, role, units."""
    name: str
    phone: str
    tier: int
    languages: tuple[str, ...]
    role: str | None = None
    units: tuple[str, ...] = ()


def _names(value: object) -> list[str]:
    """A list of names as typed: one string (commas allowed), or a list of them."""
    items = [value] if isinstance(value, str) else \
        list(value) if isinstance(value, Iterable) else []
    return [part.strip() for item in items for part in str(item or "").split(",")
            if part.strip()]


def check(name: object, phone: object, tier: object, languages: object,
          role: object = None, units: object = ()) -> Details:
    """Every field checked, as typed (a form's strings, JSON's numbers and lists, the CLI's
    options); every refused field is reported together (RosterError.errors)."""
    errors: dict[str, str] = {}
    name = str(name or "").strip()
    if not name or len(name) > MAX_NAME:
        errors["name"] = f"a name of 1 to {MAX_NAME} characters is required"
    e164 = ""
    try:
        e164 = normalize(str(phone or ""))
    except ValueError as exc:
        errors["phone"] = str(exc)
    try:
        tier = int(tier or 0)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        tier = 0
    if tier not in TIERS:
        errors["tier"] = "tier must be 1 (peer supporter) or 2 (backup)"
    codes = [languages] if isinstance(languages, str) else \
        list(languages) if isinstance(languages, Iterable) else []
    known = known_languages()
    if not codes or any(code not in known for code in codes):
        errors["languages"] = f"languages must be among {', '.join(known)} (at least one)"
    role = str(role or "").strip() or None
    if role is not None and role not in known_roles():
        errors["role"] = f"role must be one of {', '.join(known_roles())} (or none)"
    unit_names = _names(units)
    if any(unit not in known_units() for unit in unit_names):
        errors["units"] = f"units must be among {', '.join(known_units())}"
    if errors:
        raise RosterError(errors=errors)
    return Details(name, e164, tier, tuple(dict.fromkeys(codes)),  # type: ignore[arg-type]
                   role, tuple(dict.fromkeys(unit_names)))


#: ``update``'s training fields when not given (an API client that does not send them):
#: the record stays as it is.
KEEP = object()


def _with_training(name: object, phone: object, tier: object, languages: object,
                   role: object, units: object, trained_on: object, refresher_due: object,
                   ) -> tuple[Details, training.Record]:
    """``check`` and the training record's check (``training.check``), every refused field
    reported together."""
    errors: dict[str, str] = {}
    details = None
    try:
        details = check(name, phone, tier, languages, role, units)
    except RosterError as exc:
        errors.update(exc.errors)
    dates, refused = training.check(trained_on, refresher_due)
    errors.update(refused)
    if errors:
        raise RosterError(errors=errors)
    return details, dates  # type: ignore[return-value]


def add(session: Session, name: object, phone: object, tier: object = 1,
        languages: object = ("en",), role: object = None, units: object = (),
        trained_on: object = None, refresher_due: object = None) -> Supporter:
    """Add a supporter (phone stored as E.164); refuses bad input with a clear message, and
    a number taken off the roster with the supporter to restore instead. The training
    record is optional here (``training.check``): without one, and with
    HOTLINE_REQUIRE_TRAINING, they are not offered contacts until it is recorded."""
    details, dates = _with_training(name, phone, tier, languages, role, units, trained_on,
                                    refresher_due)
    existing = session.scalar(select(Supporter).where(Supporter.phone == details.phone))
    if existing is not None and not existing.active:
        raise RosterError(f"{existing.name} was taken off the roster with this number: "
                          "restore them instead", "phone", restore=existing)
    if existing is not None:
        raise RosterError("a supporter with this phone number already exists", "phone")
    supporter = Supporter(name=details.name, phone=details.phone, tier=details.tier,
                          languages=",".join(details.languages), role=details.role,
                          units=",".join(details.units),
                          trained_on=dates.trained_on, refresher_due=dates.refresher_due)
    session.add(supporter)
    session.commit()
    return supporter


def _retrained_with_the_old_refresher(supporter: Supporter, trained_on: object,
                                      refresher_due: object) -> bool:
    def text(value: object) -> str:
        return "" if value is None else str(value.isoformat() if hasattr(value, "isoformat")
                                            else value).strip()
    if trained_on is KEEP or refresher_due is KEEP or supporter.refresher_due is None:
        return False
    return (text(trained_on) != text(supporter.trained_on)
            and text(refresher_due) == text(supporter.refresher_due))


def update(session: Session, supporter: Supporter, name: object, phone: object,
           tier: object, languages: object, role: object = KEEP, units: object = KEEP,
           trained_on: object = KEEP, refresher_due: object = KEEP) -> Supporter:
    """Change a supporter's name, phone, tier, languages, role, units and training record
    (all checked, as ``add``; a role, units or record not given (``KEEP``) stay as they
    are)."""
    keep = trained_on is KEEP and refresher_due is KEEP
    if _retrained_with_the_old_refresher(supporter, trained_on, refresher_due):
        # A form sends back the refresher date it showed: a new training date with that
        # old refresher means "a refresher was done", so the refresher is due anew.
        refresher_due = None
    details, dates = _with_training(
        name, phone, tier, languages,
        supporter.role if role is KEEP else role,
        supporter.unit_list if units is KEEP else units,
        supporter.trained_on if trained_on is KEEP else trained_on,
        (supporter.refresher_due if trained_on is KEEP else None)
        if refresher_due is KEEP else refresher_due)
    clash = session.scalar(select(Supporter).where(Supporter.phone == details.phone,
                                                   Supporter.id != supporter.id))
    if clash is not None:
        raise RosterError("another supporter has this phone number", "phone")
    supporter.name, supporter.phone, supporter.tier = details.name, details.phone, details.tier
    supporter.languages = ",".join(details.languages)
    supporter.role, supporter.units = details.role, ",".join(details.units)
    if not keep:
        supporter.trained_on, supporter.refresher_due = dates.trained_on, dates.refresher_due
    session.commit()
    return supporter


def train(session: Session, supporter: Supporter, on: object,
          refresher_due: object = None) -> Supporter:
    """Record a training or refresher on ``on``: the refresher is then due
    HOTLINE_TRAINING_VALID_MONTHS later (or on ``refresher_due``)."""
    dates, errors = training.check(on, refresher_due)
    if dates.trained_on is None and not errors:
        errors["trained_on"] = "the training date is required"
    if errors:
        raise RosterError(errors=errors)
    supporter.trained_on, supporter.refresher_due = dates.trained_on, dates.refresher_due
    session.commit()
    return supporter


def edit(session: Session, supporter: Supporter, **changes: object) -> Supporter:
    """Change only the fields given (name, phone, tier, languages, role, units), the rest as
    they are: ``hotline supporters edit``; every value checked as ``update`` does."""
    current = {"name": supporter.name, "phone": supporter.phone, "tier": supporter.tier,
               "languages": supporter.language_list, "role": KEEP, "units": KEEP}
    unknown = set(changes) - set(current)
    if unknown:
        raise RosterError(f"cannot change {', '.join(sorted(unknown))}")
    return update(session, supporter, **{**current, **changes})


def find(session: Session, phone: str) -> Supporter:
    """The supporter with this phone number, or RosterError."""
    supporter = session.scalar(select(Supporter).where(Supporter.phone == normalize(phone)))
    if supporter is None:
        raise RosterError("no supporter has this phone number", "phone")
    return supporter


def switch(session: Session, supporter: Supporter, mode: str) -> Supporter:
    """Manual ON or OFF (the same as the supporter texting it), or back to the schedule."""
    if mode not in MODES:
        raise RosterError("choose on, off or schedule", "mode")
    if not supporter.active:
        raise RosterError(f"{supporter.name} is off the roster: restore them first")
    if mode == "schedule":
        shifts.back_to_schedule(session, supporter)
    else:
        supporter.available = mode == "on"
    session.commit()
    return supporter


def set_available(session: Session, phone: str, available: bool) -> Supporter:
    """Switch the supporter with this phone number ON (ready for contacts) or OFF."""
    return switch(session, find(session, phone), "on" if available else "off")


def deactivate(session: Session, supporter: Supporter) -> None:
    """Take a supporter off the roster (see the module's docstring for what that means).
    Offers still ringing them are the lifecycle's to withdraw: adapters call
    ``hotline.lifecycle.transitions.take_off_roster``, which calls this first."""
    if not supporter.active:
        raise RosterError(f"{supporter.name} is already off the roster")
    supporter.active = False
    _forget_availability(session, supporter)
    session.commit()


def restore(session: Session, supporter: Supporter) -> Supporter:
    """Put a supporter taken off the roster back on it: no shifts, neither ON nor OFF, so
    not offered contacts until given shifts or switched ON."""
    if supporter.active:
        raise RosterError(f"{supporter.name} is already on the roster")
    supporter.active = True
    _forget_availability(session, supporter)  # whatever an older version left behind
    session.commit()
    return supporter


def _forget_availability(session: Session, supporter: Supporter) -> None:
    """No shifts and no manual switch (the caller commits)."""
    session.execute(delete(Shift).where(Shift.supporter_id == supporter.id))
    shifts.back_to_schedule(session, supporter)


def removed(session: Session) -> list[Supporter]:
    """Supporters taken off the roster (kept for statistics), by name."""
    return list(session.scalars(select(Supporter).where(Supporter.active.is_(False))
                                .order_by(Supporter.name)))


def everyone(session: Session) -> list[Supporter]:
    """Active supporters, by tier then name."""
    return list(session.scalars(select(Supporter).where(Supporter.active.is_(True))
                                .order_by(Supporter.tier, Supporter.name)))
