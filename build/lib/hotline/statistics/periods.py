"""Reporting periods: a fixed hierarchy of calendar months and quarters, settled ones.

Why a fixed hierarchy and not any run of days or weeks: two overlapping periods can be
subtracted from each other (five weeks less their first four is the fifth week, hidden
cells and all). The dashboard publishes only these periods, aligned to the calendar in the
program's time zone: a month and a quarter (its three months). Periods are either
disjoint or nested, so the only sums a reader can take across them are those of the
hierarchy, and ``hotline.disclosure.joint`` decides the hidden cells of a quarter together
with its months (docs/statistics.md). No year: retention keeps 400 days of events, so a
calendar year would be published for a few weeks only, and its joint check (twelve
months at once) takes minutes on a small program; a year is its four quarters.

Why settled periods only: a period's numbers move while it is open (today's contacts) and
for a few days after (outcomes, callbacks, follow-up replies: ``stats_cache.settle_after``).
Watching them move would isolate a day, or a single reply. A period is published once
every one of its days is final (``Window.final``), and while it is inside the retention
window (``Window.first``): retention's purge would change its numbers too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from hotline.models.followups import REPLY_WINDOW
from hotline.core.errors import HotlineError
from hotline.statistics.queries import Period

LEVELS = ("month", "quarter")
RULE = ("statistics are published only for a whole calendar month (2025-03) or quarter "
        "(2025-Q1) that has ended and settled")


class PeriodError(HotlineError, ValueError):
    """The requested period cannot be shown; the message says why."""


@dataclass(frozen=True)
class Span:
    """One period of the hierarchy: ``level`` and its first and last days."""
    level: str
    first: date
    last: date

    @property
    def id(self) -> str:
        if self.level == "month":
            return f"{self.first:%Y-%m}"
        return f"{self.first.year}-Q{(self.first.month - 1) // 3 + 1}"

    @property
    def label(self) -> str:
        if self.level == "month":
            return f"{self.first:%B %Y}"
        return f"Q{(self.first.month - 1) // 3 + 1} {self.first.year}"

    def period(self, zone: ZoneInfo) -> Period:
        return Period(self.first, self.last, zone)

    def children(self) -> list[Span]:
        """The periods one level down that make this one (none for a month)."""
        if self.level == "quarter":
            return [month(self.first.year, m) for m in range(self.first.month,
                                                               self.first.month + 3)]
        return []

    def months(self) -> list[Span]:
        return [self] if self.level == "month" else [m for c in self.children()
                                                     for m in c.months()]


def month(year: int, number: int) -> Span:
    first = date(year, number, 1)
    nxt = date(year + number // 12, number % 12 + 1, 1)
    return Span("month", first, nxt - timedelta(days=1))


def quarter(year: int, number: int) -> Span:
    return Span("quarter", date(year, 3 * number - 2, 1), month(year, 3 * number).last)


def parse(text: str) -> Span:
    """A period id: ``2025-03`` or ``2025-Q1`` (PeriodError otherwise)."""
    text = (text or "").strip().upper()
    try:
        if m := re.fullmatch(r"(\d{4})-(\d{2})", text):
            return month(int(m[1]), int(m[2]))
        if m := re.fullmatch(r"(\d{4})-Q([1-4])", text):
            return quarter(int(m[1]), int(m[2]))
    except ValueError:
        pass
    raise PeriodError(f"unknown period {text!r}: {RULE}")


def containing(day: date, level: str) -> Span:
    if level == "month":
        return month(day.year, day.month)
    return quarter(day.year, (day.month - 1) // 3 + 1)


@dataclass(frozen=True)
class Bounds:
    """Published periods lie within ``first`` .. ``last`` (``hotline.statistics.days`` window)
    and hold none of ``open_days``: days something of which is still open (a callback
    being tried, an offer ringing, a call not ended), whose counts would change later.
    A day is final ``settle`` after its end in ``zone`` (``published_on``)."""
    first: date
    last: date
    open_days: frozenset = frozenset()
    settle: timedelta | None = None
    zone: ZoneInfo | None = None


def bounds(now: datetime, zone: ZoneInfo, window=None) -> Bounds:
    """The days whose counts are final and still inside the retention window at ``now``:
    those of ``window`` (``stats_cache.cache_window``); outside an app (None), the default
    settings' (follow-ups a week and the reply window after their contact, 400 days)."""
    if window is None:
        today = now.astimezone(zone).date()
        return Bounds(today - timedelta(days=400), today - timedelta(days=1 + 3 + 7 + 2)
                      - REPLY_WINDOW, settle=timedelta(days=3 + 7 + 2) + REPLY_WINDOW,
                      zone=zone)
    return Bounds(window.first, window.final, settle=window.settle, zone=zone)


def published_on(span: Span, limits: Bounds) -> date | None:
    """The day ``span`` is published: the last of its days is final ``settle`` after its
    end (``Window.final``), if nothing of it is still open then. None if unknown."""
    if limits.settle is None or limits.zone is None:
        return None
    end = datetime.combine(span.last + timedelta(days=1), time(), limits.zone)
    return (end + limits.settle).astimezone(limits.zone).date()


def published(span: Span, limits: Bounds) -> bool:
    return (limits.first <= span.first and span.last <= limits.last
            and not _open(span, limits))


def _open(span: Span, limits: Bounds) -> bool:
    """Is a day of ``span`` still open? Then its counts, and so its decision, would change
    once it closes: a reader holding both versions could difference them."""
    return any(span.first <= day <= span.last for day in limits.open_days)


def listing(limits: Bounds) -> list[Span]:
    """Every published period, newest first within each level (months, then quarters)."""
    out = []
    if limits.last < limits.first:
        return out
    for level in LEVELS:
        span = containing(limits.last, level)
        while True:
            if published(span, limits):
                out.append(span)
            elif span.last <= limits.last and not _open(span, limits):
                break  # older ones lie before the retention window
            if span.first <= limits.first:
                break
            span = containing(span.first - timedelta(days=1), level)
    return out


def choose(args: dict, limits: Bounds) -> Span:
    """The published period asked for: ``period`` (an id), or ``from`` and ``to`` that are
    exactly a published period's first and last days; the newest month by default.
    Anything else is refused (PeriodError): never widened to something near it."""
    asked = (args.get("period") or "").strip()
    start, end = (args.get("from") or "").strip(), (args.get("to") or "").strip()
    if asked:
        span = parse(asked)
    elif start or end:
        try:
            first, last = date.fromisoformat(start), date.fromisoformat(end)
        except ValueError:
            raise PeriodError(f"from and to must be dates like 2025-01-31: {RULE}") from None
        span = next((s for level in LEVELS for s in [containing(first, level)]
                     if s.first == first and s.last == last), None)
        if span is None:
            raise PeriodError(f"{start} to {end} is not a published period: {RULE}")
    else:
        newest = [s for s in listing(limits) if s.level == "month"]
        if not newest:
            raise PeriodError(f"no period is published yet: {RULE}")
        return newest[0]
    if not published(span, limits):
        if _open(span, limits) and span.last <= limits.last:
            raise PeriodError(f"{span.label} is not published yet: its numbers are not final "
                              f"(a callback, an offer or a call of it is still open); {RULE}")
        if span.last > limits.last:
            # It used to say "final after" the first unsettled day (of the retention window),
            # which read as a date weeks too early for the month being asked for.
            day = published_on(span, limits)
            when = f"on {day:%a %d %b %Y}" if day else "once all its days have settled"
            raise PeriodError(f"{span.label} is not published yet: its numbers still change; "
                              f"it is published {when}; {RULE}")
        raise PeriodError(f"{span.label} is no longer published: its events are past the "
                          f"retention window; {RULE}")
    return span
