"""Callbacks promise only what the roster can keep, and are tried on a bounded schedule
(issue 14, "A callback promised when nobody can call, then a loop"). End to end through
the stand-in, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from hotline.roster import supporters as roster
from hotline.roster import shifts
from hotline.core.extensions import db, jobs, settings
from hotline.models import CallbackRequest, Contact, Supporter, utcnow
from hotline.simulator import NoAnswer
from tests.scenario import TextingPhone, run_scheduled

CLINICIAN = "+16175550191"


def asks_a_callback(hotline, ring=None) -> TextingPhone:
    """A clinician who calls, presses 2 for a callback, then never answers a call."""
    clinician = hotline.sim.add_phone(TextingPhone(
        CLINICIAN, gather=["2"], ring=ring or [NoAnswer()] * 30))
    hotline.call(clinician)
    hotline.run()
    return clinician


def the_request(hotline) -> CallbackRequest:
    with hotline.app.app_context():
        return db.session.scalars(select(CallbackRequest)).one()


def tries(hotline) -> list[Contact]:
    return [c for c in hotline.contacts() if c.mode == "callback"]


def test_nobody_on_promises_no_time_then_a_bounded_schedule_that_counts_every_try(hotline):
    """Before: "within 30 minutes" with nobody on; once Chris switched on he was rung for
    every retry (here 20 times, in the walkthrough about every minute), a new failed
    contact each time, because a try that found nobody free was never counted."""
    chris = hotline.supporter("Chris", available=False, ring=NoAnswer())
    clinician = asks_a_callback(hotline)
    said = " ".join(clinician.heard)
    assert "as soon as one is available" in said and "within" not in said
    assert "crisis line at 988" in said
    assert the_request(hotline).tries == 1  # the first try found nobody: it counts
    with hotline.app.app_context():
        roster.set_available(db.session, chris.number, True)
    for _ in range(20):
        run_scheduled(hotline)
        hotline.run()
    max_tries = settings_of(hotline).CALLBACK_MAX_TRIES
    request = the_request(hotline)
    assert (request.state, request.tries) == ("failed", max_tries)
    assert request.sealed_number is None
    assert len(hotline.legs_to(chris)) == max_tries - 1
    assert len(tries(hotline)) == max_tries
    [text] = clinician.received()
    assert "we tried to reach you" in text.lower()


def settings_of(hotline):
    with hotline.app.app_context():
        return settings()


def test_a_supporter_who_missed_a_try_is_rung_after_the_others(hotline):
    """Before: round robin alone chose; Ada, just back from another call, came after
    Chris, who had missed the first try of this very request, so Chris was rung again."""
    chris = hotline.supporter("Chris", ring=NoAnswer())
    ada = hotline.supporter("Ada", available=False, ring=NoAnswer())
    asks_a_callback(hotline)
    assert hotline.offers() == [("Chris", "no_answer", 1)]
    with hotline.app.app_context():
        ada_row = db.session.scalar(select(Supporter).where(Supporter.phone == ada.number))
        roster.set_available(db.session, ada.number, True)
        ada_row.last_offered_at = utcnow()  # she just had another contact
        db.session.commit()
    run_scheduled(hotline)
    hotline.run()
    assert [name for name, _, _ in hotline.offers()] == ["Chris", "Ada", "Chris"]
    assert len(hotline.legs_to(chris)) == 2 and len(hotline.legs_to(ada)) == 1


def test_a_shift_later_today_is_promised_and_the_first_try_waits_for_it(hotline):
    """Before: "within 30 minutes" although nobody was on for hours, and the try failed
    at once."""
    ada = hotline.supporter("Ada", available=False)
    with hotline.app.app_context():
        zone = shifts.program_zone()
        start = (utcnow() + timedelta(hours=3)).astimezone(zone)
        row = db.session.scalar(select(Supporter).where(Supporter.phone == ada.number))
        shifts.add_shift(db.session, row, start.weekday(), f"{start:%H:%M}",
                         f"{start + timedelta(hours=2):%H:%M}")
        day = shifts.WEEKDAYS[start.weekday()]
    clinician = asks_a_callback(hotline)
    said = " ".join(clinician.heard)
    assert f"starts at {day} {start:%H:%M}" in said and "within" not in said
    assert "crisis line at 988" in said
    request = the_request(hotline)
    assert request.tries == 0 and request.state == "pending" and tries(hotline) == []
    assert hotline.legs_to(ada) == []
    with hotline.app.app_context():
        [job_id] = jobs.queue.scheduled_job_registry.get_job_ids()
        assert job_id == f"hotline-callback-{request.id}-try-1"
        from workers.audit import _restart_callbacks
        assert _restart_callbacks(utcnow() + timedelta(hours=1)) == 1  # seen, left alone
    assert the_request(hotline).state == "pending" and tries(hotline) == []
