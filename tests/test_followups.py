"""Follow-up texts: quiet hours and time zones, exactly-once sending, STOP, scores, consent."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from rq.job import Job
from sqlalchemy import select

from hotline.followups import consent
from hotline.followups import schedule as followups
from hotline.privacy import primitives as privacy
from hotline.core.extensions import db, jobs, settings
from hotline.models import Contact, ContactState, FollowUp, Score
from tests.conftest import HOTLINE_NUMBER, run_jobs

HAWAII, NEW_YORK, BERLIN = "+18085550123", "+12125550123", "+493012345678"
UTC = timezone.utc


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize("number, zone", [(HAWAII, "Pacific/Honolulu"),
                                          (NEW_YORK, "America/New_York"),
                                          (BERLIN, "Europe/Berlin"),
                                          ("+18005550123", "America/New_York")])  # toll-free
def test_time_zone_of_a_number(app, number, zone):
    assert followups.timezone_for(number, settings()).key == zone


@pytest.mark.parametrize("number, utc_due, local_sent", [
    # 02:00 UTC is 16:00 in Hawaii (fine), 21:00 in New York (too late), 03:00 in Berlin
    (HAWAII, "2026-07-01T02:00", "2026-06-30T16:00"),
    (NEW_YORK, "2026-07-01T02:00", "2026-07-01T08:00"),
    (BERLIN, "2026-07-01T02:00", "2026-07-01T08:00"),
    # 19:30 UTC: 09:30 Hawaii, 15:30 New York, 21:30 Berlin (next morning)
    (HAWAII, "2026-07-01T19:30", "2026-07-01T09:30"),
    (NEW_YORK, "2026-07-01T19:30", "2026-07-01T15:30"),
    (BERLIN, "2026-07-01T19:30", "2026-07-02T08:00"),
])
def test_quiet_hours_move_a_text_to_the_next_morning(app, number, utc_due, local_sent):
    cfg = settings()
    zone = followups.timezone_for(number, cfg)
    sent = followups.decent_time(at(utc_due), zone, cfg)
    assert sent.astimezone(zone).replace(tzinfo=None) == datetime.fromisoformat(local_sent)


def test_winter_time_is_respected(app):
    cfg = settings()
    zone = ZoneInfo("America/New_York")
    # 12:30 UTC in January is 07:30 in New York (EST): moved to 08:00 EST = 13:00 UTC
    assert followups.decent_time(at("2026-01-15T12:30"), zone, cfg) == at("2026-01-15T13:00")


def consented_contact(session, number=NEW_YORK, channel="sms") -> Contact:
    contact = Contact(channel=channel, caller_key=privacy.caller_key(number, settings()),
                      state=ContactState.ENDED.value, outcome="connected",
                      sealed_number=privacy.seal(number, settings()), consent="asked",
                      ended_at=datetime.now(UTC))
    session.add(contact)
    session.commit()
    return contact


def texts_to(sim, number):
    return [m for m in sim.messages if m["to"] == number]


def survey_sent(session, fresh_app) -> Contact:
    """A clinician who said yes, whose first follow-up (the survey) has gone out."""
    contact = consented_contact(session)
    consent.agree(session, contact)
    due_now(session)
    run_jobs(fresh_app)
    return contact


def due_now(session):
    """Time travel: every follow-up is due now (and inside sending hours)."""
    for job_id in jobs.queue.scheduled_job_registry.get_job_ids():
        jobs.queue.scheduled_job_registry.remove(job_id)
        jobs.queue.enqueue_job(Job.fetch(job_id, connection=jobs.queue.connection))


def test_yes_schedules_two_follow_ups_with_deterministic_jobs(app, session, daytime):
    contact = consented_contact(session)
    consent.agree(session, contact)
    rows = session.scalars(select(FollowUp).order_by(FollowUp.sequence)).all()
    assert [(f.sequence, f.kind) for f in rows] == [(1, "survey"), (2, "checkin")]
    assert rows[0].due_at == daytime + timedelta(hours=24)
    assert rows[1].due_at == daytime + timedelta(days=7)
    scheduled = jobs.queue.scheduled_job_registry.get_job_ids()
    assert sorted(scheduled) == sorted(followups.job_id(f.id) for f in rows)
    for f in rows:  # scheduling again does not add a job
        followups.enqueue(f)
    assert len(jobs.queue.scheduled_job_registry.get_job_ids()) == 2
    job = Job.fetch(followups.job_id(rows[0].id), connection=jobs.queue.connection)
    assert job.args == (rows[0].id,)  # ids only
    session.refresh(contact)
    assert contact.sealed_number is None and contact.consent == "yes"


def test_a_follow_up_goes_out_once_and_then_forgets_the_number(app, session, daytime,
                                                               stand_in, fresh_app):
    contact = consented_contact(session)
    consent.agree(session, contact)
    due_now(session)
    first = session.scalars(select(FollowUp).order_by(FollowUp.sequence)).first()
    jobs.queue.enqueue("workers.followups.send_followup", first.id)  # a duplicate delivery
    run_jobs(fresh_app)
    sent = texts_to(stand_in, NEW_YORK)
    bodies = sorted(m["body"] for m in sent)
    assert len(sent) == 2 and "How helpful was it" in bodies[1] and "checking in" in bodies[0]
    assert "peer" not in " ".join(bodies).lower() and "hotline" not in " ".join(bodies).lower()
    db.session.expire_all()
    assert all(f.state == "sent" and f.sealed_number is None
               for f in db.session.scalars(select(FollowUp)))


def test_stop_between_scheduling_and_sending_cancels_everything(app, session, twilio, daytime,
                                                                 stand_in, fresh_app):
    contact = consented_contact(session)
    consent.agree(session, contact)
    twilio.post("/twilio/sms", {"MessageSid": "SM" + "7" * 32, "From": NEW_YORK, "Body": "STOP"})
    assert jobs.queue.scheduled_job_registry.get_job_ids() == []
    rows = session.scalars(select(FollowUp)).all()
    assert all(f.state == "canceled" and f.sealed_number is None for f in rows)
    for f in rows:  # even a job that escaped cancellation sends nothing
        jobs.queue.enqueue("workers.followups.send_followup", f.id)
    run_jobs(fresh_app)
    assert texts_to(stand_in, NEW_YORK) == []


def test_a_late_run_in_quiet_hours_waits_for_the_morning(app, session, clock, stand_in,
                                                         fresh_app):
    night = at("2026-07-01T06:00")  # 02:00 in New York
    clock.set(night - timedelta(days=1))
    contact = consented_contact(session)
    consent.agree(session, contact)
    clock.set(night)
    due_now(session)
    run_jobs(fresh_app)
    assert texts_to(stand_in, NEW_YORK) == []
    first = session.scalars(select(FollowUp).order_by(FollowUp.sequence)).first()
    session.refresh(first)
    assert first.state == "scheduled" and first.due_at == at("2026-07-01T12:00")  # 08:00 EDT
    assert followups.job_id(first.id) in jobs.queue.scheduled_job_registry.get_job_ids()


def test_a_send_interrupted_after_twilio_took_it_is_not_repeated(app, session, daytime,
                                                                 stand_in, fresh_app):
    """The idempotency record: SENDING plus Twilio's own list of messages."""
    contact = consented_contact(session)
    consent.agree(session, contact)
    first = session.scalars(select(FollowUp).order_by(FollowUp.sequence)).first()
    first.state, first.sending_at = "sending", daytime
    session.commit()
    stand_in.create_message(to=NEW_YORK, from_=HOTLINE_NUMBER, body="(sent before the crash)")
    from workers.followups import send_followup
    with fresh_app.app_context():
        assert send_followup(first.id) == "recovered"
    assert len(texts_to(stand_in, NEW_YORK)) == 1


def test_scores_are_kept_without_any_link_to_the_caller(app, session, twilio, daytime,
                                                        stand_in, fresh_app):
    survey_sent(session, fresh_app)
    response = twilio.post("/twilio/sms", {"MessageSid": "SM" + "8" * 32, "From": NEW_YORK,
                                           "Body": "4"})
    assert b"Thank you" in response.data
    [score] = session.scalars(select(Score)).all()
    assert (score.kind, score.value, score.channel) == ("helpful", 4, "sms")
    assert set(c.name for c in Score.__table__.columns) == {"id", "day", "channel", "kind",
                                                             "value"}
    again = twilio.post("/twilio/sms", {"MessageSid": "SM" + "9" * 32, "From": NEW_YORK,
                                        "Body": "4"})
    assert b"Reply 1 for a call" in again.data  # no longer a score: a new request begins
    assert len(session.scalars(select(Score)).all()) == 1


def test_the_burnout_question_when_enabled(app, session, twilio, daytime, stand_in, fresh_app):
    app.extensions["hotline.settings"] = settings().replace(ASK_BURNOUT=True)
    survey_sent(session, fresh_app)
    first = twilio.post("/twilio/sms", {"MessageSid": "SM" + "a1" * 16, "From": NEW_YORK,
                                        "Body": "5"})
    assert b"burnout" in first.data
    twilio.post("/twilio/sms", {"MessageSid": "SM" + "b2" * 16, "From": NEW_YORK, "Body": "2"})
    assert sorted((s.kind, s.value) for s in session.scalars(select(Score))) == \
        [("burnout", 2), ("helpful", 5)]


def test_no_consent_no_follow_up(app, session, twilio):
    contact = consented_contact(session)
    response = twilio.post("/twilio/sms", {"MessageSid": "SM" + "c3" * 16, "From": NEW_YORK,
                                           "Body": "no thanks"})
    assert b"Understood" in response.data
    session.refresh(contact)
    assert contact.consent == "no" and contact.sealed_number is None
    assert session.scalars(select(FollowUp)).all() == []


def test_reply_1_to_a_check_in_opens_a_new_request(app, session, twilio, daytime, stand_in,
                                                   fresh_app):
    contact = survey_sent(session, fresh_app)
    twilio.post("/twilio/sms", {"MessageSid": "SM" + "d4" * 16, "From": NEW_YORK, "Body": "5"})
    response = twilio.post("/twilio/sms", {"MessageSid": "SM" + "e5" * 16, "From": NEW_YORK,
                                           "Body": "1"})
    assert b"will call you from this number" in response.data
    request = session.scalars(select(Contact).where(Contact.id != contact.id)).one()
    assert request.mode == "call" and request.state == "waiting"


def test_a_job_rescheduled_from_inside_itself_lasts(app, session, clock, stand_in,
                                                    fresh_app):
    """RQ marks a run finished (and expires its record) after it returns: the job scheduled
    again for the morning from inside that run must outlive that."""
    night = at("2026-07-01T06:00")  # 02:00 in New York
    clock.set(night - timedelta(days=1))
    consent.agree(session, consented_contact(session))
    clock.set(night)
    due_now(session)
    run_jobs(fresh_app)
    first = session.scalars(select(FollowUp).order_by(FollowUp.sequence)).first()
    job = Job.fetch(followups.job_id(first.id), connection=jobs.queue.connection)
    assert job.get_status() == "scheduled"
    assert jobs.queue.connection.ttl(job.key) == -1  # no expiry


def test_restore_schedules_what_redis_lost_once(app, session, daytime):
    consent.agree(session, consented_contact(session))
    rows = session.scalars(select(FollowUp).order_by(FollowUp.sequence)).all()
    registry = jobs.queue.scheduled_job_registry
    jobs.queue.connection.flushdb()  # a Redis without persistence restarted
    assert followups.restore(session) == 2
    assert sorted(registry.get_job_ids()) == sorted(followups.job_id(f.id) for f in rows)
    for f in rows:
        assert registry.get_scheduled_time(followups.job_id(f.id)) == f.due_at
    assert followups.restore(session) == 0


def test_texts_moved_out_of_the_night_spread_over_the_first_morning_hour(app, session,
                                                                        clock):
    night = at("2026-07-01T06:00")  # 02:00 in New York
    clock.set(night)
    consent.agree(session, consented_contact(session))
    first, second = session.scalars(select(FollowUp).order_by(FollowUp.sequence)).all()
    zone = ZoneInfo("America/New_York")
    for f in (first, second):
        local = f.due_at.astimezone(zone)
        assert local.hour == 8 and local.microsecond == 0
    assert first.due_at.astimezone(zone).time() == second.due_at.astimezone(zone).time()
