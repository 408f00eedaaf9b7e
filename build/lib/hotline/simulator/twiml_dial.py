"""Queue and dial verbs: ``<Enqueue>`` with its wait loop, ``<Dial>`` a ``<Queue>`` or numbers.

A queued caller loops its wait document until ``<Leave>``, a hangup or a ``<Dial><Queue>``
takes it (the ``Dequeued`` interrupt). ``<Dial><Number>`` rings every child at once; the
first to answer (and pass its whisper) is bridged and the others are canceled.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Generator

from lxml import etree

from hotline.simulator.state import (
    CallStatus, ConferenceChanged, Dequeued, DialState, Direction, Fetch, HungUp, Leg, Mailbox,
    Member, Process, Receive, Redirected,
)
from hotline.simulator.twiml_base import (
    DIAL_TIME_LIMIT, LEAVE, MIN_WAIT_LOOP, Context, Mode, Runner, TwimlError, parse_twiml,
    tag_of, text_of,
)


class DialVerbs:
    """The ``<Enqueue>`` and ``<Dial>`` verbs of ``Interpreter``."""

    def enqueue(self: Runner, leg: Leg, el: etree._Element, ctx: Context) -> Generator:
        """``<Enqueue>``: wait in the queue (looping waitUrl) until left, taken or gone."""
        name = text_of(el)
        self.sim.join_queue(leg, name)
        # Queue entry as the app saw it: when the document saying <Enqueue> was requested.
        self.sim.stamp("enqueue", at=leg.requested_wall, sid=leg.sid, queue=name)
        wait_url = el.get("waitUrl")
        wait = Fetch(ctx.resolve(wait_url), el.get("waitUrlMethod", "POST")) if wait_url else None
        try:
            yield from self._queue_wait(leg, name, wait)
        except Dequeued as taken:
            return (yield from self._dequeued(leg, el, ctx, taken))
        except HungUp as hung:
            self.sim.leave_queue(leg)
            self.post_ignored(leg, self._queue_result(leg, el, ctx, "hangup", hung.status))
            raise
        except Redirected:
            self.sim.leave_queue(leg)
            self.post_ignored(leg, self._queue_result(leg, el, ctx, "redirected"))
            raise
        self.sim.leave_queue(leg)
        self.sim.log("leave", sid=leg.sid, queue=name)
        return self._queue_result(leg, el, ctx, "leave")

    def _queue_wait(self: Runner, leg: Leg, name: str, wait: Fetch | None) -> Generator:
        """Loop the wait document until it says ``<Leave>`` (dequeue/hangup interrupt it)."""
        if wait is None:
            self.hear(leg, "play", "[hold music]")
            while True:
                yield Receive(Mailbox(self.sim))  # Twilio's default hold music, until interrupted
        while True:
            started = self.sim.now
            fetch = replace(wait, params=self.queue_params(leg, name))
            if (yield from self.run_program(leg, fetch, Mode.WAIT)) == LEAVE:
                return
            spent = self.sim.now - started
            if spent < MIN_WAIT_LOOP:
                yield MIN_WAIT_LOOP - spent

    def queue_params(self: Runner, leg: Leg, name: str) -> dict[str, str]:
        """What Twilio tells a wait URL about the caller's place in the queue."""
        members = self.sim.queues[name]
        waits = [self.sim.now - (self.sim.legs[sid].enqueued_at or 0.0) for sid in members]
        return {
            "QueueSid": self.sim.queue_sid(name),
            "QueueTime": str(int(self.sim.now - (leg.enqueued_at or 0.0))),
            "QueuePosition": str(members.index(leg.sid) + 1),
            "CurrentQueueSize": str(len(members)),
            "AvgQueueTime": str(int(sum(waits) / len(waits))),
        }

    def _dequeued(self: Runner, leg: Leg, el: etree._Element, ctx: Context,
                  taken: Dequeued) -> Generator:
        """Play the ``<Queue url>`` to the caller, connect, and report ``bridged`` after."""
        connected = False
        try:
            if taken.url:
                params = {"QueueSid": self.sim.queue_sid(text_of(el)),
                          "QueueTime": str(leg.queue_time),
                          "DequeingCallSid": taken.dial.parent.sid}
                yield from self.run_program(leg, Fetch(taken.url, taken.method, params),
                                            Mode.ANNOUNCE)
            if taken.dial.active:
                taken.dial.bridge = self.sim.bridge(leg, taken.dial.parent)
                connected = True
            taken.dial.box.put("connected" if connected else "done")
            yield from self.sim.wait_bridge(leg)
        except HungUp as hung:
            if not connected:
                taken.dial.box.put("done")
            self.post_ignored(leg, self._queue_result(leg, el, ctx, "bridged", hung.status))
            raise
        return self._queue_result(leg, el, ctx, "bridged")

    def _queue_result(self: Runner, leg: Leg, el: etree._Element, ctx: Context, result: str,
                      call_status: str | None = None) -> Fetch | None:
        """The Enqueue action request (None without an action: go on with the next verb)."""
        self.sim.log("queue-result", sid=leg.sid, result=result, queue_time=leg.queue_time)
        if not el.get("action"):
            return None
        params = {"QueueResult": result, "QueueSid": self.sim.queue_sid(text_of(el)),
                  "QueueTime": str(leg.queue_time)}
        if call_status:
            params["CallStatus"] = str(call_status)
        return Fetch(ctx.resolve(el.get("action", "")), el.get("method", "POST"), params)

    def dial(self: Runner, leg: Leg, el: etree._Element, ctx: Context) -> Generator:
        """``<Dial>`` one ``<Queue>`` or one or more ``<Number>`` s (a bare number counts)."""
        dial = DialState(leg, Mailbox(self.sim), float(el.get("timeout", "30")),
                         float(el.get("timeLimit", DIAL_TIME_LIMIT)))
        nouns = [c for c in el if isinstance(c.tag, str)]
        kinds = {tag_of(n) for n in nouns}
        try:
            if kinds == {"Queue"} and len(nouns) == 1:
                yield from self._dial_queue(leg, nouns[0], dial, ctx)
            elif kinds == {"Conference"} and len(nouns) == 1:
                yield from self._dial_conference(leg, nouns[0], dial, ctx)
            elif kinds <= {"Number"} and (nouns or text_of(el)):
                targets = [(text_of(n), n.get("url"), n.get("method", "POST")) for n in nouns]
                targets = targets or [(text_of(el), None, "POST")]
                yield from self._dial_numbers(leg, el, targets, dial, ctx)
            else:
                self.app_error(leg, ctx.url, f"unsupported <Dial> nouns {sorted(kinds)}")
        except HungUp as hung:
            self.post_ignored(leg, self._dial_result(el, ctx, dial, hung.status))
            raise
        finally:
            dial.active = False
            for child in dial.children:
                self.sim.hangup_leg(child, CallStatus.CANCELED if child.answer_time is None
                                    else CallStatus.COMPLETED)
        return self._dial_result(el, ctx, dial)

    def _dial_numbers(self: Runner, leg: Leg, el: etree._Element,
                      targets: list[tuple[str, Any, str]], dial: DialState,
                      ctx: Context) -> Generator:
        """Ring every number at once; bridge the first that answers (and passes its whisper)."""
        self.sim.log("dial", sid=leg.sid, numbers=[number for number, _, _ in targets])
        phases = []
        for number, url, method in targets:  # every child exists before any can answer
            child = self.sim.new_leg(el.get("callerId") or leg.from_, number,
                                     Direction.OUTBOUND_DIAL, parent_sid=leg.sid, dial=dial)
            dial.children.append(child)
            whisper = Fetch(ctx.resolve(url), method) if url else None
            phases.append((child, self._child_phase(child, dial, whisper)))
        for child, phase in phases:
            self.sim.start_leg(child, phase)
        while dial.bridge is None and not all(child.ended for child in dial.children):
            yield Receive(dial.box)
        if dial.bridge is None or dial.winner is None:
            dial.result = {"DialCallStatus": unconnected_status(dial.children),
                           "DialCallSid": dial.children[-1].sid}
            return
        dial.result = {"DialCallStatus": "completed", "DialCallSid": dial.winner.sid}
        yield from self.sim.wait_bridge(leg, dial.time_limit)

    def _child_phase(self: Runner, child: Leg, dial: DialState,
                     whisper: Fetch | None) -> Generator:
        """A ``<Dial>`` child: ring, whisper (the called party's TwiML), then stay bridged."""
        yield from self.sim.ring_phase(child, dial.timeout, dial)
        if whisper is not None:
            yield from self.run_program(child, whisper, Mode.WHISPER)
        if not dial.active:
            raise HungUp(CallStatus.COMPLETED)
        dial.bridge = self.sim.bridge(dial.parent, child)
        dial.box.put("connected")
        yield from self.sim.wait_bridge(child)
        return None

    def _dial_queue(self: Runner, leg: Leg, noun: etree._Element, dial: DialState,
                    ctx: Context) -> Generator:
        """Take the first caller of the queue (waiting up to the timeout) and connect."""
        name = text_of(noun)
        dial.result = {"DialCallStatus": "no-answer", "QueueSid": self.sim.queue_sid(name)}
        if not (yield from self.sim.wait_for_member(name, dial.timeout)):
            return
        caller = self.sim.legs[self.sim.queues[name][0]]
        self.sim.leave_queue(caller)
        self.sim.log("dequeue", sid=caller.sid, by=leg.sid, queue=name)
        dial.result |= {"DialCallStatus": "completed", "DialCallSid": caller.sid}
        url = noun.get("url")
        self.sim.interrupt(caller, Dequeued(dial, ctx.resolve(url) if url else None,
                                            noun.get("method", "POST")))
        if dial.bridge is None:
            yield Receive(dial.box)
        if dial.bridge is not None:
            yield from self.sim.wait_bridge(leg, dial.time_limit)

    def _dial_conference(self: Runner, leg: Leg, noun: etree._Element, dial: DialState,
                         ctx: Context) -> Generator:
        """``<Dial><Conference>``: hold (the waitUrl loop) until it starts, then stay until
        it ends, the time limit passes or the caller hangs up (leaving may end it)."""
        room = self.sim.conference_named(text_of(noun))
        member = Member(leg.sid, _flag(noun, "startConferenceOnEnter", True),
                        _flag(noun, "endConferenceOnExit", False), Mailbox(self.sim))
        dial.result = {"DialCallStatus": "completed", "ConferenceSid": room.sid}
        if noun.get("record", "do-not-record") != "do-not-record":
            self.sim.log("recording", sid=leg.sid, conference=room.sid)
        self.sim.join_conference(room, leg, member, beep=noun.get("beep", "true") != "false")
        self.sim.phone_for(leg).on_conference(leg, room.sid)
        try:
            if not member.talking:
                try:
                    yield from self._conference_hold(leg, noun, ctx)
                except ConferenceChanged:
                    pass
            if room.status == "in-progress":
                member.talking = True
                yield Receive(member.box, dial.time_limit)
        finally:
            self.sim.leave_conference(room, leg)

    def _conference_hold(self: Runner, leg: Leg, noun: etree._Element,
                         ctx: Context) -> Generator:
        """Loop the conference's wait document (Twilio's hold music without one)."""
        wait_url = noun.get("waitUrl")
        if not wait_url:
            self.hear(leg, "play", "[hold music]")
            while True:
                yield Receive(Mailbox(self.sim))
        fetch = Fetch(ctx.resolve(wait_url), noun.get("waitMethod", "POST"))
        while True:
            started = self.sim.now
            yield from self.run_program(leg, fetch, Mode.WAIT)
            spent = self.sim.now - started
            if spent < MIN_WAIT_LOOP:
                yield MIN_WAIT_LOOP - spent

    def announce(self: Runner, room_sid: str, fetch: Fetch) -> None:
        """REST ``AnnounceUrl``: fetch it once, play its prompts to everyone talking."""
        Process(self.sim, self._announce(room_sid, fetch)).start()

    def _announce(self: Runner, room_sid: str, fetch: Fetch) -> Generator:
        room = self.sim.conferences.get(room_sid)
        status, body = yield from self.sim.fetch(fetch.url, {
            "AccountSid": self.sim.account_sid, "ConferenceSid": room_sid})
        if room is None or not 200 <= status < 300:
            return
        try:
            verbs = parse_twiml(body)
        except TwimlError:
            return
        for el in verbs:
            if tag_of(el) in ("Say", "Play"):
                for member in list(room.members.values()):
                    if member.talking:
                        self.hear(self.sim.legs[member.sid], "say", text_of(el))

    def _dial_result(self: Runner, el: etree._Element, ctx: Context, dial: DialState,
                     call_status: str | None = None) -> Fetch | None:
        """The Dial action request (None without an action: go on with the next verb)."""
        params = dict(dial.result)
        if dial.bridge is not None:
            params["DialCallDuration"] = str(dial.bridge.duration(self.sim.now))
        params["DialBridged"] = "true" if dial.bridge is not None else "false"
        if call_status:
            params["CallStatus"] = str(call_status)
        self.sim.log("dial-result", sid=dial.parent.sid, **params)
        if not el.get("action"):
            return None
        return Fetch(ctx.resolve(el.get("action", "")), el.get("method", "POST"), params)


def _flag(el: etree._Element, name: str, default: bool) -> bool:
    """A TwiML boolean attribute."""
    value = el.get(name)
    return default if value is None else value.strip().lower() == "true"


#: Which unconnected child status a multi-number ``<Dial>`` reports, most telling first.
_UNCONNECTED_ORDER = ("no-answer", "busy", "failed", "canceled")


def unconnected_status(children: list[Leg]) -> str:
    """DialCallStatus when nobody was connected (answered but whisper hung up: no-answer)."""
    statuses = {"no-answer" if c.answer_time is not None else str(c.status) for c in children}
    return next((s for s in _UNCONNECTED_ORDER if s in statuses), "no-answer")

