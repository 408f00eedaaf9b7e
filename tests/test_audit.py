"""The auditor resolves what lost callbacks and dead workers leave stuck."""

from __future__ import annotations

from datetime import timedelta

import pytest
from rq.job import Job

from hotline.privacy import primitives as privacy
from hotline.lifecycle import routing
from hotline.core.extensions import jobs, settings
from hotline.models import (CallbackRequest, Contact, ContactState, FollowUp, Offer,
                            utcnow)
from workers import audit


def contact(session, **fields) -> Contact:
    c = Contact(caller_key="k" * 64, **{"channel": "voice", **fields})
    session.add(c)
    session.commit()
    return c


def test_stuck_contacts_get_an_outcome_and_free_their_supporters(app, session, make_supporter,
                                                                 monkeypatch):
    monkeypatch.setattr("hotline.telephony.outbound.hang_up", lambda offer: None)  # no Twilio here
    long_ago = utcnow() - timedelta(hours=5)
    in_menu = contact(session, state=ContactState.MENU.value, created_at=long_ago,
                      sealed_number=privacy.seal("+16175550123", settings()))
    waiting = contact(session, state=ContactState.WAITING.value, attempt=1,
                      queued_at=long_ago, created_at=long_ago)
    supporter = make_supporter("Ada")
    [offer] = routing.offer_next(session, waiting, 1)
    offer.created_at = long_ago
    session.commit()
    busy = make_supporter("Bo")
    on_call = contact(session, state=ContactState.CONNECTED.value, outcome="connected",
                      connected_at=long_ago, supporter_id=busy.id)
    busy.busy_with = routing.contact_token(on_call.id)
    fresh = contact(session, state=ContactState.MENU.value)
    session.commit()
    done = audit.audit()
    assert done["offers"] == 1 and done["contacts"] == 3
    for c in (in_menu, waiting, on_call, fresh):
        session.refresh(c)
    assert in_menu.outcome == "abandoned" and in_menu.sealed_number is None
    assert waiting.outcome == "abandoned" and on_call.state == "ended"
    assert fresh.outcome is None  # still within its time
    session.refresh(supporter)
    session.refresh(busy)
    assert supporter.busy_with is None and busy.busy_with is None
    assert session.get(Offer, offer.id).state == "no_answer"
    assert audit.audit() == {"offers": 0, "held": 0, "contacts": 0, "rerouted": 0,
                             "followups": 0,
                             "callbacks": 0, "conversations": 0, "reconciled": 0,
                             "redacted": 0, "training": 0, "debriefs": 0,
                             "outreach": 0, "alerts": 0}


def test_a_supporter_held_by_an_offer_whose_status_and_safety_net_were_lost_is_freed(
        app, session, make_supporter):
    """A canceled call holds its supporter until its status callback; should that and the
    ``free_supporter`` job both be lost, the audit frees them once the net's time is past,
    and never a supporter whose offer still rings or ended only just now."""
    waiting = contact(session, state=ContactState.WAITING.value, attempt=1)
    ada, bo, cy = make_supporter("Ada"), make_supporter("Bo"), make_supporter("Cy")
    lost, recent, ringing = routing.offer_next(session, waiting, 1, limit=3)
    for offer, ended in ((lost, utcnow() - timedelta(minutes=4)),
                         (recent, utcnow() - timedelta(seconds=30))):
        offer.state, offer.ended_at = "canceled", ended  # closed, kept: routing.close_answered
    session.commit()
    lost.supporter.busy_since = recent.supporter.busy_since = utcnow() - timedelta(minutes=5)
    ringing.supporter.busy_since = utcnow() - timedelta(minutes=5)
    session.commit()
    assert audit.audit()["held"] == 1
    session.expire_all()
    holders = {s.name: s.busy_with for s in (ada, bo, cy)}
    assert holders == {lost.supporter.name: None, recent.supporter.name: recent.token,
                       ringing.supporter.name: ringing.token}
    assert audit.audit()["held"] == 0
    # held again just now (a goodbye after the safety net freed them): not freed yet
    assert routing.hold(session, lost.supporter_id, lost.token)
    session.commit()
    assert audit.audit()["held"] == 0


def test_lost_follow_up_and_callback_jobs_are_scheduled_again(app, session, monkeypatch):
    started = []
    monkeypatch.setattr("hotline.callbacks.requests.start_try",
                        lambda session, cid: started.append(cid))
    original = contact(session, state=ContactState.ENDED.value, outcome="callback_requested")
    late = utcnow() - timedelta(hours=1)
    followup = FollowUp(contact_id=original.id, caller_key="k" * 64, sequence=1,
                        kind="survey", channel="voice", due_at=late,
                        sealed_number=privacy.seal("+16175550123", settings()))
    callback = CallbackRequest(contact_id=original.id, promised_by=late, requested_at=late,
                               sealed_number=privacy.seal("+16175550123", settings()))
    session.add_all([followup, callback])
    session.commit()
    done = audit.audit()
    assert done["followups"] == 1 and done["callbacks"] == 1 and started == [callback.id]
    job = Job.fetch(f"hotline-followup-{followup.id}", connection=jobs.queue.connection)
    assert job.args == (followup.id,)
    assert audit.audit()["followups"] == 0  # its job exists now


def test_the_audit_is_one_job_per_minute_whoever_schedules_it(app):
    first = audit.schedule()
    assert audit.schedule() == first
    scheduled = jobs.queue.scheduled_job_registry.get_job_ids()
    assert scheduled.count(first) == 1 and first.startswith("hotline-audit-")


def test_text_requests_left_at_the_menu_or_the_options_get_an_outcome(app, session):
    long_ago = utcnow() - timedelta(hours=1)
    at_menu = contact(session, state=ContactState.MENU.value, created_at=long_ago)
    at_menu.channel = "sms"
    told_nobody = contact(session, state=ContactState.OPTIONS.value, created_at=long_ago,
                          sealed_number=privacy.seal("+16175550123", settings()))
    told_nobody.channel = "sms"
    recent = contact(session, state=ContactState.OPTIONS.value)
    recent.channel = "sms"
    session.commit()
    assert audit.audit()["contacts"] == 2
    for c in (at_menu, told_nobody, recent):
        session.refresh(c)
    assert at_menu.outcome == "abandoned" and told_nobody.outcome == "failed"
    assert told_nobody.sealed_number is None and recent.outcome is None


def requested_callback(session) -> CallbackRequest:
    original = contact(session, state=ContactState.ENDED.value, outcome="callback_requested")
    callback = CallbackRequest(contact_id=original.id, promised_by=utcnow(),
                               sealed_number=privacy.seal("+16175550123", settings()))
    session.add(callback)
    session.commit()
    return callback


def test_a_callback_try_whose_worker_died_before_routing_it_is_routed_by_the_audit(
        app, session, monkeypatch):
    from workers.callbacks import start_try
    callback = requested_callback(session)

    def dies(*args, **kwargs):
        raise SystemExit("the worker is killed here")

    monkeypatch.setattr(jobs, "enqueue", dies)
    with pytest.raises(SystemExit):
        start_try(callback.id)
    monkeypatch.undo()
    session.rollback()
    session.refresh(callback)
    attempt = session.get(Contact, callback.attempt_contact_id)
    assert callback.state == "calling" and attempt.state == "waiting"  # one commit, or none
    attempt.queued_at -= timedelta(minutes=2)
    session.commit()
    assert audit.audit()["rerouted"] == 1
    [job] = [Job.fetch(i, connection=jobs.queue.connection) for i in jobs.queue.job_ids]
    assert job.func_name == "workers.offer.route" and job.args == (attempt.id, attempt.attempt)
    assert start_try(callback.id) == "nothing to do"  # a retried job does not try twice


def test_a_callback_try_that_ended_without_settling_its_request_is_settled(app, session):
    callback = requested_callback(session)
    late = utcnow() - timedelta(minutes=30)
    missed = contact(session, mode="callback", state=ContactState.ENDED.value,
                     outcome="abandoned", ended_at=late)
    callback.state, callback.attempt_contact_id = "calling", missed.id
    reached = requested_callback(session)
    bridged = contact(session, mode="callback", state=ContactState.ENDED.value,
                      outcome="connected", ended_at=late)
    reached.state, reached.attempt_contact_id = "calling", bridged.id
    session.commit()
    assert audit.audit()["callbacks"] == 2
    session.refresh(callback)
    session.refresh(reached)
    assert callback.state == "pending" and callback.tries == 1  # tried again later
    assert reached.state == "done" and reached.sealed_number is None
    assert audit.audit()["callbacks"] == 0


def test_a_text_conversation_whose_idle_close_job_was_lost_is_closed(app, session,
                                                                     make_supporter, stand_in):
    number = "+16175550124"
    ada, bo = make_supporter("Ada"), make_supporter("Bo")
    quiet = contact(session, channel="sms", mode="text", state=ContactState.CONNECTED.value,
                    outcome="connected", supporter_id=ada.id,
                    connected_at=utcnow() - timedelta(hours=3),
                    last_activity_at=utcnow() - timedelta(hours=2),
                    sealed_number=privacy.seal(number, settings()))
    never_spoke = contact(session, channel="sms", mode="text", outcome="connected",
                          state=ContactState.CONNECTED.value, supporter_id=bo.id,
                          connected_at=utcnow() - timedelta(days=3))
    talking = contact(session, channel="sms", mode="text", state=ContactState.CONNECTED.value,
                      outcome="connected", connected_at=utcnow() - timedelta(hours=3),
                      last_activity_at=utcnow() - timedelta(minutes=5),
                      sealed_number=privacy.seal(number, settings()))
    ada.busy_with, bo.busy_with = routing.contact_token(quiet.id), routing.contact_token(
        never_spoke.id)
    session.commit()
    jobs.queue.connection.flushdb()  # the idle-close jobs are lost (Redis flushed)
    done = audit.audit()
    assert done["conversations"] == 2
    for row in (quiet, never_spoke, talking, ada, bo):
        session.refresh(row)
    assert quiet.state == never_spoke.state == "ended" and talking.state == "connected"
    assert ada.busy_with is None and bo.busy_with is None
    # both sides were told, and the clinician asked about check-ins: their number is kept
    # only for that answer (retention forgets it after a day either way)
    told = sorted(m["to"] for m in stand_in.messages)
    # (each supporter: their goodbye and the thank-you text after a contact, issue 16)
    assert told == sorted([ada.phone, ada.phone, bo.phone, bo.phone, number, number])
    assert quiet.consent == "asked" and quiet.sealed_number is not None
    assert audit.audit()["conversations"] == 0


def test_a_row_the_auditor_cannot_handle_does_not_stop_it(app, session, make_supporter,
                                                          stand_in, monkeypatch):
    """A quiet text conversation whose number was sealed under a seal key no longer
    configured (dropped too soon after a rotation, or the new list mistyped): the auditor
    still closes the other conversations, runs its later steps and schedules its next pass
    (before: InvalidToken ended the pass, and the auditor with it, for good: nothing
    scheduled the next minute's job until a worker restarted, and then it died again)."""
    from cryptography.fernet import Fernet
    swept = []
    monkeypatch.setattr("hotline.telephony.message_records.sweep", lambda *a: swept.append(1) or 0)
    dropped_key = settings().replace(SEAL_KEY=Fernet.generate_key().decode())
    ada, bo = make_supporter("Ada"), make_supporter("Bo")
    quiet = {"channel": "sms", "mode": "text", "state": ContactState.CONNECTED.value,
             "outcome": "connected", "connected_at": utcnow() - timedelta(hours=3),
             "last_activity_at": utcnow() - timedelta(hours=2)}
    unreadable = contact(session, supporter_id=ada.id, **quiet,
                         sealed_number=privacy.seal("+16175550125", dropped_key))
    readable = contact(session, supporter_id=bo.id, **quiet,
                       sealed_number=privacy.seal("+16175550126", settings()))
    ada.busy_with = routing.contact_token(unreadable.id)
    bo.busy_with = routing.contact_token(readable.id)
    session.commit()
    jobs.queue.connection.flushdb()  # no audit job scheduled: this pass must schedule one
    done = audit.audit()
    assert done["conversations"] == 1 and swept == [1]
    session.refresh(readable)
    session.refresh(bo)
    assert readable.state == "ended" and bo.busy_with is None
    assert [j for j in jobs.queue.scheduled_job_registry.get_job_ids()
            if j.startswith(audit.AUDIT_JOB_ID)]
