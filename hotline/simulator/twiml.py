"""The TwiML interpreter: runs the app's documents on a leg, blocking in virtual time.

Each verb handler is a generator (it yields seconds or ``Receive`` waits) that returns
``None`` (go on with the next verb), a ``Fetch`` (request it and run that document instead)
or ``LEAVE`` (``<Leave>`` in a queue's wait document).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace
from enum import Enum
from typing import TYPE_CHECKING, Any, Callable, Generator, Iterable
from urllib.parse import urljoin

from lxml import etree

from hotline.simulator.engine import (
    CallStatus, Dequeued, DialState, Direction, Fetch, HungUp, Leg, Mailbox, Receive, Redirected,
)
from hotline.simulator.phones import Press, Speak

if TYPE_CHECKING:  # pragma: no cover
    from hotline.simulator.engine import TwilioSim

#: Seconds a wait-document loop takes at least, so an empty wait document cannot spin.
MIN_WAIT_LOOP = 1.0
#: Documents fetched in a row without time passing before we call it a redirect loop.
MAX_INSTANT_FETCHES = 25
#: Seconds of speech per character of ``<Say>`` text (15 characters a second, 1 s minimum).
SAY_CHARS_PER_SECOND = 15
PLAY_SECONDS = 2.0
#: Twilio's ``<Dial timeLimit>`` default: four hours.
DIAL_TIME_LIMIT = 14400.0
LEAVE = "leave"
END = "end"


class Mode(Enum):
    """Where a document runs; it decides which verbs are allowed and what "the end" means."""

    CALL = "call"          # the leg's own program: the end hangs up
    WAIT = "wait"          # an <Enqueue waitUrl>: the end requests waitUrl again
    WHISPER = "whisper"    # a <Number url> on the called leg: the end connects
    ANNOUNCE = "announce"  # a <Queue url> on the dequeued caller: the end connects


PROMPTS = frozenset({"Say", "Play", "Pause"})
ALLOWED = {
    Mode.CALL: PROMPTS | {"Gather", "Redirect", "Hangup", "Reject", "Enqueue", "Dial",
                          "Leave", "Message", "Sms"},
    Mode.WAIT: PROMPTS | {"Gather", "Redirect", "Hangup", "Leave"},
    Mode.WHISPER: PROMPTS | {"Gather", "Redirect", "Hangup"},
    Mode.ANNOUNCE: PROMPTS | {"Redirect", "Hangup"},
}


class TwimlError(ValueError):
    """The body is not a TwiML ``<Response>``."""


@dataclass(frozen=True)
class Context:
    """The document being run: its URL (for relative URLs, Gather's default action) and mode."""

    url: str
    mode: Mode

    def resolve(self, url: str) -> str:
        """``url`` made absolute against the document's URL."""
        return urljoin(self.url, url.strip())


def parse_twiml(body: str) -> list[etree._Element]:
    """The verbs of a TwiML document, in order; raises ``TwimlError``."""
    try:
        root = etree.fromstring(body.strip().encode())
    except (etree.XMLSyntaxError, ValueError) as error:
        raise TwimlError(str(error)) from error
    if tag_of(root) != "Response":
        raise TwimlError(f"root element is <{tag_of(root)}>, not <Response>")
    return [el for el in root if isinstance(el.tag, str)]


def tag_of(el: etree._Element) -> str:
    """Element name without namespace."""
    return etree.QName(el).localname


def text_of(el: etree._Element) -> str:
    """All text inside ``el`` (SSML included), whitespace collapsed."""
    return " ".join("".join(el.itertext()).split())


def loops(el: etree._Element) -> Iterable[int]:
    """Iterations for a ``loop`` attribute (``0`` means forever)."""
    count = int(el.get("loop", "1"))
    return itertools.count() if count == 0 else range(count)


class Interpreter:
    """Runs TwiML on legs of ``sim`` (see the module docstring for the handler protocol)."""

    def __init__(self, sim: TwilioSim) -> None:
        """Bind to the simulator whose legs, queues and clock the verbs act on."""
        self.sim = sim
        self.verbs: dict[str, Callable[..., Generator]] = {
            "Say": self.say, "Play": self.play, "Pause": self.pause, "Gather": self.gather,
            "Redirect": self.redirect, "Hangup": self.hangup, "Reject": self.reject,
            "Leave": self.leave, "Message": self.message, "Sms": self.message,
            "Enqueue": self.enqueue, "Dial": self.dial,
        }

    # -- documents -----------------------------------------------------------------------

    def run_program(self, leg: Leg, fetch: Fetch, mode: Mode = Mode.CALL) -> Generator:
        """Fetch and run documents on ``leg`` until one runs out (``END``) or ``<Leave>``s."""
        instant, last_time = 0, None
        while True:
            instant = instant + 1 if self.sim.now == last_time else 0
            last_time = self.sim.now
            if instant > MAX_INSTANT_FETCHES:
                self.app_error(leg, fetch.url, "redirect loop")
            ctx, verbs = self.load(leg, fetch, mode)
            outcome: Any = None
            for el in verbs:
                outcome = yield from self.execute(leg, el, ctx)
                if outcome is not None:
                    break
            if not isinstance(outcome, Fetch):
                return outcome or END
            fetch = outcome

    def load(self, leg: Leg, fetch: Fetch, mode: Mode) -> tuple[Context, list[etree._Element]]:
        """Request ``fetch`` (falling back as Twilio would) and parse it; errors hang up."""
        verbs, error = self._request_twiml(leg, fetch)
        if error and self._uses_fallback(leg, fetch):
            params = fetch.params | {"ErrorCode": error, "ErrorUrl": fetch.url}
            fetch = Fetch(self.sim.fallback_url or "", "POST", params)
            verbs, error = self._request_twiml(leg, fetch)
        if error:
            self.app_error(leg, fetch.url, f"error {error}")
        return Context(fetch.url, mode), verbs

    def _request_twiml(self, leg: Leg, fetch: Fetch) -> tuple[list[etree._Element], str]:
        """(verbs, "") or ([], Twilio error code: 11200 HTTP failure, 12100 bad document)."""
        if fetch.twiml is not None:
            status, body = 200, fetch.twiml
        else:
            status, body = self.sim.post(fetch.url, self.sim.call_params(leg) | fetch.params)
        if not 200 <= status < 300:
            return [], "11200"
        try:
            return parse_twiml(body), ""
        except TwimlError:
            return [], "12100"

    def _uses_fallback(self, leg: Leg, fetch: Fetch) -> bool:
        fallback = self.sim.fallback_url
        return bool(fallback) and leg.direction == Direction.INBOUND and fetch.url != fallback

    def app_error(self, leg: Leg, url: str, detail: str) -> None:
        """Twilio's "an application error has occurred", then hang up."""
        self.sim.log("error", sid=leg.sid, url=url, detail=detail)
        if leg.status == CallStatus.RINGING:
            self.sim.answer(leg)  # Twilio answers to say so
        self.hear(leg, "say", "[application error]")
        raise HungUp(CallStatus.COMPLETED)

    def execute(self, leg: Leg, el: etree._Element, ctx: Context) -> Generator:
        """Run one verb (answering an inbound leg first, unless it is ``<Reject>``)."""
        name = tag_of(el)
        if name not in ALLOWED[ctx.mode] or name not in self.verbs:
            self.app_error(leg, ctx.url, f"<{name}> not allowed in {ctx.mode.value} document")
        if leg.status == CallStatus.RINGING and name != "Reject":
            self.sim.answer(leg)
        return (yield from self.verbs[name](leg, el, ctx))

    def post_ignored(self, leg: Leg, fetch: Fetch | None) -> None:
        """Request ``fetch`` for its side effect only (after a hangup or redirect)."""
        if fetch is not None:
            self.sim.post(fetch.url, self.sim.call_params(leg) | fetch.params)

    def hear(self, leg: Leg, kind: str, text: str) -> None:
        """Play ``text`` to the party on ``leg`` (its transcript, its phone's, the log)."""
        leg.heard.append(text)
        self.sim.phone_for(leg).heard.append(text)
        self.sim.log(kind, sid=leg.sid, text=text)

    # -- simple verbs ------------------------------------------------------------------

    def say(self, leg: Leg, el: etree._Element, ctx: Context) -> Generator:
        """``<Say>``: len/15 seconds (at least 1) per loop."""
        text = text_of(el)
        for _ in loops(el):
            self.hear(leg, "say", text)
            yield max(1.0, len(text) / SAY_CHARS_PER_SECOND)

    def play(self, leg: Leg, el: etree._Element, ctx: Context) -> Generator:
        """``<Play>``: 2 seconds per loop; heard as ``[play URL]`` or ``[play digits D]``."""
        digits = el.get("digits")
        label = f"[play digits {digits}]" if digits else f"[play {text_of(el)}]"
        for _ in loops(el):
            self.hear(leg, "play", label)
            yield PLAY_SECONDS

    def pause(self, leg: Leg, el: etree._Element, ctx: Context) -> Generator:
        """``<Pause length=N>`` (default 1 second)."""
        length = float(el.get("length", "1"))
        self.hear(leg, "pause", f"[pause {length:g}]")
        yield length

    def redirect(self, leg: Leg, el: etree._Element, ctx: Context) -> Generator:
        """``<Redirect>``: run the document at its URL instead."""
        url = ctx.resolve(text_of(el))
        self.sim.log("redirect", sid=leg.sid, url=url)
        return Fetch(url, el.get("method", "POST"))
        yield  # pragma: no cover

    def hangup(self, leg: Leg, el: etree._Element, ctx: Context) -> Generator:
        """``<Hangup>``."""
        raise HungUp(CallStatus.COMPLETED)
        yield  # pragma: no cover

    def reject(self, leg: Leg, el: etree._Element, ctx: Context) -> Generator:
        """``<Reject>``: an unanswered call ends busy (reason=busy) or no-answer."""
        self.sim.log("reject", sid=leg.sid, reason=el.get("reason", "rejected"))
        if leg.status != CallStatus.RINGING:
            raise HungUp(CallStatus.COMPLETED)
        busy = el.get("reason") == "busy"
        raise HungUp(CallStatus.BUSY if busy else CallStatus.NO_ANSWER)
        yield  # pragma: no cover

    def leave(self, leg: Leg, el: etree._Element, ctx: Context) -> Generator:
        """``<Leave>``: ends a wait document and takes the caller out of the queue."""
        return LEAVE if ctx.mode == Mode.WAIT else None
        yield  # pragma: no cover

    def message(self, leg: Leg, el: etree._Element, ctx: Context) -> Generator:
        """``<Message>``/``<Sms>``: an SMS to the far party (default) from the hotline side."""
        inbound = leg.direction == Direction.INBOUND
        far, near = (leg.from_, leg.to) if inbound else (leg.to, leg.from_)
        self.sim.create_message(
            to=el.get("to") or far, from_=el.get("from") or near, body=text_of(el),
            status_callback=el.get("statusCallback"), direction="outbound-reply",
        )
        return None
        yield  # pragma: no cover

    # -- Gather --------------------------------------------------------------------------

    def gather(self, leg: Leg, el: etree._Element, ctx: Context) -> Generator:
        """``<Gather>``: prompts, then the phone's input (or the timeout) decides.

        The phone is asked once the prompts have played; its reply's ``after`` counts from
        the start of the gather, so input "during the prompts" is taken when they end.
        """
        timeout = float(el.get("timeout", "5"))
        prompt = " ".join(text_of(c) for c in el if tag_of(c) == "Say")
        self.sim.log("gather", sid=leg.sid, prompt=prompt)
        start = self.sim.now
        for child in el:
            if tag_of(child) not in PROMPTS:
                self.app_error(leg, ctx.url, f"<{tag_of(child)}> inside <Gather>")
            yield from self.verbs[tag_of(child)](leg, child, ctx)
        reply = self.sim.phone_for(leg).on_gather(leg, prompt)
        given = gather_input(el, reply, timeout)
        action = Fetch(ctx.resolve(el.get("action", ctx.url)), el.get("method", "POST"))
        if given is not None and start + given.at <= self.sim.now + timeout:
            yield max(0.0, start + given.at - self.sim.now) + given.settle
            self._record_input(leg, given.params)
            return replace(action, params=given.params)
        yield timeout
        self.sim.log("input", sid=leg.sid, timeout=True)
        return action if el.get("actionOnEmptyResult") == "true" else None

    def _record_input(self, leg: Leg, params: dict[str, str]) -> None:
        if "Digits" in params:
            leg.digits_sent.append(params["Digits"])
        if "SpeechResult" in params:
            leg.speech_sent.append(params["SpeechResult"])
        self.sim.log("input", sid=leg.sid, **params)

    # -- Enqueue -------------------------------------------------------------------------

    def enqueue(self, leg: Leg, el: etree._Element, ctx: Context) -> Generator:
        """``<Enqueue>``: wait in the queue (looping waitUrl) until left, taken or gone."""
        name = text_of(el)
        self.sim.join_queue(leg, name)
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

    def _queue_wait(self, leg: Leg, name: str, wait: Fetch | None) -> Generator:
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

    def queue_params(self, leg: Leg, name: str) -> dict[str, str]:
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

    def _dequeued(self, leg: Leg, el: etree._Element, ctx: Context, taken: Dequeued) -> Generator:
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

    def _queue_result(self, leg: Leg, el: etree._Element, ctx: Context, result: str,
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

    # -- Dial ----------------------------------------------------------------------------

    def dial(self, leg: Leg, el: etree._Element, ctx: Context) -> Generator:
        """``<Dial>`` one ``<Queue>`` or one or more ``<Number>`` s (a bare number counts)."""
        dial = DialState(leg, Mailbox(self.sim), float(el.get("timeout", "30")),
                         float(el.get("timeLimit", DIAL_TIME_LIMIT)))
        nouns = [c for c in el if isinstance(c.tag, str)]
        kinds = {tag_of(n) for n in nouns}
        try:
            if kinds == {"Queue"} and len(nouns) == 1:
                yield from self._dial_queue(leg, nouns[0], dial, ctx)
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

    def _dial_numbers(self, leg: Leg, el: etree._Element, targets: list[tuple[str, Any, str]],
                      dial: DialState, ctx: Context) -> Generator:
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

    def _child_phase(self, child: Leg, dial: DialState, whisper: Fetch | None) -> Generator:
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

    def _dial_queue(self, leg: Leg, noun: etree._Element, dial: DialState,
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

    def _dial_result(self, el: etree._Element, ctx: Context, dial: DialState,
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


@dataclass(frozen=True)
class GivenInput:
    """Input a gather accepts: ``at`` seconds after it starts, submitted ``settle`` s later."""

    at: float
    settle: float
    params: dict[str, str]


def gather_input(el: etree._Element, reply: Any, timeout: float) -> GivenInput | None:
    """What a phone's gather reply submits under this ``<Gather>``'s settings (None: nothing).

    Digits submit at once on ``finishOnKey`` (default ``#``) or ``numDigits``, else after
    ``timeout`` more seconds; speech after ``speechTimeout`` (``auto``: 1 s; unset: timeout).
    """
    inputs = set(el.get("input", "dtmf").split())
    if isinstance(reply, Press) and "dtmf" in inputs and reply.digits:
        return _digits_input(el, reply, timeout)
    if isinstance(reply, Speak) and "speech" in inputs and reply.text:
        setting = el.get("speechTimeout")
        settle = timeout if setting is None else 1.0 if setting == "auto" else float(setting)
        params = {"SpeechResult": reply.text, "Confidence": f"{reply.confidence:.2f}"}
        return GivenInput(reply.after, settle, params)
    return None


def _digits_input(el: etree._Element, reply: Press, timeout: float) -> GivenInput:
    finish_key = el.get("finishOnKey", "#")
    num_digits = int(el.get("numDigits", "0") or 0)
    digits, settle, finished = reply.digits, timeout, ""
    if finish_key and finish_key in digits:
        digits, settle, finished = digits[: digits.index(finish_key)], 0.0, finish_key
    elif num_digits and len(digits) >= num_digits:
        digits, settle = digits[:num_digits], 0.0
    return GivenInput(reply.after, settle, {"Digits": digits, "FinishedOnKey": finished})


#: Which unconnected child status a multi-number ``<Dial>`` reports, most telling first.
_UNCONNECTED_ORDER = ("no-answer", "busy", "failed", "canceled")


def unconnected_status(children: list[Leg]) -> str:
    """DialCallStatus when nobody was connected (answered but whisper hung up: no-answer)."""
    statuses = {"no-answer" if c.answer_time is not None else str(c.status) for c in children}
    return next((s for s in _UNCONNECTED_ORDER if s in statuses), "no-answer")

