"""The scenario harness: the whole hotline through the stand-in, and webhook steps.

``Hotline`` (the ``hotline`` fixture) is the app, the offline Twilio stand-in playing
Twilio's part in virtual time, scripted phones and helpers to stage a story and read its
outcome; ``TextingPhone`` texts by script. ``call``/``press`` post the caller's webhooks one
by one (signed like Twilio) for the tests that drive the menu step by step.
"""

from __future__ import annotations

from sqlalchemy import select

from hotline.core.extensions import db, jobs
from hotline.models import Contact, Offer, Supporter
from hotline.simulator import (Answer, FlaskClientTransport, ScriptedPhone, TwilioSim,
                               serve_in_thread)
from tests.conftest import ACCOUNT_SID, AUTH_TOKEN, HOTLINE_NUMBER, PUBLIC_BASE_URL, run_jobs
from tests.twilio_files import assert_valid_twiml


class CheckedTransport:
    """The simulator's way into the app, checking every TwiML document it gets back."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.documents: list[str] = []

    def post(self, url, params, headers):
        status, body = self.inner.post(url, params, headers)
        if status == 200 and body.lstrip().startswith("<"):
            assert_valid_twiml(body)
            self.documents.append(body)
        return status, body


class Hotline:
    """The app, the simulator and helpers to stage a story and read its outcome."""

    def __init__(self, app) -> None:
        self.app = app
        self.transport = CheckedTransport(FlaskClientTransport(app.test_client(), PUBLIC_BASE_URL))
        self.sim = TwilioSim(self.transport, account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN,
                             voice_url=f"{PUBLIC_BASE_URL}/twilio/voice",
                             status_callback_url=f"{PUBLIC_BASE_URL}/twilio/voice/status",
                             fallback_url=f"{PUBLIC_BASE_URL}/twilio/voice/fallback",
                             sms_url=f"{PUBLIC_BASE_URL}/twilio/sms",
                             numbers=(HOTLINE_NUMBER,))
        self.base_url, self.server = serve_in_thread(self.sim)
        app.extensions["hotline.settings"] = app.extensions["hotline.settings"].replace(
            TWILIO_API_BASE_URL=self.base_url)
        self.sim.on_idle.append(lambda: run_jobs(app))
        self.count = 0

    def supporter(self, name, tier=1, available=True, phone_class=None, **script):
        self.count += 1
        number = f"+1617555{self.count + 10:04d}"
        with self.app.app_context():
            db.session.add(Supporter(name=name, phone=number, tier=tier, available=available))
            db.session.commit()
        script.setdefault("gather", ["1"] * 20)  # presses 1 on every offer
        return self.sim.add_phone((phone_class or ScriptedPhone)(number, **script))

    def clinician(self, number="+16175550123", **script) -> ScriptedPhone:
        script.setdefault("ring", Answer(1))
        return self.sim.add_phone(ScriptedPhone(number, **script))

    def call(self, phone, after=0.0):
        legs = []
        self.sim.schedule(after, lambda: legs.append(self.sim.dial(phone.number, HOTLINE_NUMBER)))
        return legs

    def run(self, seconds=900):
        self.sim.run(max_seconds=seconds)

    def contacts(self) -> list[Contact]:
        with self.app.app_context():
            return list(db.session.scalars(select(Contact).order_by(Contact.id)))

    def offers(self) -> list[tuple[str, str, int]]:
        with self.app.app_context():
            rows = db.session.scalars(select(Offer).order_by(Offer.id))
            return [(o.supporter.name, o.state, o.tier) for o in rows]

    def busy(self) -> list[str]:
        with self.app.app_context():
            return [s.name for s in db.session.scalars(select(Supporter))
                    if s.busy_with is not None]

    def legs_to(self, phone):
        return [leg for leg in self.sim.legs.values() if leg.to == phone.number]


def heard(phone, words):
    return any(words in line for line in phone.heard)


class TextingPhone(ScriptedPhone):
    """Answers texts by script: when a received text contains a trigger, reply after a delay."""

    def __init__(self, number, replies=(), delay=5.0, **kwargs):
        super().__init__(number, **kwargs)
        self.replies = list(replies)
        self.delay = delay

    def on_message(self, message):
        super().on_message(message)
        for trigger, reply in list(self.replies):
            if trigger in (message.get("body") or ""):
                self.replies.remove((trigger, reply))
                self.text(reply, after=self.delay)
                break

    def text(self, body, after=0.0):
        self.sim.schedule(after, lambda: self.sim.send_sms(self.number, HOTLINE_NUMBER, body))

    def received(self):
        return [m["body"] for m in self.messages]


def clinician(hotline, number, replies=()):
    return hotline.sim.add_phone(TextingPhone(number, replies=replies))


def run_scheduled(hotline):
    """Run RQ's scheduled jobs now (offer expiry, idle close), as the scheduler would later."""
    queue = jobs.queue
    registry = queue.scheduled_job_registry
    for job_id in registry.get_job_ids():
        registry.remove(job_id)
        queue.enqueue_job(queue.fetch_job(job_id))
    run_jobs(hotline.app)


def connected_conversation(hotline, number: str):
    """Ada (answering YES) texting with a clinician at ``number`` who asked to text (2) and
    will say NO to check-ins: the two phones, connected."""
    ada = hotline.supporter("Ada", phone_class=TextingPhone, replies=[("Reply YES", "YES")])
    doc = clinician(hotline, number, replies=[("Reply 1", "2"), ("check-in text", "NO")])
    doc.text("hello")
    hotline.run(600)
    return ada, doc


# Webhook by webhook (test_voice_menu, test_voice_queue, test_words)

CALLER = "+16175550123"


def call(twilio, sid="CA" + "a" * 32, caller=CALLER):
    return twilio.post("/twilio/voice", {"CallSid": sid, "From": caller, "To": "+16175550100",
                                         "CallStatus": "ringing", "Direction": "inbound"})


def press(twilio, contact_id, digits="", turn=0, speech="", path="menu", caller=CALLER):
    params = {"CallSid": "CA" + "a" * 32, "From": caller}
    if digits:
        params["Digits"] = digits
    if speech:
        params["SpeechResult"] = speech
    return twilio.post(f"/twilio/voice/{contact_id}/{path}", params, query={"turn": turn})


def only_contact(session) -> Contact:
    return session.scalars(select(Contact)).one()
