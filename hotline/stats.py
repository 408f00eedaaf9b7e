"""Exact aggregates over the event table, for one period of whole local weeks.

Everything is counted by SQL (GROUP BY), never by looping over events in Python: times
come back as counts per UTC hour (per quarter hour in a zone with a non-hour offset),
which Python then files under local days, weeks, months and hours of the week. The
numbers here are exact and never leave the server as they are: ``hotline.dashboard.report``
suppresses small cells before anything is shown.

The contacts of a period are those with a ``started`` event in it, less the contacts
that carry a callback try (``mode = "callback"``): those are promises kept, not new
contacts.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Integer, and_, case, cast, func, literal, or_, select
from sqlalchemy.orm import Session

from hotline.models import CallbackRequest, Contact, ContactEvent, Offer, Outcome, Score, Supporter

#: Outcomes in the order they are shown; "none" is a contact still without one.
OUTCOMES = tuple(o.value for o in Outcome) + ("none",)
HUMAN = (Outcome.CONNECTED.value, Outcome.CONNECTED_BACKUP.value)
#: Time to a human, shown in these buckets (minutes, upper bound excluded).
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
    waits: Counter = field(default_factory=Counter)       # whole minutes -> contacts
    escalated: int = 0
    repeat: int = 0
    callbacks: Counter = field(default_factory=Counter)
    followups: Counter = field(default_factory=Counter)
    scores: dict = field(default_factory=dict)            # kind -> Counter(value -> n)
    supporters: list = field(default_factory=list)        # dicts, one per supporter


def _epoch(session: Session, column):
    """Seconds since 1970 of a timestamp column, as SQL for this database."""
    if session.get_bind().dialect.name == "sqlite":
        return cast(func.strftime("%s", column), Integer)
    return cast(func.floor(func.extract("epoch", column)), Integer)


def _granularity(period: Period) -> int:
    """Minutes per SQL time bucket: an hour, unless the zone's offset is not whole hours."""
    offsets = {period.zone.utcoffset(datetime.combine(d, time())).total_seconds()
               for d in period.days()[::7] + [period.last]}
    if all(o % 3600 == 0 for o in offsets):
        return 60
    return 30 if all(o % 1800 == 0 for o in offsets) else 15


def cohort(period: Period):
    """SQL: ids of the contacts that started in the period (callback tries left out)."""
    return (select(ContactEvent.contact_id)
            .join(Contact, Contact.id == ContactEvent.contact_id)
            .where(ContactEvent.kind == "started", ContactEvent.at >= period.start,
                   ContactEvent.at < period.end,
                   or_(Contact.mode.is_(None), Contact.mode != "callback")))


def _first_outcomes(period: Period):
    """SQL: (contact_id, event id) of each cohort contact's first outcome event."""
    return (select(ContactEvent.contact_id, func.min(ContactEvent.id).label("eid"))
            .where(ContactEvent.outcome.is_not(None),
                   ContactEvent.contact_id.in_(cohort(period)))
            .group_by(ContactEvent.contact_id).subquery())


def collect(session: Session, period: Period) -> Raw:
    """Every exact count the dashboard needs for ``period``."""
    raw = Raw()
    _volume(session, period, raw)
    _outcomes(session, period, raw)
    _waits(session, period, raw)
    ids = cohort(period)
    raw.escalated = session.scalar(select(func.count(func.distinct(ContactEvent.contact_id)))
                                   .where(ContactEvent.kind == "escalated",
                                          ContactEvent.contact_id.in_(ids))) or 0
    raw.repeat = _repeat(session, period)
    raw.callbacks = _callbacks(session, period)
    raw.followups = Counter(dict(session.execute(
        select(ContactEvent.kind, func.count(func.distinct(ContactEvent.contact_id)))
        .where(ContactEvent.kind.in_(FOLLOWUP_KINDS), ContactEvent.contact_id.in_(ids))
        .group_by(ContactEvent.kind)).all()))
    raw.scores = _scores(session, period)
    raw.supporters = supporter_load(session, period)
    return raw


def _volume(session: Session, period: Period, raw: Raw) -> None:
    minutes = _granularity(period)
    bucket = (_epoch(session, ContactEvent.at) // (minutes * 60)).label("bucket")
    rows = session.execute(
        select(bucket, ContactEvent.channel, func.count())
        .where(ContactEvent.id.in_(_started_ids(period)))
        .group_by(bucket, ContactEvent.channel)).all()
    for slot, channel, count in rows:
        local = datetime.fromtimestamp(int(slot) * minutes * 60, UTC) \
            .astimezone(period.zone)
        raw.by_hour[(local.date(), local.hour)] += count
        raw.by_channel[channel] += count
        raw.contacts += count


def _started_ids(period: Period):
    return (select(ContactEvent.id)
            .join(Contact, Contact.id == ContactEvent.contact_id)
            .where(ContactEvent.kind == "started", ContactEvent.at >= period.start,
                   ContactEvent.at < period.end,
                   or_(Contact.mode.is_(None), Contact.mode != "callback")))


def _outcomes(session: Session, period: Period, raw: Raw) -> None:
    first = _first_outcomes(period)
    rows = session.execute(select(ContactEvent.outcome, func.count())
                           .join(first, ContactEvent.id == first.c.eid)
                           .group_by(ContactEvent.outcome)).all()
    raw.outcomes = Counter(dict(rows))
    raw.outcomes["none"] = raw.contacts - sum(raw.outcomes.values())


def _waits(session: Session, period: Period, raw: Raw) -> None:
    """Minutes from ``started`` to the connected outcome, per contact, as a histogram."""
    first = _first_outcomes(period)
    started = ContactEvent.__table__.alias("started")
    done = ContactEvent.__table__.alias("done")
    wait = ((_epoch(session, done.c.at) - _epoch(session, started.c.at)) // 60).label("wait")
    rows = session.execute(
        select(wait, func.count())
        .select_from(first.join(done, done.c.id == first.c.eid)
                     .join(started, and_(started.c.contact_id == first.c.contact_id,
                                         started.c.kind == "started")))
        .where(done.c.outcome.in_(HUMAN)).group_by(wait)).all()
    raw.waits = Counter({max(int(w), 0): n for w, n in rows})


def _repeat(session: Session, period: Period) -> int:
    """Cohort contacts whose caller key appears more than once in the cohort."""
    ids = cohort(period).subquery()
    keys = (select(Contact.caller_key).join(ids, ids.c.contact_id == Contact.id)
            .group_by(Contact.caller_key).having(func.count() > 1))
    return session.scalar(select(func.count()).select_from(Contact)
                          .join(ids, ids.c.contact_id == Contact.id)
                          .where(Contact.caller_key.in_(keys))) or 0


def _callbacks(session: Session, period: Period) -> Counter:
    """Contacts whose outcome was a callback, by what became of the callback."""
    first = _first_outcomes(period)
    state = case(
        (CallbackRequest.id.is_(None), literal("no record")),
        (and_(CallbackRequest.state == "done",
              CallbackRequest.completed_at <= CallbackRequest.promised_by), literal("kept")),
        (CallbackRequest.state == "done", literal("late")),
        (CallbackRequest.state == "failed", literal("failed")),
        else_=literal("open")).label("state")
    rows = session.execute(
        select(state, func.count())
        .select_from(first.join(ContactEvent, ContactEvent.id == first.c.eid)
                     .outerjoin(CallbackRequest,
                                CallbackRequest.contact_id == first.c.contact_id))
        .where(ContactEvent.outcome == Outcome.CALLBACK_REQUESTED.value)
        .group_by(state)).all()
    return Counter(dict(rows))


def _scores(session: Session, period: Period) -> dict:
    rows = session.execute(select(Score.kind, Score.value, func.count())
                           .where(Score.day >= period.first, Score.day <= period.last)
                           .group_by(Score.kind, Score.value)).all()
    scores = {kind: Counter() for kind in SCORE_KINDS}
    for kind, value, count in rows:
        if kind in scores and value in SCORE_VALUES:
            scores[kind][value] += count
    return scores


def supporter_load(session: Session, period: Period) -> list[dict]:
    """Per supporter: offers by result, and minutes on contacts (supporters are staff)."""
    load: dict[int, dict] = {}
    for sid, name, state, count in session.execute(
            select(Offer.supporter_id, Supporter.name, Offer.state, func.count())
            .join(Supporter, Supporter.id == Offer.supporter_id)
            .where(Offer.created_at >= period.start, Offer.created_at < period.end)
            .group_by(Offer.supporter_id, Supporter.name, Offer.state)).all():
        row = load.setdefault(sid, _load_row(name))
        row["offers"] += count
        group = next((g for g, states in OFFER_GROUPS.items() if state in states), "other")
        row[group] += count
    spent = (_epoch(session, Contact.ended_at) - _epoch(session, Contact.connected_at))
    for sid, name, seconds in session.execute(
            select(Contact.supporter_id, Supporter.name, func.sum(spent))
            .join(Supporter, Supporter.id == Contact.supporter_id)
            .where(Contact.connected_at >= period.start, Contact.connected_at < period.end,
                   Contact.ended_at.is_not(None))
            .group_by(Contact.supporter_id, Supporter.name)).all():
        load.setdefault(sid, _load_row(name))["minutes"] = max(int(seconds or 0), 0) // 60
    return sorted(load.values(), key=lambda r: r["name"])


def _load_row(name: str) -> dict:
    return {"name": name, "offers": 0, "accepted": 0, "declined": 0, "missed": 0,
            "other": 0, "minutes": 0}


def quantile(histogram: Counter, q: float) -> int | None:
    """The q-quantile (nearest rank) of a histogram of whole minutes."""
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
