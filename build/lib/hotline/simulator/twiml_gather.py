"""``<Gather>``: a scripted phone answers once the prompts end; a live one keys in any time.

Scripted phones are asked once the prompts have played (their reply's ``after`` counts
from the start of the gather). Interactive phones send keys and words through
``sim.press``/``sim.speak`` into the gather's mailbox: a key cuts the prompts short
(barge-in), then ``finishOnKey``, ``numDigits`` and ``timeout`` (from the end of the
prompts, reset by each key) decide when the input is complete, as on Twilio.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Generator

from lxml import etree

from hotline.simulator.phones import Press, Speak
from hotline.simulator.state import TIMEOUT, Collecting, Fetch, Leg, Mailbox, Receive
from hotline.simulator.twiml_base import PROMPTS, Context, Runner, tag_of, text_of


class GatherVerbs:
    """The ``<Gather>`` verb of ``Interpreter``."""

    def gather(self: Runner, leg: Leg, el: etree._Element, ctx: Context) -> Generator:
        """``<Gather>``: prompts and input; the action gets the input (or the timeout passes)."""
        timeout = float(el.get("timeout", "5"))
        prompt = " ".join(text_of(c) for c in el if tag_of(c) == "Say")
        self.sim.log("gather", sid=leg.sid, prompt=prompt)
        state = Collecting(
            Mailbox(self.sim), num_digits=int(el.get("numDigits", "0") or 0),
            finish_key=el.get("finishOnKey", "#"),
            inputs=frozenset(el.get("input", "dtmf").split()),
            barge_in=el.get("bargeIn", "true") != "false",
            live=self.sim.phone_for(leg).live_input,
        )
        leg.gathering = state
        try:
            if state.live:
                params = yield from self._live_gather(leg, el, ctx, state, timeout)
            else:
                params = yield from self._scripted_gather(leg, el, ctx, prompt, timeout)
        finally:
            leg.gathering = None
        action = Fetch(ctx.resolve(el.get("action", ctx.url)), el.get("method", "POST"))
        if params is None:
            self.sim.log("input", sid=leg.sid, timeout=True)
            return action if el.get("actionOnEmptyResult") == "true" else None
        self._record_input(leg, params)
        return replace(action, params=params)

    def _scripted_gather(self: Runner, leg: Leg, el: etree._Element, ctx: Context,
                         prompt: str, timeout: float) -> Generator:
        """Play the prompts, then ask the phone; its input is taken when they end."""
        start = self.sim.now
        for child in el:
            if tag_of(child) not in PROMPTS:
                self.app_error(leg, ctx.url, f"<{tag_of(child)}> inside <Gather>")
            yield from self.verbs[tag_of(child)](leg, child, ctx)
        reply = self.sim.phone_for(leg).on_gather(leg, prompt)
        given = gather_input(el, reply, timeout)
        if given is not None and start + given.at <= self.sim.now + timeout:
            yield max(0.0, start + given.at - self.sim.now) + given.settle
            return given.params
        yield timeout
        return None

    def _live_gather(self: Runner, leg: Leg, el: etree._Element, ctx: Context,
                     state: Collecting, timeout: float) -> Generator:
        """Take keys and words from ``state.box`` until the input is complete (None: none)."""
        item = yield from self._live_prompts(leg, el, ctx, state)
        state.prompting = False
        while True:
            if item is None:
                item = yield Receive(state.box, timeout)
            if item is TIMEOUT:
                return {"Digits": state.digits, "FinishedOnKey": ""} if state.digits else None
            kind, value = item
            item = None
            if kind == "speech":
                state.accepting = False
                yield speech_settle(el, timeout)
                text, confidence = value
                return {"SpeechResult": text, "Confidence": f"{confidence:.2f}"}
            done = take_keys(state, value)
            if done is not None:
                state.accepting = False
                return done

    def _live_prompts(self: Runner, leg: Leg, el: etree._Element, ctx: Context,
                      state: Collecting) -> Generator:
        """Play the prompts; the first input that arrives cuts them short and is returned."""
        for child in el:
            name = tag_of(child)
            if name not in PROMPTS:
                self.app_error(leg, ctx.url, f"<{name}> inside <Gather>")
            got = yield from interruptible(self.verbs[name](leg, child, ctx), state.box)
            if got is not None:
                self.sim.log("barge-in", sid=leg.sid)
                return got
        return None

    def _record_input(self: Runner, leg: Leg, params: dict[str, str]) -> None:
        if "Digits" in params:
            leg.digits_sent.append(params["Digits"])
        if "SpeechResult" in params:
            leg.speech_sent.append(params["SpeechResult"])
        self.sim.log("input", sid=leg.sid, **params)


def interruptible(prompt: Generator, box: Mailbox) -> Generator:
    """Run a prompt verb, each of its waits cut short by an item arriving in ``box``.

    Returns that item, or None if the prompt played to its end.
    """
    try:
        command = next(prompt)
        while True:
            got = yield Receive(box, float(command))
            if got is not TIMEOUT:
                return got
            command = prompt.send(None)
    except StopIteration:
        return None
    finally:
        prompt.close()


def take_keys(state: Collecting, keys: str) -> dict[str, str] | None:
    """Add ``keys`` to the gather's digits; the submitted params once it is complete."""
    for key in keys:
        if state.finish_key and key == state.finish_key:
            return {"Digits": state.digits, "FinishedOnKey": key}
        state.digits += key
        if state.num_digits and len(state.digits) >= state.num_digits:
            return {"Digits": state.digits, "FinishedOnKey": ""}
    return None


def speech_settle(el: etree._Element, timeout: float) -> float:
    """Seconds Twilio waits after speech before submitting (``speechTimeout``; auto: 1 s)."""
    setting = el.get("speechTimeout")
    return timeout if setting is None else 1.0 if setting == "auto" else float(setting)


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
        params = {"SpeechResult": reply.text, "Confidence": f"{reply.confidence:.2f}"}
        return GivenInput(reply.after, speech_settle(el, timeout), params)
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
