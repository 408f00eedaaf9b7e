"""A virtual-time stand-in for Twilio: clock, call legs, queues, bridges and an events log.

Every call leg is driven by one generator-based process that blocks in virtual time by
yielding a number of seconds or a ``Receive`` on a ``Mailbox``. A party leaving the call
(hangup, redirect, dequeue) is an exception thrown into the leg's generator, so each TwiML
verb cleans up after itself in ``except`` blocks. Only the loop (``run``/``advance``, or a
``RealtimeRunner``) talks to the app; other threads (the REST server, the web phone) only
schedule events at ``now``, under ``lock``.

``TwilioSim`` is assembled from parts: ``Clock`` (time, sids, events), ``Switchboard``
(queues, bridges), ``Texting`` (messages), ``Controls`` (what phone holders do); this
module has the registry and each leg's life. The plain types live in ``state``; the parts
name the whole as ``core.Sim``, never this module, so the engine imports them without a cycle.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Generator, Iterable

from twilio.request_validator import RequestValidator

from hotline.simulator.clock import EPOCH, Clock
from hotline.simulator.conferencing import Conferencing
from hotline.simulator.controls import RING_DECISIONS, Controls
from hotline.simulator.delivery import Delivery
from hotline.simulator.dialing import Switchboard
from hotline.simulator.messaging import Texting
from hotline.simulator.phones import Phone, Undecided, ring_outcome
from hotline.simulator.snapshot import MAX_EVENTS as SNAPSHOT_EVENTS
from hotline.simulator.snapshot import take as take_snapshot
from hotline.simulator.state import (  # noqa: F401 - re-exported: the engine's old namespace
    API_VERSION, FINAL_STATUSES, TIMEOUT, Bridge, CallStatus, Conference, Dequeued, DialState,
    Direction,
    Fetch, HungUp, Interrupt, Leg, Mailbox, Process, Receive, Redirected, Timer,
)
from hotline.simulator.transport import Transport
from hotline.simulator.twiml import Interpreter

#: What a hotline number defaults to when the test does not say.
DEFAULT_NUMBERS = ("+15550100000",)


class TwilioSim(Clock, Switchboard, Conferencing, Texting, Controls, Delivery):
    """Plays Twilio's part for a webhook app, in virtual time.

    ``voice_url`` is requested for calls to any of ``numbers``; ``status_callback_url``
    (optional) is told when such a call ends; ``fallback_url`` (optional) is the number's
    fallback, requested with ``ErrorCode``/``ErrorUrl`` when a TwiML request fails on an
    inbound call; ``sms_url`` (optional) gets texts sent to the numbers. State (``legs``,
    ``queues``, ``bridges``, ``messages``, ``events``, ``rest_log``) is plain data,
    guarded by ``lock``.
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
        sms_url: str | None = None,
        numbers: Iterable[str] = DEFAULT_NUMBERS,
        epoch: datetime = EPOCH,
        seed: int = 0,
    ) -> None:
        """Create an idle simulator at virtual time 0."""
        super().__init__(epoch, seed)
        self.transport = transport
        self.account_sid, self.auth_token = account_sid, auth_token
        self.voice_url, self.fallback_url = voice_url, fallback_url
        self.status_callback_url, self.sms_url = status_callback_url, sms_url
        #: Set through the REST API only (IncomingPhoneNumbers update), as the methods are.
        self.sms_fallback_url: str | None = None
        self.number_methods: dict[str, str] = {}
        self.numbers = tuple(numbers)
        self.legs: dict[str, Leg] = {}
        self.queues: dict[str, list[str]] = {}
        self.queue_sids: dict[str, str] = {}
        self.bridges: list[Bridge] = []
        self.conferences: dict[str, Conference] = {}
        self.messages: list[dict[str, Any]] = []
        self.phones: dict[str, Phone] = {}
        self.rest_log: list[tuple[str, str, dict[str, str]]] = []
        self._validator = RequestValidator(auth_token)
        self._dequeuers: dict[str, list[Mailbox]] = {}
        self.interpreter = Interpreter(self)

    # -- registry ----------------------------------------------------------------------

    def add_phone(self, phone: Phone) -> Phone:
        """Register ``phone`` under its number and return it."""
        with self.lock:
            phone.sim = self
            self.phones[phone.number] = phone
        return phone

    def phone_for(self, leg: Leg) -> Phone:
        """The handset at the far end of ``leg`` (a silent, never-answering default)."""
        number = leg.far_number
        if number not in self.phones:
            self.add_phone(Phone(number))
        return self.phones[number]

    def new_leg(self, from_: str, to: str, direction: str, **fields: Any) -> Leg:
        """Create and register a leg at the current time."""
        with self.lock:
            leg = Leg(self.new_sid("CA"), from_, to, direction, created_at=self.now, **fields)
            self.legs[leg.sid] = leg
        return leg

    def snapshot(self, since_event: int = 0, *, max_events: int = SNAPSHOT_EVENTS,
                 active_only: bool = False) -> dict[str, Any]:
        """A JSON-serialisable picture for a live panel, taken under the lock.

        ``now``; ``phones`` (number -> label, kind, current ``legs``, last ``heard`` lines,
        last ``messages``); ``legs`` (ended over a minute ago left out); ``queues``;
        ``bridges``; ``events`` from index ``since_event`` (at most ``max_events``, newest
        kept) and ``next_event`` to ask from next time. ``active_only``: only phones on a
        call, for a driver playing hundreds of phones. See ``hotline.simulator.snapshot``.
        """
        return take_snapshot(self, since_event, max_events, active_only)

    # -- REST-side actions (each only schedules; the loop does the work) ---------------

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
        self.stamp("ring", sid=leg.sid)
        self.status_event(leg, "ringing")
        reply = self.phone_for(leg).on_ring(leg)
        if isinstance(reply, Undecided):
            outcome = yield from self._await_decision(leg, timeout)
        else:
            delay, outcome = ring_outcome(reply, timeout)
            if delay:
                yield delay
        if outcome != "answer":
            raise HungUp(outcome)
        if dial is not None and not self.claim(dial, leg):
            raise HungUp(CallStatus.CANCELED)
        self.pick_up(leg)

    def _await_decision(self, leg: Leg, timeout: float) -> Generator[Any, Any, str]:
        """Ring until ``answer``/``decline`` arrives from outside, or ``timeout`` passes."""
        leg.ring_box = Mailbox(self)
        try:
            decision = yield Receive(leg.ring_box, timeout)
        finally:
            leg.ring_box = None
        if decision is TIMEOUT:
            return CallStatus.NO_ANSWER
        self.log("decision", sid=leg.sid, decision=decision)
        return RING_DECISIONS[decision]

    def pick_up(self, leg: Leg) -> None:
        """The leg is picked up (in-progress)."""
        leg.status, leg.answer_time = CallStatus.IN_PROGRESS, self.now
        self.log("answer", sid=leg.sid)
        self.status_event(leg, "answered")

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
        """The party hangs up; on a call still ringing for their decision, that declines."""
        if leg.ring_box is not None:
            leg.ring_box.put("decline")
            return
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
        self.stamp("end", sid=leg.sid)
        if leg.dial is not None:
            leg.dial.box.put("done")
        self.status_event(leg, "completed")

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
        if leg.stir_verstat:
            params["StirVerstat"] = leg.stir_verstat
        return params

    def post(self, url: str, params: dict[str, str]) -> tuple[int, str]:
        """Sign and POST one webhook, releasing the state lock while the app works.

        A transport failure is returned as status 0 (and logged) so it plays as an
        application error, as it would on Twilio.
        """
        headers = self.signed(url, params)
        self.lock.release()
        try:
            status, body = self.deliver(url, params, headers)
        finally:
            self.lock.acquire()
        self.log_request(url, params, status, body)
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
        self.send(leg.status_callback, params)
