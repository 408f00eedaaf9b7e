"""A virtual-time stand-in for Twilio: clock, call legs, queues, bridges and an events log.

Every call leg is driven by one generator-based process that blocks in virtual time by
yielding a number of seconds or a ``Receive`` on a ``Mailbox``. A party leaving the call
(hangup, redirect, dequeue) is an exception thrown into the leg's generator, so each TwiML
verb cleans up after itself in ``except`` blocks. Only the loop (``run``/``advance``) talks
to the app; other threads (the REST server) only schedule events at ``now``.
"""

from __future__ import annotations

import heapq
import itertools
import random
import threading
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from enum import StrEnum
from typing import Any, Callable, Generator, Iterable

from twilio.request_validator import RequestValidator

from hotline.simulator.phones import Phone, ring_outcome
from hotline.simulator.transport import Transport

API_VERSION = "2010-04-01"
#: Virtual time 0 as a wall-clock date, fixed so timelines and signatures are reproducible.
EPOCH = datetime(2025, 1, 1, tzinfo=timezone.utc)
#: What a hotline number defaults to when the test does not say.
DEFAULT_NUMBERS = ("+15550100000",)
#: Returned by a ``Receive`` that timed out.
TIMEOUT = object()


class CallStatus(StrEnum):
    """Twilio's call statuses."""

    QUEUED = "queued"
    RINGING = "ringing"
    IN_PROGRESS = "in-progress"
    COMPLETED = "completed"
    BUSY = "busy"
    FAILED = "failed"
    NO_ANSWER = "no-answer"
    CANCELED = "canceled"


FINAL_STATUSES = frozenset(
    {CallStatus.COMPLETED, CallStatus.BUSY, CallStatus.FAILED, CallStatus.NO_ANSWER,
     CallStatus.CANCELED}
)


class Direction(StrEnum):
    """Twilio's call directions."""

    INBOUND = "inbound"
    OUTBOUND_API = "outbound-api"
    OUTBOUND_DIAL = "outbound-dial"


@dataclass(frozen=True)
class Fetch:
    """A TwiML request to make: ``url`` with ``params`` (or inline ``twiml``, no request)."""

    url: str
    method: str = "POST"
    params: dict[str, str] = field(default_factory=dict)
    twiml: str | None = None


class Interrupt(Exception):
    """Thrown into a leg's process when something outside its TwiML changes its course."""


class HungUp(Interrupt):
    """The leg is gone; ``status`` is its final call status."""

    def __init__(self, status: str = CallStatus.COMPLETED) -> None:
        """Carry the final status."""
        super().__init__(status)
        self.status = status


class Redirected(Interrupt):
    """The REST API gave the leg new TwiML (``Url``/``Twiml`` update)."""

    def __init__(self, fetch: Fetch) -> None:
        """Carry what to fetch instead."""
        super().__init__(fetch.url)
        self.fetch = fetch


class Dequeued(Interrupt):
    """A ``<Dial><Queue>`` took this queued leg; ``dial`` is the dequeuer's state."""

    def __init__(self, dial: DialState, url: str | None, method: str) -> None:
        """Carry the dequeuer and the ``<Queue url>`` to play before connecting."""
        super().__init__(dial.parent.sid)
        self.dial, self.url, self.method = dial, url, method


@dataclass(eq=False)
class Leg:
    """One call leg, as Twilio would show it (plus what its party heard and keyed in)."""

    sid: str
    from_: str
    to: str
    direction: str
    status: str = CallStatus.QUEUED
    heard: list[str] = field(default_factory=list)
    digits_sent: list[str] = field(default_factory=list)
    speech_sent: list[str] = field(default_factory=list)
    queue: str | None = None
    bridged_to: str | None = None
    parent_sid: str | None = None
    created_at: float = 0.0
    start_time: float | None = None
    answer_time: float | None = None
    end_time: float | None = None
    url: str | None = None
    method: str = "POST"
    twiml: str | None = None
    timeout: float = 60.0
    status_callback: str | None = None
    status_callback_events: frozenset[str] = frozenset()
    enqueued_at: float | None = None
    queue_time: int = 0
    proc: Process | None = field(default=None, repr=False)
    bridge: Bridge | None = field(default=None, repr=False)
    dial: DialState | None = field(default=None, repr=False)
    callback_seq: int = field(default=0, repr=False)

    @property
    def ended(self) -> bool:
        """True once the leg has a final status."""
        return self.status in FINAL_STATUSES

    @property
    def duration(self) -> int:
        """Whole seconds from answer to end (0 until the leg has ended)."""
        if self.answer_time is None or self.end_time is None:
            return 0
        return int(self.end_time - self.answer_time)


@dataclass(eq=False)
class Bridge:
    """Two legs talking to each other between ``start`` and ``end``."""

    a: str
    b: str
    start: float
    end: float | None = None
    boxes: dict[str, Mailbox] = field(default_factory=dict, repr=False)

    def duration(self, now: float) -> int:
        """Whole seconds connected (up to ``now`` if still connected)."""
        return int((self.end if self.end is not None else now) - self.start)


@dataclass(eq=False)
class DialState:
    """One running ``<Dial>``: its child legs, who won, and what its action will be told."""

    parent: Leg
    box: Mailbox
    timeout: float
    time_limit: float
    children: list[Leg] = field(default_factory=list)
    winner: Leg | None = None
    bridge: Bridge | None = None
    active: bool = True
    result: dict[str, str] = field(default_factory=lambda: {"DialCallStatus": "canceled"})


@dataclass(order=True)
class Timer:
    """A scheduled callback; ``cancel`` drops it without the clock moving to it."""

    when: float
    seq: int
    callback: Callable[[], None] | None = field(compare=False)

    def cancel(self) -> None:
        """Never run (the loop discards it)."""
        self.callback = None


class Mailbox:
    """A FIFO a process can block on (``yield Receive(box, timeout)``)."""

    def __init__(self, sim: TwilioSim) -> None:
        """Create an empty mailbox on ``sim``'s clock."""
        self.sim = sim
        self.items: deque[Any] = deque()
        self.waiter: tuple[Process, int] | None = None

    def put(self, item: Any) -> None:
        """Deliver ``item``; a waiting process resumes at the current time."""
        self.items.append(item)
        if self.waiter is not None:
            proc, token = self.waiter
            self.waiter = None
            self.sim.schedule(0, lambda: proc.deliver(token, self))


@dataclass
class Receive:
    """Yielded by a process: wait for the next item in ``box`` (``TIMEOUT`` after ``timeout``)."""

    box: Mailbox
    timeout: float | None = None


class Process:
    """Runs a generator in virtual time; ``throw`` interrupts it where it is blocked."""

    def __init__(self, sim: TwilioSim, gen: Generator[Any, Any, Any]) -> None:
        """Wrap ``gen``; call ``start`` to run it up to its first wait."""
        self.sim, self.gen = sim, gen
        self.token = 0
        self.alive = True
        self.running = False
        self.timer: Timer | None = None

    def start(self) -> None:
        """Run until the first wait."""
        self._step(None, None)

    def throw(self, exc: BaseException) -> None:
        """Raise ``exc`` inside the generator at its current wait."""
        if self.alive:
            self._step(None, exc)

    def resume(self, token: int, value: Any) -> None:
        """Resume after a delay or a timeout (ignored if the process has moved on)."""
        if self.alive and token == self.token:
            self._step(value, None)

    def deliver(self, token: int, box: Mailbox) -> None:
        """Resume with the next item of ``box`` (ignored if the process has moved on)."""
        if self.alive and token == self.token and box.items:
            self._step(box.items.popleft(), None)

    def _step(self, value: Any, exc: BaseException | None) -> None:
        self.token += 1
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.running = True
        try:
            command = self.gen.throw(exc) if exc is not None else self.gen.send(value)
        except StopIteration:
            self.alive = False
            return
        except BaseException:
            self.alive = False
            raise
        finally:
            self.running = False
        self._wait(command, self.token)

    def _wait(self, command: Any, token: int) -> None:
        if isinstance(command, Receive):
            if command.box.items:
                self.sim.schedule(0, lambda: self.deliver(token, command.box))
                return
            command.box.waiter = (self, token)
            if command.timeout is not None:
                self.timer = self.sim.schedule(command.timeout, lambda: self.resume(token, TIMEOUT))
        elif isinstance(command, (int, float)):
            self.timer = self.sim.schedule(float(command), lambda: self.resume(token, None))
        else:
            raise TypeError(f"a process yielded {command!r}")


class TwilioSim:
    """Plays Twilio's part for a webhook app, in virtual time.

    ``voice_url`` is requested for calls to any of ``numbers``; ``status_callback_url``
    (optional) is told when such a call ends; ``fallback_url`` (optional) is the number's
    fallback, requested with ``ErrorCode``/``ErrorUrl`` when a TwiML request fails on an
    inbound call. State (``legs``, ``queues``, ``bridges``, ``messages``, ``events``,
    ``rest_log``) is plain data, guarded by ``lock``.
    """

    def __init__(
        self,
        transport: Transport,
        *,
        account_sid: str,
        auth_token: str,
        voice_url: str,
        status_callback_url: str | None = None,
        fallback_url: str | None = None,
        numbers: Iterable[str] = DEFAULT_NUMBERS,
        epoch: datetime = EPOCH,
        seed: int = 0,
    ) -> None:
        """Create an idle simulator at virtual time 0."""
        from hotline.simulator.twiml import Interpreter  # deferred: twiml builds on this module

        self.transport = transport
        self.account_sid, self.auth_token = account_sid, auth_token
        self.voice_url, self.fallback_url = voice_url, fallback_url
        self.status_callback_url = status_callback_url
        self.numbers = tuple(numbers)
        self.epoch = epoch
        self.lock = threading.RLock()
        self.now = 0.0
        self.legs: dict[str, Leg] = {}
        self.queues: dict[str, list[str]] = {}
        self.queue_sids: dict[str, str] = {}
        self.bridges: list[Bridge] = []
        self.messages: list[dict[str, Any]] = []
        self.phones: dict[str, Phone] = {}
        self.events: list[tuple[float, str, dict[str, Any]]] = []
        self.rest_log: list[tuple[str, str, dict[str, str]]] = []
        self.on_idle: list[Callable[[], None]] = []
        self._heap: list[Timer] = []
        self._seq = itertools.count()
        self._rng = random.Random(seed)
        self._validator = RequestValidator(auth_token)
        self._dequeuers: dict[str, list[Mailbox]] = {}
        self.interpreter = Interpreter(self)

    # -- clock -------------------------------------------------------------------------

    def schedule(self, delay: float, callback: Callable[[], None]) -> Timer:
        """Run ``callback`` from the loop ``delay`` virtual seconds from now (thread-safe)."""
        with self.lock:
            timer = Timer(self.now + max(0.0, delay), next(self._seq), callback)
            heapq.heappush(self._heap, timer)
            return timer

    def run(self, until: Callable[[], bool] | None = None, max_seconds: float = 600) -> bool:
        """Process events in time order until ``until()``, no events, or ``max_seconds`` pass.

        Returns True if ``until()`` became true.
        """
        deadline = self.now + max_seconds
        while True:
            if until is not None and until():
                return True
            if not self._step(deadline):
                return until is not None and until()

    def advance(self, seconds: float) -> None:
        """Process every event up to ``now + seconds`` and move the clock there."""
        target = self.now + seconds
        while self._step(target):
            pass
        self.now = max(self.now, target)

    def _step(self, deadline: float) -> bool:
        """Process the next event due by ``deadline``, then the idle hooks."""
        with self.lock:
            while self._heap and self._heap[0].callback is None:
                heapq.heappop(self._heap)
            if not self._heap or self._heap[0].when > deadline:
                return False
            timer = heapq.heappop(self._heap)
            self.now = max(self.now, timer.when)
            assert timer.callback is not None
            timer.callback()
        for hook in list(self.on_idle):
            hook()
        return True

    def datetime_at(self, t: float | None = None) -> datetime:
        """Wall-clock time of virtual time ``t`` (default: now)."""
        return self.epoch + timedelta(seconds=self.now if t is None else t)

    def rfc2822(self, t: float | None = None) -> str:
        """Twilio's date format for virtual time ``t`` (default: now)."""
        return format_datetime(self.datetime_at(t))

    # -- registry ----------------------------------------------------------------------

    def new_sid(self, prefix: str) -> str:
        """A fresh Twilio-style sid: ``prefix`` + 32 hex digits (seeded, reproducible)."""
        with self.lock:
            return f"{prefix}{self._rng.getrandbits(128):032x}"

    def log(self, kind: str, **details: Any) -> None:
        """Append ``(now, kind, details)`` to the events timeline."""
        with self.lock:
            self.events.append((self.now, kind, details))

    def events_of(self, kind: str) -> list[dict[str, Any]]:
        """The details of every event of ``kind``, in order."""
        return [details for _, k, details in self.events if k == kind]

    def timeline(self) -> str:
        """The events log as readable lines (handy in assertion messages)."""
        return "\n".join(f"{t:8.1f} {kind:<9} {details}" for t, kind, details in self.events)

    def add_phone(self, phone: Phone) -> Phone:
        """Register ``phone`` under its number and return it."""
        with self.lock:
            phone.sim = self
            self.phones[phone.number] = phone
        return phone

    def phone_for(self, leg: Leg) -> Phone:
        """The handset at the far end of ``leg`` (a silent, never-answering default)."""
        number = leg.from_ if leg.direction == Direction.INBOUND else leg.to
        if number not in self.phones:
            self.add_phone(Phone(number))
        return self.phones[number]

    def queue_sid(self, name: str) -> str:
        """The sid of the queue called ``name`` (created on first use)."""
        with self.lock:
            if name not in self.queue_sids:
                self.queue_sids[name] = self.new_sid("QU")
                self.queues.setdefault(name, [])
            return self.queue_sids[name]

    def new_leg(self, from_: str, to: str, direction: str, **fields: Any) -> Leg:
        """Create and register a leg at the current time."""
        with self.lock:
            leg = Leg(self.new_sid("CA"), from_, to, direction, created_at=self.now, **fields)
            self.legs[leg.sid] = leg
        return leg

    # -- public actions (each only schedules; the loop does the work) ------------------

    def dial(self, from_number: str, to_number: str) -> Leg:
        """A phone calls a hotline number; the leg starts at the next loop step."""
        if to_number not in self.numbers:
            raise ValueError(f"{to_number} is not one of the hotline numbers")
        leg = self.new_leg(
            from_number, to_number, Direction.INBOUND, status=CallStatus.RINGING,
            url=self.voice_url, status_callback=self.status_callback_url,
        )
        self.schedule(0, lambda: self.start_leg(leg, self._inbound_phase(leg)))
        return leg

    def hangup(self, sid: str, after: float = 0.0) -> None:
        """The party on leg ``sid`` hangs up (after ``after`` seconds)."""
        self.schedule(after, lambda: self._party_hangup(self.legs[sid]))

    def create_call(
        self, *, to: str, from_: str, url: str | None = None, method: str = "POST",
        twiml: str | None = None, status_callback: str | None = None,
        status_callback_events: Iterable[str] = (), timeout: float = 60.0,
    ) -> Leg:
        """An outbound-api call (REST ``Calls.json``): queued now, ringing at the next step."""
        leg = self.new_leg(
            from_, to, Direction.OUTBOUND_API, url=url, method=method, twiml=twiml,
            timeout=timeout, status_callback=status_callback,
            status_callback_events=frozenset(status_callback_events),
        )
        self.schedule(0, lambda: self.start_leg(leg, self._outbound_phase(leg)))
        return leg

    def update_call(
        self, leg: Leg, *, status: str | None = None, url: str | None = None,
        method: str = "POST", twiml: str | None = None,
    ) -> None:
        """REST update: ``status`` canceled/completed ends the leg; ``url``/``twiml`` redirect."""
        if url is not None or twiml is not None:
            fetch = Fetch(url or "", method, twiml=twiml)
            self.schedule(0, lambda: self._redirect(leg, fetch))
        if status is not None:
            self.schedule(0, lambda: self._terminate(leg, status))

    def create_message(
        self, *, to: str, from_: str, body: str, status_callback: str | None = None,
        direction: str = "outbound-api",
    ) -> dict[str, Any]:
        """Record an SMS; it is ``sent`` 1 s later and ``delivered`` (to the phone) at 2 s."""
        with self.lock:
            message = {
                "sid": self.new_sid("SM"), "to": to, "from": from_, "body": body,
                "status": "queued", "direction": direction, "created_at": self.now,
                "status_callback": status_callback,
            }
            self.messages.append(message)
        self.log("message", sid=message["sid"], to=to, from_=from_, direction=direction)
        self.schedule(1, lambda: self._message_progress(message, "sent"))
        self.schedule(2, lambda: self._message_progress(message, "delivered"))
        return message

    def find_message(self, sid: str) -> dict[str, Any] | None:
        """The recorded message with ``sid`` (None if unknown or deleted)."""
        with self.lock:
            return next((m for m in self.messages if m["sid"] == sid), None)

    def record_rest(self, method: str, path: str, params: dict[str, str]) -> None:
        """Log one REST request (params in ``rest_log``; only their names in ``events``)."""
        with self.lock:
            self.rest_log.append((method, path, params))
            self.log("rest", method=method, path=path, params=sorted(params))

    # -- leg lifecycle (loop only) -----------------------------------------------------

    def start_leg(self, leg: Leg, phase: Generator[Any, Any, Fetch | None]) -> None:
        """Give ``leg`` its process: ``phase`` (ringing...), then TwiML until it ends."""
        if leg.ended:
            phase.close()
            return
        leg.start_time = self.now
        leg.proc = Process(self, self._leg_main(leg, phase))
        leg.proc.start()

    def _leg_main(self, leg: Leg, phase: Generator[Any, Any, Fetch | None]) -> Generator:
        """A leg's whole life: its phase (ringing...), then TwiML documents until it ends."""
        status = CallStatus.COMPLETED
        try:
            fetch = yield from self._redirectable(leg, phase)
            while fetch is not None:
                program = self.interpreter.run_program(leg, fetch)
                outcome = yield from self._redirectable(leg, program)
                fetch = outcome if isinstance(outcome, Fetch) else None
        except HungUp as hung:
            status = hung.status
        self._finalize(leg, status)

    def _redirectable(self, leg: Leg, gen: Generator) -> Generator:
        try:
            return (yield from gen)
        except Redirected as redirect:
            self.log("redirect", sid=leg.sid, url=redirect.fetch.url)
            return redirect.fetch

    def _inbound_phase(self, leg: Leg) -> Generator[Any, Any, Fetch]:
        self.log("ring", sid=leg.sid, from_=leg.from_, to=leg.to)
        return Fetch(self.voice_url)
        yield  # pragma: no cover - makes this a generator

    def _outbound_phase(self, leg: Leg) -> Generator[Any, Any, Fetch]:
        yield from self.ring_phase(leg, leg.timeout)
        return Fetch(leg.url or "", leg.method, twiml=leg.twiml)

    def ring_phase(self, leg: Leg, timeout: float, dial: DialState | None = None) -> Generator:
        """Ring the far phone; return once answered, else raise ``HungUp`` with the outcome."""
        self.status_event(leg, "initiated")
        leg.status = CallStatus.RINGING
        self.log("ring", sid=leg.sid, from_=leg.from_, to=leg.to)
        self.status_event(leg, "ringing")
        reply = self.phone_for(leg).on_ring(leg)
        delay, outcome = ring_outcome(reply, timeout)
        if delay:
            yield delay
        if outcome != "answer":
            raise HungUp(outcome)
        if dial is not None and not self.claim(dial, leg):
            raise HungUp(CallStatus.CANCELED)
        self.answer(leg)

    def answer(self, leg: Leg) -> None:
        """The leg is picked up (in-progress)."""
        leg.status, leg.answer_time = CallStatus.IN_PROGRESS, self.now
        self.log("answer", sid=leg.sid)
        self.status_event(leg, "answered")

    def claim(self, dial: DialState, leg: Leg) -> bool:
        """First child of a ``<Dial>`` to answer wins; the others are canceled."""
        if dial.winner is not None or not dial.active:
            return False
        dial.winner = leg
        for other in dial.children:
            if other is not leg:
                self.hangup_leg(other, CallStatus.CANCELED)
        return True

    def hangup_leg(self, leg: Leg, status: str) -> None:
        """End ``leg`` with ``status`` now (from the loop)."""
        if leg.ended:
            return
        if leg.proc is None:
            self._finalize(leg, status)
        elif leg.proc.running:
            self.schedule(0, lambda: self.hangup_leg(leg, status))
        else:
            leg.proc.throw(HungUp(status))

    def interrupt(self, leg: Leg, exc: Interrupt) -> None:
        """Throw ``exc`` into ``leg``'s process (or retry at the next step if it is running)."""
        if leg.proc is None or not leg.proc.alive:
            return
        if leg.proc.running:
            self.schedule(0, lambda: self.interrupt(leg, exc))
        else:
            leg.proc.throw(exc)

    def _party_hangup(self, leg: Leg) -> None:
        answered = leg.answer_time is not None
        self.hangup_leg(leg, CallStatus.COMPLETED if answered else CallStatus.CANCELED)

    def _terminate(self, leg: Leg, requested: str) -> None:
        if leg.status in (CallStatus.QUEUED, CallStatus.RINGING):
            self.hangup_leg(leg, CallStatus.CANCELED)
        elif requested == CallStatus.COMPLETED:
            self.hangup_leg(leg, CallStatus.COMPLETED)

    def _redirect(self, leg: Leg, fetch: Fetch) -> None:
        if leg.ended:
            return
        if leg.status == CallStatus.IN_PROGRESS:
            self.interrupt(leg, Redirected(fetch))
        else:
            leg.url, leg.method, leg.twiml = fetch.url, fetch.method, fetch.twiml

    def _finalize(self, leg: Leg, status: str) -> None:
        """Record the end of ``leg`` and tell everyone who depended on it."""
        if leg.ended:
            return
        self.leave_queue(leg)
        if leg.bridged_to is not None:
            self.unbridge(leg)
        leg.status, leg.end_time = CallStatus(status), self.now
        self.log("hangup", sid=leg.sid, status=str(status))
        if leg.dial is not None:
            leg.dial.box.put("done")
        self.status_event(leg, "completed")

    # -- queues and bridges --------------------------------------------------------------

    def join_queue(self, leg: Leg, name: str) -> None:
        """Put ``leg`` at the back of queue ``name`` and wake any waiting dequeuer."""
        self.queue_sid(name)
        self.queues[name].append(leg.sid)
        leg.queue, leg.enqueued_at = name, self.now
        self.log("enqueue", sid=leg.sid, queue=name, position=len(self.queues[name]))
        for box in self._dequeuers.pop(name, []):
            box.put("joined")

    def leave_queue(self, leg: Leg) -> None:
        """Take ``leg`` out of its queue (if any), fixing its ``queue_time``."""
        if leg.queue is None:
            return
        members = self.queues.get(leg.queue, [])
        if leg.sid in members:
            members.remove(leg.sid)
        enqueued = self.now if leg.enqueued_at is None else leg.enqueued_at
        leg.queue_time = int(self.now - enqueued)
        leg.queue = None

    def wait_for_member(self, name: str, timeout: float) -> Generator[Any, Any, bool]:
        """Block until queue ``name`` has a member (True) or ``timeout`` passes (False)."""
        deadline = self.now + timeout
        while not self.queues.get(name):
            if self.now >= deadline:
                return False
            box = Mailbox(self)
            self._dequeuers.setdefault(name, []).append(box)
            got = yield Receive(box, deadline - self.now)
            if got is TIMEOUT and box in self._dequeuers.get(name, []):
                self._dequeuers[name].remove(box)
        return True

    def bridge(self, a: Leg, b: Leg) -> Bridge:
        """Connect two in-progress legs and tell their phones."""
        bridge = Bridge(a.sid, b.sid, self.now)
        bridge.boxes = {a.sid: Mailbox(self), b.sid: Mailbox(self)}
        a.bridged_to, b.bridged_to = b.sid, a.sid
        a.bridge = b.bridge = bridge
        self.bridges.append(bridge)
        self.log("bridge", a=a.sid, b=b.sid)
        self.phone_for(a).on_bridged(a, b)
        self.phone_for(b).on_bridged(b, a)
        return bridge

    def unbridge(self, leg: Leg) -> None:
        """End ``leg``'s bridge; both sides' ``wait_bridge`` return."""
        bridge, peer = leg.bridge, self.legs.get(leg.bridged_to or "")
        if bridge is None or bridge.end is not None:
            return
        bridge.end = self.now
        for side in (leg, peer):
            if side is not None:
                side.bridged_to = None
        for box in bridge.boxes.values():
            box.put("ended")
        self.log("unbridge", a=bridge.a, b=bridge.b, duration=bridge.duration(self.now))

    def wait_bridge(self, leg: Leg, limit: float | None = None) -> Generator:
        """Block while ``leg`` is bridged (at most ``limit`` seconds, then cut the bridge)."""
        bridge = leg.bridge
        if bridge is None or bridge.end is not None:
            return
        try:
            if (yield Receive(bridge.boxes[leg.sid], limit)) is TIMEOUT:
                self.unbridge(leg)
        except Interrupt:
            self.unbridge(leg)
            raise

    # -- talking to the app --------------------------------------------------------------

    def call_params(self, leg: Leg) -> dict[str, str]:
        """Twilio's standard parameters for a request about ``leg``."""
        params = {
            "AccountSid": self.account_sid, "ApiVersion": API_VERSION, "CallSid": leg.sid,
            "From": leg.from_, "To": leg.to, "Caller": leg.from_, "Called": leg.to,
            "Direction": str(leg.direction), "CallStatus": str(leg.status),
        }
        if leg.parent_sid:
            params["ParentCallSid"] = leg.parent_sid
        return params

    def post(self, url: str, params: dict[str, str]) -> tuple[int, str]:
        """Sign and POST one webhook, releasing the state lock while the app works.

        A transport failure is returned as status 0 (and logged) so it plays as an
        application error, as it would on Twilio.
        """
        headers = {"X-Twilio-Signature": self._validator.compute_signature(url, params)}
        self.lock.release()
        try:
            status, body = self.transport.post(url, params, headers)
        except Exception as error:  # noqa: BLE001 - any failure is an app error to Twilio
            status, body = 0, repr(error)
        finally:
            self.lock.acquire()
        self.log("request", url=url, status=status, sid=params.get("CallSid"))
        if status == 0:
            self.log("error", url=url, detail=body)
        return status, body

    def status_event(self, leg: Leg, event: str) -> None:
        """Send the ``event`` status callback for ``leg`` if it asked for it."""
        if not leg.status_callback:
            return
        if event != "completed" and event not in leg.status_callback_events:
            return
        leg.callback_seq += 1
        params = self.call_params(leg) | {
            "CallbackSource": "call-progress-events",
            "SequenceNumber": str(leg.callback_seq - 1),
            "Timestamp": self.rfc2822(),
        }
        if event == "completed":
            params["CallDuration"] = str(leg.duration)
        self.log("status", sid=leg.sid, event=event, status=str(leg.status))
        self.post(leg.status_callback, params)

    def _message_progress(self, message: dict[str, Any], status: str) -> None:
        if message not in self.messages:
            return
        message["status"] = status
        if status == "delivered":
            phone = self.phones.get(message["to"])
            if phone is not None:
                phone.on_message(dict(message))
        self.log("status", sid=message["sid"], event=status)
        if message.get("status_callback"):
            self.post(message["status_callback"], {
                "AccountSid": self.account_sid, "ApiVersion": API_VERSION,
                "MessageSid": message["sid"], "SmsSid": message["sid"],
                "MessageStatus": status, "SmsStatus": status,
                "From": message["from"], "To": message["to"],
            })

