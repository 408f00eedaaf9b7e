"""The simulator's plain state and process machinery: statuses, legs, bridges, processes.

Nothing here talks to the app. A ``Process`` runs one generator in virtual time: the
generator yields a number of seconds or a ``Receive`` on a ``Mailbox``, and an ``Interrupt``
thrown into it changes its course (the engine's module docstring tells the whole story).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Callable, Generator, Protocol

#: Put in a web phone's transcript where a new call starts, so calls do not run on.
CALL_BREAK = "— new call —"

#: The REST API version in every URL and webhook (``ApiVersion``).
API_VERSION = "2010-04-01"
#: Returned by a ``Receive`` that timed out.
TIMEOUT = object()


class Scheduler(Protocol):
    """What a mailbox or a process needs from the simulator: its clock."""

    def schedule(self, delay: float, callback: Callable[[], None]) -> Timer:
        """Run ``callback`` ``delay`` virtual seconds from now."""
        ...  # pragma: no cover


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


class ConferenceChanged(Interrupt):
    """The conference a leg waits in started, or ended, while its hold music played."""


class Dequeued(Interrupt):
    """A ``<Dial><Queue>`` took this queued leg; ``dial`` is the dequeuer's state."""

    def __init__(self, dial: DialState, url: str | None, method: str) -> None:
        """Carry the dequeuer and the ``<Queue url>`` to play before connecting."""
        super().__init__(dial.parent.sid)
        self.dial, self.url, self.method = dial, url, method


@dataclass(eq=False)
class Collecting:
    """A ``<Gather>`` running on a leg: what it accepts and where live input goes.

    ``live`` gathers (an interactive phone) take keys and words from ``box`` as they come;
    ``prompting`` is true while the nested prompts play; ``digits`` are the keys taken so
    far; ``accepting`` turns false once the input is complete (later input is dropped).
    """

    box: Mailbox
    num_digits: int
    finish_key: str
    inputs: frozenset[str]
    barge_in: bool = True
    live: bool = False
    prompting: bool = True
    accepting: bool = True
    digits: str = ""

    def accepts(self, kind: str) -> bool:
        """Whether input of ``kind`` (``dtmf``/``speech``) would be taken right now.

        Keys always cut the prompts short; words only with ``bargeIn`` (the default) and
        only before any key was pressed.
        """
        if not (self.live and self.accepting) or kind not in self.inputs:
            return False
        if kind == "speech":
            return not self.digits and (self.barge_in or not self.prompting)
        return True


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
    #: Twilio's StirVerstat for an inbound call (None: Twilio sends none).
    stir_verstat: str | None = None
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
    #: Wall-clock time the last TwiML document of this leg was requested (see ``stamp``).
    requested_wall: float | None = field(default=None, repr=False)
    queue_time: int = 0
    proc: Process | None = field(default=None, repr=False)
    bridge: Bridge | None = field(default=None, repr=False)
    dial: DialState | None = field(default=None, repr=False)
    callback_seq: int = field(default=0, repr=False)
    #: Set while the far phone rings and waits for an outside answer/decline.
    ring_box: Mailbox | None = field(default=None, repr=False)
    #: Set while a ``<Gather>`` runs on this leg.
    gathering: Collecting | None = field(default=None, repr=False)
    #: The sid of the ``<Conference>`` this leg is in (waiting or talking).
    conference: str | None = None

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

    @property
    def far_number(self) -> str:
        """The number of the party this leg reaches (the caller of an inbound leg)."""
        return self.from_ if self.direction == Direction.INBOUND else self.to


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
class Member:
    """One leg in a conference: how it joined, and where it hears that the room ended."""

    sid: str
    start_on_enter: bool
    end_on_exit: bool
    box: Mailbox = field(repr=False)
    #: True once the conference is in progress for it (no more hold music).
    talking: bool = False


@dataclass(eq=False)
class Conference:
    """A ``<Conference>`` room: ``init`` (people on hold), ``in-progress``, ``completed``."""

    sid: str
    name: str
    created_at: float
    status: str = "init"
    started_at: float | None = None
    ended_at: float | None = None
    members: dict[str, Member] = field(default_factory=dict)
    #: Everyone who was ever in it (leg sids), as Twilio's participant list remembers.
    joined: list[str] = field(default_factory=list)


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

    def __init__(self, sim: Scheduler) -> None:
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

    def __init__(self, sim: Scheduler, gen: Generator[Any, Any, Any]) -> None:
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
