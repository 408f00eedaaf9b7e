"""Reporting periods: whole weeks (Monday to Sunday, program time zone), complete ones.

Why whole, complete weeks: two overlapping periods can be subtracted from each other.
With periods of whole weeks the finest slice anyone can isolate that way is a week (not a
day), and leaving out the week in progress means watching the numbers change from one
day to the next does not isolate a day either.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from hotline.errors import HotlineError
from hotline.stats import Period

#: The default period: the last four complete weeks.
DEFAULT_WEEKS = 4
#: The longest period: a year and a week (53 weeks) keeps every page quick.
MAX_WEEKS = 53


class PeriodError(HotlineError, ValueError):
    """The requested period cannot be shown; the message says why."""


def last_complete_sunday(now: datetime, zone: ZoneInfo) -> date:
    """The Sunday that ended the last complete week before ``now``."""
    today = now.astimezone(zone).date()
    return today - timedelta(days=today.weekday() + 1)


def _parse(text: str | None, label: str) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise PeriodError(f"{label} must be a date like 2025-01-31")


def choose(args: dict, now: datetime, zone: ZoneInfo) -> Period:
    """The period asked for by ``from`` and ``to`` (YYYY-MM-DD), widened to whole weeks."""
    latest = last_complete_sunday(now, zone)
    last = _parse(args.get("to"), "to") or latest
    last = min(last + timedelta(days=6 - last.weekday()), latest)
    first = _parse(args.get("from"), "from") or last - timedelta(days=7 * DEFAULT_WEEKS - 1)
    first -= timedelta(days=first.weekday())
    if first > last:
        raise PeriodError("the period must start before it ends, and end no later than "
                          f"{latest:%d %b %Y} (the last complete week)")
    if ((last - first).days + 1) // 7 > MAX_WEEKS:
        raise PeriodError(f"a period may be at most {MAX_WEEKS} weeks long")
    return Period(first, last, zone)
