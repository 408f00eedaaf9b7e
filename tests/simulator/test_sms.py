"""Texts phones send to a hotline number: the messaging webhook and its TwiML replies."""

from __future__ import annotations

import pytest
from twilio.twiml.messaging_response import Message, MessagingResponse

from hotline.simulator import InteractivePhone, ScriptedPhone
from tests.simulator.conftest import ACCOUNT_SID, BASE, CALLER, HOTLINE, SUPPORTER

SECRET = "MARKER-body-words"


def messaging(*build) -> MessagingResponse:
    r = MessagingResponse()
    for step in build:
        step(r)
    return r


@pytest.fixture
def texting(sim):
    """The sim with the hotline number's messaging webhook at ``/sms``."""
    sim.sms_url = f"{BASE}/sms"
    return sim


def test_a_text_is_posted_like_twilio_and_the_reply_comes_back(texting, fake):
    sim = texting
    rivera = sim.add_phone(InteractivePhone(CALLER))
    fake.route("/sms")(lambda form: messaging(lambda r: r.message(f"got {len(form['Body'])}")))

    sent = sim.send_sms(CALLER, HOTLINE, SECRET)
    sim.run()

    [form] = fake.to("/sms")
    assert form == {
        "AccountSid": ACCOUNT_SID, "ApiVersion": "2010-04-01", "MessageSid": sent["sid"],
        "SmsSid": sent["sid"], "SmsMessageSid": sent["sid"], "From": CALLER, "To": HOTLINE,
        "Body": SECRET, "NumMedia": "0", "NumSegments": "1", "SmsStatus": "received"}
    assert sent["sid"].startswith("SM") and len(sent["sid"]) == 34
    inbound, reply = sim.messages
    assert (inbound["direction"], inbound["status"], inbound["body"]) == (
        "inbound", "received", SECRET)
    assert (reply["to"], reply["from"], reply["body"], reply["direction"], reply["status"]) == (
        CALLER, HOTLINE, "got 17", "outbound-reply", "delivered")
    assert [(m["body"], m["status"]) for m in rivera.messages] == [("got 17", "delivered")]
    assert [(m["body"], m["direction"]) for m in rivera.sent] == [(SECRET, "inbound")]
    assert [(t, k, d.get("event") or d.get("direction")) for t, k, d in sim.events
            if k in ("message", "status")] == [
        (0, "message", "inbound"), (0, "message", "outbound-reply"), (1, "status", "sent"),
        (2, "status", "delivered")]
    assert sim.events_of("request")[0] == {"url": f"{BASE}/sms", "status": 200,
                                           "sid": sent["sid"]}
    assert SECRET not in sim.timeline()


def test_message_to_attribute_body_child_status_callback_and_redirect(texting, fake):
    sim = texting
    ada = sim.add_phone(ScriptedPhone(SUPPORTER))
    rivera = sim.add_phone(ScriptedPhone(CALLER))
    relay = Message(to=SUPPORTER, action="/relayed")
    relay.body("someone needs you")
    fake.reply("/sms", messaging(lambda r: r.redirect("/sms-2")))
    fake.reply("/sms-2", messaging(lambda r: r.append(relay), lambda r: r.message("thanks")))

    sim.send_sms(CALLER, HOTLINE, "hello")
    sim.run()

    assert fake.paths() == ["/sms", "/sms-2", "/relayed", "/relayed"]
    assert fake.to("/sms-2")[0]["Body"] == "hello"
    assert [f["MessageStatus"] for f in fake.to("/relayed")] == ["sent", "delivered"]
    assert [m["body"] for m in ada.messages] == ["someone needs you"]
    assert [(m["body"], m["from"]) for m in rivera.messages] == [("thanks", HOTLINE)]


@pytest.mark.parametrize(("reply", "status", "error"), [
    ("oops", 500, "error 11200"),
    ("not xml", 200, "error 12100"),
    ("", 204, None),
    ("<Response/>", 200, None),
])
def test_failed_or_empty_replies_send_nothing(texting, fake, reply, status, error):
    fake.flask.view_functions["hook"] = lambda path: (reply, status)

    sent = texting.send_sms(CALLER, HOTLINE, "hello")
    texting.run()

    assert [m["sid"] for m in texting.messages] == [sent["sid"]]
    errors = [(d["sid"], d["detail"]) for d in texting.events_of("error")]
    assert errors == ([(sent["sid"], error)] if error else [])


def test_other_verbs_are_reported_and_skipped(texting, fake):
    fake.reply("/sms", "<Response><Say>hi</Say><Message>still sent</Message></Response>")
    texting.send_sms(CALLER, HOTLINE, "hello")
    texting.run()
    assert [m["body"] for m in texting.messages] == ["hello", "still sent"]
    assert texting.events_of("error")[0]["detail"] == "<Say> not allowed in a messaging response"


def test_without_an_sms_url_the_text_is_kept_and_nothing_is_posted(sim, fake):
    sent = sim.send_sms(CALLER, HOTLINE, "hello")
    sim.run()
    assert fake.requests == [] and sim.messages == [sent]


def test_texts_must_go_to_a_hotline_number_and_say_something(texting):
    with pytest.raises(ValueError, match="is not one of the hotline numbers"):
        texting.send_sms(CALLER, SUPPORTER, "hello")
    with pytest.raises(ValueError, match="needs a body"):
        texting.send_sms(CALLER, HOTLINE, " ")
    assert texting.messages == []


def test_redacting_an_inbound_text_by_sid_keeps_the_phones_copy(texting, fake, rest):
    rivera = texting.add_phone(InteractivePhone(CALLER))
    sent = texting.send_sms(CALLER, HOTLINE, SECRET)
    texting.run()

    redacted = rest.messages(sent["sid"]).update(body="")

    assert (redacted.body, redacted.direction, redacted.status) == ("", "inbound", "received")
    assert texting.find_message(sent["sid"])["body"] == ""
    assert rivera.sent[0]["body"] == SECRET
    assert texting.snapshot()["phones"][CALLER]["messages"][0]["body"] == SECRET
    assert texting.events_of("redact") == [{"sid": sent["sid"]}]


def test_a_text_redacted_once_sent_still_reaches_the_phone_whole(texting, fake, rest):
    """Twilio lets a sent message be redacted before the handset confirms delivery; the
    handset shows what left, not Twilio's blanked log (the web phone showed "(redacted)")."""
    alex = texting.add_phone(InteractivePhone(SUPPORTER))
    message = texting.create_message(to=SUPPORTER, from_=HOTLINE, body=SECRET)
    texting.advance(1.5)                                   # sent, not yet delivered
    assert rest.messages(message["sid"]).update(body="").body == ""
    texting.run()
    assert texting.find_message(message["sid"])["body"] == ""
    assert [m["body"] for m in alex.messages] == [SECRET]
    assert texting.snapshot()["phones"][SUPPORTER]["messages"][0]["body"] == SECRET
