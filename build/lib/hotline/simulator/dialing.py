"""Queues, bridges and ``<Dial>`` races: the switchboard half of ``TwilioSim``.

A mixin over the sim's state (``legs``, ``queues``, ``queue_sids``, ``bridges``) used by
the TwiML verbs from the loop only. Waiting is done with mailboxes, so a dequeuer or a
bridged leg blocks until something happens instead of polling.
"""

from __future__ import annotations

from typing import Any, Generator

from hotline.simulator.core import Sim
from hotline.simulator.state import (
    TIMEOUT, Bridge, CallStatus, DialState, Interrupt, Leg, Mailbox, Receive,
)


class Switchboard:
    """Queue, bridge and dial-race operations of ``TwilioSim`` (loop only)."""

    def queue_sid(self: Sim, name: str) -> str:
        """The sid of the queue called ``name`` (created on first use)."""
        with self.lock:
            if name not in self.queue_sids:
                self.queue_sids[name] = self.new_sid("QU")
                self.queues.setdefault(name, [])
            return self.queue_sids[name]

    def join_queue(self: Sim, leg: Leg, name: str) -> None:
        """Put ``leg`` at the back of queue ``name`` and wake any waiting dequeuer."""
        self.queue_sid(name)
        self.queues[name].append(leg.sid)
        leg.queue, leg.enqueued_at = name, self.now
        self.log("enqueue", sid=leg.sid, queue=name, position=len(self.queues[name]))
        for box in self._dequeuers.pop(name, []):
            box.put("joined")

    def leave_queue(self: Sim, leg: Leg) -> None:
        """Take ``leg`` out of its queue (if any), fixing its ``queue_time``."""
        if leg.queue is None:
            return
        members = self.queues.get(leg.queue, [])
        if leg.sid in members:
            members.remove(leg.sid)
        enqueued = self.now if leg.enqueued_at is None else leg.enqueued_at
        leg.queue_time = int(self.now - enqueued)
        leg.queue = None

    def wait_for_member(self: Sim, name: str, timeout: float) -> Generator[Any, Any, bool]:
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

    def claim(self: Sim, dial: DialState, leg: Leg) -> bool:
        """First child of a ``<Dial>`` to answer wins; the others are canceled."""
        if dial.winner is not None or not dial.active:
            return False
        dial.winner = leg
        for other in dial.children:
            if other is not leg:
                self.hangup_leg(other, CallStatus.CANCELED)
        return True

    def bridge(self: Sim, a: Leg, b: Leg) -> Bridge:
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

    def unbridge(self: Sim, leg: Leg) -> None:
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

    def wait_bridge(self: Sim, leg: Leg, limit: float | None = None) -> Generator:
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
