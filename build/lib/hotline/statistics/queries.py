"""Exact aggregates over the event table, for one period of whole local weeks.

Everything is counted by SQL (GROUP BY), never by looping over events in Python: times
come back as counts per local hour (the zone's offset added in SQL, exact in any zone),
which Python then files under local days, weeks, months and hours of the week. The
numbers here are exact and never leave the server as they are: ``hotline.disclosure.report``
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

Each query is written once (``*_query``, each with its ``_file_*`` function that adds its
rows up) and used two ways: over the whole period (``STEPS``, the live path), and grouped
by local day (``by_day``: ``stats_cache.count_days``, the typed day records of
``hotline.statistics.records``). ``collect`` does not run them over a whole year each
time: settled days come from ``hotline.statistics.days`` (exact per-day counts, cached once),
the newest days from the same queries grouped by day. ``collect(cache=False)`` runs
``STEPS`` over the whole period: the tests hold the two equal, number for number.
"""

from __future__ import annotations

import gc
import logging
import sqlite3
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

from sqlalchemy import (Integer, and_, case, cast, exists, func, literal, literal_column, or_,
                        select, text)
from sqlalchemy.orm import Session, aliased

from hotline.models import (CallbackRequest, CallbackState, Contact, ContactEvent, ContactMode,
                            EventKind, Offer, OfferState, Outcome, OutreachDay, Score,
                            Supporter, utcnow)
from hotline.statistics.records import DayCounts, SupporterDay

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
EPOCH_DAY = date(1970, 1, 1)


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
    care: Counter = field(default_factory=Counter)        # care rule event -> contacts
    scores: dict = field(default_factory=dict)            # kind -> Counter(value -> n)
    supporters: list = field(default_factory=list)        # dicts, one per supporter

    def add_hour(self, day: int, hour: int, count: int) -> None:
        """``count`` contacts in local ``hour`` of day number ``day`` (``local_day``)."""
        self.by_hour[(local_day(day), hour)] += count


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


def _callback_tries():
    """SQL: ids of the contacts that carry a callback try (not new contacts)."""
    return select(Contact.id).where(Contact.mode == ContactMode.CALLBACK.value)


def _cohort(started, period: Period, joined=None) -> tuple:
    """WHERE clauses making ``started`` (a ContactEvent alias) the ``started`` events of the
    period's contacts: an index-only range scan, less the few callback tries (told by the
    ``joined`` contact when the query joins it anyway)."""
    first = (started.kind == EventKind.STARTED.value, started.at >= period.start,
             started.at < period.end)
    if joined is not None:
        return first + (or_(joined.mode.is_(None), joined.mode != ContactMode.CALLBACK.value),)
    return first + (started.contact_id.not_in(_callback_tries()),)


def collect(session: Session, period: Period, cache: bool = True,
            now: datetime | None = None) -> Raw:
    """Every exact count the dashboard needs for ``period``: settled days from the cache
    (``StatsDay``, filled here on a first view), the rest by day-grouped queries,
    repeat callers and scores live. ``cache=False`` (or no app): the queries of ``STEPS``
    over the whole period. Both give the same numbers; with the cache this commits."""
    prepare(session)
    now = now or utcnow()
    from hotline.statistics import days as stats_cache  # it builds on this module
    window = stats_cache.cache_window(period.zone, now) if cache else None
    if window is None:
        raw = Raw()
        for step in STEPS.values():
            step(session, period, raw)
    else:
        with _gc_paused():
            raw = stats_cache.collect_cached(session, period, window, now)
    return raw


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


# --- the query builders: one set, for the whole period (live) and by local day (cache) --
#
# Each takes ``by_day``: False counts the whole period (the live path, ``STEPS``), True
# adds the local day as the first column of every row (``stats_cache.count_days``, the
# rows of the cached days). The rows are then filed by the ``_file_*`` functions, which
# are the same for both: ``into(day)`` gives the record to add to (``day``: the local day
# number, None for the whole period).

def _shifts(period: Period) -> list[tuple[int | None, int]]:
    """The zone's UTC offsets (seconds) over the period: (until this epoch second, offset),
    the last one (None, offset). Each change is found to the second by bisection."""
    zone = period.zone

    def offset(t: int) -> int:
        return int(datetime.fromtimestamp(t, zone).utcoffset().total_seconds())

    bounds = [int(_utc(d, zone).timestamp()) for d in period.days()]
    bounds.append(int(period.end.timestamp()))
    shifts, current = [], offset(bounds[0])
    for lo, hi in pairwise(bounds):
        if offset(hi) == current:
            continue
        while hi - lo > 1:
            mid = (lo + hi) // 2
            lo, hi = (mid, hi) if offset(mid) == current else (lo, mid)
        shifts.append((hi, current))
        current = offset(hi)
    return shifts + [(None, current)]


def _local(session: Session, column, period: Period):
    """SQL: seconds since 1970 of a timestamp column in local time (the period's zone);
    the offset is told by comparing the column itself (cheaper than its epoch, on SQLite).
    Exact in any zone (half and quarter hour offsets, a half-hour daylight saving shift)."""
    seconds = _epoch(session, column)
    *changes, (_, last) = _shifts(period)
    if not changes:
        return seconds + literal(last, Integer)
    return seconds + case(*((column < datetime.fromtimestamp(until, UTC),
                             literal(offset, Integer)) for until, offset in changes),
                          else_=literal(last, Integer))


def _by(session: Session, column, period: Period, by_day: bool) -> tuple:
    """The grouping key of a query: the local day (days since 1970) of ``column``, or none."""
    return ((_local(session, column, period) // 86400).label("local_day"),) if by_day else ()


def _named(columns) -> list:
    """GROUP BY labelled columns by their names: written out again, with its own bound
    parameters, the offset's CASE would be computed twice a row on SQLite."""
    return [literal_column(c.name) for c in columns]


def _keyed(rows, by_day: bool):
    """Rows with their key first (None for the whole period)."""
    return rows if by_day else ((None, *row) for row in rows)


@cache
def local_day(number: int) -> date:
    """The local day of a day number (``_by``)."""
    return EPOCH_DAY + timedelta(days=int(number))


def volume_query(session: Session, period: Period):
    """Cohort contacts by local hour (hours since 1970, in the period's zone: the day and
    the hour of day both) and channel. The same rows serve both paths."""
    started = aliased(ContactEvent)
    hour = (_local(session, started.at, period) // 3600).label("local_hour")
    return (select(hour, started.channel, func.count()).where(*_cohort(started, period))
            .group_by(*_named([hour]), started.channel))


def _file_volume(rows, into) -> None:
    # a year is some 10,000 rows: ``into`` once per run of a day's rows (SQLite returns
    # them in order), each day's date made once (``local_day``)
    last = counts = None
    for hours, channel, count in rows:
        day, hour = divmod(int(hours), 24)
        if day != last:
            last, counts = day, into(day)
        counts.contacts += count
        counts.by_channel[channel] += count
        counts.add_hour(day, hour, count)


def outcomes_query(session: Session, period: Period, by_day: bool):
    """One pass over the cohort: each contact's first outcome event (an index-only lookup
    in ``ix_contact_events_outcome``), the seconds from its start to a human, and what
    became of a callback it asked for, counted by (outcome, seconds, callback state)."""
    started, done, earlier = (aliased(ContactEvent) for _ in range(3))
    key = _by(session, started.at, period, by_day)
    first = ~exists().where(earlier.contact_id == done.contact_id,
                            earlier.outcome.is_not(None), earlier.id < done.id)
    human = done.outcome.in_(HUMAN)
    wait = case((human, _epoch(session, done.at) - _epoch(session, started.at))
                ).label("wait_seconds")
    callback = case((done.outcome == Outcome.CALLBACK_REQUESTED.value, _callback_state())
                    ).label("callback_state")
    return (select(*key, done.outcome, wait, callback, func.count())
            .select_from(started)
            .join(done, and_(done.contact_id == started.contact_id, done.outcome.is_not(None)))
            .outerjoin(CallbackRequest, and_(done.outcome == Outcome.CALLBACK_REQUESTED.value,
                                             CallbackRequest.contact_id == done.contact_id))
            .where(*_cohort(started, period), first)
            .group_by(*_named(key), done.outcome, *_named([wait, callback])))


def _file_outcomes(rows, into) -> None:
    for key, outcome, seconds, state, count in rows:
        counts = into(key)
        counts.outcomes[outcome] += count
        if seconds is not None:
            counts.waits[max(int(seconds), 0)] += count
        if state is not None:
            counts.callbacks[state] += count


def _callback_state():
    """SQL: what became of a callback request (CALLBACK_STATES)."""
    return case(
        (CallbackRequest.id.is_(None), literal("no record")),
        (and_(CallbackRequest.state == CallbackState.DONE.value,
              CallbackRequest.completed_at <= CallbackRequest.promised_by), literal("kept")),
        (CallbackRequest.state == CallbackState.DONE.value, literal("late")),
        (CallbackRequest.state == CallbackState.FAILED.value, literal("failed")),
        else_=literal("open"))


#: Contacts that asked for a match (a peer in their role, nobody from their unit): which
#: one is never kept (docs/privacy.md); counted with the follow-up kinds, in ``followups``.
MATCH_KIND = "match_asked"
#: Contacts where a rule of caring for supporters (``hotline.roster.care``) took a supporter
#: out of an offer: one event per contact and rule (``hotline.escalation.runner``,
#: ``hotline.lifecycle.transitions``), counted in ``care``, each a yes/no split of the
#: contacts in the published report.
CARE_KINDS = (EventKind.CARE_COOLDOWN.value, EventKind.CARE_CAP.value,
              EventKind.CARE_PAUSED.value)
#: Contacts opened by a referred colleague's YES to an outreach text (hotline.outreach):
#: who referred them is never kept; counted the same way.
OUTREACH_KIND = "outreach_accepted"
KINDS = ("escalated",) + FOLLOWUP_KINDS + (MATCH_KIND, OUTREACH_KIND) + CARE_KINDS
#: Of those, the contacts whose callback reached them (its request done: a try connected),
#: and the outreach texts sent (``OutreachDay``: by the local day each left, not a count of
#: contacts). Both are filed in ``followups`` under these names (``outreach_query``).
OUTREACH_REACHED = "outreach_reached"
OUTREACH_SENT = "outreach_sent"


def kinds_query(session: Session, period: Period, by_day: bool, kinds: tuple = KINDS):
    """Cohort contacts with an escalation, and with each follow-up event: on PostgreSQL a
    join on the contact's events of those kinds (it hashes them), rows (kind, contacts);
    on SQLite one EXISTS lookup per kind and contact, summed, one row of a count per kind
    (no temporary B-trees for DISTINCT and GROUP BY: 136 against 198 ms on a year of a
    million events). ``_kind_rows`` reads either."""
    started, other = aliased(ContactEvent), aliased(ContactEvent)
    key = _by(session, started.at, period, by_day)
    if session.get_bind().dialect.name == "sqlite":
        found = [func.sum(cast(exists().where(other.contact_id == started.contact_id,
                                              other.kind == kind), Integer)) for kind in kinds]
        return select(*key, *found).where(*_cohort(started, period)).group_by(*_named(key))
    return (select(*key, other.kind, func.count(func.distinct(other.contact_id)))
            .select_from(started)
            .join(other, and_(other.contact_id == started.contact_id, other.kind.in_(kinds)))
            .where(*_cohort(started, period)).group_by(*_named(key), other.kind))


def kind_rows(session: Session, period: Period, by_day: bool, kinds: tuple = KINDS):
    """``kinds_query``'s counts as (key, kind, contacts) rows, on either database."""
    rows = _keyed(session.execute(kinds_query(session, period, by_day, kinds)), by_day)
    if session.get_bind().dialect.name != "sqlite":
        return rows
    return ((key, kind, int(n)) for key, *sums in rows
            for kind, n in zip(kinds, sums) if n)


def _file_kinds(rows, into) -> None:
    for key, kind, count in rows:
        if kind == EventKind.ESCALATED.value:
            into(key).escalated += count
        elif kind in CARE_KINDS:
            into(key).care[kind] += count
        else:
            into(key).followups[kind] += count


def care_counts(session: Session, period: Period) -> Counter:
    """Cohort contacts held back by each care rule over the whole period (the kinds query)."""
    counts = DayCounts()
    _file_kinds(kind_rows(session, period, False, CARE_KINDS), lambda key: counts)
    return counts.care


def outreach_query(session: Session, period: Period, by_day: bool):
    """Cohort contacts opened by an outreach YES whose callback request is done (the
    colleague picked up and was bridged to a peer): rows (key, contacts)."""
    started, accepted = aliased(ContactEvent), aliased(ContactEvent)
    key = _by(session, started.at, period, by_day)
    return (select(*key, func.count()).select_from(started)
            .join(accepted, and_(accepted.contact_id == started.contact_id,
                                 accepted.kind == OUTREACH_KIND))
            .join(CallbackRequest, CallbackRequest.contact_id == started.contact_id)
            .where(*_cohort(started, period),
                   CallbackRequest.state == CallbackState.DONE.value)
            .group_by(*_named(key)))


def sent_rows(session: Session, period: Period, by_day: bool):
    """Outreach texts sent in the period, from the daily tally (``OutreachDay``, kept by
    local day of HOTLINE_TIMEZONE, the statistics' zone): rows (key, texts)."""
    within = (OutreachDay.day >= period.first, OutreachDay.day <= period.last)
    if not by_day:
        return [(None, session.scalar(select(func.sum(OutreachDay.sent)).where(*within)))]
    return [((day - EPOCH_DAY).days, n) for day, n in session.execute(
        select(OutreachDay.day, OutreachDay.sent).where(*within, OutreachDay.sent > 0))]


def _file_outreach(reached, sent, into) -> None:
    for key, count in reached:
        into(key).followups[OUTREACH_REACHED] += count
    for key, count in sent:
        into(key).followups[OUTREACH_SENT] += int(count or 0)


def outreach_counts(session: Session, period: Period) -> Counter:
    """Outreach reached and sent over the whole period (``OUTREACH_REACHED``/``_SENT``)."""
    counts = DayCounts()
    _file_outreach(_keyed(session.execute(outreach_query(session, period, False)), False),
                   sent_rows(session, period, False), lambda key: counts)
    return Counter({kind: counts.followups[kind]
                    for kind in (OUTREACH_REACHED, OUTREACH_SENT)})


def offers_query(session: Session, period: Period, by_day: bool):
    """Offers made in the period (by local day of their creation), by supporter and
    state: ``ix_offers_created_at_supporter`` only."""
    key = _by(session, Offer.created_at, period, by_day)
    return (select(*key, Offer.supporter_id, Offer.state, func.count())
            .where(Offer.created_at >= period.start, Offer.created_at < period.end)
            .group_by(*_named(key), Offer.supporter_id, Offer.state))


def _file_offers(rows, into) -> None:
    """Offers by supporter and result; a ringing one keeps its day open."""
    for key, sid, state, count in rows:
        counts = into(key)
        counts.supporter(sid).add_offers(state, count)
        if state == OfferState.RINGING.value:
            counts.open += count


def minutes_query(session: Session, period: Period, by_day: bool):
    """Seconds on contacts connected in the period (by local day of connection), by
    supporter, with how many ended: ``ix_contacts_connected_at`` only."""
    key = _by(session, Contact.connected_at, period, by_day)
    spent = case((Contact.ended_at.is_not(None),
                  _epoch(session, Contact.ended_at) - _epoch(session, Contact.connected_at)))
    return (select(*key, Contact.supporter_id, func.sum(spent), func.count(Contact.ended_at),
                   func.count())
            .where(Contact.connected_at >= period.start, Contact.connected_at < period.end)
            .group_by(*_named(key), Contact.supporter_id))


def _file_minutes(rows, into) -> None:
    """Seconds on ended contacts by supporter; a connected contact not yet ended keeps its
    day open."""
    for key, sid, seconds, ended, count in rows:
        counts = into(key)
        counts.open += count - ended
        if sid is not None and ended:
            counts.supporter(sid).add_seconds(int(seconds or 0))


def count(session: Session, period: Period, into, by_day: bool) -> None:
    """Every additive count of ``period`` (all but repeat callers and scores), filed by
    ``into``: the five queries, by local day or not."""
    _file_volume(session.execute(volume_query(session, period)), into)
    _file_outcomes(_keyed(session.execute(outcomes_query(session, period, by_day)), by_day),
                   into)
    _file_kinds(kind_rows(session, period, by_day), into)
    _file_outreach(_keyed(session.execute(outreach_query(session, period, by_day)), by_day),
                   sent_rows(session, period, by_day), into)
    _file_offers(_keyed(session.execute(offers_query(session, period, by_day)), by_day), into)
    _file_minutes(_keyed(session.execute(minutes_query(session, period, by_day)), by_day),
                  into)


# --- the live path: the builders over the whole period, in Raw -------------------------

def _volume(session: Session, period: Period, raw: Raw) -> None:
    """Contacts by local day and hour, and by channel."""
    _file_volume(session.execute(volume_query(session, period)), lambda day: raw)


def _outcomes(session: Session, period: Period, raw: Raw) -> None:
    raw.outcomes, raw.waits, raw.callbacks = Counter(), Counter(), Counter()
    _file_outcomes(_keyed(session.execute(outcomes_query(session, period, False)), False),
                   lambda key: raw)
    raw.outcomes["none"] = raw.contacts - sum(raw.outcomes.values())


def _kinds(session: Session, period: Period, raw: Raw) -> None:
    raw.escalated, raw.followups, raw.care = 0, Counter(), Counter()
    _file_kinds(kind_rows(session, period, False), lambda key: raw)


def _outreach(session: Session, period: Period, raw: Raw) -> None:
    """After ``_kinds`` (which starts ``followups`` afresh)."""
    raw.followups.update(+outreach_counts(session, period))   # no zeros, as by day


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


#: The live statistics queries, in the order ``collect`` runs them (the benchmark times
#: each). Contacts by channel come with the volume (one scan of the period's starts).
STEPS = {"volume": _volume, "outcomes": _outcomes, "kinds": _kinds, "outreach": _outreach,
         "repeat": _repeat,
         "scores": _scores, "supporters": _supporters}


def supporter_load(session: Session, period: Period) -> list[dict]:
    """Per supporter: offers by result, and minutes on contacts (supporters are staff).
    Grouped in SQL over the covering indexes, then named (a supporter row each)."""
    whole = DayCounts()
    _file_offers(_keyed(session.execute(offers_query(session, period, False)), False),
                 lambda key: whole)
    _file_minutes(_keyed(session.execute(minutes_query(session, period, False)), False),
                  lambda key: whole)
    return supporter_rows(session, whole.supporters)


def supporter_rows(session: Session, load: dict[int, SupporterDay]) -> list[dict]:
    """The supporter load's rows (names read now), by name: offers by result, and whole
    minutes on ended contacts."""
    names = dict(session.execute(select(Supporter.id, Supporter.name)).all())
    rows = []
    for sid in sorted(load):
        total = load[sid]
        rows.append({"id": sid, "name": names.get(sid, ""), "offers": total.offers,
                     "accepted": total.accepted, "declined": total.declined,
                     "missed": total.missed, "other": total.other,
                     "minutes": 0 if total.seconds is None else max(total.seconds, 0) // 60})
    return sorted(rows, key=lambda r: r["name"])


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
