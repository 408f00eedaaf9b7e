"""Demo data for the dashboard (``hotline demo seed``): a coordinator and weeks of history.

The history is synthetic and made to look like a program's: more contacts after day and
night shift changes and in the small hours, most reaching a peer within a couple of
minutes, some escalated, a few callbacks, crisis transfers and hang-ups, follow-up
consent, replies and scores. It is added once, to a database with no contacts yet.
"""

from __future__ import annotations

import hashlib
import math
import random
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from hotline.dashboard import accounts
from hotline.models import (
    CallbackRequest,
    Contact,
    ContactEvent,
    Offer,
    Role,
    Score,
    StatsDay,
    StatsPeriod,
    StatsPublished,
    Supporter,
    User,
)
from hotline.roster import shifts

DEMO_EMAIL = "coordinator@example.org"
#: Printed by ``demo seed``; the demo only ever runs offline on 127.0.0.1.
DEMO_PASSWORD = "peer-support-demo"
DEMO_WEEKS = 8
#: Relative volume by local hour: shift changes (7, 19) and the small hours stand out.
HOURLY = (2.5, 2.5, 3, 3, 2, 1.5, 2, 3.5, 4.5, 3, 2, 2, 2.5, 2, 2, 2, 2.5, 3, 3, 5, 5.5, 4.5,
          3.5, 3)
OUTCOMES = (("connected", 72), ("connected_backup", 9), ("callback_requested", 7),
            ("crisis_transfer", 3), ("abandoned", 8), ("failed", 1))
#: Weekly shifts of the demo roster by phone: (weekday, "HH:MM", "HH:MM").
DEMO_SHIFTS = {"+16175550111": [(d, "08:00", "16:00") for d in range(5)],
               "+16175550112": [(d, "16:00", "23:00") for d in range(5)],
               "+16175550113": [(d, "23:00", "08:00") for d in (0, 2, 4, 5, 6)],
               "+16175550121": [(5, "08:00", "20:00"), (6, "08:00", "20:00")],
               "+16175550122": [(d, "20:00", "08:00") for d in (1, 3)]}


def seed_coordinator(session: Session, test_mode: bool = False) -> bool:
    """The demo coordinator account, when there is no account yet; True if added."""
    if session.scalar(select(func.count()).select_from(User)):
        return False
    accounts.create(session, accounts.hasher(test_mode), DEMO_EMAIL, Role.COORDINATOR.value,
                    DEMO_PASSWORD)
    return True


def seed_shifts(session: Session) -> None:
    """Weekly shifts for the demo roster (they are switched ON anyway in the demo)."""
    for phone, plan in DEMO_SHIFTS.items():
        supporter = session.scalar(select(Supporter).where(Supporter.phone == phone))
        if supporter is not None and not shifts.shifts_of(session, supporter.id):
            for weekday, start, end in plan:
                shifts.add_shift(session, supporter, weekday, start, end)


def seed_history(session: Session, zone: ZoneInfo, now: datetime | None = None,
                 weeks: int = DEMO_WEEKS, seed: int = 6, scale: float = 1.0) -> int:
    """``weeks`` of synthetic contacts ending yesterday, ``scale`` times the demo's volume
    (0.1: a small program of about 7 contacts a day); returns how many (0 if any exist)."""
    if session.scalar(select(func.count()).select_from(Contact)):
        return 0
    people = list(session.scalars(select(Supporter).order_by(Supporter.tier, Supporter.id)))
    if not people:
        return 0
    rng = random.Random(seed)
    today = (now or datetime.now(UTC)).astimezone(zone).date()
    first = today - timedelta(days=7 * weeks + today.weekday())
    maker = _Maker(session, rng, people)
    day = first
    while day < today:
        for hour, weight in enumerate(HOURLY):
            for _ in range(poisson(rng, scale * weight * (1.25 if day.weekday() < 5
                                                          else 0.8))):
                start = datetime.combine(day, time(hour, rng.randrange(60)), tzinfo=zone)
                maker.contact(start.astimezone(UTC))
        maker.end_day()
        day += timedelta(days=1)
    return maker.flush()


def poisson(rng: random.Random, mean: float) -> int:
    """A small Poisson draw (Knuth), for synthetic volumes (the demo, the benchmarks)."""
    limit, k, p = math.exp(-mean), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def _key(name: str) -> str:
    """A stand-in for a keyed hash of a number (no number exists in the demo)."""
    return hashlib.sha256(f"demo-{name}".encode()).hexdigest()


class _Maker:
    """Builds contacts with their offers, events, callbacks and scores."""

    def __init__(self, session: Session, rng: random.Random, people: list[Supporter]) -> None:
        self.session, self.rng = session, rng
        self.peers = [p for p in people if p.tier == 1] or people
        self.backups = [p for p in people if p.tier == 2] or people
        self.events: list[dict] = []
        self.scores: list[dict] = []
        self.pending: list[tuple] = []
        self.count = 0
        #: A few regulars call again and again; most callers are seen once or twice.
        self.regulars = [_key(f"regular-{i}") for i in range(120)]

    def contact(self, start: datetime) -> None:
        rng = self.rng
        channel = "voice" if rng.random() < 0.7 else "sms"
        outcome = rng.choices([o for o, _ in OUTCOMES], [w for _, w in OUTCOMES])[0]
        wait = min(int(rng.expovariate(0.7)), 14) + (2 if outcome == "connected_backup" else 0)
        human = outcome in ("connected", "connected_backup")
        supporter = rng.choice(self.backups if outcome == "connected_backup" else self.peers)
        connected = start + timedelta(minutes=wait)
        ended = connected + timedelta(minutes=rng.randint(8, 50)) if human else \
            start + timedelta(minutes=wait + 1)
        caller = rng.choice(self.regulars) if rng.random() < 0.2 else \
            _key(f"caller-{rng.randrange(20000)}")
        contact = Contact(channel=channel, caller_key=caller, state="ended",
                          outcome=outcome, created_at=start, queued_at=start,
                          connected_at=connected if human else None, ended_at=ended,
                          supporter_id=supporter.id if human else None,
                          escalated=outcome == "connected_backup" or rng.random() < 0.06)
        self.session.add(contact)
        self.pending.append((contact, start, supporter if human else None,
                             connected if human else start + timedelta(minutes=wait), ended))

    def end_day(self) -> None:
        """Flush the day's contacts at once, then add what hangs off each."""
        self.session.flush()
        for contact, start, winner, outcome_at, ended in self.pending:
            self.count += 1
            self._offers(contact, start, winner)
            self._events(contact, start, outcome_at, ended)
            if contact.outcome == "callback_requested":
                self._callback(contact, start)
            if winner is not None:
                self._followup(contact, ended)
        self.pending = []

    def _offers(self, contact: Contact, start: datetime, winner: Supporter | None) -> None:
        for _ in range(self.rng.choices([0, 1, 2], [70, 22, 8])[0]):
            self.session.add(Offer(contact_id=contact.id, supporter_id=self.rng.choice(
                self.peers).id, attempt=1, tier=1, created_at=start, ended_at=start,
                state=self.rng.choice(["no_answer", "no_answer", "declined", "busy"])))
        if winner is not None:
            self.session.add(Offer(contact_id=contact.id, supporter_id=winner.id, attempt=1,
                                   tier=winner.tier, state="accepted", answered=True,
                                   created_at=start, ended_at=contact.ended_at))

    def _event(self, contact: Contact, kind: str, at: datetime, **extra) -> None:
        self.events.append(dict(contact_id=contact.id, kind=kind, channel=contact.channel,
                                at=at.replace(second=0, microsecond=0), tier=extra.get("tier"),
                                outcome=extra.get("outcome")))

    def _events(self, contact: Contact, start: datetime, outcome_at: datetime,
                ended: datetime) -> None:
        self._event(contact, "started", start)
        self._event(contact, "queued", start)
        self._event(contact, "offered", start, tier=1)
        if contact.escalated:
            self._event(contact, "escalated", start + timedelta(minutes=1))
        self._event(contact, contact.outcome, outcome_at, outcome=contact.outcome)
        self._event(contact, "ended", ended)

    def _callback(self, contact: Contact, start: datetime) -> None:
        roll = self.rng.random()
        state = "failed" if roll < 0.1 else "done"
        late = 0.1 <= roll < 0.2
        self.session.add(CallbackRequest(
            contact_id=contact.id, requested_at=start, promised_by=start + timedelta(minutes=30),
            state=state, completed_at=None if state == "failed" else
            start + timedelta(minutes=45 if late else self.rng.randint(5, 28))))

    def _followup(self, contact: Contact, ended: datetime) -> None:
        rng = self.rng
        if rng.random() < 0.35:
            self._event(contact, "followup_declined", ended)
            return
        self._event(contact, "followup_consent", ended)
        sent = ended + timedelta(days=2)
        self._event(contact, "followup_sent", sent)
        if rng.random() < 0.55:
            self._event(contact, "followup_reply", sent + timedelta(hours=3))
            day = sent.date()
            self.scores.append(dict(day=day, channel=contact.channel, kind="helpful",
                                    value=rng.choices([1, 2, 3, 4, 5], [2, 4, 14, 38, 42])[0]))
            if rng.random() < 0.7:
                self.scores.append(dict(day=day, channel=contact.channel, kind="burnout",
                                        value=rng.choices([1, 2, 3, 4, 5], [14, 33, 31, 15, 7])[0]))

    def flush(self) -> int:
        """Write everything gathered; returns the number of contacts."""
        if self.events:
            self.session.execute(insert(ContactEvent), self.events)
        if self.scores:
            self.session.execute(insert(Score), self.scores)
        # written past the hook that keeps the statistics cache true: start it afresh
        self.session.execute(delete(StatsDay))
        self.session.execute(delete(StatsPeriod))
        self.session.execute(delete(StatsPublished))
        self.session.commit()
        return self.count
