"""A JSON-ready picture of the simulator for a live panel (the web phone polls it).

``take(sim, since_event)`` is read under ``sim.lock`` and copies everything, so the
caller may serialise it on its own thread. Legs and bridges that ended more than
``RECENT_SECONDS`` of virtual time ago are left out (they stay in the sim's state).
Message bodies appear only in a phone's own messages, never in events.
"""

from __future__ import annotations

from enum import Enum
from typing import Any

from hotline.simulator.core import Sim
from hotline.simulator.phones import Phone
from hotline.simulator.state import CallStatus, Direction, Leg

#: Seconds of virtual time an ended leg or bridge stays in the snapshot.
RECENT_SECONDS = 60.0
#: Lines of a phone's transcript, and of its messages, shown.
LAST_LINES = 30
#: Events sent at most per snapshot (the oldest are left out; ``i`` shows the gap).
MAX_EVENTS = 500


def take(sim: Sim, since_event: int = 0, max_events: int = MAX_EVENTS,
         active_only: bool = False) -> dict[str, Any]:
    """The snapshot (see ``TwilioSim.snapshot``).

    ``active_only`` (a driver polling many phones): only phones on a call, without the
    legs, bridges and queues lists; ``live_calls`` counts the callers connected.
    One pass over the legs and one over the messages, however many phones there are.
    """
    with sim.lock:
        dialing = set()
        live: dict[str, list[Leg]] = {}
        for leg in sim.legs.values():
            if leg.parent_sid and leg.status == CallStatus.RINGING:
                dialing.add(leg.parent_sid)
            if not leg.ended:
                live.setdefault(leg.far_number, []).append(leg)
        first = max(since_event, len(sim.events) - max_events, 0)
        shown = (number for number in sim.phones if not active_only or number in live)
        statuses = _message_index(sim) if not active_only else None
        picture = {
            "now": sim.now,
            "numbers": list(sim.numbers),
            "phones": {number: phone_view(sim, sim.phones[number], dialing,
                                          live.get(number, []), statuses, not active_only)
                       for number in shown},
            "events": [{"i": i, "t": t, "kind": kind, "details": plain(details)}
                       for i, (t, kind, details) in enumerate(sim.events[first:], first)],
            "next_event": len(sim.events),
        }
        if active_only:
            picture["live_calls"] = sum(
                1 for legs in live.values() for leg in legs
                if leg.direction == Direction.INBOUND and leg.status == CallStatus.IN_PROGRESS)
            return picture
        picture["legs"] = [leg_view(leg, dialing) for leg in sim.legs.values()
                           if is_recent(sim, leg.end_time)]
        picture["queues"] = {name: list(sids) for name, sids in sim.queues.items()}
        picture["bridges"] = [{"a": b.a, "b": b.b, "since": b.start, "ended": b.end is not None,
                               "until": b.end} for b in sim.bridges if is_recent(sim, b.end)]
        picture["conferences"] = [
            {"sid": c.sid, "name": c.name, "status": c.status, "members": list(c.members),
             "talking": [sid for sid, m in c.members.items() if m.talking]}
            for c in sim.conferences.values() if is_recent(sim, c.ended_at)]
        return picture


def is_recent(sim: Sim, ended_at: float | None) -> bool:
    """Not ended, or ended within the last ``RECENT_SECONDS``."""
    return ended_at is None or sim.now - ended_at <= RECENT_SECONDS


def doing(leg: Leg, dialing: set[str | None]) -> str:
    """What the leg is busy with, in a word or two."""
    if leg.ended:
        return "ended"
    if leg.status in (CallStatus.QUEUED, CallStatus.RINGING):
        return str(leg.status)
    if leg.gathering is not None:
        return "gathering"
    if leg.queue is not None:
        return "in queue"
    if leg.bridged_to is not None:
        return "bridged"
    if leg.conference is not None:
        return "in conference"
    return "dialing" if leg.sid in dialing else "playing"


def leg_view(leg: Leg, dialing: set[str | None]) -> dict[str, Any]:
    """A leg as the panel lists it."""
    return {
        "sid": leg.sid, "from": leg.from_, "to": leg.to, "direction": str(leg.direction),
        "status": str(leg.status), "doing": doing(leg, dialing), "queue": leg.queue,
        "bridged_to": leg.bridged_to, "parent_sid": leg.parent_sid,
        "created_at": leg.created_at, "answered_at": leg.answer_time, "ended_at": leg.end_time,
    }


def phone_view(sim: Sim, phone: Phone, dialing: set[str | None],
               legs: list[Leg] | None = None, statuses: tuple[dict, dict] | None = None,
               with_messages: bool = True) -> dict[str, Any]:
    """A phone's screen: its current calls, the last lines it heard, its texts.

    ``legs`` (the phone's live legs) and ``statuses`` (``_message_index``) may be given
    when known, to spare a pass over every leg and message for each phone.
    """
    if legs is None:
        legs = [leg for leg in sim.legs.values()
                if leg.far_number == phone.number and not leg.ended]
    view = {
        "label": getattr(phone, "label", ""),
        "kind": getattr(phone, "kind", "silent"),
        "legs": [phone_leg(leg, dialing) for leg in legs],
        "heard": list(phone.heard[-LAST_LINES:]),
    }
    if with_messages:
        view["messages"] = phone_messages(sim, phone, statuses)[-LAST_LINES:]
    return view


def phone_leg(leg: Leg, dialing: set[str | None]) -> dict[str, Any]:
    """One of a phone's calls as its screen shows it.

    ``peer`` is the number it displays (the caller of an incoming call, the number called
    by an outgoing one); ``num_digits`` is set while a ``<Gather numDigits>`` listens;
    ``answerable`` while it rings for the person's decision.
    """
    incoming = leg.direction != Direction.INBOUND
    gathering = leg.gathering
    return {
        "sid": leg.sid, "peer": leg.from_ if incoming else leg.to,
        "incoming": incoming, "status": str(leg.status), "doing": doing(leg, dialing),
        "num_digits": (gathering.num_digits or None) if gathering is not None else None,
        "answerable": leg.ring_box is not None,
    }


def _message_index(sim: Sim) -> tuple[dict[str, str], dict[str, int]]:
    """Every message's current status and its order of creation, by sid."""
    return ({m["sid"]: m["status"] for m in sim.messages},
            {m["sid"]: i for i, m in enumerate(sim.messages)})


def phone_messages(sim: Sim, phone: Phone,
                   statuses: tuple[dict, dict] | None = None) -> list[dict[str, Any]]:
    """The phone's own copies of texts it got and sent, oldest first, status as of now."""
    status, made = statuses or _message_index(sim)  # ties: in order of creation
    received = [(m, m["from"]) for m in getattr(phone, "messages", [])]
    sent = [(m, m["to"]) for m in getattr(phone, "sent", [])]
    ordered = sorted(received + sent, key=lambda pair: (pair[0].get("created_at", 0.0),
                                                        made.get(pair[0]["sid"], len(made))))
    return [{"sid": m["sid"], "direction": m["direction"], "other": other, "body": m["body"],
             "status": status.get(m["sid"], m["status"]), "at": m.get("created_at")}
            for m, other in ordered]


def plain(value: Any) -> Any:
    """``value`` with only JSON types (enums and other objects become strings)."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [plain(v) for v in value]
    if isinstance(value, Enum):
        return str(value.value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value if type(value) in (bool, int, float, str, type(None)) else str(value)
    return str(value)
