"""Callbacks through the simulator: a peer is rung first, then the clinician; retries."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from hotline.core.extensions import db
from hotline.models import CallbackRequest
from hotline.simulator import Answer, NoAnswer, ScriptedPhone
from tests.scenario import TextingPhone, heard, run_scheduled


def callbacks(hotline) -> list[CallbackRequest]:
    with hotline.app.app_context():
        return list(db.session.scalars(select(CallbackRequest)))


def test_a_callback_rings_a_peer_first_then_the_clinician(hotline):
    ada = hotline.supporter("Ada", hangup_after_bridge=60)
    clinician = hotline.sim.add_phone(ScriptedPhone(
        "+16175550191", ring=Answer(3), gather=["2"], hangup_after_bridge=None))
    hotline.call(clinician)
    hotline.run()
    original, attempt = hotline.contacts()
    assert original.outcome == "callback_requested"
    assert attempt.mode == "callback" and attempt.outcome == "connected"
    assert heard(ada, "call back request") and heard(clinician, "peer supporter is on the line")
    [callback] = callbacks(hotline)
    assert callback.state == "done" and callback.completed_at <= callback.promised_by
    assert callback.sealed_number is None and attempt.sealed_number is None
    to_ada = [leg for leg in hotline.sim.legs.values() if leg.to == ada.number]
    to_doc = [leg for leg in hotline.sim.legs.values()
              if leg.to == clinician.number and leg.direction == "outbound-api"]
    assert to_ada[0].created_at < to_doc[0].created_at
    assert to_doc[0].from_ == to_ada[0].from_ == "+16175550100"


def test_unanswered_callbacks_are_retried_then_a_discreet_text(hotline):
    hotline.supporter("Ada", gather=["1"] * 10)
    clinician = hotline.sim.add_phone(TextingPhone(
        "+16175550192", ring=[NoAnswer()] * 3, gather=["2"]))
    hotline.call(clinician)
    hotline.run()
    for _ in range(2):  # the retries, HOTLINE_CALLBACK_RETRY_MINUTES apart
        run_scheduled(hotline)
        hotline.run()
    [callback] = callbacks(hotline)
    assert callback.tries == 3 and callback.state == "failed"
    assert callback.sealed_number is None
    [text] = clinician.received()
    assert "we tried to reach you" in text.lower()
    assert "peer" not in text.lower() and "hotline" not in text.lower()
    attempts = [c for c in hotline.contacts() if c.mode == "callback"]
    assert [c.outcome for c in attempts] == ["failed"] * 3
    assert all(c.sealed_number is None for c in attempts)


def callback_try(session):
    """A callback request with its first try started (its routing job left queued)."""
    from hotline.callbacks import requests as requests
    from hotline.models import Contact, ContactState
    from workers.callbacks import start_try
    original = Contact(channel="voice", caller_key="k" * 64, state=ContactState.OPTIONS.value)
    session.add(original)
    session.commit()
    callback = requests.request(session, original, "+16175550191")
    session.commit()
    start_try(callback.id)
    session.refresh(callback)
    return callback, session.get(type(original), callback.attempt_contact_id)


@pytest.mark.parametrize("status", ["completed", "no-answer", "busy"])
def test_a_callback_the_clinician_did_not_stay_on_is_retried(app, session, twilio, status):
    """Unanswered, busy, or picked up and hung up before the peer joined ("completed" with
    no outcome yet): the try fails at once and the request is tried again later."""
    from hotline.core.extensions import jobs
    callback, attempt = callback_try(session)
    twilio.post(f"/twilio/voice/{attempt.id}/clinician-status", {"CallStatus": status})
    session.refresh(attempt)
    session.refresh(callback)
    assert attempt.outcome == "failed" and attempt.sealed_number is None
    assert (callback.state, callback.tries) == ("pending", 1)
    scheduled = jobs.queue.scheduled_job_registry.get_job_ids()
    assert [jobs.queue.fetch_job(i).func_name for i in scheduled] == [
        "workers.callbacks.start_try"]


def test_a_callback_that_reached_the_clinician_is_left_alone_when_the_call_ends(
        app, session, twilio):
    from hotline.callbacks import requests as requests
    callback, attempt = callback_try(session)
    attempt.outcome = "connected"
    session.commit()
    requests.reached(session, attempt)
    twilio.post(f"/twilio/voice/{attempt.id}/clinician-status", {"CallStatus": "completed"})
    session.refresh(attempt)
    session.refresh(callback)
    assert attempt.outcome == "connected" and (callback.state, callback.tries) == ("done", 0)
