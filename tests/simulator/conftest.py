"""Fixtures for the simulator's own tests: a tiny signed-webhook app and a sim driving it."""

from __future__ import annotations

from typing import Any, Callable

import pytest
from flask import Flask, request
from twilio.request_validator import RequestValidator
from twilio.rest import Client
from twilio.twiml.voice_response import VoiceResponse

from hotline.simulator import FlaskClientTransport, ScriptedPhone, TwilioSim, serve_in_thread

BASE = "https://hotline.test"
ACCOUNT_SID = "AC" + "1" * 32
AUTH_TOKEN = "sim-test-token"
HOTLINE = "+15550100000"
CALLER = "+15550111111"
SUPPORTER = "+15550122222"

Handler = Callable[[dict[str, str]], "VoiceResponse | str"]


class FakeApp:
    """A webhook app whose routes the test defines; it checks every request's signature.

    ``requests`` holds ``(virtual time, path, form)`` for every request received.
    """

    def __init__(self, base: str = BASE) -> None:
        self.base = base
        self.handlers: dict[str, Handler] = {}
        self.requests: list[tuple[float, str, dict[str, str]]] = []
        self.bad_signatures: list[str] = []
        self.clock: Callable[[], float] = lambda: 0.0
        self.validator = RequestValidator(AUTH_TOKEN)
        self.flask = Flask("fake-webhooks")
        self.flask.add_url_rule("/<path:path>", "hook", self._hook, methods=["POST"])

    def route(self, path: str) -> Callable[[Handler], Handler]:
        """Register a handler for ``path``; it gets the form and returns TwiML."""
        def register(handler: Handler) -> Handler:
            self.handlers[path] = handler
            return handler
        return register

    def reply(self, path: str, response: VoiceResponse | str) -> None:
        """Always answer ``path`` with ``response``."""
        self.handlers[path] = lambda form: response

    def to(self, path: str) -> list[dict[str, str]]:
        """The forms of every request to ``path``, in order."""
        return [form for _, p, form in self.requests if p == path]

    def paths(self) -> list[str]:
        """Every requested path, in order."""
        return [p for _, p, _ in self.requests]

    def _hook(self, path: str) -> Any:
        query = request.query_string.decode()
        url = f"{self.base}/{path}" + (f"?{query}" if query else "")
        signature = request.headers.get("X-Twilio-Signature", "")
        if not self.validator.validate(url, request.form, signature):
            self.bad_signatures.append(url)
            return "bad signature", 403
        form = request.form.to_dict()
        self.requests.append((self.clock(), "/" + path, form))
        handler = self.handlers.get("/" + path)
        if handler is None:
            return "", 204
        body = handler(form)
        return str(body), 200, {"Content-Type": "application/xml"}


@pytest.fixture
def fake() -> Any:
    """The fake webhook app; fails the test if any request arrived badly signed."""
    app = FakeApp()
    yield app
    assert app.bad_signatures == []


@pytest.fixture
def sim(fake: FakeApp) -> TwilioSim:
    """A sim whose hotline number requests ``/voice``, with a status callback on ``/status``."""
    simulator = TwilioSim(
        FlaskClientTransport(fake.flask.test_client(), BASE),
        account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, voice_url=f"{BASE}/voice",
        status_callback_url=f"{BASE}/status", numbers=[HOTLINE],
    )
    fake.clock = lambda: simulator.now
    return simulator


@pytest.fixture
def caller(sim: TwilioSim) -> ScriptedPhone:
    """The clinician's phone: answers, keys nothing, never hangs up on its own."""
    return sim.add_phone(ScriptedPhone(CALLER, gather=[], hangup_after_bridge=None))


@pytest.fixture
def rest(sim: TwilioSim) -> Any:
    """A real ``twilio.rest.Client`` pointed at the sim's REST API in a thread."""
    base_url, server = serve_in_thread(sim)
    client = Client(ACCOUNT_SID, AUTH_TOKEN)
    client.api.base_url = base_url
    yield client
    server.shutdown()


def response(*build: Callable[[VoiceResponse], Any]) -> VoiceResponse:
    """A ``VoiceResponse`` built by applying each callable to it in turn."""
    r = VoiceResponse()
    for step in build:
        step(r)
    return r


def kinds(sim: TwilioSim, sid: str, *, skip: tuple[str, ...] = ("request", "status")) -> list:
    """Event kinds concerning leg ``sid`` (ignoring webhook bookkeeping), in order."""
    return [k for _, k, d in sim.events
            if sid in (d.get("sid"), d.get("a"), d.get("b")) and k not in skip]
