"""Scale-out: two web processes and two workers on one Redis and one PostgreSQL stay correct.

As separate OS processes: two gunicorn arbiters (the web tier) and two ``hotline worker``
processes, on the session's Redis server (a database index of their own) and a fresh
PostgreSQL database. This test process plays everyone outside the hotline: the offline
Twilio stand-in (its REST API over HTTP, scripted phones) and a round-robin load balancer
in front of the two web processes, whose address is the PUBLIC_BASE_URL that every
webhook is signed for and posted to; so consecutive webhooks of one call land on
different processes. The stand-in's clock runs ``SPEED`` times faster than the wall
clock so that spoken prompts do not dominate the run.

Phase 1 (round-robin): calls one at a time, each placed when every supporter is free;
the first supporter offered each call declines, the next accepts. The offers must go
round everyone in one order and then repeat it (so counts are within one of each other).
Phase 2 (load): ``LOAD_CALLS`` calls within ``LOAD_SECONDS`` on ``SUPPORTERS`` supporters
who talk long enough that callers have to wait; every fifth offer is declined; callers
press 1 to everything (talk now, keep waiting, yes to check-in texts).
Then: every contact has exactly one outcome (and one outcome event), no contact has two
accepted offers, no supporter was booked twice at once (in the database) nor rung while
on a call (at their phone), both web processes answered webhooks and both workers ran
jobs, none failed, and every consented follow-up (due seconds later) went out exactly
once, also when each send job is delivered a second time.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, timedelta

import pytest
from redis import Redis
from rq import Queue, Worker
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session

from hotline.core.extensions import QUEUE_NAME
from hotline.models import Contact, ContactEvent, FollowUp, Offer, Supporter
from hotline.simulator import (
    Answer,
    HttpTransport,
    Phone,
    Press,
    RealtimeRunner,
    ScriptedPhone,
    TwilioSim,
    serve_in_thread,
)
from tests.cluster import (Cluster, RoundRobinProxy, clean_environ, cluster_fixtures,
                           wait_until)
from tests.conftest import ACCOUNT_SID, AUTH_TOKEN, HOTLINE_NUMBER

pytestmark = pytest.mark.slow

#: Virtual seconds of the stand-in per wall-clock second.
SPEED = 8
SUPPORTERS = 8
#: Phase 1: calls one at a time, two offers each (a decline, then an accept).
FAIR_CALLS = 5
#: Phase 2: this many calls arriving within this many wall-clock seconds.
LOAD_CALLS = 30
LOAD_SECONDS = 10
#: Virtual seconds a supporter talks before hanging up: short while calls come one at a
#: time, long enough under load that callers wait for a free supporter.
FAIR_TALK_SECONDS, LOAD_TALK_SECONDS = 2, 10
#: Virtual seconds into the offer's question a declining supporter presses 2 (the
#: question takes about 4).
DECLINE_AFTER = 5
#: The Redis database index the cluster uses (the session's server; other tests use 0).
REDIS_DB = 7
#: Follow-ups after 24 h and 7 d scaled to about 0.4 s and 3 s.
FOLLOWUP_SCALE = "0.000005"
SURVEY, CHECKIN = "How helpful was it", "checking in again"
BACKUP = "+16175550198"


class Rings:
    """How supporters' phones answer, by the order rings arrive; notes any double ring.

    Every ``decline_every``-th ring (0: none) is declined the way a person does it: pick
    up, hear the offer, press 2 a few seconds in (the longest way: two webhooks, and the
    supporter freed while their phone still says goodbye).
    """

    def __init__(self) -> None:
        self.count = itertools.count(0)
        self.decline_every = 0
        self.talk = FAIR_TALK_SECONDS
        self.declining: set[str] = set()
        self.after_decline = 0
        self.doubled: list[tuple[str, str, list[str]]] = []

    def reply(self, leg):
        n = next(self.count)
        if self.decline_every and n % self.decline_every == 0:
            self.declining.add(leg.sid)
        return Answer(0.3)

    def press(self, leg):
        return Press("2", after=DECLINE_AFTER) if leg.sid in self.declining else Press("1")


class SupporterPhone(Phone):
    """Answers per ``Rings``, presses 1 to accept, hangs up ``Rings.talk`` s into the talk."""

    kind = "scripted"

    def __init__(self, number: str, rings: Rings) -> None:
        super().__init__(number, label="supporter")
        self.rings = rings

    def on_ring(self, leg):
        live = [other.sid for other in self.sim.legs.values()
                if other.to == self.number and other.sid != leg.sid and not other.ended]
        busy = [sid for sid in live if sid not in self.rings.declining]
        if busy:  # the hotline rang a supporter who was already on (or ringing for) a call
            self.rings.doubled.append((self.number, leg.sid, busy))
        elif live:  # still hearing "no problem" after pressing 2: the app frees a supporter
            self.rings.after_decline += 1  # when they decline, not when their call ends
        return self.rings.reply(leg)

    def on_gather(self, leg, prompt):
        return self.rings.press(leg)

    def on_bridged(self, leg, peer):
        sim = self.sim

        def hang_up() -> None:
            if leg.bridged_to == peer.sid:
                sim.hangup(leg.sid)

        sim.schedule(self.rings.talk, hang_up)


class ClinicianPhone(Phone):
    """Presses 1 at every question: talk now, keep waiting, yes to check-in texts.

    With ``live_menu`` the first question (the menu) waits for the test to press 1 (a key
    cuts the greeting short, as on Twilio) instead of listening to it to the end.
    """

    kind = "scripted"

    def __init__(self, number: str, live_menu: bool = False) -> None:
        super().__init__(number, label="clinician")
        self.live_menu = live_menu

    @property
    def live_input(self) -> bool:
        return self.live_menu

    def on_ring(self, leg):
        return Answer(1)

    def on_gather(self, leg, prompt):
        return Press("1")


database, redis = cluster_fixtures("hotline_scale_out", REDIS_DB)


class World:
    """The stand-in, the balancer and the cluster, with the phones and a DB session."""

    def __init__(self, database: str, redis_url: str, folder) -> None:
        self.engine = create_engine(database)
        self.quiet = logging.getLogger("werkzeug")  # the stand-in's REST server logs each call
        self.quiet_level = self.quiet.level
        self.quiet.setLevel(logging.WARNING)
        self.rings = Rings()
        self.proxy = RoundRobinProxy()
        public = self.proxy.url
        self.sim = TwilioSim(HttpTransport(timeout=30), account_sid=ACCOUNT_SID,
                             auth_token=AUTH_TOKEN, voice_url=f"{public}/twilio/voice",
                             status_callback_url=f"{public}/twilio/voice/status",
                             fallback_url=f"{public}/twilio/voice/fallback",
                             sms_url=f"{public}/twilio/sms", numbers=(HOTLINE_NUMBER,),
                             epoch=datetime.now(UTC))
        self.rest_url, self.rest = serve_in_thread(self.sim)
        self.sim.add_phone(ScriptedPhone("988", ring=Answer(1), gather=(),
                                         hangup_after_bridge=5))
        self.sim.add_phone(ScriptedPhone(BACKUP, ring=Answer(1), hangup_after_bridge=5))
        self.supporters = [f"+161755502{i:02d}" for i in range(SUPPORTERS)]
        with Session(self.engine) as s:
            for i, number in enumerate(self.supporters):
                # trained: the cluster runs on production's defaults (training required)
                s.add(Supporter(name=f"Peer {i}", phone=number, tier=1, available=True,
                                trained_on=date(2026, 1, 5), refresher_due=date(2099, 1, 5)))
                self.sim.add_phone(SupporterPhone(number, self.rings))
            s.commit()
        env = clean_environ(
            HOTLINE_ENV="test", DATABASE_URL=database, REDIS_URL=redis_url,
            PUBLIC_BASE_URL=public, TWILIO_API_BASE_URL=self.rest_url,
            TWILIO_ACCOUNT_SID=ACCOUNT_SID, TWILIO_AUTH_TOKEN=AUTH_TOKEN,
            HOTLINE_NUMBER=HOTLINE_NUMBER, BACKUP_NUMBERS=BACKUP, CRISIS_LINE_NUMBER="988",
            SECRET_KEY="scale-out-test-secret-key", HOTLINE_RING_SECONDS="10",
            HOTLINE_ACCEPT_SECONDS="10", HOTLINE_BACKUP_AFTER_SECONDS="900",
            HOTLINE_MAX_WAIT_SECONDS="900", HOTLINE_WAIT_PAUSE_SECONDS="8",
            HOTLINE_FOLLOWUP_DELAY_SCALE=FOLLOWUP_SCALE, HOTLINE_SEND_FROM_HOUR="0",
            HOTLINE_SEND_UNTIL_HOUR="24", HOTLINE_SIMULATOR="0",
            # Plain round-robin, one phone at a time, is what is checked here: the care
            # rules reorder and cap offers on purpose (tests/test_supporter_care.py), and
            # two ringing at once is tests/test_ring_at_once.py's, so both are off.
            HOTLINE_RING_AT_ONCE="1",
            HOTLINE_COOLDOWN_MINUTES="0", HOTLINE_MAX_CONTACTS_PER_DAY="0",
            HOTLINE_MAX_MISSED_OFFERS="0")
        self.cluster = Cluster(env, folder, web=2, workers=2)
        self.proxy.balance(self.cluster.web_urls)
        self.runner = RealtimeRunner(self.sim, speed=SPEED)
        self.clinicians = (f"+16175550{n}" for n in itertools.count(400))

    def start(self, redis: Redis) -> None:
        self.cluster.wait_ready(redis)
        self.runner.start()

    def stop(self) -> None:
        self.runner.stop()
        self.cluster.stop()
        self.rest.shutdown()
        self.proxy.stop()
        self.engine.dispose()
        self.quiet.setLevel(self.quiet_level)

    def call(self, barge_in: bool = False) -> str:
        """A new clinician calls the hotline; returns the call's sid.

        ``barge_in``: press 1 as soon as the menu starts (wall-clock time saved where the
        test waits for each call in turn).
        """
        phone = self.sim.add_phone(ClinicianPhone(next(self.clinicians), live_menu=barge_in))
        sid = self.sim.dial(phone.number, HOTLINE_NUMBER).sid
        if barge_in:
            leg = self.sim.legs[sid]
            wait_until(lambda: leg.gathering is not None or leg.ended, 30, "the menu",
                       every=0.02)
            with self.sim.lock:  # the loop sees the key only once the phone is scripted again
                self.sim.press(sid, "1")
                phone.live_menu = False  # the next questions are answered when asked
        return sid

    def session(self) -> Session:
        return Session(self.engine)

    def idle(self) -> bool:
        """No supporter reserved, no call leg alive, every contact with its outcome."""
        with self.sim.lock:
            live = [leg.sid for leg in self.sim.legs.values() if not leg.ended]
        if live or not self.supporters_free():
            return False
        with self.session() as s:
            return not s.scalar(select(func.count()).select_from(Contact).where(
                Contact.state != "ended"))

    def supporters_free(self) -> bool:
        """No supporter reserved or ringing, and every contact has its outcome."""
        with self.session() as s:
            busy = s.scalar(select(func.count()).where(Supporter.busy_with.is_not(None)))
            ringing = s.scalar(select(func.count()).where(Offer.state == "ringing"))
            open_ = s.scalar(select(func.count()).select_from(Contact).where(
                Contact.outcome.is_(None)))
        return busy == 0 and ringing == 0 and open_ == 0

    def followup_texts(self) -> Counter:
        """Follow-up texts the hotline asked Twilio to send, by (number, kind)."""
        sent = Counter()
        with self.sim.lock:
            log = list(self.sim.rest_log)
        for method, path, params in log:
            if method == "POST" and path.endswith("/Messages.json"):
                body = params.get("Body", "")
                kind = "survey" if SURVEY in body else "checkin" if CHECKIN in body else None
                if kind:
                    sent[(params.get("To"), kind)] += 1
        return sent


@pytest.fixture
def world(database, redis, tmp_path):
    url, client = redis
    w = World(database, url, tmp_path)
    try:
        w.start(client)
        yield w
    finally:
        w.stop()


def test_two_web_processes_and_two_workers_stay_correct(world, redis):
    _, client = redis
    began = time.monotonic()
    try:
        fair_sids = round_robin_phase(world)
        print(f"round-robin phase done at {time.monotonic() - began:.1f} s")
        load_sids = load_phase(world)
        print(f"load phase done at {time.monotonic() - began:.1f} s")
        followups_phase(world, client)
        print(f"follow-ups done at {time.monotonic() - began:.1f} s")
        check_outcomes_and_bookings(world, fair_sids | load_sids)
        check_both_processes_worked(world, client)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n\n{summary(world, client)}\nlogs in "
                             f"{world.cluster.folder}\n{world.cluster.tails()}") from None
    print(f"scale-out run: {time.monotonic() - began:.1f} s; {summary(world, client)}")


def round_robin_phase(world: World) -> set[str]:
    """Calls one at a time, each with every supporter free: offers rotate through all."""
    world.rings.decline_every = 2  # each call: the first ring declines, the second accepts
    sids = set()
    for _ in range(FAIR_CALLS):
        wait_until(world.supporters_free, 30, "the previous call to free its supporter")
        sids.add(world.call(barge_in=True))
    wait_until(world.supporters_free, 30, "the round-robin calls to end")
    with world.session() as s:
        offers = s.execute(select(Offer.supporter_id, Offer.state).join(Contact).where(
            Contact.call_sid.in_(sids)).order_by(Offer.id)).all()
        everyone = s.scalars(select(Supporter.id)).all()
    per_supporter = Counter({sid: 0 for sid in everyone})
    per_supporter.update(supporter for supporter, _ in offers)
    states = Counter(state for _, state in offers)
    assert states == {"declined": FAIR_CALLS, "accepted": FAIR_CALLS}, states
    counts = per_supporter.values()
    assert max(counts) - min(counts) <= 1, f"offers not spread round-robin: {per_supporter}"
    order = [supporter for supporter, _ in offers]  # one rotation, then the same again
    assert len(set(order[:SUPPORTERS])) == SUPPORTERS, order
    assert order == [order[i % SUPPORTERS] for i in range(len(order))], order
    return sids


def load_phase(world: World) -> set[str]:
    """``LOAD_CALLS`` calls within ``LOAD_SECONDS``; everyone ends with one outcome."""
    world.rings.decline_every, world.rings.talk = 5, LOAD_TALK_SECONDS
    sids = set()
    start = time.monotonic()
    for i in range(LOAD_CALLS):
        delay = start + i * LOAD_SECONDS / LOAD_CALLS - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        sids.add(world.call())
    wait_until(world.idle, 90, "every call of the load to end")
    return sids


def followups_phase(world: World, redis: Redis) -> None:
    """Every consented follow-up goes out once; a second delivery of each job sends nothing."""
    def all_sent() -> bool:
        with world.session() as s:
            states = Counter(s.scalars(select(FollowUp.state)))
        return states and set(states) == {"sent"}

    wait_until(all_sent, 40, "every follow-up to be sent")
    with world.session() as s:
        ups = s.scalars(select(FollowUp)).all()
        consented = s.scalar(select(func.count()).select_from(Contact).where(
            Contact.consent == "yes"))
    assert consented > 0 and len(ups) == 2 * consented, (consented, len(ups))
    queue = Queue(QUEUE_NAME, connection=redis)
    for up in ups:  # a duplicated or late job: each worker may get some
        queue.enqueue("workers.followups.send_followup", up.id)
    wait_until(lambda: queue.count == 0 and not busy_workers(redis), 30,
               "the duplicate follow-up jobs to run")
    texts = world.followup_texts()
    numbers = {}
    with world.session() as s:
        for contact in s.scalars(select(Contact).where(Contact.consent == "yes")):
            leg = world.sim.legs[contact.call_sid]
            numbers[contact.id] = leg.from_
    expected = Counter({(numbers[up.contact_id], up.kind): 1 for up in ups})
    assert texts == expected, f"follow-up texts sent {texts - expected} too many, " \
                              f"{expected - texts} missing"
    sids = [up.message_sid for up in ups]
    assert all(sids) and len(set(sids)) == len(sids)
    assert all(up.sealed_number is None for up in ups)


def busy_workers(redis: Redis) -> list[str]:
    return [w.name for w in Worker.all(connection=redis) if w.get_current_job_id()]


def check_outcomes_and_bookings(world: World, sids: set[str]) -> None:
    """One outcome per contact (and its one event); nobody booked or rung twice at once."""
    now = datetime.now(UTC)
    with world.session() as s:
        contacts = s.scalars(select(Contact)).all()
        assert {c.call_sid for c in contacts} == sids
        assert all(c.outcome and c.state == "ended" for c in contacts), \
            Counter((c.state, c.outcome) for c in contacts)
        outcome_events = Counter(s.scalars(select(ContactEvent.contact_id).where(
            ContactEvent.outcome.is_not(None))))
        assert all(outcome_events[c.id] == 1 for c in contacts), outcome_events
        offers = s.scalars(select(Offer)).all()
        ended = {c.id: c.ended_at or now for c in contacts}
    accepted = Counter(o.contact_id for o in offers if o.state == "accepted")
    assert max(accepted.values()) == 1, accepted
    spans = defaultdict(list)
    for o in offers:
        if o.state == "accepted":
            spans[o.supporter_id].append((o.created_at, ended[o.contact_id], o.contact_id))
    overlaps = []
    for supporter, items in spans.items():
        items.sort()
        for (_, a_end, a), (b_start, _, b) in itertools.pairwise(items):
            if b_start < a_end - timedelta(seconds=1):
                overlaps.append((supporter, a, b))
    assert not overlaps, f"a supporter booked for two contacts at once: {overlaps}"
    assert not world.rings.doubled, f"a supporter rung while on a call: {world.rings.doubled}"
    assert Counter(c.outcome for c in contacts)["connected"] >= len(contacts) // 2, \
        Counter(c.outcome for c in contacts)


def check_both_processes_worked(world: World, redis: Redis) -> None:
    """Both web processes answered webhooks, both workers ran jobs, nothing failed."""
    assert not world.runner.errors, world.runner.errors
    assert not world.sim.events_of("error"), world.sim.events_of("error")[:5]
    served = [world.proxy.served(i) for i in range(2)]
    assert not world.proxy.errors(), world.proxy.errors()
    assert min(served) >= 0.4 * sum(served), served
    workers = {w.pid: w for w in Worker.all(connection=redis)}
    done = [workers[p.pid].successful_job_count for p in world.cluster.workers]
    failed = [workers[p.pid].failed_job_count for p in world.cluster.workers]
    assert min(done) >= 0.1 * sum(done), f"jobs per worker {done}"
    assert sum(failed) == 0 and Queue(QUEUE_NAME, connection=redis).failed_job_registry.count \
        == 0, f"failed jobs per worker {failed}"


def summary(world: World, redis: Redis) -> str:
    """Figures for a run printed with ``-s``: load, outcomes, who did the work."""
    with world.sim.lock:
        calls = [(leg.start_time, leg.end_time if leg.ended else float("inf"))
                 for leg in world.sim.legs.values()
                 if leg.direction == "inbound" and leg.start_time is not None]
    edges = sorted([(t0, 1) for t0, _ in calls] + [(t1, -1) for _, t1 in calls])
    level = peak = 0
    for _, step in edges:
        level += step
        peak = max(peak, level)
    with world.session() as s:
        outcomes = Counter(s.scalars(select(Contact.outcome)))
        offers = Counter(s.scalars(select(Offer.state)))
        waits = Counter(s.scalars(select(ContactEvent.kind).where(
            ContactEvent.kind.in_(["exhausted", "left_queue"]))))
    jobs = {w.name[:6]: w.successful_job_count for w in Worker.all(connection=redis)}
    served = [world.proxy.served(i) for i in range(len(world.cluster.web_urls))]
    return (f"{len(calls)} calls, at most {peak} at once; outcomes {dict(outcomes)}; "
            f"offers {dict(offers)}; {dict(waits)}; rung while hearing the goodbye of a "
            f"declined offer {world.rings.after_decline}; webhooks per web process {served}; "
            f"jobs per worker {jobs}")
