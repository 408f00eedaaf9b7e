"""Training records (issue 16, part 1): a supporter with no record or a lapsed refresher is
never offered a contact (voice, text, callback, every tier and ring-all); their ON and
STATUS say why; reminders and the coordinators' digest go out exactly once, at decent
hours; the CLI and the dashboard keep the record through one set of rules.

The suite runs with HOTLINE_REQUIRE_TRAINING=0 (tests/conftest.py: its supporters have no
record); every test here turns it on, as production's default has it.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest
from rq.job import Job
from sqlalchemy import select

from hotline.core.extensions import db, jobs, settings
from hotline.core.settings import Settings
from hotline.followups import training as training_texts
from hotline.lifecycle import routing
from hotline.models import Contact, ContactState, Supporter, TrainingReminder
from hotline.roster import shifts, training
from hotline.roster import supporters as roster
from hotline.simulator import Answer, ScriptedPhone
from tests.conftest import HOTLINE_NUMBER, run_jobs
from tests.coordinators import csrf
from tests.scenario import TextingPhone, clinician, heard
from tests.test_followups import due_now, texts_to

UTC = timezone.utc
#: Supporters' numbers in New York (one time zone: their reminders' local time).
ADA, BO = "+12125550181", "+12125550182"


@pytest.fixture
def app_settings(app_settings):
    """Production's default: training required."""
    app_settings["REQUIRE_TRAINING"] = True
    return app_settings


def today() -> date:
    return datetime.now(UTC).date()


def record(app, name: str, trained_on: date | None, refresher_due: date | None = None):
    """Set a supporter's training record as the roster would (dates as given)."""
    with app.app_context():
        supporter = db.session.scalars(select(Supporter).where(Supporter.name == name)).one()
        supporter.trained_on = trained_on
        supporter.refresher_due = refresher_due or (
            trained_on and training.months_later(trained_on, 24))
        db.session.commit()


def current(app, name):
    record(app, name, today() - timedelta(days=100))


def lapsed(app, name):
    record(app, name, today() - timedelta(days=800), today() - timedelta(days=10))


# ---- the rule, end to end through the stand-in -----------------------------------------

def test_a_lapsed_or_unrecorded_supporter_is_never_rung_by_voice_in_any_tier_or_ring_all(
        hotline):
    ada = hotline.supporter("Ada", hangup_after_bridge=30)        # tier 1, lapsed
    bo = hotline.supporter("Bo", hangup_after_bridge=30)          # tier 1, no record
    cy = hotline.supporter("Cy", tier=2, hangup_after_bridge=30)  # tier 2, lapsed
    dee = hotline.supporter("Dee", tier=2, ring=Answer(5), hangup_after_bridge=30)
    eve = hotline.supporter("Eve", tier=2, ring=Answer(8), hangup_after_bridge=30)
    lapsed(hotline.app, "Ada")
    lapsed(hotline.app, "Cy")
    current(hotline.app, "Dee")
    current(hotline.app, "Eve")
    doc = hotline.clinician(gather=["1"], hangup_after_bridge=None)
    hotline.call(doc)
    hotline.run()
    [contact] = hotline.contacts()
    assert contact.outcome == "connected_backup"
    assert hotline.legs_to(ada) == hotline.legs_to(bo) == hotline.legs_to(cy) == []
    # nobody of tier 1 is trained: ring-all rang every trained backup at once
    assert len(hotline.legs_to(dee)) == 1 and len(hotline.legs_to(eve)) == 1
    assert sorted(name for name, _, tier in hotline.offers()) == ["Dee", "Eve"]


def test_a_lapsed_supporter_is_never_offered_a_text_request(hotline):
    ada = hotline.supporter("Ada", phone_class=TextingPhone, replies=[("Reply YES", "YES")])
    bo = hotline.supporter("Bo", phone_class=TextingPhone, replies=[("Reply YES", "YES")])
    lapsed(hotline.app, "Ada")
    current(hotline.app, "Bo")
    doc = clinician(hotline, "+16175550131", replies=[("Reply 1", "2"), ("check-in", "NO")])
    doc.text("hello")
    hotline.run(600)
    assert ada.received() == []
    assert any("text request" in body for body in bo.received())
    assert hotline.offers() == [("Bo", "accepted", 1)]


def test_a_lapsed_supporter_is_never_rung_for_a_callback(hotline):
    ada = hotline.supporter("Ada", hangup_after_bridge=60)
    bo = hotline.supporter("Bo", hangup_after_bridge=60)
    lapsed(hotline.app, "Ada")
    current(hotline.app, "Bo")
    doc = hotline.sim.add_phone(ScriptedPhone(
        "+16175550191", ring=Answer(3), gather=["2"], hangup_after_bridge=None))
    hotline.call(doc)
    hotline.run()
    original, attempt = hotline.contacts()
    assert original.outcome == "callback_requested"
    assert attempt.mode == "callback" and attempt.outcome == "connected"
    assert hotline.legs_to(ada) == [] and heard(bo, "call back request")
    assert hotline.offers() == [("Bo", "accepted", 1)]


def test_nobody_trained_means_the_caller_hears_the_options_not_a_lapsed_peer(hotline):
    ada = hotline.supporter("Ada", hangup_after_bridge=30)
    lapsed(hotline.app, "Ada")
    doc = hotline.clinician(gather=["1", "3"], hangup_after_bridge=None)
    hotline.call(doc)
    hotline.run()
    assert hotline.legs_to(ada) == [] and hotline.offers() == []
    [contact] = hotline.contacts()[:1]
    assert contact.outcome != "connected"


def test_with_the_setting_off_an_untrained_supporter_is_rung(hotline):
    hotline.app.extensions["hotline.settings"] = settings_of(hotline).replace(
        REQUIRE_TRAINING=False)
    ada = hotline.supporter("Ada", hangup_after_bridge=30)
    hotline.call(hotline.clinician(gather=["1"], hangup_after_bridge=None))
    hotline.run()
    assert len(hotline.legs_to(ada)) == 1 and hotline.offers() == [("Ada", "accepted", 1)]


def settings_of(hotline) -> Settings:
    return hotline.app.extensions["hotline.settings"]


def test_the_refresher_day_itself_still_counts_in_the_programs_time_zone(app, session, clock,
                                                                        make_supporter):
    # 2026-07-02 03:00 UTC is still 1 July in New York (the program's zone)
    clock.set(datetime(2026, 7, 2, 3, tzinfo=UTC))
    ada = make_supporter("Ada")
    ada.trained_on, ada.refresher_due = date(2024, 7, 1), date(2026, 7, 1)
    session.commit()
    assert shifts.offered_now(session) == {ada.id}
    contact = Contact(channel="voice", caller_key="k" * 64, state=ContactState.WAITING.value)
    session.add(contact)
    session.commit()
    clock.set(datetime(2026, 7, 2, 4, 1, tzinfo=UTC))  # 2 July 00:01 in New York: lapsed
    assert shifts.offered_now(session) == set()
    assert routing.offer_next(session, contact, 1) == []
    assert not routing.reserve(session, ada.id, "offer:0")
    clock.set(datetime(2026, 7, 2, 3, tzinfo=UTC))
    assert [o.supporter_id for o in routing.offer_next(session, contact, 1)] == [ada.id]


def test_training_is_required_by_default():
    assert Settings().REQUIRE_TRAINING is True and Settings().TRAINING_VALID_MONTHS == 24


# ---- ON and STATUS by text ---------------------------------------------------------------

def sms(twilio, number, body, n):
    return twilio.post("/twilio/sms", {"MessageSid": f"SM{n:032d}", "From": number,
                                       "Body": body}).data.decode()


def test_on_and_status_from_a_lapsed_supporter_say_why_and_whom_to_contact(app, session,
                                                                         twilio):
    app.extensions["hotline.settings"] = settings().replace(
        COORDINATOR_CONTACT="Sam at 617-555-0100")
    ada = Supporter(name="Ada", phone=ADA, trained_on=date(2023, 1, 5),
                    refresher_due=date(2025, 1, 5))
    bo = Supporter(name="Bo", phone=BO)
    session.add_all([ada, bo])
    session.commit()
    reply = sms(twilio, ADA, "ON", 1)
    assert "training lapsed on 2025-01-05" in reply and "Sam at 617-555-0100" in reply
    session.refresh(ada)
    assert ada.available is False and shifts.offered_now(session) == set()
    status = sms(twilio, ADA, "STATUS", 2)
    assert "You are OFF" in status and "training lapsed on 2025-01-05" in status
    assert "no peer supporter training on record" in sms(twilio, BO, "ON", 3)
    assert "no peer supporter training on record" in sms(twilio, BO, "STATUS", 4)
    roster.train(session, ada, today() - timedelta(days=1))
    assert "You are ON" in sms(twilio, ADA, "ON", 5)
    assert shifts.offered_now(session) == {ada.id}


def test_every_training_message_exists_in_every_language(app):
    from hotline.telephony import outbound
    flows = outbound.text_flows()
    for lang in flows.messages:
        for key in ("training_lapsed", "training_none", "training_reminder",
                    "training_digest"):
            assert flows.messages[lang][key]


# ---- reminders and the digest --------------------------------------------------------------

def reminders(session) -> list[TrainingReminder]:
    session.expire_all()
    return list(session.scalars(select(TrainingReminder).order_by(TrainingReminder.id)))


def trained_supporter(session, refresher_due: date, phone=ADA, name="Ada") -> Supporter:
    supporter = Supporter(name=name, phone=phone, trained_on=refresher_due - timedelta(
        days=700), refresher_due=refresher_due)
    session.add(supporter)
    session.commit()
    return supporter


def test_reminders_30_and_7_days_before_go_out_once_each_at_a_decent_hour(
        app, session, clock, stand_in, fresh_app):
    clock.set(datetime(2026, 7, 1, 15, tzinfo=UTC))
    trained_supporter(session, date(2026, 9, 1))
    training_texts.plan(session)
    training_texts.plan(session)  # the auditor every minute, a worker starting: one row each
    rows = reminders(session)
    assert [(r.kind, r.for_date) for r in rows] == [("due_30", date(2026, 9, 1)),
                                                    ("due_7", date(2026, 9, 1))]
    for row, day in zip(rows, (date(2026, 8, 2), date(2026, 8, 25))):
        local = row.due_at.astimezone(training_texts.program_zone())
        assert local.date() == day and settings().SEND_FROM_HOUR <= local.hour < \
            settings().SEND_FROM_HOUR + 1  # the morning's first hour
    scheduled = set(jobs.queue.scheduled_job_registry.get_job_ids())
    assert scheduled == {training_texts.job_id(r.id) for r in rows}
    # the first is due: sent once, even delivered twice
    clock.set(rows[0].due_at + timedelta(seconds=5))
    jobs.queue.enqueue("workers.training.send_reminder", rows[0].id)
    jobs.queue.enqueue("workers.training.send_reminder", rows[0].id)
    run_jobs(fresh_app)
    sent = texts_to(stand_in, ADA)
    assert len(sent) == 1 and "refresher is due on 2026-09-01" in sent[0]["body"]
    assert [r.state for r in reminders(session)] == ["sent", "scheduled"]


def test_a_reminder_due_at_night_waits_for_the_morning(app, session, clock, stand_in,
                                                       fresh_app):
    clock.set(datetime(2026, 7, 1, 15, tzinfo=UTC))
    trained_supporter(session, date(2026, 9, 1))
    training_texts.plan(session)
    first = reminders(session)[0]
    clock.set(datetime(2026, 8, 3, 6, tzinfo=UTC))  # 02:00 in New York: the job ran late
    jobs.queue.enqueue("workers.training.send_reminder", first.id)
    run_jobs(fresh_app)
    assert texts_to(stand_in, ADA) == []
    first = reminders(session)[0]
    assert first.state == "scheduled"
    assert first.due_at == datetime(2026, 8, 3, 12, tzinfo=UTC)  # 08:00 EDT


def test_a_refresher_recorded_cancels_the_old_reminders_and_plans_new_ones(
        app, session, clock, stand_in, fresh_app):
    clock.set(datetime(2026, 7, 1, 15, tzinfo=UTC))
    ada = trained_supporter(session, date(2026, 9, 1))
    training_texts.plan(session)
    old = reminders(session)
    roster.train(session, ada, date(2026, 7, 1))  # refresher taken: due 2028-07-01 now
    training_texts.plan(session)
    clock.set(old[0].due_at + timedelta(seconds=5))
    due_now(session)
    run_jobs(fresh_app)
    assert texts_to(stand_in, ADA) == []
    rows = reminders(session)
    assert [r.state for r in rows[:2]] == ["canceled", "canceled"]
    assert [(r.kind, r.for_date, r.state) for r in rows[2:]] == [
        ("due_30", date(2028, 7, 1), "scheduled"), ("due_7", date(2028, 7, 1), "scheduled")]


def test_a_reminder_whose_job_redis_lost_is_scheduled_again(app, session, clock):
    clock.set(datetime(2026, 7, 1, 15, tzinfo=UTC))
    trained_supporter(session, date(2026, 9, 1))
    assert training_texts.plan(session) == 2
    jobs.queue.connection.flushdb()  # a Redis without persistence restarted
    from workers import audit
    assert audit.audit()["training"] == 2
    ids = {training_texts.job_id(r.id) for r in reminders(session)}
    assert ids <= set(jobs.queue.scheduled_job_registry.get_job_ids())
    assert audit.audit()["training"] == 0  # its jobs exist now


def test_a_reminder_interrupted_after_twilio_took_it_is_not_repeated(app, session, clock,
                                                                    stand_in, fresh_app):
    """The follow-ups' idempotency record; an offer texted to the supporter meanwhile is
    not mistaken for the reminder."""
    clock.set(datetime(2026, 7, 1, 15, tzinfo=UTC))
    trained_supporter(session, date(2026, 9, 1))
    training_texts.plan(session)
    first = reminders(session)[0]
    clock.set(first.due_at + timedelta(seconds=5))
    first.state, first.sending_at = "sending", datetime.now(UTC) - timedelta(minutes=1)
    session.commit()
    stand_in.create_message(to=ADA, from_=HOTLINE_NUMBER, body="Peer support text request.")
    with fresh_app.app_context():
        assert training_texts.send(first.id) == "sent"  # the offer was another text
    first = reminders(session)[0]
    first.state = "sending"
    session.commit()
    with fresh_app.app_context():
        assert training_texts.send(first.id) == "recovered"
    assert len([m for m in texts_to(stand_in, ADA) if "refresher" in m["body"]]) == 1


def test_the_weekly_digest_lists_who_lapses_within_60_days_once_a_week(
        app, session, clock, stand_in, fresh_app):
    coordinators = ("+12125550191", "+12125550192")
    app.extensions["hotline.settings"] = settings().replace(COORDINATOR_PHONES=coordinators)
    clock.set(datetime(2026, 7, 1, 15, tzinfo=UTC))  # a Wednesday
    trained_supporter(session, date(2026, 8, 15), phone=ADA, name="Ada")     # due soon
    trained_supporter(session, date(2026, 6, 1), phone=BO, name="Bo")        # lapsed
    trained_supporter(session, date(2027, 6, 1), phone="+12125550183", name="Cy")  # fine
    session.add(Supporter(name="Di", phone="+12125550184"))                  # no record
    session.commit()
    training_texts.plan(session)
    training_texts.plan(session)
    digests = [r for r in reminders(session) if r.kind == "digest"]
    assert sorted(r.recipient for r in digests) == sorted(coordinators)
    assert {r.for_date for r in digests} == {date(2026, 6, 29)}  # this week's Monday
    due_now(session)
    run_jobs(fresh_app)
    due_now(session)
    run_jobs(fresh_app)
    for number in coordinators:
        [text] = texts_to(stand_in, number)
        body = text["body"]
        assert "Ada (due 2026-08-15)" in body and "Bo (lapsed 2026-06-01)" in body
        assert "Di (no record)" in body and "Cy" not in body
    clock.set(datetime(2026, 7, 6, 15, tzinfo=UTC))  # next Monday: next week's digest
    training_texts.plan(session)
    assert len([r for r in reminders(session) if r.kind == "digest"]) == 4


def test_no_digest_is_texted_when_nobody_lapses(app, session, clock, stand_in, fresh_app):
    app.extensions["hotline.settings"] = settings().replace(
        COORDINATOR_PHONES=("+12125550191",))
    clock.set(datetime(2026, 7, 1, 15, tzinfo=UTC))
    trained_supporter(session, date(2027, 6, 1))
    training_texts.plan(session)
    job = Job.fetch(training_texts.job_id(
        [r for r in reminders(session) if r.kind == "digest"][0].id),
        connection=jobs.queue.connection)
    assert job.args
    due_now(session)
    run_jobs(fresh_app)
    assert texts_to(stand_in, "+12125550191") == []


# ---- the CLI and the dashboard ---------------------------------------------------------------

def test_cli_add_with_a_training_date_and_train_records_a_refresher(app):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["supporters", "add", "--name", "Ada", "--phone",
                                 "617-555-0181", "--trained-on", "2026-03-01"])
    assert result.exit_code == 0, result.output
    ada = db.session.scalars(select(Supporter)).one()
    assert (ada.trained_on, ada.refresher_due) == (date(2026, 3, 1), date(2028, 3, 1))
    result = runner.invoke(args=["supporters", "add", "--name", "Bo", "--phone",
                                 "617-555-0182"])
    assert "no training record" in result.output
    result = runner.invoke(args=["supporters", "add", "--name", "Cy", "--phone",
                                 "617-555-0183", "--refresher-due", "2027-01-01"])
    assert result.exit_code != 0 and "needs a training date" in result.output
    result = runner.invoke(args=["supporters", "add", "--name", "Cy", "--phone",
                                 "617-555-0183", "--trained-on", "2026-03-01",
                                 "--refresher-due", "2027-01-01"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(args=["supporters", "train", "617-555-0182", "--on", "2026-02-01"])
    assert result.exit_code == 0 and "refresher due 2028-02-01" in result.output
    result = runner.invoke(args=["supporters", "train", "617-555-0182", "--on", "yesterday"])
    assert result.exit_code != 0 and "a date like 2026-03-01" in result.output
    db.session.expire_all()
    assert [(s.name, s.trained_on, s.refresher_due) for s in roster.everyone(db.session)] == [
        ("Ada", date(2026, 3, 1), date(2028, 3, 1)), ("Bo", date(2026, 2, 1), date(2028, 2, 1)),
        ("Cy", date(2026, 3, 1), date(2027, 1, 1))]
    listing = runner.invoke(args=["supporters", "list"]).output
    assert "training current" in listing


def test_the_dashboard_edits_both_fields_with_the_same_rules(app, session, coordinator):
    form = {"name": "Ada", "phone": "617-555-0181", "tier": "1", "languages": "en",
            "trained_on": "2026-03-01", "refresher_due": "",
            "csrf_token": csrf(coordinator, "/dashboard/roster")}
    response = coordinator.post("/dashboard/roster", data=form)
    assert response.status_code == 302
    ada = session.scalars(select(Supporter)).one()
    assert (ada.trained_on, ada.refresher_due) == (date(2026, 3, 1), date(2028, 3, 1))
    bad = coordinator.post(f"/dashboard/roster/{ada.id}", data=dict(
        form, trained_on="2026-03-01", refresher_due="2026-02-01"))
    assert bad.status_code == 400 and b"after the training date" in bad.data
    ok = coordinator.post(f"/dashboard/roster/{ada.id}", data=dict(
        form, trained_on="2026-04-01", refresher_due="2027-04-01"))
    assert ok.status_code == 302
    session.expire_all()
    assert (ada.trained_on, ada.refresher_due) == (date(2026, 4, 1), date(2027, 4, 1))
    # the JSON API leaves a record it is not given alone
    token = coordinator.get("/api/me").json["csrf_token"]
    patched = coordinator.patch(f"/api/supporters/{ada.id}", headers={"X-CSRF-Token": token},
                                json={
        "name": "Ada L", "phone": "617-555-0181", "tier": 1, "languages": ["en"]})
    assert patched.status_code == 200, patched.data
    assert patched.json["refresher_due"] == "2027-04-01"
    # a new training date sent back with the refresher date the form showed: due anew
    again = coordinator.post(f"/dashboard/roster/{ada.id}", data=dict(
        form, trained_on="2026-06-01", refresher_due="2027-04-01"))
    assert again.status_code == 302
    session.expire_all()
    assert (ada.trained_on, ada.refresher_due) == (date(2026, 6, 1), date(2028, 6, 1))


def test_roster_and_available_now_show_the_training_state_and_the_lapsing_panel(
        app, session, coordinator, clock):
    clock.set(datetime(2026, 7, 1, 15, tzinfo=UTC))
    trained_supporter(session, date(2028, 1, 1), phone=ADA, name="Ada")
    trained_supporter(session, date(2026, 7, 20), phone=BO, name="Bo")
    trained_supporter(session, date(2026, 6, 1), phone="+12125550183", name="Cy")
    session.add(Supporter(name="Di", phone="+12125550184", available=True))
    session.commit()
    page = coordinator.get("/dashboard/roster").data.decode()
    for state in ("current", "due soon", "lapsed", "no record"):
        assert f">{state}" in page
    assert "1 supporter without a training record" in page
    panel = page.split('id="training"')[1].split("</section>")[0]
    assert "Bo" in panel and "Cy" in panel and "Di" in panel and "Ada" not in panel
    now = coordinator.get("/dashboard/now").data.decode()
    assert "training no record" in now and ">due soon<" in now


def test_the_statistics_page_counts_trained_supporters_by_month(app, session, coordinator,
                                                                clock):
    clock.set(datetime(2026, 7, 1, 15, tzinfo=UTC))
    ada = trained_supporter(session, date(2028, 1, 1), phone=ADA, name="Ada")
    ada.trained_on = date(2026, 5, 10)
    ada.created_at = datetime(2025, 1, 1, tzinfo=UTC)
    trained_supporter(session, date(2026, 6, 1), phone=BO, name="Bo").created_at = \
        datetime(2025, 1, 1, tzinfo=UTC)
    session.commit()
    counts = dict(training.trained_by_month(session, date(2026, 7, 1)))
    assert counts[date(2026, 4, 1)] == 1   # Bo (Ada not yet trained)
    assert counts[date(2026, 5, 1)] == 2   # both at the end of May
    assert counts[date(2026, 6, 1)] == 1   # Bo lapsed on 1 June
    assert counts[date(2026, 7, 1)] == 1
    page = coordinator.get("/dashboard/").data.decode()
    assert "Trained supporters on the roster, by month" in page
    assert "<th scope=\"row\">May 2026</th><td>2</td>" in page


@pytest.mark.slow
def test_worker_killed_mid_send_sends_the_reminder_exactly_once(app, app_settings, session,
                                                               fresh_app):
    """As tests/test_worker_killed.py does for a follow-up: a real ``hotline worker`` is
    SIGKILLed inside Twilio's request; the retry finds the text went out and sends no
    second one (an offer texted to the supporter meanwhile would not count)."""
    from hotline.simulator import TwilioSim, serve_in_thread
    from tests.conftest import ACCOUNT_SID, AUTH_TOKEN
    from tests.test_worker_killed import (Stuck, abandoned_jobs_cleaned_up, kill_when,
                                          start_worker)
    sim = TwilioSim(transport=None, account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN,
                    voice_url="https://hotline.example.org/twilio/voice",
                    numbers=(HOTLINE_NUMBER,), epoch=datetime.now(UTC))
    stuck = Stuck(sim, "create_message", ADA)
    base_url, server = serve_in_thread(sim)
    app.extensions["hotline.settings"] = settings().replace(
        TWILIO_API_BASE_URL=base_url, SEND_FROM_HOUR=0, SEND_UNTIL_HOUR=24)
    trained_supporter(session, today() + timedelta(days=7))  # the 7-day reminder only
    training_texts.plan(session)
    [reminder] = reminders(session)
    reminder.due_at = datetime.now(UTC) - timedelta(minutes=1)
    session.commit()
    due_now(session)
    try:
        kill_when(start_worker(app_settings, base_url), stuck.reached, "reminder")
    finally:
        stuck.release.set()
    [reminder] = reminders(session)
    assert reminder.state == "sending"  # the idempotency record
    abandoned_jobs_cleaned_up()  # the send job has retries: it is queued again
    due_now(session)
    run_jobs(fresh_app)
    [reminder] = reminders(session)
    assert reminder.state == "sent" and reminder.message_sid
    assert len(texts_to(sim, ADA)) == 1
    server.shutdown()
