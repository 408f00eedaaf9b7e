"""Training records: who may be offered a contact, as far as training goes.

A supporter's record is ``trained_on`` and ``refresher_due`` (by default
HOTLINE_TRAINING_VALID_MONTHS after the training). With HOTLINE_REQUIRE_TRAINING (the
default) a supporter with no record, or whose refresher date has passed in the program's
time zone, is never offered a contact: the rule is ``current_bound()``, one more condition
in routing's pick (``hotline.lifecycle.routing``), so picking and reserving stay one
conditional UPDATE and every tier, ring-all, voice, text and callback share it; and
``shifts.offered_now`` (what every page shows as "on") applies it too. The refresher day
itself still counts: a refresher due on the 1st lapses when the 2nd begins.

The CLI and the dashboard check dates here (``check``), through ``hotline.roster.supporters``.
Reminder texts are ``hotline.followups.training``'s.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import Enum
from zoneinfo import ZoneInfo

from sqlalchemy import Boolean, Date, and_, bindparam, or_, select, true
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from flask import has_app_context

from hotline.core import settings as settings_module
from hotline.core.extensions import settings
from hotline.models import Supporter, utcnow
from hotline.roster.shifts import program_zone

#: A refresher due within this many days shows as "due soon".
DUE_SOON_DAYS = 30
#: The coordinators' digest lists who lapses within this many days.
DIGEST_DAYS = 60


class TrainingState(str, Enum):
    CURRENT = "current"
    DUE_SOON = "due soon"
    LAPSED = "lapsed"
    UNRECORDED = "no record"


def today(now: datetime | None = None, zone: ZoneInfo | None = None) -> date:
    """The program's date now (refresher dates are days in the program's time zone)."""
    return (now or utcnow()).astimezone(zone or program_zone()).date()


def months_later(day: date, months: int) -> date:
    """``day`` plus whole months (the 31st becomes the month's last day)."""
    month = day.month - 1 + months
    year, month = day.year + month // 12, month % 12 + 1
    return day.replace(year=year, month=month,
                       day=min(day.day, calendar.monthrange(year, month)[1]))


def required() -> bool:
    """HOTLINE_REQUIRE_TRAINING; read from the environment outside an app context (routing
    run from a bare thread, as ``shifts.program_zone`` does for the zone)."""
    if has_app_context():
        return settings().REQUIRE_TRAINING
    return settings_module.load().REQUIRE_TRAINING


def default_refresher(trained_on: date) -> date:
    return months_later(trained_on, settings().TRAINING_VALID_MONTHS)


def parse_day(value: object, label: str) -> date | None:
    """A date as typed (a form's or the CLI's 2026-03-01, JSON's string, a date); None if
    empty; ValueError naming ``label`` otherwise."""
    if value is None or isinstance(value, date):
        return value
    text = str(value).strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{label} must be a date like 2026-03-01") from None


@dataclass(frozen=True)
class Record:
    trained_on: date | None
    refresher_due: date | None


def check(trained_on: object, refresher_due: object,
          now: datetime | None = None) -> tuple[Record, dict[str, str]]:
    """The record as typed, checked: (record, errors by field). A refresher date needs a
    training date; without one it is the training plus HOTLINE_TRAINING_VALID_MONTHS."""
    errors: dict[str, str] = {}
    trained = due = None
    try:
        trained = parse_day(trained_on, "the training date")
    except ValueError as exc:
        errors["trained_on"] = str(exc)
    try:
        due = parse_day(refresher_due, "the refresher date")
    except ValueError as exc:
        errors["refresher_due"] = str(exc)
    if errors:
        return Record(None, None), errors
    if trained is not None and trained > today(now):
        errors["trained_on"] = "the training date cannot be in the future"
    if due is not None and trained is None:
        errors["refresher_due"] = "a refresher date needs a training date"
    elif due is not None and trained is not None and due <= trained:
        errors["refresher_due"] = "the refresher date must be after the training date"
    if trained is not None and due is None:
        due = default_refresher(trained)
    return Record(trained, due), errors


def state_of(supporter: Supporter, on: date) -> TrainingState:
    """A supporter's training state on the program's date ``on``."""
    due = supporter.refresher_due
    if due is None or supporter.trained_on is None:
        return TrainingState.UNRECORDED
    if due < on:
        return TrainingState.LAPSED
    if due <= on + timedelta(days=DUE_SOON_DAYS):
        return TrainingState.DUE_SOON
    return TrainingState.CURRENT


def states(session: Session, now: datetime | None = None) -> dict[int, TrainingState]:
    """Every active supporter's training state, by id (roster and "Available now")."""
    on = today(now)
    return {s.id: state_of(s, on) for s in session.scalars(
        select(Supporter).where(Supporter.active.is_(True)))}


def may_be_offered(supporter: Supporter, now: datetime | None = None) -> bool:
    """The rule for one supporter in Python (texts' answers); routing uses the SQL."""
    return not required() or state_of(supporter, today(now)) in (
        TrainingState.CURRENT, TrainingState.DUE_SOON)


def current(now: datetime | None = None) -> ColumnElement[bool]:
    """SQL: training allows offering this supporter a contact on the program's date."""
    if not required():
        return true()
    return and_(Supporter.trained_on.is_not(None), Supporter.refresher_due >= today(now))


def current_bound() -> ColumnElement[bool]:
    """``current`` with bound parameters (``params``), for statements built once."""
    return or_(bindparam("training_waived", type_=Boolean),
               and_(Supporter.trained_on.is_not(None),
                    Supporter.refresher_due >= bindparam("training_today", type_=Date)))


def params(now: datetime) -> dict[str, object]:
    """The parameters of ``current_bound`` at ``now``."""
    return {"training_waived": not required(), "training_today": today(now)}


def lapsing(session: Session, now: datetime | None = None,
            days: int = DIGEST_DAYS) -> list[Supporter]:
    """Active supporters without a current record, or whose refresher falls within
    ``days``: the coordinators' digest (lapsed first, then by date, then name)."""
    on = today(now)
    rows = session.scalars(select(Supporter).where(
        Supporter.active.is_(True),
        or_(Supporter.refresher_due.is_(None), Supporter.trained_on.is_(None),
            Supporter.refresher_due <= on + timedelta(days=days))))
    return sorted(rows, key=lambda s: (s.refresher_due or date.min, s.name))


def unrecorded(session: Session) -> int:
    """Active supporters with no training record (the upgrade's warning)."""
    return len([s for s in session.scalars(select(Supporter).where(
        Supporter.active.is_(True))) if s.trained_on is None or s.refresher_due is None])


def trained_by_month(session: Session, on: date, months: int = 12) -> list[tuple[date, int]]:
    """Supporters on the roster whose training was current at each month's end (today for
    this month), the last ``months`` months oldest first: (first day of month, count).

    Staff, counted from the roster table only (no contact is involved, so no suppression):
    a supporter taken off the roster is not counted in any month (the roster keeps no date
    of leaving), one added is counted from the month they were added.
    """
    people = session.execute(select(Supporter.created_at, Supporter.trained_on,
                                    Supporter.refresher_due).where(
        Supporter.active.is_(True), Supporter.trained_on.is_not(None),
        Supporter.refresher_due.is_not(None))).all()
    zone = program_zone()
    out = []
    first = on.replace(day=1)
    for back in range(months - 1, -1, -1):
        month = months_later(first, -back)
        end = min(months_later(month, 1) - timedelta(days=1), on)
        out.append((month, sum(1 for p in people
                               if p.created_at.astimezone(zone).date() <= end
                               and p.trained_on <= end <= p.refresher_due)))
    return out
