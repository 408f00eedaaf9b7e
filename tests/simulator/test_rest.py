"""Twilio's REST API emulation, exercised with the real ``twilio.rest.Client``."""

from __future__ import annotations

import base64
import json

import pytest
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.rest import Client
from twilio.twiml.voice_response import Gather

from hotline.simulator import Answer, NoAnswer, ScriptedPhone, make_rest_app
from tests.twilio_files import openapi_spec_path
from tests.simulator.conftest import (
    ACCOUNT_SID, BASE, CALLER, HOTLINE, SUPPORTER, response,
)

ALL_EVENTS = ["initiated", "ringing", "answered", "completed"]


def call_supporter(rest, **extra):
    return rest.calls.create(to=SUPPORTER, from_=HOTLINE, url=f"{BASE}/offer", **extra)


def test_create_rings_answers_and_reports_status_in_order(sim, fake, rest):
    sim.add_phone(ScriptedPhone(SUPPORTER, ring=Answer(4)))
    fake.reply("/offer", response(lambda r: r.say("x" * 45)))       # 3 s

    call = call_supporter(rest, status_callback=f"{BASE}/cb", status_callback_event=ALL_EVENTS,
                          timeout=20)

    assert (call.status, call.direction, call.to, call._from, call.account_sid) == (
        "queued", "outbound-api", SUPPORTER, HOTLINE, ACCOUNT_SID)
    assert call.sid.startswith("CA") and len(call.sid) == 34
    assert call.uri == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Calls/{call.sid}.json"
    leg = sim.legs[call.sid]
    sim.run(until=lambda: leg.ended)
    assert [(t, p, f.get("CallStatus")) for t, p, f in fake.requests] == [
        (0, "/cb", "queued"), (0, "/cb", "ringing"), (4, "/cb", "in-progress"),
        (4, "/offer", "in-progress"), (7, "/cb", "completed")]
    callbacks = fake.to("/cb")
    assert [f["SequenceNumber"] for f in callbacks] == ["0", "1", "2", "3"]
    assert callbacks[-1]["CallDuration"] == "3" and "CallDuration" not in callbacks[0]
    assert {f["Direction"] for f in callbacks} == {"outbound-api"}
    assert callbacks[0]["Timestamp"] == "Wed, 01 Jan 2025 00:00:00 +0000"
    fetched = rest.calls(call.sid).fetch()
    assert (fetched.status, fetched.duration, fetched.start_time.year) == ("completed", "3", 2025)


def test_only_completed_is_sent_unless_other_events_are_asked_for(sim, fake, rest):
    sim.add_phone(ScriptedPhone(SUPPORTER, ring=Answer(1)))
    fake.reply("/offer", response(lambda r: r.hangup()))
    call = call_supporter(rest, status_callback=f"{BASE}/cb")
    sim.run(until=lambda: sim.legs[call.sid].ended)
    assert [f["CallStatus"] for f in fake.to("/cb")] == ["completed"]


def test_unanswered_call_ends_no_answer_at_its_timeout(sim, fake, rest):
    sim.add_phone(ScriptedPhone(SUPPORTER, ring=NoAnswer()))
    call = call_supporter(rest, status_callback=f"{BASE}/cb", timeout=25)
    sim.run(until=lambda: sim.legs[call.sid].ended)
    assert [(t, f["CallStatus"]) for t, _, f in fake.requests] == [(25, "no-answer")]
    assert fake.to("/offer") == []


def test_cancel_ends_a_ringing_call_but_not_an_answered_one(sim, fake, rest):
    sim.add_phone(ScriptedPhone(SUPPORTER, ring=[NoAnswer(), Answer(1)]))
    fake.reply("/offer", response(lambda r: r.pause(length=30)))
    ringing = call_supporter(rest, status_callback=f"{BASE}/cb")
    sim.advance(5)

    updated = rest.calls(ringing.sid).update(status="canceled")

    assert updated.status == "canceled"
    sim.advance(0)
    assert (sim.legs[ringing.sid].status, sim.legs[ringing.sid].end_time) == ("canceled", 5)
    assert [f["CallStatus"] for f in fake.to("/cb")] == ["canceled"]

    answered = call_supporter(rest)
    sim.advance(3)
    assert rest.calls(answered.sid).update(status="canceled").status == "in-progress"
    sim.advance(1)
    assert sim.legs[answered.sid].status == "in-progress"
    rest.calls(answered.sid).update(status="completed")
    sim.advance(0)
    assert (sim.legs[answered.sid].status, sim.legs[answered.sid].end_time) == ("completed", 9)


def test_redirect_with_url_replaces_the_running_twiml(sim, fake, rest):
    sim.add_phone(ScriptedPhone(SUPPORTER, ring=Answer(1)))
    fake.reply("/offer", response(lambda r: r.pause(length=60)))
    fake.reply("/new", response(lambda r: r.say("new document")))
    call = call_supporter(rest)
    sim.advance(10)

    rest.calls(call.sid).update(url=f"{BASE}/new", method="POST")

    leg = sim.legs[call.sid]
    sim.run(until=lambda: leg.ended)
    assert leg.heard == ["[pause 60]", "new document"]
    assert [(t, p) for t, p, _ in fake.requests] == [(1, "/offer"), (10, "/new")]
    assert leg.end_time == 11


def test_redirecting_a_queued_caller_reports_redirected(sim, fake, rest, caller):
    fake.reply("/voice", response(lambda r: r.enqueue("support", wait_url="/wait",
                                                      action="/after")))
    fake.reply("/wait", response(lambda r: r.pause(length=10)))
    fake.reply("/elsewhere", response(lambda r: r.say("crisis line")))
    leg = sim.dial(CALLER, HOTLINE)
    sim.advance(6)

    rest.calls(leg.sid).update(twiml=f"<Response><Redirect>{BASE}/elsewhere</Redirect></Response>")
    sim.run(until=lambda: leg.ended)

    after = fake.to("/after")[0]
    assert (after["QueueResult"], after["QueueTime"]) == ("redirected", "6")
    assert leg.heard[-1] == "crisis line" and sim.queues["support"] == []


def test_bad_credentials_are_refused_with_401(sim, rest):
    intruder = Client(ACCOUNT_SID, "wrong-token")
    intruder.api.base_url = rest.api.base_url
    with pytest.raises(TwilioRestException) as refused:
        intruder.calls.create(to=SUPPORTER, from_=HOTLINE, url=f"{BASE}/offer")
    assert (refused.value.status, refused.value.code) == (401, 20003)
    assert sim.legs == {}
    assert sim.rest_log[-1][:2] == ("POST", f"/2010-04-01/Accounts/{ACCOUNT_SID}/Calls.json")


@pytest.mark.parametrize(("kwargs", "code"), [
    ({"from_": HOTLINE, "url": f"{BASE}/offer"}, 21201),
    ({"to": SUPPORTER, "url": f"{BASE}/offer"}, 21213),
    ({"to": SUPPORTER, "from_": HOTLINE}, 21205),
    ({"to": "5550122222", "from_": HOTLINE, "url": f"{BASE}/offer"}, 21211),
    ({"to": SUPPORTER, "from_": CALLER, "url": f"{BASE}/offer"}, 21210),
])
def test_missing_or_bad_call_parameters_are_400(sim, rest, kwargs, code):
    with pytest.raises(TwilioRestException) as error:
        rest.api.v2010.accounts(ACCOUNT_SID).calls.create(**{"to": "", "from_": "", **kwargs})
    assert (error.value.status, error.value.code) == (400, code)
    assert sim.legs == {}


class Recording:
    """The sim's transport, remembering every URL the sim asked it to request."""

    def __init__(self, inner) -> None:
        self.inner, self.urls = inner, []

    def post(self, url, params, headers):
        self.urls.append(url)
        return self.inner.post(url, params, headers)


ELSEWHERE = ["http://169.254.169.254/latest/meta-data/", "http://127.0.0.1:6379/",
             "https://hotline.test:8443/offer", "https://evil.test/offer"]


def test_the_stand_in_requests_no_url_off_the_apps_origin(sim, fake, rest):
    """SSRF: a Url or StatusCallback elsewhere is a Twilio-like 400 and is never requested,
    nor is a URL in TwiML given to the API (before: created, then requested)."""
    sim.transport = recording = Recording(sim.transport)
    sim.add_phone(ScriptedPhone(SUPPORTER, ring=Answer(1)))
    fake.reply("/offer", response(lambda r: r.pause(length=30)))
    for url in ELSEWHERE:
        with pytest.raises(TwilioRestException) as refused:
            rest.calls.create(to=SUPPORTER, from_=HOTLINE, url=url)
        assert (refused.value.status, refused.value.code) == (400, 21205)
        with pytest.raises(TwilioRestException) as refused:
            call_supporter(rest, status_callback=url)
        assert (refused.value.status, refused.value.code) == (400, 21609)
        with pytest.raises(TwilioRestException) as refused:
            rest.messages.create(to=SUPPORTER, from_=HOTLINE, body="hi", status_callback=url)
        assert (refused.value.status, refused.value.code) == (400, 21609)
    assert sim.legs == {} and sim.messages == []

    assert sim.owns("https://hotline.test:443/offer") and sim.owns("HTTPS://Hotline.test/x")
    live = call_supporter(rest)
    sim.advance(5)
    for url in ELSEWHERE:
        with pytest.raises(TwilioRestException) as refused:
            rest.calls(live.sid).update(url=url)
        assert (refused.value.status, refused.value.code) == (400, 21205)
    rest.calls(live.sid).update(twiml=f"<Response><Redirect>{ELSEWHERE[0]}</Redirect></Response>")
    leg = sim.legs[live.sid]
    sim.run(until=lambda: leg.ended)
    assert leg.heard[-1] == "[application error]"
    assert recording.urls == [f"{BASE}/offer"]


def test_unknown_call_is_404(rest):
    with pytest.raises(TwilioRestException) as error:
        rest.calls("CA" + "0" * 32).fetch()
    assert (error.value.status, error.value.code) == (404, 20404)


def test_messages_are_created_delivered_redacted_and_deleted(sim, fake, rest):
    supporter = sim.add_phone(ScriptedPhone(SUPPORTER))
    message = rest.messages.create(to=SUPPORTER, from_=HOTLINE, body="are you free?",
                                   status_callback=f"{BASE}/sms-status")
    assert (message.sid[:2], message.status, message.body, message.direction) == (
        "SM", "queued", "are you free?", "outbound-api")

    sim.run()

    assert [(t, f["MessageStatus"], f["MessageSid"]) for t, _, f in fake.requests] == [
        (1, "sent", message.sid), (2, "delivered", message.sid)]
    assert [m["body"] for m in supporter.messages] == ["are you free?"]
    assert rest.messages(message.sid).update(body="").body == ""
    assert sim.messages[0]["body"] == "" and supporter.messages[0]["body"] == "are you free?"
    assert rest.messages(message.sid).delete() is True
    assert sim.messages == []
    with pytest.raises(TwilioRestException) as gone:
        rest.messages(message.sid).fetch()
    assert gone.value.status == 404
    assert [(m, p.rsplit("/", 1)[-1]) for m, p, _ in sim.rest_log] == [
        ("POST", "Messages.json"), ("POST", f"{message.sid}.json"),
        ("DELETE", f"{message.sid}.json"), ("GET", f"{message.sid}.json")]
    assert "are you free?" not in sim.timeline()


def test_message_without_body_is_400(rest):
    with pytest.raises(TwilioRestException) as error:
        rest.messages.create(to=SUPPORTER, from_=HOTLINE, body="")
    assert (error.value.status, error.value.code) == (400, 21602)


def test_worker_in_on_idle_and_app_mid_request_can_call_rest(sim, fake, rest, caller):
    """The design's path: queue the caller, a worker calls a supporter out, press 1 bridges."""
    sim.add_phone(ScriptedPhone(SUPPORTER, ring=Answer(3), gather=["1"],
                                hangup_after_bridge=15))
    offer = Gather(num_digits=1, action="/accept")
    offer.say("peer support call: press 1 now")
    fake.reply("/voice", response(lambda r: r.enqueue("support", wait_url="/wait",
                                                      action="/after")))
    fake.reply("/wait", response(lambda r: r.pause(length=20)))
    fake.reply("/offer", response(lambda r: r.append(offer)))
    fake.reply("/accept", response(lambda r: r.dial().queue("support")))
    jobs = []

    @fake.route("/after")
    def after(form):                                      # a REST call inside a webhook
        rest.messages.create(to=CALLER, from_=HOTLINE, body="thanks for calling")
        return response(lambda r: r.hangup())

    def worker():                                         # what an RQ burst would do
        while jobs:
            jobs.pop()()

    sim.on_idle.append(worker)
    leg = sim.dial(CALLER, HOTLINE)
    jobs.append(lambda: call_supporter(rest, status_callback=f"{BASE}/cb"))

    sim.run(until=lambda: leg.ended)

    [supporter_leg] = [sid for sid in sim.legs if sid != leg.sid]
    assert sim.bridges[0].a == leg.sid and sim.bridges[0].b == supporter_leg
    assert (sim.bridges[0].start, sim.bridges[0].end) == (5, 20)
    assert [m["to"] for m in sim.messages] == [CALLER]
    assert [k for _, k, d in sim.events if k == "rest"] == ["rest", "rest"]
    sim.run()
    assert [m["status"] for m in sim.messages] == ["delivered"]


JSON_TYPES = {"string": str, "integer": int, "object": dict}


@pytest.mark.parametrize(("path", "schema", "extra"), [
    ("Calls", "api.v2010.account.call", {"Url": f"{BASE}/offer"}),
    ("Messages", "api.v2010.account.message", {"Body": "hi"})])
def test_resources_have_the_fields_and_types_of_twilios_schema(sim, path, schema, extra):
    spec_file = openapi_spec_path()
    schemas = json.loads(spec_file.read_text())["components"]["schemas"]
    client = make_rest_app(sim).test_client()
    auth = {"Authorization": "Basic " + base64.b64encode(
        f"{ACCOUNT_SID}:{sim.auth_token}".encode()).decode()}
    params = {"To": SUPPORTER, "From": HOTLINE, **extra}     # only the spec's parameters

    created = client.post(f"/2010-04-01/Accounts/{ACCOUNT_SID}/{path}.json", data=params,
                          headers=auth)

    assert created.status_code == 201
    body = created.get_json()
    properties = schemas[schema]["properties"]
    assert set(body) == set(properties)
    for name, spec in properties.items():
        if "$ref" in spec:
            assert body[name] in schemas[spec["$ref"].rsplit("/", 1)[-1]]["enum"], name
        elif body[name] is not None:
            assert isinstance(body[name], JSON_TYPES[spec["type"]]), name


def test_messages_are_listed_newest_first_a_page_at_a_time(sim, rest):
    texts = [sim.send_sms(CALLER, HOTLINE, f"text {n}") for n in range(5)]
    rest.messages.create(to=SUPPORTER, from_=HOTLINE, body="not to the hotline")
    first = rest.messages.page(to=HOTLINE, page_size=2)
    assert [m.sid for m in first] == [texts[4]["sid"], texts[3]["sid"]]
    sim.send_sms(CALLER, HOTLINE, "arrives between two pages")  # the next page goes on
    pages = [first.next_page()]
    pages.append(pages[0].next_page())
    assert [[m.sid for m in page] for page in pages] == [
        [texts[2]["sid"], texts[1]["sid"]], [texts[0]["sid"]]]
    assert pages[-1].next_page() is None
    assert {p["To"] for m, _, p in sim.rest_log if m == "GET"} == {HOTLINE}  # filters kept
    for bad in ({"page_size": 0}, {"page_size": 1001}, {"page_token": "PASMnosuchsid"}):
        with pytest.raises(TwilioException, match='HTTP 400 {"code":20001'):
            rest.messages.page(to=HOTLINE, **bad)
