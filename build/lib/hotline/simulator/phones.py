"""Simulated handsets: how a party answers, what it keys in, when it hangs up.

A phone is consulted by the engine at three moments: a call rings it (``on_ring``), a
``<Gather>`` on one of its legs waits for input (``on_gather``), and one of its legs is
bridged to another party (``on_bridged``). Replies are small value objects.

An ``InteractivePhone`` decides nothing itself: a person (the web phone) answers,
declines, keys in, speaks and hangs up later through ``sim.answer``/``decline``/``press``/
``speak``/``hangup``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol, Union

from hotline.simulator.state import Leg, Timer


class Network(Protocol):
    """What a phone does to the sim it is on (``TwilioSim`` is one): act later, hang up.

    Phones sit below the engine, which keeps them; they name this much of it, not it.
    """

    def schedule(self, delay: float, callback: Callable[[], None]) -> Timer:
        """Run ``callback`` ``delay`` virtual seconds from now."""
        ...  # pragma: no cover

    def hangup(self, sid: str, after: float = 0.0) -> None:
        """The holder of leg ``sid`` hangs up ``after`` seconds from now."""
        ...  # pragma: no cover


@dataclass(frozen=True)
class Answer:
    """Pick up ``after`` seconds of ringing (past the ring timeout means no answer)."""

    after: float = 2.0


@dataclass(frozen=True)
class NoAnswer:
    """Let it ring until the caller's ring timeout: the call ends ``no-answer``."""


@dataclass(frozen=True)
class Busy:
    """The line is busy: the call ends ``busy`` at once."""


@dataclass(frozen=True)
class Fail:
    """The call cannot be placed (bad number, network): it ends ``failed`` at once."""


@dataclass(frozen=True)
class Reject:
    """The callee declines after one second of ringing: reported ``busy`` (as carriers do)."""


@dataclass(frozen=True)
class Undecided:
    """Ring until someone outside decides (``sim.answer``/``sim.decline``) or it times out."""


RingReply = Union[Answer, NoAnswer, Busy, Fail, Reject, Undecided]


@dataclass(frozen=True)
class Press:
    """Key in ``digits`` (DTMF) ``after`` seconds into the gather (prompts included)."""

    digits: str
    after: float = 1.0


@dataclass(frozen=True)
class Speak:
    """Say ``text`` (speech input) ``after`` seconds into the gather."""

    text: str
    after: float = 1.0
    confidence: float = 0.9


@dataclass(frozen=True)
class Silence:
    """Give no input: the gather times out."""


GatherReply = Union[Press, Speak, Silence]


class Phone:
    """A handset with one E.164 number. The base class never answers and never keys in.

    Subclass and override the ``on_*`` hooks; ``sim`` is set by ``TwilioSim.add_phone``.
    ``heard`` is the transcript of everything played on any of this phone's legs,
    ``messages`` every SMS delivered to it and ``sent`` every text it sent (its own copies,
    kept when the hotline redacts them). ``kind`` names the sort of phone in snapshots;
    ``live_input`` phones take gather input from ``sim.press``/``sim.speak``.
    """

    kind = "silent"
    live_input = False

    def __init__(self, number: str, label: str = "") -> None:
        """Create a phone answering to ``number`` (E.164), shown as ``label``."""
        self.number = number
        self.label = label
        self.sim: Network | None = None
        self.heard: list[str] = []
        self.messages: list[dict[str, Any]] = []
        self.sent: list[dict[str, Any]] = []

    def on_ring(self, leg: Leg) -> RingReply:
        """A call to this phone starts ringing: decide how it goes."""
        return NoAnswer()

    def on_gather(self, leg: Leg, prompt: str) -> GatherReply:
        """A ``<Gather>`` has played its prompts (``prompt``: their spoken text): any input?"""
        return Silence()

    def on_bridged(self, leg: Leg, peer: Leg) -> None:
        """``leg`` (this phone's) was just connected to ``peer``."""

    def on_conference(self, leg: Leg, conference_sid: str) -> None:
        """``leg`` (this phone's) joined the conference ``conference_sid``."""

    def on_message(self, message: dict[str, Any]) -> None:
        """An SMS was delivered to this phone."""
        self.messages.append(message)

    def on_sent(self, message: dict[str, Any]) -> None:
        """This phone sent an SMS (``sim.send_sms``); keep our own copy."""
        self.sent.append(message)

    def __repr__(self) -> str:
        """Show the class and number."""
        return f"{type(self).__name__}({self.number!r})"


#: Every kind of ring reply (a script may be one of them instead of a list).
RING_REPLIES = (Answer, NoAnswer, Busy, Fail, Reject, Undecided)
#: Final status of a call the phone did not pick up, by ring reply (``Answer`` is special).
_UNANSWERED = {NoAnswer: "no-answer", Busy: "busy", Fail: "failed", Reject: "busy"}
#: How long each kind of refusal rings first (``None``: until the ring timeout).
_RING_SECONDS = {NoAnswer: None, Busy: 0.0, Fail: 0.0, Reject: 1.0}


def ring_outcome(reply: RingReply, timeout: float) -> tuple[float, str]:
    """(seconds of ringing, ``"answer"`` or the final call status) for a ring reply."""
    if isinstance(reply, Undecided):
        raise TypeError("an Undecided ring waits for the outside; it has no fixed outcome")
    if isinstance(reply, Answer):
        return (reply.after, "answer") if reply.after <= timeout else (timeout, "no-answer")
    seconds = _RING_SECONDS[type(reply)]
    return (timeout if seconds is None else min(seconds, timeout)), _UNANSWERED[type(reply)]


def _as_gather_reply(item: Any) -> GatherReply:
    """A plain string in a script means pressing those keys."""
    return Press(item) if isinstance(item, str) else item


class ScriptedPhone(Phone):
    """A phone that follows a script.

    ``ring`` is one reply used for every call, or a list popped per call (then ``NoAnswer``).
    ``gather`` replies are popped in order; a plain string means ``Press(string)``; an empty
    script means ``Silence()``. Once bridged, it hangs up after ``hangup_after_bridge``
    seconds (``None``: never).
    """

    kind = "scripted"

    def __init__(
        self,
        number: str,
        ring: RingReply | Iterable[RingReply] = Answer(2),
        gather: Iterable[GatherReply | str] = ("1",),
        hangup_after_bridge: float | None = 30.0,
        label: str = "",
    ) -> None:
        """Create the phone; the scripts are copied, so defaults are never shared."""
        super().__init__(number, label)
        self.ring_script: RingReply | list[RingReply] = (
            ring if isinstance(ring, RING_REPLIES) else list(ring)
        )
        self.gather_script: list[GatherReply | str] = list(gather)
        self.hangup_after_bridge = hangup_after_bridge
        self.prompts: list[str] = []

    def on_ring(self, leg: Leg) -> RingReply:
        """Next ring reply from the script."""
        if isinstance(self.ring_script, list):
            return self.ring_script.pop(0) if self.ring_script else NoAnswer()
        return self.ring_script

    def on_gather(self, leg: Leg, prompt: str) -> GatherReply:
        """Next gather reply from the script (``Silence`` once it is used up)."""
        self.prompts.append(prompt)
        return _as_gather_reply(self.gather_script.pop(0)) if self.gather_script else Silence()

    def on_bridged(self, leg: Leg, peer: Leg) -> None:
        """Schedule hanging up, unless this leg has moved on by then."""
        if self.hangup_after_bridge is None or self.sim is None:
            return
        sim = self.sim

        def hang_up() -> None:
            """Hang up if still connected to the same peer."""
            if leg.bridged_to == peer.sid:
                sim.hangup(leg.sid)

        sim.schedule(self.hangup_after_bridge, hang_up)

    def on_conference(self, leg: Leg, conference_sid: str) -> None:
        """Like a bridge: hang up ``hangup_after_bridge`` seconds in, if still in it."""
        if self.hangup_after_bridge is None or self.sim is None:
            return
        sim = self.sim

        def hang_up() -> None:
            """Hang up if still in the same conference."""
            if leg.conference == conference_sid:
                sim.hangup(leg.sid)

        sim.schedule(self.hangup_after_bridge, hang_up)


class InteractivePhone(Phone):
    """A phone a person drives from outside (the web phone): nothing happens by itself.

    A call to it rings until ``sim.answer(sid)``, ``sim.decline(sid)`` (busy) or the
    caller's ring timeout (no-answer); gather input comes from ``sim.press``/``sim.speak``;
    it hangs up only through ``sim.hangup``; it calls out with ``sim.dial``.
    """

    kind = "interactive"
    live_input = True

    def on_ring(self, leg: Leg) -> RingReply:
        """Leave the decision to the person."""
        return Undecided()
