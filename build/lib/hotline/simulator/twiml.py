"""The TwiML interpreter: runs the app's documents on a leg, blocking in virtual time.

Each verb handler is a generator (it yields seconds or ``Receive`` waits) that returns
``None`` (go on with the next verb), a ``Fetch`` (request it and run that document instead)
or ``LEAVE`` (``<Leave>`` in a queue's wait document). This module has the documents and the
simple verbs; ``<Gather>`` is in ``twiml_gather``, ``<Enqueue>``/``<Dial>`` in ``twiml_dial``,
the shared modes and parsing helpers in ``twiml_base``.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Generator

from lxml import etree

from hotline.simulator.core import Sim
from hotline.simulator.state import CALL_BREAK, CallStatus, Direction, Fetch, HungUp, Leg
from hotline.simulator.twiml_base import (  # noqa: F401 - re-exported for older imports
    ALLOWED, DIAL_TIME_LIMIT, END, LEAVE, MAX_INSTANT_FETCHES, MIN_WAIT_LOOP, PLAY_SECONDS,
    PROMPTS, SAY_CHARS_PER_SECOND, Context, Mode, TwimlError, loops, parse_twiml, tag_of,
    text_of,
)
from hotline.simulator.twiml_dial import DialVerbs, unconnected_status  # noqa: F401
from hotline.simulator.twiml_gather import GatherVerbs, GivenInput, gather_input  # noqa: F401


class Interpreter(GatherVerbs, DialVerbs):
    """Runs TwiML on legs of ``sim`` (see the module docstring for the handler protocol)."""

    def __init__(self, sim: Sim) -> None:
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
        instant, loaded_at = 0, None  # documents in a row that took no time to play
        while True:
            instant = instant + 1 if self.sim.now == loaded_at else 0
            if instant > MAX_INSTANT_FETCHES:
                self.app_error(leg, fetch.url, "redirect loop")
            ctx, verbs = yield from self.load(leg, fetch, mode)
            loaded_at = self.sim.now
            outcome: Any = None
            for el in verbs:
                outcome = yield from self.execute(leg, el, ctx)
                if outcome is not None:
                    break
            if not isinstance(outcome, Fetch):
                return outcome or END
            fetch = outcome

    def load(self, leg: Leg, fetch: Fetch, mode: Mode
             ) -> Generator[Any, Any, tuple[Context, list[etree._Element]]]:
        """Request ``fetch`` (falling back as Twilio would) and parse it; errors hang up."""
        verbs, error = yield from self._request_twiml(leg, fetch)
        if error and self._uses_fallback(leg, fetch):
            params = fetch.params | {"ErrorCode": error, "ErrorUrl": fetch.url}
            fetch = Fetch(self.sim.fallback_url or "", "POST", params)
            verbs, error = yield from self._request_twiml(leg, fetch)
        if error:
            self.app_error(leg, fetch.url, f"error {error}")
        return Context(fetch.url, mode), verbs

    def _request_twiml(self, leg: Leg, fetch: Fetch
                       ) -> Generator[Any, Any, tuple[list[etree._Element], str]]:
        """(verbs, "") or ([], Twilio error code: 11200 HTTP failure, 12100 bad document)."""
        if fetch.twiml is not None:
            status, body = 200, fetch.twiml
        else:
            leg.requested_wall = time.time()
            status, body = yield from self.sim.fetch(
                fetch.url, self.sim.call_params(leg) | fetch.params)
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
            self.sim.pick_up(leg)  # Twilio answers to say so
        self.hear(leg, "say", "[application error]")
        raise HungUp(CallStatus.COMPLETED)

    def execute(self, leg: Leg, el: etree._Element, ctx: Context) -> Generator:
        """Run one verb (answering an inbound leg first, unless it is ``<Reject>``)."""
        name = tag_of(el)
        if name not in ALLOWED[ctx.mode] or name not in self.verbs:
            self.app_error(leg, ctx.url, f"<{name}> not allowed in {ctx.mode.value} document")
        if leg.status == CallStatus.RINGING and name != "Reject":
            self.sim.pick_up(leg)
        return (yield from self.verbs[name](leg, el, ctx))

    def post_ignored(self, leg: Leg, fetch: Fetch | None) -> None:
        """Request ``fetch`` for its side effect only (after a hangup or redirect)."""
        if fetch is not None:
            self.sim.send(fetch.url, self.sim.call_params(leg) | fetch.params)

    def hear(self, leg: Leg, kind: str, text: str) -> None:
        """Play ``text`` to the party on ``leg`` (its transcript, its phone's, the log)."""
        phone = self.sim.phone_for(leg)
        if phone.live_input and not leg.heard and phone.heard and phone.heard[-1] != CALL_BREAK:
            phone.heard.append(CALL_BREAK)  # a person reads this screen: mark each new call
        leg.heard.append(text)
        phone.heard.append(text)
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
        callback = el.get("statusCallback")
        self.sim.create_message(
            to=el.get("to") or far, from_=el.get("from") or near, body=text_of(el),
            status_callback=ctx.resolve(callback) if callback else None,
            direction="outbound-reply",
        )
        return None
        yield  # pragma: no cover
