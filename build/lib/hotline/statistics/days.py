"""The statistics cache: exact per-day counts of settled days (``StatsDay``), and a past
period's repeat callers and scores (``StatsPeriod``).

``hotline.statistics.queries.collect`` adds a period up from per-day counts, which are exact and
additive (every contact counts on the one local day it started; offers and talk time on
the day they began). A day settled (ended ``MIN_SETTLE`` ago, nothing of it still open) is
counted once, by the statistics queries of ``hotline.statistics.queries`` grouped by local day
(``count_days``), and cached as a typed, versioned record (``records.DayCounts``: a row of
another version is counted again, never misread); its follow-ups are counted again live
until they are final too (``settle_after``),
then the day is counted once more. Repeat callers (not additive: a key seen on two days)
and scores are counted over the period, and cached for a period ended a day ago. A late
event for a cached day's contact drops it (``forget_contact``, from ``contacts.event``),
retention drops what it folds (``forget_before``), and the nightly purge warms the cache
(``warm``). The cache holds counts only: no contact id, caller key, number or text, nothing
finer than a local hour; per-supporter counts are the supporter load the dashboard shows.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from flask import current_app, has_app_context
from sqlalchemy import delete, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from hotline.models.followups import REPLY_WINDOW
from hotline.models import (Contact, ContactEvent, EventKind, StatsDay, StatsPeriod,
                            StatsPublished, insert_for, utcnow)
from hotline.statistics import periods
from hotline.statistics.records import DayCounts, SupporterDay
from hotline.statistics.queries import (FOLLOWUP_KINDS, SCORE_KINDS, Period, Raw, _file_kinds,
                                        _repeat, _scores, _utc, count, kind_rows, local_day,
                                        prepare, supporter_rows)

log = logging.getLogger(__name__)

#: No day is cached sooner than this after its end. By then a day's counts are final but
#: for its follow-ups (with nothing of it still open: see ``DayCounts.settled``); an event for one
#: of its contacts after that drops it from the cache (``forget_contact``).
MIN_SETTLE = timedelta(days=3)
#: A day's follow-up counts are final once its last follow-up's reply window has passed
#: (the longest delay of ivr_flows/followups.yaml, scaled, plus ``followups.REPLY_WINDOW``)
#: and this margin more: a text moved to the next morning, its send retries. Until then
#: they are counted live for the cached day (one query over a few days).
SETTLE_MARGIN = timedelta(days=2)
#: An event for a contact that started longer ago than this may count in a cached day (a
#: day under MIN_SETTLE: a contact's row and its started event are a minute apart at most).
LATE_EVENT = MIN_SETTLE - timedelta(days=1)
#: Repeat callers and scores of a period that ended this long ago are final (no contact
#: starts, and no score is given, on a past day) and cached for the period.
PERIOD_SETTLE = timedelta(days=1)
#: Days this close to retention's cutoff are not cached: a purge at the same time as a fill
#: never folds a day being cached (and the purge drops the cached days it folds).
RETENTION_MARGIN = timedelta(days=1)


@dataclass(frozen=True)
class Window:
    """The local days that may be cached: ``first`` .. ``last``; follow-ups are final up to
    ``final``, ``settle`` after a day's end; periods ending by ``periods_by`` are final."""
    first: date
    last: date
    final: date
    settle: timedelta
    periods_by: datetime


def settle_after(cfg, delays) -> timedelta:
    """How long after its end a day's follow-up counts are final (see SETTLE_MARGIN)."""
    longest = max(delays, default=timedelta()) * cfg.FOLLOWUP_DELAY_SCALE
    return max(MIN_SETTLE, longest + REPLY_WINDOW + SETTLE_MARGIN)


def _settle() -> timedelta | None:
    """``settle_after`` for the current app (None outside one)."""
    if not has_app_context():
        return None
    flows = current_app.extensions.get("hotline.followups")
    return settle_after(current_app.extensions["hotline.settings"],
                        flows.delays if flows else ())


def cache_window(zone: ZoneInfo, now: datetime) -> Window | None:
    """What may be cached at ``now`` (None outside an app: the settings are the app's)."""
    settle = _settle()
    if settle is None:
        return None
    days = current_app.extensions["hotline.settings"].RETENTION_DAYS
    kept = (now - timedelta(days=days) + RETENTION_MARGIN).astimezone(zone).date()

    def ended_by(moment: datetime) -> date:
        return moment.astimezone(zone).date() - timedelta(days=1)
    return Window(kept + timedelta(days=1), ended_by(now - MIN_SETTLE),
                  ended_by(now - settle), settle, now - PERIOD_SETTLE)


def collect_cached(session: Session, period: Period, window: Window, now: datetime) -> Raw:
    """``collect`` with the cache: cached days (their follow-ups counted again while not
    final), the other days counted by day (the settled ones then stored), merged; repeat
    callers and scores for the whole period, cached once final."""
    days, moving = _usable(session, period.zone, window, max(period.first, window.first),
                           min(period.last, window.last))
    fresh: dict[date, DayCounts] = {}
    for start, end in _runs([d for d in period.days() if d not in days]):
        fresh.update(count_days(session, Period(start, end, period.zone)))
    for start, end in _runs(moving):
        for day, counts in count_followups(session, Period(start, end, period.zone)).items():
            # only the follow-up kinds move: the day's other counts of that Counter (a
            # match asked) are final with the day
            moved = days[day].followups
            for kind in FOLLOWUP_KINDS:
                moved.pop(kind, None)
            moved.update(counts)
    days.update(fresh)
    raw, load = _merge(days)
    raw.outcomes["none"] = raw.contacts - sum(raw.outcomes.values())
    stored_period = _period_counts(session, period, window, raw)
    raw.supporters = supporter_rows(session, load)
    _store(session, period.zone, {d: c for d, c in fresh.items()
                                  if window.first <= d <= window.last}, now, stored_period)
    return raw


def _usable(session: Session, zone: ZoneInfo, window: Window, first: date,
            last: date) -> tuple[dict[date, DayCounts], list[date]]:
    """The cached days of ``first`` .. ``last`` that can be used, and those of them whose
    follow-ups are still moving (to count live). A day cached before its follow-ups were
    final, and final now, is left out: counted again, it replaces the cached one; so is a
    day stored in another format (``DayCounts.from_json``: None), never misread."""
    days, moving = {}, []
    if first > last:
        return days, moving
    for day, counts, computed_at in session.execute(
            select(StatsDay.day, StatsDay.counts, StatsDay.computed_at).where(
                StatsDay.zone == zone.key, StatsDay.day >= first, StatsDay.day <= last)):
        final = computed_at >= _utc(day + timedelta(days=1), zone) + window.settle
        counts = DayCounts.from_json(counts)
        if counts is None:
            continue  # another version of the record: counted again, replaced
        if final or day > window.final:
            days[day] = counts
            if not final:
                moving.append(day)
    return days, sorted(moving)


def open_days(session: Session, zone: ZoneInfo, window: Window, now: datetime,
              first: date, last: date) -> set[date]:
    """The days of ``first`` .. ``last`` (all past ``window.final``'s settling) that are
    not final: something of them is still open. A day cached as final is final (a late
    event drops it from the cache); the others are counted now, and cached if settled.
    Reads only the days' dates: a page view pays one small query."""
    final = {day for day, computed_at in session.execute(
        select(StatsDay.day, StatsDay.computed_at).where(
            StatsDay.zone == zone.key, StatsDay.day >= first, StatsDay.day <= last))
        if computed_at >= _utc(day + timedelta(days=1), zone) + window.settle}
    fresh: dict[date, DayCounts] = {}
    left = [d for d in Period(first, last, zone).days() if d not in final]
    if left:
        prepare(session)
    for start, end in _runs(left):
        fresh.update(count_days(session, Period(start, end, zone)))
    _store(session, zone, {d: c for d, c in fresh.items()
                           if window.first <= d <= window.last}, now)
    return {d for d, c in fresh.items() if not c.settled()}


def _period_counts(session: Session, period: Period, window: Window, raw: Raw) -> dict | None:
    """Repeat callers and scores of the period, from the cache when final there; the
    counts to store when they are final and were counted now (else None)."""
    final = period.end <= window.periods_by and period.first >= window.first
    key = (period.zone.key, period.first, period.last)
    if final:
        cached = session.scalar(select(StatsPeriod.counts).where(
            StatsPeriod.zone == key[0], StatsPeriod.first == key[1],
            StatsPeriod.last == key[2]))
        if cached is not None:
            counts = json.loads(cached)
            raw.repeat = counts["repeat"]
            raw.scores = {kind: Counter({int(v): n for v, n in counts["scores"][kind].items()})
                          for kind in SCORE_KINDS}
            return None
    _repeat(session, period, raw)
    _scores(session, period, raw)
    return {"zone": key[0], "first": key[1], "last": key[2], "counts": json.dumps(
        {"repeat": raw.repeat, "scores": raw.scores})} if final else None


def warm(session: Session, zone: ZoneInfo, now: datetime | None = None) -> int:
    """Count and cache what the dashboard's published periods need and the cache lacks
    (``fill``); returns how many days were stored. The nightly purge runs
    ``hotline.disclosure.joint.warm_all``, which also decides their suppression."""
    return fill(session, zone, now or utcnow())[0]


def fill(session: Session, zone: ZoneInfo, now: datetime) -> tuple[int, list]:
    """Every day of the window the cache lacks, and each published period's repeat callers
    and scores, counted and stored (so a coordinator's first view reads the cache);
    commits. Returns the days stored and the published periods (``periods.Span``)."""
    window = cache_window(zone, now)
    if window is None:
        return 0, []
    prepare(session)
    _repair(session, now)
    first = window.first
    days, _moving = _usable(session, zone, window, first, window.last)
    fresh: dict[date, DayCounts] = {}
    for start, end in _runs([d for d in Period(first, window.last, zone).days()
                             if d not in days]):
        fresh.update(count_days(session, Period(start, end, zone)))
    stored = _store(session, zone, fresh, now)
    limits = periods.bounds(now, zone, window)
    published = periods.listing(dataclasses.replace(limits, open_days=frozenset(
        d for d, c in fresh.items() if not c.settled())))
    for span in published:
        counts = _period_counts(session, span.period(zone), window, Raw())
        if counts is not None:
            _store(session, zone, {}, now, counts)
    return stored, published


#: How far back ``warm`` looks for late events (two nights: one failed run is covered).
REPAIR_LOOKBACK = timedelta(hours=50)


def _repair(session: Session, now: datetime) -> None:
    """Drop the cached days of every contact that had a late event lately, whether or not
    its hook ran (``forget_contact``): an event committed while another view was filling
    the same day could leave that day's counts a step behind; here they are counted again.
    One query over the last two days' events."""
    late = session.scalars(
        select(Contact.created_at).distinct()
        .join(ContactEvent, ContactEvent.contact_id == Contact.id)
        .where(ContactEvent.at >= now - REPAIR_LOOKBACK,
               Contact.created_at <= now - LATE_EVENT)).all()
    for day in {started.astimezone(UTC).date() for started in late}:
        session.execute(delete(StatsDay).where(StatsDay.day >= day - timedelta(days=1),
                                               StatsDay.day <= day + timedelta(days=1)))


def _runs(days: list[date]) -> list[tuple[date, date]]:
    """Consecutive days as (first, last) runs."""
    runs: list[list[date]] = []
    for day in days:
        if runs and day - runs[-1][1] == timedelta(days=1):
            runs[-1][1] = day
        else:
            runs.append([day, day])
    return [(a, b) for a, b in runs]


def _store(session: Session, zone: ZoneInfo, days: dict[date, DayCounts], now: datetime,
           period: dict | None = None) -> int:
    """Write the settled ones of ``days`` (replacing a cached day counted again) and the
    period's counts, then commit. A failure only costs the cache. Returns the days written."""
    rows = [{"zone": zone.key, "day": day, "computed_at": now, "counts": c.to_json()}
            for day, c in sorted(days.items()) if c.settled()]
    if not rows and period is None:
        return 0
    try:
        if rows:
            new = insert_for(session, StatsDay)
            session.execute(new.on_conflict_do_update(
                index_elements=["zone", "day"],
                set_={"counts": new.excluded.counts, "computed_at": new.excluded.computed_at}),
                rows)
        if period is not None:
            session.execute(insert_for(session, StatsPeriod).on_conflict_do_nothing(),
                            [dict(period, computed_at=now)])
        session.commit()
    except SQLAlchemyError as exc:
        session.rollback()
        log.warning("statistics cache not written: %s", exc.__class__.__name__)
        return 0
    return len(rows)


def forget_contact(session: Session, contact: Contact, kind: str,
                   now: datetime | None = None) -> None:
    """An event of ``kind`` for ``contact`` (in the caller's transaction): drop the cached
    days it may count in (any zone), and for a started event the periods. Nothing to do for
    a recent contact (its day is not cached), nor for a follow-up of a contact whose day's
    follow-ups are still counted live."""
    started, now = contact.created_at, now or utcnow()
    if started is None or started > now - LATE_EVENT:
        return
    settle = _settle()
    if kind in FOLLOWUP_KINDS and settle and started > now - settle + timedelta(days=1):
        return
    day = started.astimezone(UTC).date()
    before, after = day - timedelta(days=1), day + timedelta(days=1)
    session.execute(delete(StatsDay).where(StatsDay.day >= before, StatsDay.day <= after))
    if kind == EventKind.STARTED.value:
        session.execute(delete(StatsPeriod).where(StatsPeriod.first <= after,
                                                  StatsPeriod.last >= before))


def forget_before(session: Session, cutoff: datetime) -> int:
    """Retention: drop the cached days, and periods, that events before ``cutoff`` may
    count in; returns the days dropped."""
    last = (cutoff + timedelta(days=1)).astimezone(UTC).date()
    session.execute(delete(StatsPeriod).where(StatsPeriod.first <= last))
    session.execute(delete(StatsPublished).where(StatsPublished.first <= last))
    result = session.execute(delete(StatsDay).where(StatsDay.day <= last))
    return max(result.rowcount or 0, 0)


def _merge(days: dict[date, DayCounts]) -> tuple[Raw, dict[int, SupporterDay]]:
    """The days' counts added up; the supporter load by supporter id."""
    raw, load = Raw(), {}
    for day, c in days.items():
        raw.contacts += c.contacts
        for hour, n in c.hours.items():
            raw.by_hour[(day, hour)] += n
        raw.by_channel.update(c.by_channel)
        raw.outcomes.update(c.outcomes)
        raw.callbacks.update(c.callbacks)
        raw.followups.update(c.followups)
        raw.care.update(c.care)
        raw.waits.update(c.waits)
        raw.escalated += c.escalated
        for sid, row in c.supporters.items():
            total = load.get(sid)
            if total is None:
                load[sid] = total = SupporterDay()
            total.add(row)
    return raw, load


# --- counts by local day ----------------------------------------------------------------

def count_days(session: Session, period: Period) -> dict[date, DayCounts]:
    """The counts of each day of ``period``: the statistics queries of
    ``hotline.statistics.queries``
    (the same builders as the live path) grouped by local day in SQL: the cache's rows,
    and the days it does not hold."""
    days = {day: DayCounts() for day in period.days()}
    count(session, period, lambda number: days[local_day(number)], by_day=True)
    return days


def count_followups(session: Session, period: Period) -> dict[date, Counter]:
    """The follow-up counts of each day of ``period`` (the kinds query by local day)."""
    days = {day: DayCounts() for day in period.days()}
    _file_kinds(kind_rows(session, period, True, FOLLOWUP_KINDS),
                lambda number: days[local_day(number)])
    return {day: counts.followups for day, counts in days.items()}
