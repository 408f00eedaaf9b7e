"""Exact aggregates over the event table, for one period of whole local weeks.

Everything is counted by SQL (GROUP BY), never by looping over events in Python: times
come back as counts per UTC hour (per quarter hour in a zone with a non-hour offset),
which Python then files under local days, weeks, months and hours of the week. The
numbers here are exact and never leave the server as they are: ``hotline.dashboard.report``
suppresses small cells before anything is shown.

The contacts of a period are those with a ``started`` event in it, less the contacts
that carry a callback try (``mode = "callback"``): those are promises kept, not new
contacts.

Each query reads indexes only (``hotline.models.dashboard.EVENT_INDEXES``): a range scan
of the period's ``started`` events, then for each of those contacts an index lookup of
its other events (its first outcome, escalation, follow-ups), so a year of a busy line
(60,000 contacts, 500,000 events) takes a few hundred milliseconds, whatever the size of
the rest of the table. ``STEPS`` names the queries; the benchmark times each
(``benchmarks/stats.py``).

``collect`` does not run them over a whole year each time: settled days come from
``hotline.stats_cache`` (exact per-day counts, cached once), the newest days from the same
queries grouped by day. ``collect(cache=False)`` runs ``STEPS`` over the whole period: the
tests hold the two equal, number for number.
"""

from __future__ import annotations

import gc
import logging
import sqlite3
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Integer, and_, case, cast, exists, func, literal, or_, select, text
from sqlalchemy.orm import Session, aliased

from hotline.models import (CallbackRequest, Contact, ContactEvent, Offer, Outcome, Score,
                            Supporter, utcnow)

log = logging.getLogger(__name__)

#: Outcomes in the order they are shown; "none" is a contact still without one.
OUTCOMES = tuple(o.value for o in Outcome) + ("none",)
HUMAN = (Outcome.CONNECTED.value, Outcome.CONNECTED_BACKUP.value)
#: Time to a human, shown in these buckets (minutes, upper bound excluded; the counts behind
#: them, ``Raw.waits``, are by the second).
WAIT_BUCKETS = (("under 1 min", 0, 1), ("1–2 min", 1, 2), ("2–5 min", 2, 5),
                ("5–10 min", 5, 10), ("10 min or more", 10, None))
CALLBACK_STATES = ("kept", "late", "failed", "open", "no record")
FOLLOWUP_KINDS = ("followup_consent", "followup_declined", "followup_sent", "followup_reply")
SCORE_KINDS = ("helpful", "burnout")
SCORE_VALUES = (1, 2, 3, 4, 5)
OFFER_GROUPS = {"accepted": ("accepted",), "declined": ("declined",),
                "missed": ("no_answer", "busy", "failed")}


@dataclass(frozen=True)
class Period:
    """Whole local days ``first`` .. ``last`` (inclusive) in ``zone``."""
    first: date
    last: date
    zone: ZoneInfo

    @property
    def start(self) -> datetime:
        """First instant, UTC."""
        return _utc(self.first, self.zone)

    @property
    def end(self) -> datetime:
        """Instant after the last day, UTC."""
        return _utc(self.last + timedelta(days=1), self.zone)

    def days(self) -> list[date]:
        return [self.first + timedelta(days=i) for i in range((self.last - self.first).days + 1)]


def _utc(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(), tzinfo=zone).astimezone(UTC)


@dataclass
class Raw:
    """Exact counts for a period (never shown as they are)."""
    contacts: int = 0
    by_hour: Counter = field(default_factory=Counter)     # local (date, hour) -> contacts
    by_channel: Counter = field(default_factory=Counter)
    outcomes: Counter = field(default_factory=Counter)
    waits: Counter = field(default_factory=Counter)       # whole seconds -> contacts
    escalated: int = 0
    repeat: int = 0
    callbacks: Counter = field(default_factory=Counter)
    followups: Counter = field(default_factory=Counter)
    scores: dict = field(default_factory=dict)            # kind -> Counter(value -> n)
    supporters: list = field(default_factory=list)        # dicts, one per supporter


def _epoch(session: Session, column):
    """Seconds since 1970 of a timestamp column (rounded down), as SQL for this database:
    SQLite's unixepoch() where it has it (3.38; five times cheaper than strftime), and
    PostgreSQL's date_part (a double, exact to the microsecond for these dates, and cheaper
    than extract's numeric)."""
    if session.get_bind().dialect.name == "sqlite":
        if sqlite3.sqlite_version_info >= (3, 38):
            return func.unixepoch(column, type_=Integer)
        return cast(func.strftime("%s", column), Integer)
    return cast(func.floor(func.date_part("epoch", column)), Integer)


def _granularity(period: Period) -> int:
    """Minutes per SQL time bucket: an hour, unless the zone's offset is not whole hours."""
    offsets = {period.zone.utcoffset(datetime.combine(d, time())).total_seconds()
               for d in period.days()[::7] + [period.last]}
    if all(o % 3600 == 0 for o in offsets):
        return 60
    return 30 if all(o % 1800 == 0 for o in offsets) else 15


def _callback_tries():
    """SQL: ids of the contacts that carry a callback try (not new contacts)."""
    return select(Contact.id).where(Contact.mode == "callback")


def _cohort(started, period: Period, joined=None) -> tuple:
    """WHERE clauses making ``started`` (a ContactEvent alias) the ``started`` events of the
    period's contacts: an index-only range scan, less the few callback tries (told by the
    ``joined`` contact when the query joins it anyway)."""
    first = (started.kind == "started", started.at >= period.start, started.at < period.end)
    if joined is not None:
        return first + (or_(joined.mode.is_(None), joined.mode != "callback"),)
    return first + (started.contact_id.not_in(_callback_tries()),)


def collect(session: Session, period: Period, cache: bool = True,
            now: datetime | None = None) -> Raw:
    """Every exact count the dashboard needs for ``period``: settled days from the cache
    (``StatsDay``, filled here on a first view), the rest by day-grouped queries,
    repeat callers and scores live. ``cache=False`` (or no app): the queries of ``STEPS``
    over the whole period. Both give the same numbers; with the cache this commits."""
    prepare(session)
    now = now or utcnow()
    from hotline import stats_cache  # it builds on this module
    window = stats_cache.cache_window(period.zone, now) if cache else None
    if window is None:
        raw = Raw()
        for step in STEPS.values():
            step(session, period, raw)
        return raw
    with _gc_paused():
        return stats_cache.collect_cached(session, period, window, now)


@contextmanager
def _gc_paused():
    """A year's cached days decode into some 100,000 small objects, all freed by reference
    counting: with the cyclic collector paused meanwhile, none of its full passes (40 ms
    each, in one view in three) runs for them. Process-wide, so only when it was on."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def prepare(session: Session) -> None:
    """Before the statistics queries: no JIT on PostgreSQL for this transaction. Their
    plans are many small index lookups, which the planner's costs overrate; compiling them
    took longer (about 0.2 s on a year) than running them."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SET LOCAL jit = off"))


def _volume(session: Session, period: Period, raw: Raw) -> None:
    """Contacts per SQL time bucket, filed under local (day, hour) in Python."""
    minutes = _granularity(period)
    started = aliased(ContactEvent)
    bucket = (_epoch(session, started.at) // (minutes * 60)).label("bucket")
    zone = period.zone
    for slot, count in session.execute(select(bucket, func.count())
                                       .where(*_cohort(started, period)).group_by(bucket)):
        local = datetime.fromtimestamp(int(slot) * minutes * 60, zone)
        raw.by_hour[(local.date(), local.hour)] += count
        raw.contacts += count


def _channels(session: Session, period: Period, raw: Raw) -> None:
    started = aliased(ContactEvent)
    raw.by_channel = Counter(dict(session.execute(
        select(started.channel, func.count()).where(*_cohort(started, period))
        .group_by(started.channel)).all()))


def _outcomes(session: Session, period: Period, raw: Raw) -> None:
    """One pass over the cohort: each contact's first outcome event (an index-only lookup
    in ``ix_contact_events_outcome``), the seconds from its start to a human, and what
    became of a callback it asked for, counted by (outcome, seconds, callback state)."""
    started, done, earlier = (aliased(ContactEvent) for _ in range(3))
    first = ~exists().where(earlier.contact_id == done.contact_id,
                            earlier.outcome.is_not(None), earlier.id < done.id)
    human = done.outcome.in_(HUMAN)
    wait = case((human, _epoch(session, done.at) - _epoch(session, started.at)))
    callback = case((done.outcome == Outcome.CALLBACK_REQUESTED.value, _callback_state()))
    rows = session.execute(
        select(done.outcome, wait, callback, func.count())
        .select_from(started)
        .join(done, and_(done.contact_id == started.contact_id, done.outcome.is_not(None)))
        .outerjoin(CallbackRequest, and_(done.outcome == Outcome.CALLBACK_REQUESTED.value,
                                         CallbackRequest.contact_id == done.contact_id))
        .where(*_cohort(started, period), first)
        .group_by(done.outcome, wait, callback)).all()
    raw.outcomes, raw.waits, raw.callbacks = Counter(), Counter(), Counter()
    for outcome, seconds, state, count in rows:
        raw.outcomes[outcome] += count
        if seconds is not None:
            raw.waits[max(int(seconds), 0)] += count
        if state is not None:
            raw.callbacks[state] += count
    raw.outcomes["none"] = raw.contacts - sum(raw.outcomes.values())


def _callback_state():
    """SQL: what became of a callback request (CALLBACK_STATES)."""
    return case(
        (CallbackRequest.id.is_(None), literal("no record")),
        (and_(CallbackRequest.state == "done",
              CallbackRequest.completed_at <= CallbackRequest.promised_by), literal("kept")),
        (CallbackRequest.state == "done", literal("late")),
        (CallbackRequest.state == "failed", literal("failed")),
        else_=literal("open"))


def _kinds(session: Session, period: Period, raw: Raw) -> None:
    """Cohort contacts with an escalation, and with each follow-up event: on PostgreSQL a
    join on the contact's events of those kinds (it hashes them); on SQLite one EXISTS
    lookup per kind and contact, summed (no temporary B-trees for DISTINCT and GROUP BY:
    136 against 198 ms on a year of a million events)."""
    started, other = aliased(ContactEvent), aliased(ContactEvent)
    kinds = ("escalated",) + FOLLOWUP_KINDS
    if session.get_bind().dialect.name == "sqlite":
        found = [func.sum(cast(exists().where(other.contact_id == started.contact_id,
                                              other.kind == kind), Integer)) for kind in kinds]
        sums = session.execute(select(*found).where(*_cohort(started, period))).one()
        counts = {kind: int(n or 0) for kind, n in zip(kinds, sums) if n}
        raw.escalated = counts.pop("escalated", 0)
        raw.followups = Counter(counts)
        return
    counts = dict(session.execute(
        select(other.kind, func.count(func.distinct(other.contact_id)))
        .select_from(started)
        .join(other, and_(other.contact_id == started.contact_id, other.kind.in_(kinds)))
        .where(*_cohort(started, period)).group_by(other.kind)).all())
    raw.escalated = counts.pop("escalated", 0)
    raw.followups = Counter(counts)


def _repeat(session: Session, period: Period, raw: Raw) -> None:
    """Cohort contacts whose caller key appears more than once in the cohort."""
    started = aliased(ContactEvent)
    per_key = (select(func.count().label("n"))
               .select_from(started).join(Contact, Contact.id == started.contact_id)
               .where(*_cohort(started, period, joined=Contact))
               .group_by(Contact.caller_key).having(func.count() > 1).subquery())
    raw.repeat = int(session.scalar(select(func.sum(per_key.c.n))) or 0)


def _scores(session: Session, period: Period, raw: Raw) -> None:
    rows = session.execute(select(Score.kind, Score.value, func.count())
                           .where(Score.day >= period.first, Score.day <= period.last)
                           .group_by(Score.kind, Score.value)).all()
    raw.scores = {kind: Counter() for kind in SCORE_KINDS}
    for kind, value, count in rows:
        if kind in raw.scores and value in SCORE_VALUES:
            raw.scores[kind][value] += count


def _supporters(session: Session, period: Period, raw: Raw) -> None:
    raw.supporters = supporter_load(session, period)


#: The statistics queries, in the order ``collect`` runs them (the benchmark times each).
STEPS = {"volume": _volume, "channels": _channels, "outcomes": _outcomes, "kinds": _kinds,
         "repeat": _repeat, "scores": _scores, "supporters": _supporters}


def supporter_load(session: Session, period: Period) -> list[dict]:
    """Per supporter: offers by result, and minutes on contacts (supporters are staff).
    Grouped in SQL over the covering indexes, then named (a supporter row each)."""
    names = dict(session.execute(select(Supporter.id, Supporter.name)).all())
    load: dict[int, dict] = {}
    for sid, state, count in session.execute(
            select(Offer.supporter_id, Offer.state, func.count())
            .where(Offer.created_at >= period.start, Offer.created_at < period.end)
            .group_by(Offer.supporter_id, Offer.state)).all():
        row = load.setdefault(sid, _load_row(sid, names.get(sid, "")))
        row["offers"] += count
        group = next((g for g, states in OFFER_GROUPS.items() if state in states), "other")
        row[group] += count
    spent = (_epoch(session, Contact.ended_at) - _epoch(session, Contact.connected_at))
    for sid, seconds in session.execute(
            select(Contact.supporter_id, func.sum(spent))
            .where(Contact.connected_at >= period.start, Contact.connected_at < period.end,
                   Contact.ended_at.is_not(None), Contact.supporter_id.is_not(None))
            .group_by(Contact.supporter_id)).all():
        load.setdefault(sid, _load_row(sid, names.get(sid, "")))["minutes"] = \
            max(int(seconds or 0), 0) // 60
    return sorted(load.values(), key=lambda r: r["name"])


def _load_row(sid: int | None, name: str) -> dict:
    return {"id": sid, "name": name, "offers": 0, "accepted": 0, "declined": 0, "missed": 0,
            "other": 0, "minutes": 0}


def quantile(histogram: Counter, q: float) -> int | None:
    """The q-quantile (nearest rank) of a histogram (``Raw.waits``: whole seconds)."""
    total = sum(histogram.values())
    if not total:
        return None
    rank = max(1, -(-int(q * total * 1000) // 1000))  # ceil(q * total) without float drift
    seen = 0
    for value in sorted(histogram):
        seen += histogram[value]
        if seen >= rank:
            return value
    return None
