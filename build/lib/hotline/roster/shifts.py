"""Weekly shifts and who is available now.

A supporter is offered contacts when

* they switched themselves ON (texted ON, ``hotline supporters on``, the dashboard):
  ``Supporter.available`` is the manual ON and holds until they switch OFF; or
* one of their weekly shifts covers this minute (program time zone) and they are not
  switched OFF.

A manual OFF (an ``AvailabilityOverride`` row) holds, shifts or not, until they switch ON
or a coordinator puts them back on their schedule (the dashboard's "schedule"): "off" that
still rang when a shift started was the worst surprise of the walkthrough (issue 14), and
a supporter who texts OFF before a holiday must not be rung by the next shift.

``eligible()`` is that rule as one SQL condition, so routing keeps picking and reserving a
supporter in a single conditional UPDATE. Every way of switching a supporter (SMS, the CLI,
the dashboard, the web phone) sets ``Supporter.available`` through the ORM; ``install()``
listens for that and writes or clears the override, so they all share one state, and every
page shows ``offered_now()``, never the bare flag.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Integer, and_, bindparam, delete, event, exists, not_, or_, select
from sqlalchemy.orm import Session, object_session
from sqlalchemy.sql.elements import BindParameter, ColumnElement

from hotline.core.errors import HotlineError
from hotline.models import (
    MINUTES_PER_WEEK,
    AvailabilityOverride,
    Shift,
    Supporter,
    UtcDateTime,
    utcnow,
)
from flask import has_app_context
from hotline.core.extensions import settings
from hotline.core.settings import Settings

MINUTES_PER_DAY = 24 * 60
#: ``off_until`` of a manual OFF: until switched ON or back to the schedule. (Rows written
#: before, ending with a shift, keep meaning what they said.) Far from Python's year 9999
#: so that any time zone can show it.
OFF_UNTIL_ON = datetime(9000, 1, 1, tzinfo=UTC)
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
#: Times as people type them: "8", "8am", "9 pm", "9:30pm", "21:30", "21.30", "0900",
#: "12am" (midnight), "24:00" (midnight, as an end). Hours alone are hours, not minutes.
_CLOCK = re.compile(r"^(?P<h>\d{1,2})(?:[:.h]?(?P<m>\d{2}))?\s*(?P<ampm>[ap])?\.?\s*(?:m\.?)?$")


class ShiftError(HotlineError, ValueError):
    """A shift was refused; the message says why, in words a coordinator understands.
    ``errors`` maps each refused field (weekday, start, end) to its message, so a form can
    show all of them at once, each next to its field."""

    def __init__(self, message: str, field: str | None = None,
                 errors: dict[str, str] | None = None) -> None:
        self.errors = errors or {field or "start": message}
        super().__init__("; ".join(self.errors.values()))
        self.field = next(iter(self.errors))


def program_zone() -> ZoneInfo:
    """The program's time zone (HOTLINE_TIMEZONE); its default outside an app context."""

    if has_app_context():
        return ZoneInfo(settings().TIMEZONE)
    return ZoneInfo(Settings.__dataclass_fields__["TIMEZONE"].default)


def minute_of_week(moment: datetime, zone: ZoneInfo) -> int:
    """Minutes since Monday 00:00 of ``moment``'s week, on the program's wall clock."""
    local = moment.astimezone(zone)
    return local.weekday() * MINUTES_PER_DAY + local.hour * 60 + local.minute


def parse_clock(text: str, label: str) -> int:
    """A time of day as people type it (see ``_CLOCK``) -> minutes after midnight, or
    ShiftError naming the field."""
    text = (text or "").strip().lower()
    if not text:
        raise ShiftError(f"{label} is required: a time like 08:00, 8am or 19:30", label)
    match = _CLOCK.match(text)
    hour = int(match.group("h")) if match else -1
    minute = int(match.group("m") or 0) if match else -1
    if match and match.group("ampm"):
        if not 1 <= hour <= 12:
            hour = -1
        else:
            hour = hour % 12 + (12 if match.group("ampm") == "p" else 0)
    if match and hour == 24 and minute == 0:
        hour = 0
    if not (0 <= hour <= 23 and 0 <= minute <= 59):
        raise ShiftError(f"{label} must be a time like 08:00, 8am, 9:30 pm or 19:30", label)
    return hour * 60 + minute


def parse_weekday(value: str | int) -> int:
    """0 (Monday) .. 6 (Sunday), from a number or a day name."""
    text = str(value).strip().lower()
    for index, name in enumerate(WEEKDAYS):
        if text in (str(index), name.lower(), name.lower()[:3]):
            return index
    raise ShiftError("day must be one of Monday to Sunday", "weekday")


def span(weekday: int, start: int, end: int) -> tuple[int, int]:
    """Week minutes of a shift; an end at or before the start ends the next day."""
    length = end - start if end > start else end + MINUTES_PER_DAY - start
    first = weekday * MINUTES_PER_DAY + start
    return first, first + length


def _overlaps(a: tuple[int, int], b: tuple[int, int]) -> bool:
    """Do two week spans overlap, counting the wrap from Sunday night into Monday?"""
    return any(a[0] < b[1] + shift and b[0] + shift < a[1]
               for shift in (-MINUTES_PER_WEEK, 0, MINUTES_PER_WEEK))


def add_shift(session: Session, supporter: Supporter, weekday: str | int, start: str,
              end: str) -> Shift:
    """Add a weekly shift after checking every field and overlaps with the others."""
    if not supporter.active:
        raise ShiftError("this supporter is no longer on the roster")
    errors: dict[str, str] = {}
    parsed = {}
    for name, parse, args in (("weekday", parse_weekday, (weekday,)),
                              ("start", parse_clock, (start, "start")),
                              ("end", parse_clock, (end, "end"))):
        try:
            parsed[name] = parse(*args)
        except ShiftError as exc:       # every refused field at once, each named
            errors[name] = str(exc)
    if errors:
        raise ShiftError("", errors=errors)
    if parsed["start"] == parsed["end"]:
        # 09:00-09:00 used to become a 24-hour shift without a word: nobody types that
        # on purpose, and a round-the-clock supporter is better switched ON.
        raise ShiftError("the shift starts and ends at the same time: give an end after "
                         "the start (an end before the start ends the next day)", "end")
    first, last = span(parsed["weekday"], parsed["start"], parsed["end"])
    for other in shifts_of(session, supporter.id):
        if _overlaps((first, last), (other.start_minute, other.end_minute)):
            raise ShiftError(f"overlaps the shift {describe(other)}", "start")
    shift = Shift(supporter_id=supporter.id, start_minute=first, end_minute=last)
    session.add(shift)
    session.commit()
    return shift


def remove_shift(session: Session, shift: Shift) -> None:
    """Delete a shift (a manual OFF stays: it is not tied to any shift)."""
    session.delete(shift)
    session.commit()


def shifts_of(session: Session, supporter_id: int) -> list[Shift]:
    """A supporter's shifts in week order."""
    return list(session.scalars(select(Shift).where(Shift.supporter_id == supporter_id)
                                .order_by(Shift.start_minute)))


def clock(minute: int) -> str:
    """Minute of the day -> 'HH:MM'."""
    minute %= MINUTES_PER_DAY
    return f"{minute // 60:02d}:{minute % 60:02d}"


def local_time(moment: datetime, zone: ZoneInfo | None = None) -> str:
    """An instant as 'Sat 01:00 EST': the program's wall clock, the zone named (never UTC
    unless the program runs on UTC)."""
    return f"{_aware(moment).astimezone(zone or program_zone()):%a %H:%M %Z}"


def zone_label(zone: ZoneInfo | None = None) -> str:
    """'America/New_York (EST)': the program's time zone, for headings over shift times."""
    zone = zone or program_zone()
    return f"{zone.key} ({datetime.now(zone):%Z})"


def describe(shift: Shift) -> str:
    """'Monday 08:00–16:00' (an overnight shift shows its end the next day)."""
    day = WEEKDAYS[shift.start_minute // MINUTES_PER_DAY]
    end_day = (shift.end_minute // MINUTES_PER_DAY) % 7
    suffix = "" if end_day == shift.start_minute // MINUTES_PER_DAY else \
        f" ({WEEKDAYS[end_day]})"
    return f"{day} {clock(shift.start_minute)}–{clock(shift.end_minute)}{suffix}"


def _covering(mow: int | BindParameter, next_week: int | BindParameter | None = None,
              ) -> ColumnElement[bool]:
    return or_(and_(Shift.start_minute <= mow, Shift.end_minute > mow),
               Shift.end_minute > (mow + MINUTES_PER_WEEK if next_week is None else next_week))


def eligible(now: datetime | None = None, zone: ZoneInfo | None = None) -> ColumnElement[bool]:
    """SQL: the supporter may be offered a contact at ``now`` (manual ON, or on shift and
    not switched OFF during it). Busy, active and tier are checked by the caller."""
    now = now or utcnow()
    return _eligible(minute_of_week(now, zone or program_zone()), now)


def _eligible(mow: int | BindParameter, now: datetime | BindParameter,
              next_week: int | BindParameter | None = None) -> ColumnElement[bool]:
    """``eligible`` for a minute of the week, literal or bound."""
    on_shift = exists().where(Shift.supporter_id == Supporter.id, _covering(mow, next_week))
    switched_off = exists().where(AvailabilityOverride.supporter_id == Supporter.id,
                                  AvailabilityOverride.off_until > now)
    return or_(Supporter.available.is_(True), and_(on_shift, not_(switched_off)))


def eligible_bound() -> ColumnElement[bool]:
    """``eligible`` with bound parameters ``now``, ``mow`` and ``mow_next_week`` (see
    ``eligible_params``), for a statement built once and executed many times."""
    return _eligible(bindparam("mow", type_=Integer), bindparam("now", type_=UtcDateTime()),
                     bindparam("mow_next_week", type_=Integer))


def eligible_params(now: datetime, zone: ZoneInfo | None = None) -> dict[str, object]:
    """The parameters of ``eligible_bound`` at ``now``."""
    mow = minute_of_week(now, zone or program_zone())
    return {"now": now, "mow": mow, "mow_next_week": mow + MINUTES_PER_WEEK}


def current_shift(session: Session, supporter_id: int, now: datetime,
                  zone: ZoneInfo) -> Shift | None:
    """The supporter's shift covering ``now``, if any."""
    return session.scalar(select(Shift).where(
        Shift.supporter_id == supporter_id, _covering(minute_of_week(now, zone))))


def shift_end(shift: Shift, now: datetime, zone: ZoneInfo) -> datetime:
    """When the occurrence of ``shift`` that covers ``now`` ends (a real instant)."""
    mow = minute_of_week(now, zone)
    left = (shift.end_minute - mow) % MINUTES_PER_WEEK or MINUTES_PER_WEEK
    local = now.astimezone(zone).replace(second=0, microsecond=0, tzinfo=None)
    return (local + timedelta(minutes=left)).replace(tzinfo=zone).astimezone(UTC)


def next_shift_start(session: Session, now: datetime, zone: ZoneInfo) -> datetime | None:
    """When the next weekly shift of an active supporter who is not switched OFF starts
    after ``now`` (a real instant), or None when no such shift exists."""
    off = switched_off(session, now)
    rows = session.execute(select(Shift.supporter_id, Shift.start_minute).join(
        Supporter, Supporter.id == Shift.supporter_id).where(Supporter.active.is_(True))).all()
    ahead = [(start - minute_of_week(now, zone)) % MINUTES_PER_WEEK or MINUTES_PER_WEEK
             for supporter_id, start in rows if supporter_id not in off]
    if not ahead:
        return None
    local = now.astimezone(zone).replace(second=0, microsecond=0, tzinfo=None)
    return (local + timedelta(minutes=min(ahead))).replace(tzinfo=zone).astimezone(UTC)


def record_off(session: Session, supporter_id: int, now: datetime) -> None:
    """A manual OFF: not offered, whatever the shifts say, until switched ON again."""
    with session.no_autoflush:
        row = session.get(AvailabilityOverride, supporter_id)
    if row is None:
        session.add(AvailabilityOverride(supporter_id=supporter_id, off_until=OFF_UNTIL_ON,
                                         set_at=now))
    else:
        row.off_until, row.set_at, row.auto_paused = OFF_UNTIL_ON, now, False


def clear_off(session: Session, supporter_id: int) -> None:
    """Forget a manual OFF (switched ON, or back to the schedule)."""
    session.execute(delete(AvailabilityOverride).where(
        AvailabilityOverride.supporter_id == supporter_id))


def back_to_schedule(session: Session, supporter: Supporter) -> None:
    """Neither ON nor OFF: offered during their weekly shifts only (texting SCHEDULE, or the
    dashboard's "schedule"); the caller commits."""
    supporter.available = False
    session.flush()
    clear_off(session, supporter.id)


def _on_available_set(target: Supporter, value: bool, _old: object, _initiator: object) -> None:
    """ORM hook: ``supporter.available = False`` of a stored supporter is a manual OFF,
    ``= True`` a manual ON (which ends any OFF)."""
    session = object_session(target)
    if target.id is None or session is None:
        return
    if value is False:
        record_off(session, target.id, utcnow())
    elif value is True:
        with session.no_autoflush:
            row = session.get(AvailabilityOverride, target.id)
        if row is not None:
            session.delete(row)


def install() -> None:
    """Listen for manual OFFs (idempotent; called by the app factory, never at import)."""
    if not event.contains(Supporter.available, "set", _on_available_set):
        event.listen(Supporter.available, "set", _on_available_set)


@dataclass(frozen=True)
class Availability:
    """What the "who is available now" view shows for one supporter."""
    supporter: Supporter
    offered: bool
    reason: str
    busy: bool
    shift: str | None


def offered_now(session: Session, now: datetime | None = None,
                zone: ZoneInfo | None = None) -> set[int]:
    """Ids of the active supporters who would be offered a contact now (busy or not): the
    one answer every page shows as "on" (web phone, live panel, roster, Available now)."""
    # Training is routing's rule too (hotline.roster.training imports this module).
    from hotline.roster import training
    now, zone = now or utcnow(), zone or program_zone()
    return set(session.scalars(select(Supporter.id).where(
        Supporter.active.is_(True), eligible(now, zone), training.current(now))))


def switched_off(session: Session, now: datetime | None = None) -> set[int]:
    """Ids of the supporters under a manual OFF now."""
    return set(session.scalars(select(AvailabilityOverride.supporter_id).where(
        AvailabilityOverride.off_until > (now or utcnow()))))


def now_view(session: Session, now: datetime | None = None,
             zone: ZoneInfo | None = None) -> list[Availability]:
    """Every active supporter with whether they would be offered a contact now, and why."""
    now, zone = now or utcnow(), zone or program_zone()
    offered = offered_now(session, now, zone)
    rows = []
    for s in session.scalars(select(Supporter).where(Supporter.active.is_(True))
                             .order_by(Supporter.tier, Supporter.name)):
        shift = current_shift(session, s.id, now, zone)
        rows.append(Availability(s, s.id in offered, _reason(session, s, shift, now, zone),
                                 bool(s.busy_with), describe(shift) if shift else None))
    return rows


def _reason(session: Session, s: Supporter, shift: Shift | None, now: datetime,
            zone: ZoneInfo) -> str:
    manual = manual_state(s, session.get(AvailabilityOverride, s.id), now, zone)
    if manual:
        return manual
    if shift is None:
        return "off shift"
    return f"on shift until {local_time(shift_end(shift, now, zone), zone)}"


def manual_state(s: Supporter, off: AvailabilityOverride | None, now: datetime,
                 zone: ZoneInfo) -> str:
    """The supporter's manual switch in words ('' when they follow their shifts)."""
    if s.available:
        return "switched ON (until switched OFF)"
    if off is not None and off.auto_paused and _aware(off.off_until) >= OFF_UNTIL_ON:
        # switched OFF by the hotline after missed offers (hotline.roster.care)
        return (f"paused automatically {local_time(off.set_at, zone)} after missed offers "
                f"(until switched ON)")
    if off is not None and _aware(off.off_until) >= OFF_UNTIL_ON:
        return "switched OFF (until switched ON)"
    if off is not None and _aware(off.off_until) > now:
        return f"switched OFF until {local_time(off.off_until, zone)}"
    return ""


def manual_states(session: Session, now: datetime | None = None,
                  zone: ZoneInfo | None = None) -> dict[int, str]:
    """``manual_state`` of every active supporter, by id (the roster's "manual" column)."""
    now, zone = now or utcnow(), zone or program_zone()
    offs = {o.supporter_id: o for o in session.scalars(select(AvailabilityOverride))}
    return {s.id: manual_state(s, offs.get(s.id), now, zone)
            for s in session.scalars(select(Supporter).where(Supporter.active.is_(True)))}


def _aware(moment: datetime) -> datetime:
    """SQLite gives back naive UTC datetimes; PostgreSQL aware ones."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
