"""The caller's menu, queue and options, webhook by webhook (signed like Twilio)."""

from __future__ import annotations

from rq import Queue
from sqlalchemy import select

from hotline.privacy import primitives as privacy
from hotline.core.extensions import jobs, settings
from hotline.models import CallbackRequest, Contact, ContactEvent
from tests.conftest import PUBLIC_BASE_URL, twiml
from tests.scenario import CALLER, call, only_contact, press


def test_incoming_call_opens_a_contact_known_only_by_keyed_hash(twilio, session):
    doc = twiml(call(twilio))
    contact = only_contact(session)
    assert contact.caller_key == privacy.caller_key(CALLER, settings())
    assert CALLER not in contact.caller_key and len(contact.caller_key) == 64
    gather = doc.find("Gather")
    assert gather.get("input") == "dtmf speech" and gather.get("numDigits") == "1"
    assert gather.get("action") == f"{PUBLIC_BASE_URL}/twilio/voice/{contact.id}/menu?turn=0"
    says = [s.text for s in gather.findall("Say")]
    assert "confidential" in says[0] and "press 1" in says[1]
    assert doc.find("Redirect").text == gather.get("action")


def test_repeated_incoming_webhook_reuses_the_contact(twilio, session):
    call(twilio)
    call(twilio)
    assert len(session.scalars(select(Contact)).all()) == 1


def test_unsigned_and_missigned_requests_are_refused(twilio, session):
    assert twilio.post("/twilio/voice", {"CallSid": "CA1"}, signature="").status_code == 403
    assert twilio.post("/twilio/voice", {"CallSid": "CA1"}, signature="bogus").status_code == 403
    assert session.scalars(select(Contact)).all() == []


def test_signature_covers_the_parameters(twilio):
    good = twilio.validator.compute_signature(PUBLIC_BASE_URL + "/twilio/voice",
                                              {"CallSid": "CA1", "From": CALLER})
    response = twilio.post("/twilio/voice", {"CallSid": "CA1", "From": "+16175550999"},
                           signature=good)
    assert response.status_code == 403


def test_silence_repeats_the_menu_once_then_talks_now(twilio, session):
    call(twilio)
    contact = only_contact(session)
    first = twiml(press(twilio, contact.id, turn=0))
    assert first.find("Say").text.startswith("I did not hear")
    assert first.find("Gather").get("action").endswith("/menu?turn=1")
    second = twiml(press(twilio, contact.id, turn=1))
    assert second.find("Enqueue") is not None
    session.refresh(contact)
    assert contact.state == "waiting" and contact.attempt == 1


def test_unknown_key_says_so_and_repeats(twilio, session):
    call(twilio)
    contact = only_contact(session)
    doc = twiml(press(twilio, contact.id, digits="7"))
    assert doc.find("Say").text.startswith("Sorry, that is not one of the choices")
    assert doc.find("Gather") is not None and doc.find("Enqueue") is None


def test_press_1_queues_the_caller_and_starts_routing(twilio, session):
    call(twilio)
    contact = only_contact(session)
    doc = twiml(press(twilio, contact.id, digits="1"))
    enqueue = doc.find("Enqueue")
    assert enqueue.text == f"hotline-contact-{contact.id}"
    assert enqueue.get("waitUrl") == f"{PUBLIC_BASE_URL}/twilio/voice/{contact.id}/wait"
    assert enqueue.get("action") == f"{PUBLIC_BASE_URL}/twilio/voice/{contact.id}/queue-exit"
    queued = Queue("hotline", connection=jobs.queue.connection).jobs
    assert [(j.func_name, j.args) for j in queued] == [("workers.offer.route", (contact.id, 1))]


def test_saying_talk_works_like_pressing_1(twilio, session):
    call(twilio)
    contact = only_contact(session)
    assert twiml(press(twilio, contact.id, speech="I just need to talk")).find("Enqueue") \
        is not None


def test_crisis_words_win_over_other_words(twilio, session):
    call(twilio)
    contact = only_contact(session)
    doc = twiml(press(twilio, contact.id, speech="I need help I am in danger"))
    assert doc.find("Dial").text == "988"


def test_press_9_transfers_to_the_crisis_line(twilio, session):
    call(twilio)
    contact = only_contact(session)
    doc = twiml(press(twilio, contact.id, digits="9"))
    dial = doc.find("Dial")
    assert dial.text == "988" and dial.get("callerId") is None
    session.refresh(contact)
    assert contact.outcome == "crisis_transfer"
    failed = twiml(twilio.post_url(dial.get("action"), {"DialCallStatus": "failed"}))
    assert "dial 9 8 8" in failed.find("Say").text


def test_press_2_keeps_the_number_sealed_and_promises_a_time(twilio, session, make_supporter):
    make_supporter()  # someone is on: the roster can keep "within 30 minutes"
    call(twilio)
    contact = only_contact(session)
    doc = twiml(press(twilio, contact.id, digits="2"))
    assert "within 30 minutes" in doc.find("Say").text and "988" in doc.find("Say").text
    request = session.scalars(select(CallbackRequest)).one()
    assert CALLER not in request.sealed_number
    assert privacy.unseal(request.sealed_number, settings()) == CALLER
    session.refresh(contact)
    assert contact.outcome == "callback_requested"


def test_callback_without_caller_id_is_not_promised(twilio, session):
    call(twilio, caller="anonymous")
    contact = only_contact(session)
    doc = twiml(press(twilio, contact.id, digits="2", caller="anonymous"))
    assert "cannot see a number" in doc.find("Say").text
    assert doc.find("Gather") is not None
    assert session.scalars(select(CallbackRequest)).all() == []


def test_press_8_switches_to_spanish(twilio, session):
    call(twilio)
    contact = only_contact(session)
    doc = twiml(press(twilio, contact.id, digits="8"))
    say = doc.find("Gather/Say")
    assert say.get("language") == "es-US" and say.text.startswith("Para hablar")
    session.refresh(contact)
    assert contact.language == "es"


def test_events_carry_no_number_and_minute_resolution(twilio, session):
    call(twilio)
    contact = only_contact(session)
    press(twilio, contact.id, digits="1")
    events = session.scalars(select(ContactEvent)).all()
    assert [e.kind for e in events] == ["started", "queued"]
    assert all(e.at.second == 0 and e.at.microsecond == 0 for e in events)


def test_a_retried_delivery_has_one_effect(twilio, session):
    call(twilio)
    contact = only_contact(session)
    token = {"I-Twilio-Idempotency-Token": "a1b2c3-retry-token"}
    path = f"/twilio/voice/{contact.id}/menu"
    params = {"CallSid": contact.call_sid, "Digits": "1"}
    url = PUBLIC_BASE_URL + path
    headers = {"X-Twilio-Signature": twilio.validator.compute_signature(url, params), **token}
    first = twilio.client.post(path, data=params, headers=headers)
    again = twilio.client.post(path, data=params, headers=headers)
    assert first.status_code == again.status_code == 200 and first.data == again.data
    session.refresh(contact)
    assert contact.attempt == 1  # queued once
    assert len(Queue("hotline", connection=jobs.queue.connection).jobs) == 1
