"""Time to a human: a seeded day of a program, simulated, against an oracle lower bound.

``.venv/bin/python benchmarks/service_level.py [--json OUT] [--seed N] [--days D]
[--scale X]`` plays days of a program through the whole hotline (the app in this process,
its SQLite database, RQ jobs run between events, delayed jobs due in virtual time) and the
offline Twilio stand-in, in **virtual time**: a day of calls costs a few seconds. Each day
is played once per escalation policy (the variants are data: escalation.yaml's steps and
the timing settings), and an oracle router plays it too, knowing in advance who will
answer. The days are put together (``SL_DAYS``, 2 in ``make bench``: one day's p95 is a
handful of calls). It prints one table per channel and writes the part's rows and tables
for ``benchmarks/bench.py``. ``SL_ALL=1`` adds the tuning's other candidates.

The day (all seeded; ``Day`` below):

* arrivals: Poisson, hour by hour, after the demo's hour-of-week profile
  (``hotline.dashboard.demo.HOURLY``, a weekday) times ``scale``; a share texts, a share
  asks for a callback at the menu, the rest wants to talk now;
* a roster with shifts: three 8-hour shifts of tier-1 peers, each as large as Erlang C
  says suffices for 90% of calls answered within 20 s at that shift's busiest hour (from
  the day's own arrival rate and mean call length), and two tier-2 backups all day;
* supporters' behaviour is drawn per (supporter, contact, n-th offer of that pair) from the
  seed, not from a stream a policy consumes: every policy, and the oracle, meets the same
  people. A draw says whether they pick up, after how long (a phone that picks up after
  the ring time is a missed call), and whether they then accept (press 1, or text YES);
* calls last a lognormal time; callers hang up after a random patience (exponential) if
  nobody has answered; a caller who hears the options asks for a callback or keeps
  waiting.

The oracle (``oracle``) is a router that knows every draw: at each arrival (first come,
first served) it rings at once the free on-shift supporter, of any tier, who will accept it
soonest, with no ring time limit; when none is free it waits for the first who frees up and
will accept. It shares the day's arrivals, menu times, patience and call lengths. It is the
lower bound the issue asks for: a policy can only be as fast by guessing as well.

Time to a human counts from the moment the person asked for one (the menu choice "talk"
or "text", the callback request) to a supporter on the line (voice: the two legs
bridged; text: the supporter's YES; callback: the call-back bridged), over the contacts
reached: as average speed of answer does, it leaves out the menu, which the stand-in
plays whole (27 s of prompts; no barge-in) and which no policy changes. "Ringing for
nothing" is the supporter-minutes of calls to supporters that connected nobody (rung, or
answered and declined, or stopped when someone else won), a day.

The care rules' daily cap and automatic pause are off (``CARE_OFF``): Erlang C staffs for
supporters who can always take the next call. The "care rules on" variant shows the cost.
"""

from __future__ import annotations

import argparse
import bisect
import hashlib
import json
import math
import os
import random
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import logging  # noqa: E402

from rq import Queue  # noqa: E402
from sqlalchemy import select  # noqa: E402

from hotline import create_app, migrate  # noqa: E402
from hotline.core import clock as hotline_clock  # noqa: E402
from hotline.core.extensions import db, jobs  # noqa: E402
from hotline.dashboard.demo import HOURLY, poisson  # noqa: E402
from hotline.escalation import policy as policies  # noqa: E402
from hotline.models import CallbackRequest, Contact, Offer, Supporter  # noqa: E402
from hotline.roster import shifts  # noqa: E402
from hotline.staffing import erlang  # noqa: E402
from hotline.simulator import (Answer, FlaskClientTransport, NoAnswer, Phone,  # noqa: E402
                               Press, Silence, TwilioSim, serve_in_thread)

PUBLIC_BASE_URL = "https://hotline.example.org"
AUTH_TOKEN = "service-level-auth-token-0123"
ACCOUNT_SID = "AC" + "5" * 32
HOTLINE_NUMBER = "+16175550100"
DAY = 86400.0

#: Issue 20's targets, and the service level Erlang C staffs for.
TARGET_MEDIAN, TARGET_P95 = 20.0, 60.0
ORACLE_MEDIAN_GAP, ORACLE_P95_GAP = 10.0, 30.0
SERVICE_LEVEL, SERVICE_SECONDS = 0.90, 20.0


# --- the day ------------------------------------------------------------------------------

@dataclass(frozen=True)
class People:
    """How the simulated people behave (medians in seconds unless named otherwise)."""
    text_share: float = 0.2            # contacts that text
    callback_share: float = 0.08       # callers who press 2 (callback) at the menu
    options_callback: float = 0.6      # callers hearing the options who ask for a callback
    menu_seconds: tuple = (3.0, 9.0)   # a caller's choice at the menu, uniform
    patience_mean: float = 240.0       # exponential: then a waiting caller hangs up
    call_median_minutes: float = 15.0  # lognormal call length
    call_sigma: float = 0.6
    pick_up: float = 0.8               # a supporter picks up (else lets it ring)
    pick_up_median: float = 7.0        # lognormal seconds to pick up
    pick_up_sigma: float = 0.6
    accept: float = 0.9                # who picked up presses 1 (else 2: declines)
    press_seconds: tuple = (4.0, 9.0)  # listening to the offer, then pressing, uniform
    text_reply_median: float = 60.0    # seconds to text YES
    clinician_answers: float = 0.85    # a clinician picks up a call-back


@dataclass(frozen=True)
class Arrival:
    index: int
    at: float
    kind: str           # "voice", "text", "callback" (asks at the menu)
    number: str
    menu_after: float   # seconds into the menu before the choice
    patience: float
    length: float       # seconds of conversation
    options: str        # at the options: "2" callback, "1" keep waiting


@dataclass(frozen=True)
class Draw:
    picks_up: bool
    after: float        # seconds to pick up (or to text YES)
    accepts: bool
    press: float        # seconds into the offer before pressing


@dataclass
class Plan:
    number: str
    tier: int
    shifts: list[tuple[float, float]]  # [start, end) in seconds of the day

    def on_shift(self, t: float) -> bool:
        return any(a <= t < b for a, b in self.shifts)


def _rng(*key: Any) -> random.Random:
    """A generator of its own for ``key``: draws that no policy's choices can shift."""
    digest = hashlib.sha256(repr(key).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def draw(seed: int, supporter: str, contact: Any, n: int, people: People) -> Draw:
    """What ``supporter`` does with the ``n``-th offer of ``contact`` (an arrival key)."""
    rng = _rng(seed, "answer", supporter, contact, n)
    picks_up = rng.random() < people.pick_up
    after = rng.lognormvariate(math.log(people.pick_up_median), people.pick_up_sigma)
    accepts = rng.random() < people.accept
    press = rng.uniform(*people.press_seconds)
    return Draw(picks_up, after, accepts, press)


def arrivals(seed: int, scale: float, people: People, hours: range = range(24)
             ) -> list[Arrival]:
    """A weekday of contacts: the demo's hourly profile times ``scale`` (Poisson)."""
    rng = _rng(seed, "arrivals")
    out: list[Arrival] = []
    for hour in hours:
        count = poisson(rng, scale * HOURLY[hour] * 1.25)
        for at in sorted(hour * 3600 + rng.uniform(0, 3600) for _ in range(count)):
            kind_roll = rng.random()
            kind = ("text" if kind_roll < people.text_share else "callback"
                    if kind_roll < people.text_share + people.callback_share else "voice")
            index = len(out)
            length = 60 * rng.lognormvariate(math.log(people.call_median_minutes),
                                             people.call_sigma)
            out.append(Arrival(
                index=index, at=round(at, 3), kind=kind, number=f"+1617556{index:04d}",
                menu_after=rng.uniform(*people.menu_seconds),
                patience=rng.expovariate(1 / people.patience_mean), length=length,
                options="2" if rng.random() < people.options_callback else "1"))
    return out


@dataclass
class Day:
    seed: int
    scale: float
    people: People
    hours: range
    arrivals: list[Arrival]
    roster: list[Plan]
    staffing: list[tuple[str, float, int]]  # (shift, peak arrivals per hour, peers)

    @property
    def mean_call(self) -> float:
        return self.people.call_median_minutes * 60 * math.exp(self.people.call_sigma ** 2 / 2)


SHIFTS = (("00-08", 0, 8), ("08-16", 8, 16), ("16-24", 16, 24))
BACKUPS = 2


def make_day(seed: int = 1, scale: float = 1.0, people: People = People(),
             hours: range = range(24)) -> Day:
    """The seeded day: arrivals, and a roster staffed by Erlang C for each 8-hour shift."""
    came = arrivals(seed, scale, people, hours)
    day = Day(seed, scale, people, hours, came, [], [])
    roster: list[Plan] = []
    for name, start, end in SHIFTS:
        if not any(start <= h < end for h in hours):
            continue
        # Erlang C on the expected rate of the shift's busiest hour (the profile's, not
        # the day's random draw: staffing is planned before the day).
        peak = max(scale * HOURLY[h] * 1.25 for h in range(start, end))
        peers = max(1, erlang.servers_needed(peak, day.mean_call, SERVICE_LEVEL,
                                             SERVICE_SECONDS))
        day.staffing.append((name, peak, peers))
        for i in range(peers):
            roster.append(Plan(f"+1646557{start:02d}{i:02d}", 1, [(start * 3600, end * 3600)]))
    for i in range(BACKUPS):
        roster.append(Plan(f"+16465579{i:03d}", 2, [(0, DAY / 2), (DAY / 2, DAY)]))
    day.roster = roster
    return day


# --- policies as data -----------------------------------------------------------------------

@dataclass(frozen=True)
class Variant:
    name: str
    steps: tuple[dict, ...] | None = None     # escalation.yaml's steps (None: the file's)
    settings: dict = field(default_factory=dict)


#: The care rules' daily cap and automatic pause, off in the simulation: Erlang C staffs
#: for supporters who can always take the next call (the "with care rules" variant
#: shows what the defaults do to that roster).
CARE_OFF = {"MAX_CONTACTS_PER_DAY": 0, "MAX_MISSED_OFFERS": 0}
CARE_DEFAULTS = {"MAX_CONTACTS_PER_DAY": 4, "MAX_MISSED_OFFERS": 3}


def configured() -> Variant:
    return Variant("as configured")


def steps(first: dict | None = None, backup_after: Any = "BACKUP_AFTER_SECONDS",
          ring: Any = "RING_SECONDS", accept: Any = "ACCEPT_SECONDS") -> tuple[dict, ...]:
    """escalation.yaml's steps with some values changed (the rest as the file has them)."""
    timings = {"timeout_seconds": ring, "accept_seconds": accept,
               "text_accept_seconds": "SMS_ACCEPT_SECONDS"}
    return ({"action": "ring_one_at_a_time", "tier": 1, "at_once": "RING_AT_ONCE", **timings,
             **(first or {})},
            {"action": "ring_all", "tier": 2, "after_seconds": backup_after, **timings},
            {"action": "nobody_free", "after_seconds": "MAX_WAIT_SECONDS"})


#: The first step ringing one tier-1 supporter at a time (the default before the simulation).
ONE_AT_A_TIME = {"at_once": 1}


def variants() -> list[Variant]:
    """The hotline as configured (two tier-1 phones at once), then the issue's variants:
    one at a time (the old default), a shorter ring, an earlier backup tier, three at once.
    ``SL_ALL=1`` adds the tuning's other candidates and the care rules."""
    out = [configured(),
           Variant("one at a time", steps(first=ONE_AT_A_TIME)),
           Variant("ring 12 s", steps(ring=12)),
           Variant("backup after 30 s", steps(backup_after=30)),
           Variant("three tier-1 at once", steps(first={"at_once": 3}))]
    if os.environ.get("SL_ALL") == "1":  # the tuning's other candidates (RESULTS.md)
        out += [Variant("ring 15 s", steps(ring=15)),
                Variant("ring 30 s", steps(ring=30)),
                Variant("backup after 45 s", steps(backup_after=45)),
                Variant("one at a time, ring 12 s", steps(first=ONE_AT_A_TIME, ring=12)),
                Variant("one at a time, backup after 30 s",
                        steps(first=ONE_AT_A_TIME, backup_after=30)),
                Variant("as configured, care rules on", settings=CARE_DEFAULTS)]
    return out


# --- the hotline, in this process, in virtual time ------------------------------------------

class VirtualSim(TwilioSim):
    """The stand-in, with the app's clock (``hotline.core.clock``) on its virtual time."""

    def _step(self, deadline: float) -> bool:
        due = self.next_due()
        if due is not None and due <= deadline:
            hotline_clock.frozen = self.datetime_at(max(self.now, due))
        return super()._step(deadline)


def run_jobs(app) -> None:
    """Every queued job, now, in this process, in order. RQ's SimpleWorker would do the
    same, but its start and teardown (a pub/sub thread joined) cost 0.1 s a burst: a
    minute a day."""
    queue = jobs.queue
    while queue.count:
        taken = Queue.dequeue_any([queue], None, connection=queue.connection)
        if taken is None:
            return
        job, _ = taken
        with app.app_context():
            try:
                job.perform()
            except Exception:  # noqa: BLE001 - counted, as a worker would log it
                FAILED_JOBS.append(job.func_name)
                logging.getLogger(__name__).exception("job %s failed", job.func_name)
            finally:
                db.session.remove()


#: Dotted names of the jobs that raised (each run should leave this empty).
FAILED_JOBS: list[str] = []


def virtual_delays(sim: TwilioSim, app) -> None:
    """Delayed jobs (offer expiry, holds, callback tries) wait in virtual time, not RQ's
    scheduler: each is enqueued when the sim's clock reaches it (a job id scheduled again
    replaces the earlier, as RQ does)."""
    pending: dict[str, Any] = {}

    def enqueue_in(delay: timedelta, func, *args, **kwargs):
        job_id = kwargs.get("job_id")
        if job_id in pending:
            pending.pop(job_id).cancel()

        def due() -> None:
            pending.pop(job_id, None)
            jobs.queue.enqueue(func, *args, **kwargs)

        timer = sim.schedule(delay.total_seconds(), due)
        if job_id:
            pending[job_id] = timer

    jobs.enqueue_in = enqueue_in  # this instance only; ``release`` takes it back


#: How often a caller in the menu checks whether they are in the queue yet (seconds),
#: from the least time the menu takes (its greeting and choices are spoken first).
PATIENCE_POLL, MENU_SECONDS = 2.0, 20.0


class Caller(Phone):
    """A clinician: menu choice, patience, the options, the call's length, call-backs."""

    kind = "caller"

    def __init__(self, arrival: Arrival, seed: int, people: People) -> None:
        super().__init__(arrival.number)
        self.arrival, self.seed, self.people = arrival, seed, people
        self.bridged_at: float | None = None
        self.gave_up = False
        self.gathers = 0
        self.callback_rings = 0
        self.inbound = None

    def on_gather(self, leg, prompt):
        self.gathers += 1
        if self.gathers == 1:
            choice = "2" if self.arrival.kind == "callback" else "1"
            return Press(choice, after=self.arrival.menu_after)
        if "press 2" in prompt.lower() or "oprima 2" in prompt.lower():
            return Press(self.arrival.options, after=4.0)
        return Silence()

    def on_ring(self, leg):  # a call-back
        self.callback_rings += 1
        rng = _rng(self.seed, "clinician", self.arrival.index, self.callback_rings)
        return Answer(rng.uniform(3, 12)) if rng.random() < self.people.clinician_answers \
            else NoAnswer()

    def on_bridged(self, leg, peer):
        if leg.direction == "inbound" and self.bridged_at is None:
            self.bridged_at = self.sim.now
        self.sim.schedule(self.arrival.length, lambda: self._end(leg, peer))

    def _end(self, leg, peer):
        if leg.bridged_to == peer.sid and not leg.ended:
            self.sim.hangup(leg.sid)

    def dial(self, sim: TwilioSim) -> None:
        self.inbound = sim.dial(self.number, HOTLINE_NUMBER)
        sim.schedule(MENU_SECONDS, self._queued_yet)

    def _queued_yet(self) -> None:
        """Patience runs from the queue (the menu is listened to, not waited through)."""
        leg = self.inbound
        if leg.ended:
            return
        if leg.enqueued_at is None:
            self.sim.schedule(PATIENCE_POLL, self._queued_yet)
        else:
            self.sim.schedule(leg.enqueued_at + self.arrival.patience - self.sim.now,
                              self._impatient)

    def _impatient(self) -> None:
        leg = self.inbound
        if self.bridged_at is None and not leg.ended and leg.bridged_to is None:
            self.gave_up = True
            self.sim.hangup(leg.sid)


class Texter(Phone):
    """A clinician who texts, answers the menu with 2 (text), then talks by text."""

    kind = "texter"

    def __init__(self, arrival: Arrival) -> None:
        super().__init__(arrival.number)
        self.arrival = arrival
        self.chose = False

    def on_message(self, message):
        super().on_message(message)
        if not self.chose and "Reply 1" in (message.get("body") or ""):
            self.chose = True
            self.sim.schedule(self.arrival.menu_after, lambda: self.sim.send_sms(
                self.number, HOTLINE_NUMBER, "2"))

    def start(self, sim: TwilioSim) -> None:
        sim.send_sms(self.number, HOTLINE_NUMBER, "hello")


class Peer(Phone):
    """A supporter, behaving as the day's draws say for each offer."""

    kind = "peer"

    def __init__(self, plan: Plan, world: World) -> None:
        super().__init__(plan.number)
        self.plan, self.world = plan, world
        self.draws: dict[int, Draw] = {}  # leg/offer -> its draw
        self.seen: dict[Any, int] = defaultdict(int)

    def _draw_for(self, offer_id: int) -> Draw:
        key = self.world.arrival_key(offer_id)
        n = self.seen[key]
        self.seen[key] += 1
        return draw(self.world.day.seed, self.number, key, n, self.world.day.people)

    def on_ring(self, leg):
        offer_id = int(leg.url.split("/offer/")[1].split("/")[0])
        d = self._draw_for(offer_id)
        self.draws[id(leg)] = d
        return Answer(d.after) if d.picks_up else NoAnswer()

    def on_gather(self, leg, prompt):
        d = self.draws.get(id(leg))
        if d is None:
            return Silence()
        return Press("1" if d.accepts else "2", after=d.press)

    def on_bridged(self, leg, peer):
        """The caller's phone ends the call (its length is the caller's)."""

    def on_message(self, message):
        super().on_message(message)
        body = message.get("body") or ""
        if "YES" not in body:
            return
        offer_id = self.world.text_offer_of(self.number)
        if offer_id is None:
            return
        d = self._draw_for(offer_id)
        after = d.after * self.world.day.people.text_reply_median / \
            self.world.day.people.pick_up_median
        if d.picks_up:
            reply = "YES" if d.accepts else "PASS"
            self.sim.schedule(after, lambda: self.sim.send_sms(self.number, HOTLINE_NUMBER,
                                                                reply))
            if d.accepts:
                length = self.world.length_of_offer(offer_id)
                # BYE, not END: END is also a carrier opt-out word, and the hotline
                # honours it as one (the supporter is switched OFF until they opt in).
                self.sim.schedule(after + length, lambda: self.sim.send_sms(
                    self.number, HOTLINE_NUMBER, "BYE"))


@dataclass
class Result:
    """What one policy (or the oracle) did with the day, by channel."""
    name: str
    waits: dict[str, list[float]]       # channel -> seconds to a human, of those reached
    wanted: dict[str, int]              # channel -> contacts wanting a human
    abandoned: dict[str, int]
    callbacks_asked: int = 0
    callbacks_kept: int = 0             # done within the promise
    ringing_minutes: float = 0.0
    seconds: float = 0.0
    #: arrival -> virtual time they asked for a human (queued, or asked for a callback)
    asked: dict[int, float] = field(default_factory=dict)
    #: seconds from an accepting key to the bridge, at the least (the oracle's too)
    overhead: float = 0.0

    def reached(self, channel: str) -> float:
        wanted = self.wanted.get(channel, 0)
        return len(self.waits.get(channel, [])) / wanted if wanted else 1.0

    def all_waits(self) -> list[float]:
        return [w for ch in ("voice", "text", "callback") for w in self.waits.get(ch, [])]


class World:
    """The app, the stand-in and the day's people for one policy."""

    def __init__(self, day: Day, variant: Variant, folder: Path, template_db: Path) -> None:
        self.day, self.variant = day, variant
        path = folder / f"day-{day.seed}-{hashlib.sha256(variant.name.encode()).hexdigest()[:8]}.db"
        for stale in (path, path.with_name(path.name + "-wal"),
                      path.with_name(path.name + "-shm")):
            stale.unlink(missing_ok=True)  # an old WAL would replay into the new copy
        shutil.copy(template_db, path)
        overrides = dict(ENV="test", DATABASE_URL=f"sqlite:///{path}", REDIS_URL="",
                         EMBEDDED_REDIS_PATH=str(folder / "redis.rdb"),
                         PUBLIC_BASE_URL=PUBLIC_BASE_URL, TWILIO_AUTH_TOKEN=AUTH_TOKEN,
                         TWILIO_ACCOUNT_SID=ACCOUNT_SID, HOTLINE_NUMBER=HOTLINE_NUMBER,
                         CRISIS_LINE_NUMBER="988", TIMEZONE="UTC", REQUIRE_TRAINING=False,
                         LOG_LEVEL="WARNING")
        overrides.update(CARE_OFF, **variant.settings)
        self.app = app = create_app(overrides)
        if variant.steps is not None:
            cfg = app.extensions["hotline.settings"]
            app.extensions[policies.EXTENSION] = policies.parse(
                {"steps": [dict(s) for s in variant.steps]}, cfg, variant.name)
        self.sim = VirtualSim(FlaskClientTransport(app.test_client(), PUBLIC_BASE_URL),
                              account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN,
                              voice_url=f"{PUBLIC_BASE_URL}/twilio/voice",
                              status_callback_url=f"{PUBLIC_BASE_URL}/twilio/voice/status",
                              fallback_url=f"{PUBLIC_BASE_URL}/twilio/voice/fallback",
                              sms_url=f"{PUBLIC_BASE_URL}/twilio/sms",
                              numbers=(HOTLINE_NUMBER,), seed=day.seed)
        self.base_url, self.server = serve_in_thread(self.sim)
        app.extensions["hotline.settings"] = app.extensions["hotline.settings"].replace(
            TWILIO_API_BASE_URL=self.base_url)
        with app.app_context():
            jobs.queue.connection.flushdb()
        virtual_delays(self.sim, app)
        self.sim.on_idle.append(lambda: run_jobs(app))
        self.times = [a.at for a in day.arrivals]
        self.offer_keys: dict[int, Any] = {}
        self.peers = {plan.number: Peer(plan, self) for plan in day.roster}
        self.callers: dict[int, Phone] = {}

    def seed_roster(self) -> None:
        with self.app.app_context():
            session = db.session
            for i, plan in enumerate(self.day.roster):
                person = Supporter(name=f"S{i}", phone=plan.number, tier=plan.tier,
                                   languages="en", available=False)
                session.add(person)
                session.flush()
                weekday = hotline_clock.utcnow().weekday()
                for start, end in plan.shifts:
                    shifts.add_shift(session, person, weekday, _clock(start), _clock(end))
            session.commit()
            db.session.remove()
        for peer in self.peers.values():
            self.sim.add_phone(peer)

    # -- who an offer is for (the draws' key) ----------------------------------------------

    def arrival_key(self, offer_id: int) -> Any:
        if offer_id in self.offer_keys:
            return self.offer_keys[offer_id]
        with self.app.app_context():
            offer = db.session.get(Offer, offer_id)
            contact = offer.contact
            kind = "call"
            callback = db.session.scalar(select(CallbackRequest).where(
                CallbackRequest.attempt_contact_id == contact.id))
            if callback is not None:
                contact, kind = db.session.get(Contact, callback.contact_id), "callback"
            key = (self.arrival_of(contact), kind)
            db.session.remove()
        self.offer_keys[offer_id] = key
        return key

    def arrival_of(self, contact: Contact) -> int:
        """The arrival a contact is: the one whose call or first text made it (-1: none)."""
        t = (contact.created_at - self.sim.epoch).total_seconds()
        i = bisect.bisect_left(self.times, t - 2.0)
        return i if i < len(self.times) and abs(self.times[i] - t) <= 2.0 else -1

    def text_offer_of(self, number: str) -> int | None:
        with self.app.app_context():
            offer_id = db.session.scalar(
                select(Offer.id).join(Supporter).where(Supporter.phone == number,
                                                       Offer.state == "ringing")
                .order_by(Offer.id.desc()).limit(1))
            db.session.remove()
        return offer_id

    def length_of_offer(self, offer_id: int) -> float:
        index, _ = self.arrival_key(offer_id)
        return self.day.arrivals[index].length if index >= 0 else 600.0

    # -- the day ----------------------------------------------------------------------------

    def play(self) -> Result:
        started = time.monotonic()
        hotline_clock.frozen = self.sim.datetime_at(0)
        self.seed_roster()
        for a in self.day.arrivals:
            phone = Texter(a) if a.kind == "text" else Caller(a, self.day.seed, self.day.people)
            self.callers[a.index] = phone
            self.sim.add_phone(phone)
            start = phone.start if a.kind == "text" else phone.dial
            self.sim.schedule(a.at, lambda start=start: start(self.sim))
        end = max(self.day.hours) * 3600 + 3600
        self.sim.run(max_seconds=end + 6 * 3600)  # the last calls, call-backs and texts end
        result = self.measure()
        result.seconds = time.monotonic() - started
        return result

    def measure(self) -> Result:
        waits: dict[str, list[float]] = defaultdict(list)
        wanted: dict[str, int] = defaultdict(int)
        abandoned: dict[str, int] = defaultdict(int)
        result = Result(self.variant.name, waits, wanted, abandoned)
        seconds = self.seconds
        with self.app.app_context():
            session = db.session
            contacts = list(session.scalars(select(Contact).order_by(Contact.id)))
            by_id = {c.id: c for c in contacts}
            by_arrival = {self.arrival_of(c): c for c in contacts
                          if c.mode != "callback"}
            for a in self.day.arrivals:
                phone, contact = self.callers[a.index], by_arrival.get(a.index)
                if a.kind == "voice":
                    wanted["voice"] += 1
                    if contact is None or contact.queued_at is None:
                        continue  # hung up in the menu: never asked for a human
                    asked = result.asked[a.index] = seconds(contact.queued_at)
                    if phone.bridged_at is not None:
                        waits["voice"].append(phone.bridged_at - asked)
                    elif phone.gave_up:
                        abandoned["voice"] += 1
                elif a.kind == "text":
                    wanted["text"] += 1
                    if contact is None or contact.queued_at is None:
                        continue
                    asked = result.asked[a.index] = seconds(contact.queued_at)
                    if contact.connected_at is not None:
                        waits["text"].append(seconds(contact.connected_at) - asked)
                    else:
                        abandoned["text"] += 1
            for request in session.scalars(select(CallbackRequest)):
                wanted["callback"] += 1
                result.callbacks_asked += 1
                index = self.arrival_of(by_id[request.contact_id])
                asked = seconds(request.requested_at)
                if self.day.arrivals[index].kind == "callback":
                    result.asked[index] = asked
                if request.completed_at is not None:
                    waits["callback"].append(seconds(request.completed_at) - asked)
                    result.callbacks_kept += request.completed_at <= request.promised_by
                else:
                    abandoned["callback"] += 1
            db.session.remove()
        ringing = 0.0
        bridged = {sid for b in self.sim.bridges for sid in (b.a, b.b)}
        for leg in self.sim.legs.values():
            if leg.to in self.peers and leg.sid not in bridged and leg.end_time is not None:
                ringing += leg.end_time - leg.created_at
        result.ringing_minutes = ringing / 60
        result.overhead = self.bridge_overhead()
        return result

    def bridge_overhead(self) -> float:
        """The least time from a supporter's accepting key to the caller hearing them (the
        prompts each side hears), which the oracle cannot skip either."""
        pressed: dict[str, list[float]] = defaultdict(list)
        for at, kind, details in self.sim.events:
            if kind == "input":
                pressed[details.get("sid")].append(at)
        gaps = []
        for bridge in self.sim.bridges:
            for sid in (bridge.a, bridge.b):
                leg = self.sim.legs.get(sid)
                keys = [t for t in pressed.get(sid, ()) if t <= bridge.start]
                if leg is not None and leg.to in self.peers and keys:
                    gaps.append(bridge.start - max(keys))
        return min(gaps, default=0.0)

    def seconds(self, moment) -> float:
        """Virtual seconds of a database timestamp (the app's clock is the sim's)."""
        return (moment - self.sim.epoch).total_seconds()

    def close(self) -> None:
        self.server.shutdown()
        del jobs.enqueue_in
        hotline_clock.frozen = None
        with self.app.app_context():
            db.session.remove()
            db.engine.dispose()


def _clock(seconds: float) -> str:
    minutes = int(seconds // 60) % (24 * 60)
    return f"{minutes // 60:02d}:{minutes % 60:02d}"  # 24:00 is 00:00 (the next day)


# --- the oracle -----------------------------------------------------------------------------

def oracle(day: Day, asked: dict[int, float], overhead: float = 0.0) -> Result:
    """The day under a router that knows every draw (see the module docstring).

    ``asked``: when each arrival asked for a human (their menu choice: the IVR's part is
    the same under every policy), as the configured run measured it; an arrival missing
    there never asked (hung up in the menu).
    """
    people = day.people
    free_at = {p.number: 0.0 for p in day.roster}
    waits: dict[str, list[float]] = defaultdict(list)
    wanted: dict[str, int] = defaultdict(int)
    abandoned: dict[str, int] = defaultdict(int)
    result = Result("oracle", waits, wanted, abandoned)
    for a in day.arrivals:
        channel = a.kind
        wanted[channel] += 1
        if a.index not in asked:
            continue
        ready = asked[a.index]
        key = (a.index, "callback" if channel == "callback" else "call")
        best = None
        for plan in day.roster:
            d = draw(day.seed, plan.number, key, 0, people)
            if not (d.picks_up and d.accepts):
                continue
            ring = max(ready, free_at[plan.number])
            if not plan.on_shift(ring):
                ring = next((s for s, e in plan.shifts if s >= ring), None)
                if ring is None:
                    continue
            after = d.after * (people.text_reply_median / people.pick_up_median
                               if channel == "text" else 1)
            human = ring + after + (0 if channel == "text" else d.press + overhead)
            if channel == "callback":
                human += _rng(day.seed, "clinician", a.index, 1).uniform(3, 12)
            if best is None or human < best[0]:
                best = (human, plan.number)
        if best is None:
            abandoned[channel] += 1
            continue
        human, number = best
        if channel == "voice" and human - ready > a.patience:
            abandoned[channel] += 1
            continue
        waits[channel].append(human - ready)
        free_at[number] = human + a.length
        if channel == "callback":
            result.callbacks_asked += 1
            result.callbacks_kept += 1
    return result


# --- figures --------------------------------------------------------------------------------

def percentile(values: list[float], q: float) -> float | None:
    """The ``q``-th percentile (nearest rank), None when there is nothing."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def summary(result: Result, channel: str | None = None) -> dict[str, float]:
    waits = result.all_waits() if channel is None else result.waits.get(channel, [])
    wanted = (sum(result.wanted.values()) if channel is None
              else result.wanted.get(channel, 0))
    left = (sum(result.abandoned.values()) if channel is None
            else result.abandoned.get(channel, 0))
    return {"median": percentile(waits, 50), "p90": percentile(waits, 90),
            "p95": percentile(waits, 95), "reached": len(waits) / wanted if wanted else 1.0,
            "abandoned": left / wanted if wanted else 0.0, "n": wanted}


def play(day: Day, chosen: list[Variant], folder: Path) -> tuple[list[Result], Result]:
    """Every variant on the same day, then the oracle with the configured run's menu times."""
    template = folder / "template.db"
    if not template.exists():
        migrate.upgrade("head", url=f"sqlite:///{template}")
    results = []
    for variant in chosen:
        world = World(day, variant, folder, template)
        try:
            results.append(world.play())
        finally:
            world.close()
    return results, oracle(day, results[0].asked, results[0].overhead)


def pooled(days: list[Day], chosen: list[Variant], folder: Path
           ) -> tuple[list[Result], Result]:
    """``play`` on each day; each policy's contacts (and the oracle's) put together, its
    ringing for nothing as a daily mean."""
    totals: dict[str, Result] = {}
    for day in days:
        results, best = play(day, chosen, folder)
        for result in [*results, best]:
            total = totals.setdefault(result.name, Result(
                result.name, defaultdict(list), defaultdict(int), defaultdict(int)))
            for channel in ("voice", "text", "callback"):
                total.waits[channel] += result.waits.get(channel, [])
                total.wanted[channel] += result.wanted.get(channel, 0)
                total.abandoned[channel] += result.abandoned.get(channel, 0)
            total.callbacks_asked += result.callbacks_asked
            total.callbacks_kept += result.callbacks_kept
            total.ringing_minutes += result.ringing_minutes / len(days)
            total.seconds += result.seconds
    return [totals[v.name] for v in chosen], totals["oracle"]


def _fmt(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds:.0f} s"


def _gap(mine: float | None, best: float | None) -> str:
    return "-" if mine is None or best is None else f"{mine - best:+.0f} s"


def tables(results: list[Result], best: Result) -> list[str]:
    lines = []
    for channel, title in (("voice", "voice (talk now)"), ("text", "text"),
                           ("callback", "callbacks")):
        lines += [f"**{title}**", "",
                  "| policy | median | p90 | p95 | reached | abandoned | gap to oracle "
                  "(median / p95) |", "|---|---|---|---|---|---|---|"]
        o = summary(best, channel)
        for result in [*results, best]:
            s = summary(result, channel)
            gap = ("" if result is best else
                   f"{_gap(s['median'], o['median'])} / {_gap(s['p95'], o['p95'])}")
            lines.append(f"| {result.name} | {_fmt(s['median'])} | {_fmt(s['p90'])} | "
                         f"{_fmt(s['p95'])} | {s['reached']:.0%} | {s['abandoned']:.0%} | "
                         f"{gap} |")
        lines.append("")
    lines += ["**all contacts, and the cost**", "",
              "| policy | median | p95 | reached | callbacks within the promise | "
              "supporter-minutes ringing for nothing | wall time |",
              "|---|---|---|---|---|---|---|"]
    for result in [*results, best]:
        s = summary(result)
        kept = (f"{result.callbacks_kept}/{result.callbacks_asked}"
                if result.callbacks_asked else "-")
        lines.append(f"| {result.name} | {_fmt(s['median'])} | {_fmt(s['p95'])} | "
                     f"{s['reached']:.0%} | {kept} | {result.ringing_minutes:.0f} | "
                     f"{result.seconds:.1f} s |")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="write the part's rows here (benchmarks/bench.py)")
    parser.add_argument("--seed", type=int, default=int(os.environ.get("SL_SEED", "1")),
                        help="the first day's seed (the next days: seed + 1, ...)")
    parser.add_argument("--days", type=int, default=int(os.environ.get("SL_DAYS", "2")),
                        help="days played and put together (one day's p95 is a few calls)")
    parser.add_argument("--scale", type=float, default=float(os.environ.get("SL_SCALE", "1")))
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    days = [make_day(args.seed + i, args.scale) for i in range(args.days)]
    day = days[0]
    with tempfile.TemporaryDirectory(prefix="hotline-sl-") as tmp:
        results, best = pooled(days, variants(), Path(tmp))
    staffing = ", ".join(f"{name}: {peers} peers (peak {rate:.1f}/h)"
                         for name, rate, peers in day.staffing)
    lines = tables(results, best)
    print("\n".join(lines))
    notes = [f"{len(days)} weekdays (seeds {day.seed}..{day.seed + len(days) - 1}), scale "
             f"{day.scale}: {sum(len(d.arrivals) for d in days)} contacts; time to a human "
             "from the menu choice (or the callback request), over the contacts reached; "
             f"Erlang C staffing for {SERVICE_LEVEL:.0%} within {SERVICE_SECONDS:.0f} s with "
             f"a mean call of {day.mean_call / 60:.1f} min: {staffing}, and {BACKUPS} "
             "backups all day"]
    rows = []
    o = summary(best, "voice")
    for result in results:
        s = summary(result, "voice")
        ok = None not in (s["median"], s["p95"], o["median"], o["p95"]) and (
            s["median"] <= TARGET_MEDIAN and s["p95"] <= TARGET_P95
            and s["median"] - o["median"] <= ORACLE_MEDIAN_GAP
            and s["p95"] - o["p95"] <= ORACLE_P95_GAP)
        rows.append({"figure": f"voice time to a human, {result.name}",
                     "value": f"median {_fmt(s['median'])}, p95 {_fmt(s['p95'])}, "
                              f"oracle {_fmt(o['median'])}/{_fmt(o['p95'])}",
                     "target": f"<= {TARGET_MEDIAN:.0f} s / {TARGET_P95:.0f} s, "
                               f"gap <= {ORACLE_MEDIAN_GAP:.0f} s / {ORACLE_P95_GAP:.0f} s",
                     "pass": ok})
    if args.json:
        Path(args.json).write_text(json.dumps({
            "name": "service_level", "title": "time to a human, a simulated day",
            "rows": rows, "notes": notes, "tables": lines}, indent=1))
    print("\n".join(notes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
