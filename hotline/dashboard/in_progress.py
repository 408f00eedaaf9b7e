"""The statistics page's "This month so far (in progress)" panel.

Issue 14 asked to see the current, partial period. Issue 13 decided that only settled
whole months and quarters are published (``hotline.statistics.periods``): a period whose
numbers change daily can be differenced from one day to the next to isolate a day, or a
single reply. So this panel shows no number derived from contacts at all. It says when
the months not yet published will be (``periods.published_on``), and gives the program's
own roster figures now (supporters, shifts, hours of the week covered), read from the
roster and shift tables only: adding a contact changes nothing here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hotline.roster import training
from hotline.statistics import periods
from hotline.models import MINUTES_PER_WEEK, Shift, Supporter

HOURS_PER_WEEK = MINUTES_PER_WEEK // 60


@dataclass(frozen=True)
class Upcoming:
    """A month not published yet, and the day it is (None: as soon as nothing of it is
    still open, its days having settled already)."""
    span: periods.Span
    on: date | None


@dataclass(frozen=True)
class InProgress:
    month: periods.Span
    upcoming: list[Upcoming]
    on_roster: int
    with_shifts: int
    covered_minutes: int
    #: Supporters whose training was current at each month's end (staff: not suppressed).
    trained_by_month: tuple[tuple[date, int], ...] = ()

    @property
    def covered_hours(self) -> str:
        """'162' or '161.5': hours of the week covered by at least one shift."""
        hours = self.covered_minutes / 60
        return f"{hours:.0f}" if self.covered_minutes % 60 == 0 else f"{hours:.1f}"


def covered_minutes(spans: list[tuple[int, int]]) -> int:
    """Minutes of the week inside at least one of the week spans (start, end), an end past
    the week's last minute wrapping into Monday."""
    pieces = []
    for start, end in spans:
        pieces.append((start, min(end, MINUTES_PER_WEEK)))
        if end > MINUTES_PER_WEEK:
            pieces.append((0, end - MINUTES_PER_WEEK))
    total, reach = 0, 0
    for start, end in sorted(pieces):
        if end > reach:
            total += end - max(start, reach)
            reach = end
    return total


def upcoming(today: date, limits: periods.Bounds, level: str = "month") -> list[Upcoming]:
    """The months (or quarters) from the oldest not yet published to this one, oldest
    first."""
    month = periods.containing(today, level)
    out = []
    while not periods.published(month, limits) and month.last >= limits.first:
        day = periods.published_on(month, limits)
        out.append(Upcoming(month, day if day is None or day > today else None))
        month = periods.containing(month.first - timedelta(days=1), level)
    return out[::-1]


def build(session: Session, now: datetime, zone: ZoneInfo,
          limits: periods.Bounds) -> InProgress:
    """The panel's contents at ``now``: roster and shift tables only, never contacts."""
    today = now.astimezone(zone).date()
    active = Supporter.active.is_(True)
    on_roster = session.scalar(select(func.count()).select_from(Supporter).where(active))
    rows = session.execute(select(Shift.supporter_id, Shift.start_minute, Shift.end_minute)
                           .join(Supporter, Supporter.id == Shift.supporter_id)
                           .where(active)).all()
    return InProgress(month=periods.containing(today, "month"),
                      upcoming=upcoming(today, limits), on_roster=on_roster or 0,
                      with_shifts=len({row.supporter_id for row in rows}),
                      covered_minutes=covered_minutes([(row.start_minute, row.end_minute)
                                                       for row in rows]),
                      trained_by_month=tuple(training.trained_by_month(session, today)))
