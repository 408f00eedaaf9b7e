"""Coverage against demand, hour by hour of the week, and the staffing advice.

For each of the 168 hours of the week (program time zone, Monday 00:00 first):

* **demand**: contacts that started in that hour of the week, over the *window*, and per
  hour (the count divided by how many times that hour occurred in it);
* **coverage**: supporters whose weekly shifts (``hotline.roster.shifts``) cover the whole
  hour (the fewest on shift at any minute of it), active, and with current training when
  HOTLINE_REQUIRE_TRAINING is on (``hotline.roster.training``: current or due soon today);
* **advice**: how many supporters the target needs (HOTLINE_STAFFING_TARGET_PERCENT of
  callers ringing a free supporter within HOTLINE_STAFFING_TARGET_SECONDS).

**The window: published months only.** The demand is the hour-of-week cells
(``hour:<weekday>:<hour>``) of the two newest *published* calendar months, with the hidden
cells as the statistics pages hide them (``hotline.disclosure.joint``): about 8.5 weeks
(two months are 59 to 62 days, so at least 8 of each weekday). Why not "the last 8 weeks"
counted afresh: a run of 8 weeks overlapping a published month can be subtracted from it
(8 weeks less the month they contain is a few weeks' count of one hour, never checked
against k), and a window moving with the calendar can be subtracted from itself. Here
every number shown is a sum of cells the statistics pages already publish, divided by a
calendar count, so the page publishes nothing new. A month is one whose counts were
published (``StatsPublished``: shown once on the statistics page, or by the nightly
warm-up); a month whose total is itself shown as <k (before the program started, say) is
skipped: it says nothing about demand.

**Hidden hours.** An hour whose cell is hidden in either month shows no count: ``<k`` (each
hidden cell is 0..k-1) or ``hidden`` (a complementary cell: k or more). Its advice is the
range the published bounds allow, never a function of the exact count: from the lower
bound (a ``<k`` cell as 0, a ``hidden`` one as k) to the upper bound (``<k`` as k-1; a
``hidden`` cell has none, so the advice is "at least"). An hour is marked *under the
advice* when its coverage is below the advice's lower end, so a hidden hour is under only
when nobody is on shift there (every hour inside the program's hours advises at least one
supporter: HOTLINE_PROGRAM_HOURS is what the line promises).

**The model** (``hotline.staffing.erlang``): Erlang C, M/M/c with callers waiting, with
the hour's arrival rate and the window's mean handling time: the minutes supporters spent
on connected contacts over those contacts (the supporter load's minutes over its accepted
offers), counting only the supporters whose accepted offers, and so hours on contacts, the
statistics page shows, rounded to the minute, and only when they add up to at least k
contacts (else ``DEFAULT_HANDLING_SECONDS``). Supporters do not answer every offer:
with ``m`` the window's share of offers missed (no answer, busy or failed, over offers
accepted, declined or missed; rounded to the percent, and only with at least k offers), a
supporter on shift answers about ``1 - m`` of the time, so the advice is the Erlang C
number inflated by ``1 / (1 - m)`` (rounded up; ``m`` capped at MAX_MISS). Declines are
not counted as misses: a supporter who declines is there, and the next one rings at once.
The model assumes callers wait (no hang-ups) and that every supporter on shift is free to
be rung: advice to plan from, not a guarantee.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from hotline.core.settings import Settings, program_hours
from hotline.disclosure import joint
from hotline.disclosure import report as reports
from hotline.models import MINUTES_PER_WEEK, Shift, StatsPublished, Supporter
from hotline.roster import shifts, training
from hotline.staffing import erlang
from hotline.statistics import days as stats_cache
from hotline.statistics import periods

#: Months of demand (the newest published ones with k contacts or more).
MONTHS = 2
#: Mean handling time planned with when too few contacts were connected to show one.
DEFAULT_HANDLING_SECONDS = 20 * 60
#: The highest miss share corrected for: past it the advice would grow without bound.
MAX_MISS = 0.75
HOURS_PER_WEEK = 168

OBSERVED, AT_MOST, AT_LEAST, CLOSED = "observed", "at most", "at least", "closed"
#: No month published yet: nothing to plan from but the line's promise (one supporter).
NO_DATA = "no data"


@dataclass(frozen=True)
class Hour:
    """One hour of the week: demand as shown, coverage, advice and its marks."""
    weekday: int
    hour: int
    open: bool                # inside HOTLINE_PROGRAM_HOURS
    shown: int | str          # contacts in the window: a count, "<k" or "hidden"
    rate: float | None        # contacts per hour, when the count is shown
    basis: str                # OBSERVED, AT_MOST (a <k cell), AT_LEAST (a hidden cell),
    #                           CLOSED (outside program hours) or NO_DATA
    advice: int               # supporters advised (the lower end for a hidden hour)
    advice_high: int | None   # the upper end (== advice when observed; None: no bound)
    coverage: int             # supporters on shift for the whole hour

    @property
    def nobody(self) -> bool:
        return self.open and self.coverage == 0

    @property
    def under(self) -> bool:
        return self.open and self.coverage < self.advice

    @property
    def label(self) -> str:
        return f"{shifts.WEEKDAYS[self.weekday]} {self.hour:02d}:00"

    @property
    def advice_text(self) -> str:
        if self.advice_high == self.advice:
            return str(self.advice)
        if self.advice_high is None:
            return f"{self.advice} or more"
        return f"{self.advice}–{self.advice_high}"

    @property
    def status(self) -> str:
        if not self.open:
            return "closed"
        if self.nobody:
            return "nobody on shift"
        if self.under:
            return "under the advice"
        return "covered"


@dataclass
class Coverage:
    """The week's 168 hours and what they rest on."""
    zone: ZoneInfo
    k: int
    months: list[periods.Span]
    target_percent: int
    target_seconds: int
    handling_seconds: int
    handling_observed: bool
    miss_share: float
    miss_observed: bool
    hours: list[Hour] = field(default_factory=list)

    @property
    def has_demand(self) -> bool:
        """Is any demand published to plan from (a month with k contacts or more)?"""
        return bool(self.months)

    def at(self, moment: datetime) -> Hour:
        """The hour of the week ``moment`` falls in (program time zone)."""
        return self.hours[shifts.minute_of_week(moment, self.zone) // 60]

    def ahead(self, now: datetime, hours: int) -> list[tuple[datetime, Hour]]:
        """The hours from the one ``now`` is in, ``hours`` of them, with their start."""
        local = now.astimezone(self.zone).replace(minute=0, second=0, microsecond=0)
        return [(start, self.at(start)) for start in
                (local + timedelta(hours=n) for n in range(hours))]

    @property
    def gaps(self) -> list[Hour]:
        return [h for h in self.hours if h.under]


def build(session: Session, now: datetime, cfg: Settings,
          zone: ZoneInfo | None = None) -> Coverage:
    """The coverage of the week at ``now`` (see the module docstring)."""
    zone = zone or shifts.program_zone()
    k = cfg.MIN_CELL
    months = _months(session, zone, now, k)
    cells, occurrences = {}, [0] * 7
    accepted = declined = missed = minutes = connected = 0
    missed_shown = True
    for span, report, raw in months:
        for day in span.period(zone).days():
            occurrences[day.weekday()] += 1
        for wd in range(7):
            for h in range(24):
                cells.setdefault((wd, h), []).append(report.shown(f"hour:{wd}:{h:02d}"))
        missed_shown = missed_shown and report.visible(
            "load:all:accepted", "load:all:declined", "load:all:missed")
        accepted += report.values["load:all:accepted"]
        declined += report.values["load:all:declined"]
        missed += report.values["load:all:missed"]
        for row in raw.supporters:   # the supporters whose hours the statistics page shows
            if report.visible(f"load:{row['id']}:accepted"):
                minutes += row["minutes"]
                connected += row["accepted"]
    # each only from shown cells: a hidden count never shapes what is shown
    handling_observed = connected >= k
    handling = (max(60, round(minutes / connected) * 60) if handling_observed
                else DEFAULT_HANDLING_SECONDS)
    answered = accepted + declined + missed
    miss_observed = bool(months) and missed_shown and answered >= k
    miss = round(missed / answered, 2) if miss_observed else 0.0
    plan = Coverage(zone, k, [span for span, _r, _w in months], cfg.STAFFING_TARGET_PERCENT,
                    cfg.STAFFING_TARGET_SECONDS, handling, handling_observed, miss,
                    miss_observed)
    on_shift = _on_shift(session, now, cfg)
    window = program_hours(cfg.PROGRAM_HOURS)

    def advise(contacts: float, weekday: int) -> int:
        rate = contacts / occurrences[weekday] if occurrences[weekday] else 0.0
        return needed(rate, handling, miss, cfg)

    for wd in range(7):
        for h in range(24):
            parts = cells.get((wd, h), [])
            is_open = _open(h, window)
            known = sum(p for p in parts if isinstance(p, int))
            small = sum(1 for p in parts if isinstance(p, str) and p != reports.HIDDEN)
            complementary = sum(1 for p in parts if p == reports.HIDDEN)
            if not parts:
                shown, rate, low, high, basis = "", None, 1, None, NO_DATA
            elif small or complementary:
                shown = reports.HIDDEN if complementary else f"<{k}"
                rate, low = None, advise(known + k * complementary, wd)
                high = None if complementary else advise(known + (k - 1) * small, wd)
                basis = AT_LEAST if complementary else AT_MOST
            else:
                shown, rate = known, round(known / occurrences[wd], 2)
                low = high = advise(known, wd)
                basis = OBSERVED
            if not is_open:
                low, high, basis = 0, 0, CLOSED
            else:   # the line promises a human at every open hour: one supporter at least
                low, high = max(low, 1), None if high is None else max(high, 1)
            coverage = min(on_shift[wd * 1440 + h * 60: wd * 1440 + h * 60 + 60])
            plan.hours.append(Hour(wd, h, is_open, shown, rate, basis, low, high, coverage))
    return plan


def needed(rate: float, handling: float, miss: float, cfg: Settings) -> int:
    """Supporters needed for ``rate`` contacts an hour: Erlang C's number for the target,
    inflated by 1 / (1 - miss share)."""
    servers = erlang.servers_needed(rate, handling, cfg.STAFFING_TARGET_PERCENT / 100,
                                    cfg.STAFFING_TARGET_SECONDS)
    return math.ceil(servers / (1 - min(miss, MAX_MISS)) - 1e-9)


def _months(session: Session, zone: ZoneInfo, now: datetime, k: int) -> list[tuple]:
    """The newest published months (``MONTHS``) with k contacts or more, newest first:
    (span, the report as published, its counts)."""
    window = stats_cache.cache_window(zone, now)
    query = select(StatsPublished.period).where(StatsPublished.zone == zone.key)
    if window is not None:
        query = query.where(StatsPublished.first >= window.first)
    found = []
    for period in sorted(session.scalars(query), reverse=True):
        try:
            span = periods.parse(period)
            report = joint.publish(session, span, zone, k, now)
        except periods.PeriodError:
            continue   # withheld: not shown on the statistics page either
        if span.level != "month" or "contacts" in report.hidden.primary:
            continue   # under k contacts in the month (shown <k): no demand to plan from
        found.append((span, report, joint.published_counts(session, span, zone, now)))
        if len(found) == MONTHS:
            break
    return found


def _on_shift(session: Session, now: datetime, cfg: Settings) -> list[int]:
    """Supporters on shift at each minute of the week: active, trained when required."""
    # routing's own training rule, with ``cfg``'s HOTLINE_REQUIRE_TRAINING
    query = select(Shift).join(Supporter).where(Supporter.active.is_(True),
                                                training.current_bound())
    counts = [0] * (MINUTES_PER_WEEK + 1)
    for shift in session.scalars(query, {"training_waived": not cfg.REQUIRE_TRAINING,
                                         "training_today": training.today(now)}):
        start, end = shift.start_minute, shift.end_minute
        for a, b in ((start, min(end, MINUTES_PER_WEEK)),
                     (0, end - MINUTES_PER_WEEK)):   # a shift past Sunday midnight wraps
            if b > a:
                counts[a] += 1
                counts[b] -= 1
    running, out = 0, []
    for delta in counts[:MINUTES_PER_WEEK]:
        running += delta
        out.append(running)
    return out


def _open(hour: int, window: tuple[int, int] | None) -> bool:
    """Does any minute of ``hour`` fall inside the program's daily hours?"""
    if window is None:
        return True
    start, end = window
    for minute in range(hour * 60, hour * 60 + 60):
        if (start <= minute < end) if start < end else (minute >= start or minute < end):
            return True
    return False
