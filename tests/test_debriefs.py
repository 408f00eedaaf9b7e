"""Team debriefs (issue 17, part 2) through the offline stand-in: a facilitator and two
participants in a ``<Conference>``, wrong codes, codes too early and after the end, the
time limit, and what is kept afterwards.

The app's clock stands still (``clock``) while the stand-in's virtual time runs the calls.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from hotline.core.extensions import db, jobs, settings
from hotline.debriefs import meetings
from hotline.debriefs import reminders as debrief_reminders
from hotline.privacy import primitives as privacy
from hotline.models import Contact, Debrief, DebriefReminder
from hotline.simulator import Press, ScriptedPhone, Silence
from tests.conftest import HOTLINE_NUMBER
from tests.coordinators import csrf
from tests.scenario import heard

HOLD = "The meeting will start when the facilitator joins"
ENDED = "The meeting has ended"
WRONG = "that meeting code is not valid"
MENU = "To talk with a peer supporter now"


def schedule(hotline, *numbers, starts_in=timedelta(minutes=10), minutes=60):
    """Schedule a debrief facilitated by the supporters with these numbers."""
    with hotline.app.app_context():
        people = meetings.facilitators(db.session, list(numbers))
        return meetings.schedule(db.session, meetings.utcnow() + starts_in, minutes, people)


def participant(hotline, number, *keys, stay=None):
    """A clinician who calls in, chooses 5 (join a meeting) and keys in ``keys``."""
    return hotline.sim.add_phone(ScriptedPhone(
        number, gather=["5", *[Press(k, after=2) if isinstance(k, str) else k for k in keys]],
        hangup_after_bridge=stay))


def debrief_row(hotline, debrief_id) -> Debrief:
    with hotline.app.app_context():
        return db.session.get(Debrief, debrief_id)


def run_job_at(hotline, seconds, job_id):
    """Hand a scheduled RQ job to the queue at the stand-in's ``seconds`` (its scheduler's
    part); the stand-in's idle hook runs it."""
    def due():
        registry = jobs.queue.scheduled_job_registry
        registry.remove(job_id)
        jobs.queue.enqueue_job(jobs.queue.fetch_job(job_id))
    hotline.sim.schedule(seconds, due)


@pytest.fixture
def ada(hotline):
    return hotline.supporter("Ada", gather=[])


def test_a_facilitator_and_two_participants_meet_started_and_ended_by_the_facilitator(
        hotline, clock, ada):
    made = schedule(hotline, ada.number)
    ada.gather_script = ["*", Press(made.code, after=2)]
    ada.hangup_after_bridge = 300.0
    first = participant(hotline, "+16175550201", made.code)
    second = participant(hotline, "+16175550202", made.code)
    hotline.call(first)
    hotline.call(second, after=5)
    hotline.call(ada, after=90)
    hotline.run(1200)

    [room] = hotline.sim.conferences.values()
    assert room.name == meetings.room(made.debrief_id) and room.status == "completed"
    assert len(room.joined) == 3 and room.members == {}
    ada_leg = next(hotline.sim.legs[sid] for sid in room.joined
                   if hotline.sim.legs[sid].from_ == ada.number)
    # Held until the facilitator joined; started by her, ended when she left.
    assert heard(first, HOLD) and heard(second, HOLD) and not heard(ada, HOLD)
    assert room.started_at >= 90 and room.ended_at == ada_leg.end_time
    assert room.ended_at - room.started_at == pytest.approx(300, abs=1)
    assert heard(first, ENDED) and heard(second, ENDED)
    assert heard(ada, "as its facilitator") and heard(first, "nobody is told who joins")
    # Nothing recorded, no beeps; the TwiML said so.
    kinds = {kind for _, kind, _ in hotline.sim.events}
    assert "recording" not in kinds and "beep" not in kinds
    conference_docs = [d for d in hotline.transport.documents if "<Conference" in d]
    assert len(conference_docs) == 3
    assert all('record="do-not-record"' in d and 'beep="false"' in d for d in conference_docs)
    assert sum('startConferenceOnEnter="true"' in d for d in conference_docs) == 1
    # Counted: two participants (not the facilitator); no call is left as a contact.
    assert debrief_row(hotline, made.debrief_id).participants == 2
    assert hotline.contacts() == []
    assert first.number not in " ".join(ada.heard) and ada.number not in " ".join(first.heard)


def test_three_wrong_codes_and_the_caller_is_back_at_the_menu(hotline, clock, ada):
    made = schedule(hotline, ada.number)
    wrong = [c for c in ("000000", "111111", "222222", "333333") if c != made.code][:3]
    caller = participant(hotline, "+16175550203", *wrong)
    hotline.call(caller)
    hotline.run(300)
    said = [line for line in caller.heard if WRONG in line or MENU in line][:5]
    assert [WRONG in line for line in said] == [False, True, True, True, False]
    assert hotline.sim.conferences == {}
    assert debrief_row(hotline, made.debrief_id).participants == 0


def test_wrong_codes_are_limited_per_number_and_overall_then_even_the_right_one_fails(
        hotline, clock, ada):
    made = schedule(hotline, ada.number)
    wrong = [c for c in ("000000", "111111", "222222", "333333") if c != made.code][:3]
    hotline.app.extensions["hotline.settings"] = settings_of(hotline).replace(
        DEBRIEF_WRONG_CODES_PER_CALLER=3, DEBRIEF_WRONG_CODES_PER_HOUR=5)
    guesser = participant(hotline, "+16175550204", *wrong)
    hotline.call(guesser)
    hotline.run(300)
    hang_up_all(hotline)
    again = participant(hotline, "+16175550204", made.code)  # the same number, the right code
    hotline.call(again)
    hotline.run(300)
    assert heard(again, "Too many meeting codes") and hotline.sim.conferences == {}
    # Overall: two more wrong codes from another number reach 5; a third number is refused.
    other = participant(hotline, "+16175550205", *wrong[:2], Silence())
    hotline.call(other)
    hotline.run(300)
    hang_up_all(hotline)
    late = participant(hotline, "+16175550206", made.code)
    hotline.call(late)
    hotline.run(300)
    assert heard(late, "Too many meeting codes") and hotline.sim.conferences == {}


def hang_up_all(hotline):
    """Everyone still on a call hangs up (a caller back at the menu waits for a peer)."""
    for leg in list(hotline.sim.legs.values()):
        if not leg.ended and leg.direction == "inbound":
            hotline.sim.hangup(leg.sid)
    hotline.run(60)


def settings_of(hotline):
    return hotline.app.extensions["hotline.settings"]


def test_a_code_too_early_and_after_the_end_does_not_open(hotline, clock, ada):
    made = schedule(hotline, ada.number, starts_in=timedelta(hours=2), minutes=30)
    early = participant(hotline, "+16175550207", made.code)
    hotline.call(early)
    hotline.run(300)
    assert heard(early, "not open yet") and hotline.sim.conferences == {}

    clock.advance(hours=2, minutes=30)  # the end, before the end job ran
    late = participant(hotline, "+16175550208", made.code)
    hotline.call(late)
    hotline.run(300)
    assert heard(late, WRONG) and not heard(late, "not open yet")
    assert hotline.sim.conferences == {}

    with hotline.app.app_context():
        assert meetings.end(db.session, made.debrief_id)  # the end job: the code is gone
        kept = db.session.get(Debrief, made.debrief_id)
        assert (kept.code_hash, kept.starts_at, kept.minutes, kept.facilitator_id) == \
            (None, None, None, None)
        assert kept.day == clock.now.astimezone(meetings.program_zone()).date()


def test_the_time_limit_warns_a_minute_before_then_ends_it_and_forgets_the_code(
        hotline, clock, ada):
    made = schedule(hotline, ada.number, starts_in=timedelta(minutes=5), minutes=15)
    ada.gather_script = ["*", Press(made.code, after=2)]
    ada.hangup_after_bridge = None
    one = participant(hotline, "+16175550209", made.code)
    hotline.call(ada)
    hotline.call(one, after=10)
    run_job_at(hotline, 200, f"hotline-debrief-warn-{made.debrief_id}")
    run_job_at(hotline, 260, f"hotline-debrief-end-{made.debrief_id}")
    hotline.run(900)
    [room] = hotline.sim.conferences.values()
    assert heard(one, "One minute remains") and heard(ada, "One minute remains")
    assert room.status == "completed" and 260 <= room.ended_at < 270
    assert heard(one, ENDED) and heard(ada, ENDED)
    assert all(leg.ended for leg in hotline.sim.legs.values())
    kept = debrief_row(hotline, made.debrief_id)
    assert (kept.state, kept.participants, kept.code_hash, kept.starts_at) == \
        ("ended", 1, None, None)
    with hotline.app.app_context():
        assert db.session.scalars(select(DebriefReminder)).all() == []
        assert db.session.scalars(select(Contact)).all() == []
    assert HOTLINE_NUMBER  # the hotline number was the one called


def test_the_cli_schedules_a_debrief_and_shows_its_code_once_storing_only_a_keyed_hash(
        app, clock, make_supporter):
    ada = make_supporter("Ada")
    done = app.test_cli_runner().invoke(args=[
        "debriefs", "schedule", "--at", "2026-07-02 14:00", "--minutes", "60",
        "--facilitator", ada.phone])
    assert done.exit_code == 0, done.output
    code = re.search(r"Meeting code: (\d{6})", done.output)[1]
    assert f"enter the meeting code {' '.join(code)}" in done.output
    assert "Thursday 2026-07-02 14:00 EDT, for 60 minutes" in done.output
    [row] = db.session.scalars(select(Debrief)).all()
    assert row.code_hash == privacy.code_hash(code, settings()) and code not in row.code_hash
    assert row.starts_at == datetime(2026, 7, 2, 18, tzinfo=timezone.utc)
    listed = app.test_cli_runner().invoke(args=["debriefs", "list"])
    assert "scheduled\t2026-07-02 14:00 EDT\t60 min" in listed.output
    assert code not in listed.output
    refused = app.test_cli_runner().invoke(args=[
        "debriefs", "schedule", "--at", "2026-07-02 14:00", "--facilitator", "+16175550999"])
    assert refused.exit_code != 0 and "no supporter on the roster" in refused.output


def test_facilitators_get_a_reminder_the_day_before_and_15_minutes_before_exactly_once(
        app, clock, make_supporter, stand_in):
    ada, bo = make_supporter("Ada"), make_supporter("Bo")
    people = meetings.facilitators(db.session, [ada.phone, bo.phone])
    made = meetings.schedule(db.session, clock.now + timedelta(days=2), 60, people)
    reminders = db.session.scalars(select(DebriefReminder).order_by(DebriefReminder.id)).all()
    assert [(r.supporter_id, r.kind) for r in reminders] == [
        (ada.id, "day_before"), (ada.id, "soon"), (bo.id, "day_before"), (bo.id, "soon")]
    assert reminders[1].due_at == clock.now + timedelta(days=2, minutes=-15)
    scheduled = set(jobs.queue.scheduled_job_registry.get_job_ids())
    assert {f"hotline-debrief-reminder-{r.id}" for r in reminders} <= scheduled
    assert {f"hotline-debrief-warn-{made.debrief_id}",
            f"hotline-debrief-end-{made.debrief_id}"} <= scheduled
    clock.advance(days=1)
    for reminder in reminders:
        clock.set(reminder.due_at)
        assert debrief_reminders.send(reminder.id) == "sent"
        assert debrief_reminders.send(reminder.id) == "nothing to do"  # a second run: no text
    texts = [m for m in stand_in.messages if m["to"] == ada.phone]
    assert len(texts) == 2
    assert "you facilitate a team debrief on Friday 2026-07-03 11:00 EDT" in texts[0]["body"]
    assert "starts at 11:00" in texts[1]["body"] and made.code not in texts[1]["body"]
    assert meetings.end(db.session, made.debrief_id)
    assert db.session.scalars(select(DebriefReminder)).all() == []


def test_the_dashboard_form_schedules_a_debrief_and_shows_the_code_once(
        app, clock, coordinator, make_supporter):
    ada = make_supporter("Ada Lovelace")
    token = csrf(coordinator, "/dashboard/debriefs")
    refused = coordinator.post("/dashboard/debriefs", data={
        "csrf_token": token, "date": "2026-07-02", "start": "14:00", "minutes": "60"})
    assert refused.status_code == 400 and b"choose a facilitating supporter" in refused.data
    done = coordinator.post("/dashboard/debriefs", data={
        "csrf_token": token, "date": "2026-07-02", "start": "14:00", "minutes": "90",
        "facilitator": str(ada.id), "second": "", "language": "es"})
    assert done.status_code == 201
    page = done.get_data(as_text=True)
    code = re.search(r"Meeting code: <strong class=\"code\">(\d{3}) (\d{3})</strong>", page)
    code = code[1] + code[2]
    assert f"ingrese el código de reunión {' '.join(code)}" in page
    [row] = db.session.scalars(select(Debrief)).all()
    assert row.code_hash == privacy.code_hash(code, settings()) and row.minutes == 90
    again = coordinator.get("/dashboard/debriefs").get_data(as_text=True)
    assert "2026-07-02 14:00" in again and "Ada Lovelace" in again
    assert code[:3] + " " + code[3:] not in again and "Meeting code" not in again


def test_with_two_facilitators_the_meeting_goes_on_until_the_last_one_leaves(
        hotline, clock, ada):
    bo = hotline.supporter("Bo", gather=[])
    made = schedule(hotline, ada.number, bo.number)
    for phone, stay in ((ada, 100.0), (bo, 250.0)):
        phone.gather_script = ["*", Press(made.code, after=2)]
        phone.hangup_after_bridge = stay
    one = participant(hotline, "+16175550210", made.code)
    hotline.call(ada)
    hotline.call(bo, after=5)
    hotline.call(one, after=10)
    hotline.run(900)
    [room] = hotline.sim.conferences.values()
    legs = {hotline.sim.legs[sid].from_: hotline.sim.legs[sid] for sid in room.joined}
    assert legs[ada.number].end_time < legs[bo.number].end_time
    # Ada leaving did not end it: Bo and the participant talked on; Bo leaving did.
    assert room.ended_at >= legs[bo.number].end_time > legs[ada.number].end_time + 100
    assert room.ended_at - legs[bo.number].end_time < 5
    assert heard(one, ENDED) and legs["+16175550210"].end_time > room.ended_at
    assert 'endConferenceOnExit="true"' not in " ".join(hotline.transport.documents)


def test_the_auditor_ends_a_debrief_whose_end_job_was_lost_and_the_purge_forgets_it_later(
        app, clock, make_supporter):
    """Redis lost the end job: the auditor's minute pass ends the debrief and forgets its
    code; after the retention window even its day and count go."""
    from hotline.escalation import auditor
    from hotline.retention import purge
    ada = make_supporter("Ada")
    done = app.test_cli_runner().invoke(args=[
        "debriefs", "schedule", "--at", "2026-07-01 12:00", "--minutes", "30",
        "--facilitator", ada.phone])
    assert done.exit_code == 0, done.output
    jobs.queue.connection.flushdb()                      # the warn and end jobs are lost
    clock.set(datetime(2026, 7, 1, 17, 0, tzinfo=timezone.utc))    # 13:00 EDT: over
    assert auditor.audit()["debriefs"] == 1
    [row] = db.session.scalars(select(Debrief)).all()
    assert (row.state, row.code_hash, row.starts_at) == ("ended", None, None)
    assert auditor.audit()["debriefs"] == 0              # once
    kept = purge.purge(db.session, clock.now + timedelta(days=30), settings())
    assert kept["debriefs"] == 0 and db.session.scalars(select(Debrief)).all() != []
    later = clock.now + timedelta(days=settings().RETENTION_DAYS + 2)
    assert purge.purge(db.session, later, settings())["debriefs"] == 1
    assert db.session.scalars(select(Debrief)).all() == []
