"""Waiting in the queue, leaving it, the options after it, hang-ups and the fallback URL."""

from __future__ import annotations

from rq import Queue
from sqlalchemy import select

from hotline.core.extensions import jobs
from hotline.models import Contact, ContactState
from tests.conftest import BACKUP_NUMBERS, PUBLIC_BASE_URL, twiml
from tests.scenario import CALLER, call, only_contact, press


def queued(twilio, session) -> Contact:
    call(twilio)
    contact = only_contact(session)
    press(twilio, contact.id, digits="1")
    jobs.queue.empty()
    session.refresh(contact)
    return contact


def wait(twilio, contact, seconds):
    return twilio.post(f"/twilio/voice/{contact.id}/wait", {"QueueTime": seconds,
                                                             "CallSid": contact.call_sid})


def job_names():
    return [j.func_name for j in Queue("hotline", connection=jobs.queue.connection).jobs]


def test_wait_reassures_then_pauses(twilio, session):
    contact = queued(twilio, session)
    doc = twiml(wait(twilio, contact, 0))
    assert doc.find("Say").text.startswith("A peer supporter will be with you")
    assert doc.find("Pause").get("length") == "8"
    assert job_names() == []


def test_backup_tier_is_called_in_after_the_backup_threshold(twilio, session):
    contact = queued(twilio, session)
    twiml(wait(twilio, contact, 90))
    session.refresh(contact)
    assert contact.escalated
    assert job_names() == ["workers.offer.route"]
    twiml(wait(twilio, contact, 98))  # already escalated: no second job
    assert job_names() == ["workers.offer.route"]


def test_past_the_maximum_wait_the_caller_leaves_and_hears_options(twilio, session):
    contact = queued(twilio, session)
    assert twiml(wait(twilio, contact, 180)).find("Leave") is not None
    exit_doc = twiml(twilio.post(f"/twilio/voice/{contact.id}/queue-exit",
                                 {"QueueResult": "leave", "From": CALLER}))
    assert "press 1" in exit_doc.find("Gather/Say").text
    session.refresh(contact)
    assert contact.state == "options" and contact.attempt == 2
    assert job_names() == ["workers.offer.cancel_offers"]


def test_exhausted_routing_makes_the_caller_leave_at_once(twilio, session):
    contact = queued(twilio, session)
    contact.exhausted = True
    session.commit()
    assert twiml(wait(twilio, contact, 5)).find("Leave") is not None


def test_options_keep_waiting_requeues_with_a_new_attempt(twilio, session):
    contact = queued(twilio, session)
    twilio.post(f"/twilio/voice/{contact.id}/queue-exit", {"QueueResult": "leave"})
    jobs.queue.empty()
    doc = twiml(press(twilio, contact.id, digits="1", path="options"))
    assert doc.find("Enqueue") is not None
    session.refresh(contact)
    assert contact.state == "waiting" and contact.attempt == 3 and not contact.escalated


def test_options_silence_twice_keeps_waiting_with_the_crisis_line_offered(twilio, session):
    """Issue 14: before, a clinician who simply held on was put through to the crisis
    line after two silent turns (~35 s); now they wait on for a peer, told the crisis
    line's number, and are never dropped."""
    contact = queued(twilio, session)
    twilio.post(f"/twilio/voice/{contact.id}/queue-exit", {"QueueResult": "leave"})
    first = twiml(press(twilio, contact.id, path="options", turn=0))
    assert first.find("Gather") is not None
    second = twiml(press(twilio, contact.id, path="options", turn=1))
    assert second.find("Dial") is None and second.find("Enqueue") is not None
    said = second.find("Say").text
    assert "keep looking for a peer supporter" in said and "988" in said
    session.refresh(contact)
    assert contact.outcome is None and contact.state == "waiting" and contact.attempt == 3


def test_options_callback(twilio, session):
    contact = queued(twilio, session)
    twilio.post(f"/twilio/voice/{contact.id}/queue-exit", {"QueueResult": "leave"})
    doc = twiml(press(twilio, contact.id, digits="2", path="options"))
    said = doc.find("Say").text  # nobody on and no shift: no time the roster cannot keep
    assert "as soon as one is available" in said and "within" not in said and "988" in said
    session.refresh(contact)
    assert contact.outcome == "callback_requested"


def test_hanging_up_in_the_queue_abandons_and_cancels_offers(twilio, session):
    contact = queued(twilio, session)
    twilio.post(f"/twilio/voice/{contact.id}/queue-exit", {"QueueResult": "hangup"})
    session.refresh(contact)
    assert contact.outcome == "abandoned" and contact.state == "ended"
    assert job_names() == ["workers.offer.cancel_offers"]
    twilio.post("/twilio/voice/status", {"CallSid": contact.call_sid, "CallStatus": "completed"})
    assert job_names() == ["workers.offer.cancel_offers"]  # one outcome, one cancel


def test_hanging_up_in_the_menu_is_abandoned_via_the_status_callback(twilio, session):
    call(twilio)
    contact = only_contact(session)
    twilio.post("/twilio/voice/status", {"CallSid": contact.call_sid, "CallStatus": "ringing"})
    session.refresh(contact)
    assert contact.outcome is None
    twilio.post("/twilio/voice/status", {"CallSid": contact.call_sid, "CallStatus": "completed"})
    session.refresh(contact)
    assert contact.outcome == "abandoned"


def test_bridged_caller_hears_they_are_connected_and_ends_cleanly(twilio, session):
    contact = queued(twilio, session)
    contact.state = ContactState.CONNECTED.value
    contact.outcome = "connected"
    session.commit()
    assert "connected with a peer" in twiml(
        twilio.post(f"/twilio/voice/{contact.id}/bridged", {})).find("Say").text
    assert twiml(wait(twilio, contact, 200)).find("Leave") is None  # about to be bridged
    doc = twiml(twilio.post(f"/twilio/voice/{contact.id}/queue-exit", {"QueueResult": "bridged"}))
    consent_question = doc.find("Gather")
    assert "check-in text" in consent_question.find("Say").text
    assert consent_question.get("action").endswith(f"/twilio/voice/{contact.id}/consent")
    assert doc.find("Redirect").text == consent_question.get("action")
    session.refresh(contact)
    assert contact.state == "ended" and contact.outcome == "connected"
    no_answer = twiml(twilio.post(f"/twilio/voice/{contact.id}/consent", {}))
    assert no_answer.find("Hangup") is not None
    session.refresh(contact)
    assert contact.consent == "no" and contact.sealed_number is None


def test_queue_error_sends_the_caller_to_the_backup_numbers(twilio, session):
    contact = queued(twilio, session)
    doc = twiml(twilio.post(f"/twilio/voice/{contact.id}/queue-exit",
                            {"QueueResult": "system-error"}))
    assert [n.text for n in doc.findall("Dial/Number")] == BACKUP_NUMBERS.split(",")
    session.refresh(contact)
    assert contact.outcome == "failed"


def test_fallback_rings_backups_then_the_crisis_line(twilio, session):
    doc = twiml(twilio.post("/twilio/voice/fallback", {"CallSid": "CA1", "From": CALLER}))
    dial = doc.find("Dial")
    assert dial.get("callerId") == "+16175550100"
    numbers = dial.findall("Number")
    assert [n.text for n in numbers] == BACKUP_NUMBERS.split(",")
    screen = numbers[0].get("url")
    assert screen == f"{PUBLIC_BASE_URL}/twilio/voice/fallback/screen"
    whisper = twiml(twilio.post_url(screen, {}))
    assert whisper.find("Gather/Say").text.startswith("Backup call")
    assert whisper.find("Hangup") is not None  # silence: voicemail never takes the call
    accept = twiml(twilio.post_url(whisper.find("Gather").get("action"), {"Digits": "1"}))
    assert len(accept) == 0  # empty document: connect
    refuse = twiml(twilio.post_url(whisper.find("Gather").get("action"), {"Digits": "3"}))
    assert refuse.find("Hangup") is not None
    done = twiml(twilio.post_url(dial.get("action"), {"DialCallStatus": "completed"}))
    assert done.find("Dial") is None
    missed = twiml(twilio.post_url(dial.get("action"), {"DialCallStatus": "no-answer"}))
    assert missed.find("Dial").text == "988"
    assert session.scalars(select(Contact)).all() == []  # the fallback touches no database


def test_fallback_without_backups_goes_straight_to_the_crisis_line(app_settings, redis_server):
    from hotline import create_app
    from tests.conftest import TwilioClient
    app_settings["BACKUP_NUMBERS"] = ""
    app = create_app(app_settings)
    doc = twiml(TwilioClient(app.test_client()).post("/twilio/voice/fallback", {}))
    assert doc.find("Dial").text == "988"
