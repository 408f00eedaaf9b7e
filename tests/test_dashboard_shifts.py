"""Shifts make supporters eligible without texting ON; manual ON/OFF overrides them."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from hotline.lifecycle import routing
from hotline.roster import shifts
from hotline.models import Supporter

ZONE = ZoneInfo("America/New_York")
MONDAY_9AM = datetime(2025, 3, 3, 9, 0, tzinfo=ZONE).astimezone(UTC)


def eligible_ids(session, now):
    return set(session.scalars(
        __import__("sqlalchemy").select(Supporter.id).where(shifts.eligible(now, ZONE))))


def test_on_shift_means_offered_and_off_shift_not(session, make_supporter):
    ada = make_supporter(available=False)
    shifts.add_shift(session, ada, "Monday", "08:00", "16:00")
    assert ada.id in eligible_ids(session, MONDAY_9AM)
    later = datetime(2025, 3, 3, 16, 0, tzinfo=ZONE).astimezone(UTC)
    assert ada.id not in eligible_ids(session, later)


def test_overnight_sunday_shift_wraps_into_monday(session, make_supporter):
    bo = make_supporter(available=False)
    shifts.add_shift(session, bo, "Sunday", "22:00", "06:00")
    monday_2am = datetime(2025, 3, 3, 2, 0, tzinfo=ZONE).astimezone(UTC)
    assert bo.id in eligible_ids(session, monday_2am)


def test_manual_off_holds_through_every_shift_until_switched_on_or_back_to_the_schedule(
        session, make_supporter, clock):
    """Issue 14: an OFF is never overridden by a shift (before, the next shift brought the
    supporter back without a word from them, so "off" still rang)."""
    from hotline.roster.supporters import switch
    ada = make_supporter(available=False)
    shifts.add_shift(session, ada, "Monday", "08:00", "16:00")
    shifts.add_shift(session, ada, "Tuesday", "08:00", "16:00")
    clock.set(MONDAY_9AM)
    ada.available = False          # what texting OFF does
    session.commit()
    tuesday = datetime(2025, 3, 4, 9, 0, tzinfo=ZONE).astimezone(UTC)
    assert ada.id not in eligible_ids(session, MONDAY_9AM)
    assert ada.id not in eligible_ids(session, tuesday)
    ada.available = True           # texting ON ends the OFF
    session.commit()
    ada.available = False
    session.commit()
    switch(session, ada, "schedule")  # the coordinator puts her back on her shifts
    assert ada.id in eligible_ids(session, tuesday)
    ada.available = True
    session.commit()
    ada.available = False
    session.commit()
    shifts.remove_shift(session, shifts.shifts_of(session, ada.id)[0])  # the OFF stays
    assert ada.id not in eligible_ids(session, tuesday)


def test_manual_on_without_a_shift_and_reservation_respects_it(session, make_supporter):
    cy = make_supporter(available=True)
    assert cy.id in eligible_ids(session, MONDAY_9AM)
    off = make_supporter(available=False)
    assert routing.reserve(session, off.id, "offer:1") is False
    assert routing.reserve(session, cy.id, "offer:2") is True


def test_shift_fields_are_validated(session, make_supporter):
    ada = make_supporter()
    for args, message in ((("Funday", "08:00", "09:00"), "Monday to Sunday"),
                          (("Monday", "8 o'clock", "09:00"), "a time like"),
                          (("Monday", "25:00", "09:00"), "a time like"),
                          (("Monday", "13pm", "09:00"), "a time like")):
        try:
            shifts.add_shift(session, ada, *args)
        except shifts.ShiftError as exc:
            assert message in str(exc)
        else:
            raise AssertionError("accepted")


def test_a_supporter_texts_schedule_to_go_back_to_their_shifts(twilio, session, make_supporter,
                                                               clock):
    """OFF holds through shifts; SCHEDULE (by text, as the dashboard's "schedule") puts the
    supporter back on their weekly shifts without making them available at all hours."""
    from tests.test_sms import text
    ada = make_supporter("Ada", available=False)
    shifts.add_shift(session, ada, "Monday", "08:00", "16:00")
    clock.set(MONDAY_9AM)
    [(_, off)] = text(twilio, "OFF", sender=ada.phone)
    assert "SCHEDULE" in off
    session.expire_all()
    assert ada.id not in eligible_ids(session, MONDAY_9AM)
    [(_, back)] = text(twilio, "schedule", sender=ada.phone)
    assert "weekly shifts" in back
    session.expire_all()
    assert ada.id in eligible_ids(session, MONDAY_9AM)                  # on shift: offered
    monday_night = datetime(2025, 3, 3, 22, 0, tzinfo=ZONE).astimezone(UTC)
    assert ada.id not in eligible_ids(session, monday_night)            # not at all hours


def test_common_time_forms_are_accepted(session, make_supporter):
    """Issue 14 item 7: "8am" and "9" were refused while "8:00" was accepted."""
    for text, minute in (("8am", 8 * 60), ("9", 9 * 60), ("9pm", 21 * 60), ("21:30", 21 * 60 + 30),
                         ("9:30 pm", 21 * 60 + 30), ("0900", 9 * 60), ("12am", 0),
                         ("12pm", 12 * 60), ("7.15", 7 * 60 + 15), ("8 a.m.", 8 * 60),
                         ("08:00", 8 * 60), ("24:00", 0)):
        assert shifts.parse_clock(text, "start") == minute, text
    ada = make_supporter()
    shift = shifts.add_shift(session, ada, "Tuesday", "8am", "4pm")
    assert shifts.describe(shift) == "Tuesday 08:00–16:00"


def test_empty_or_zero_length_shifts_are_refused_with_every_error_at_once(session,
                                                                          make_supporter):
    """Issue 14 item 7: 09:00-09:00 silently became a 24-hour shift; an empty form
    reported one error at a time."""
    ada = make_supporter()
    for args, errors in ((("Monday", "09:00", "09:00"), {"end": "same time"}),
                         (("Monday", "9am", "9:00"), {"end": "same time"}),
                         (("", "", ""), {"weekday": "Monday to Sunday",
                                         "start": "start is required",
                                         "end": "end is required"})):
        try:
            shifts.add_shift(session, ada, *args)
        except shifts.ShiftError as exc:
            assert set(exc.errors) == set(errors), exc.errors
            for field, words in errors.items():
                assert words in exc.errors[field]
        else:
            raise AssertionError(f"accepted {args}")
    assert shifts.shifts_of(session, ada.id) == []


def test_on_shift_until_is_in_the_program_time_zone_with_the_zone_named(session,
                                                                         make_supporter):
    """Issue 14 item 5: a Friday 23:00-01:00 shift showed "on shift until Sat 06:00" (UTC)."""
    ada = make_supporter(available=False)
    shifts.add_shift(session, ada, "Friday", "23:00", "01:00")
    friday_late = datetime(2025, 1, 10, 23, 30, tzinfo=ZONE).astimezone(UTC)
    [row] = [a for a in shifts.now_view(session, friday_late, ZONE) if a.supporter.id == ada.id]
    assert row.offered and row.reason == "on shift until Sat 01:00 EST"
    ada.available = False                  # a manual OFF names the zone the same way
    session.commit()
    summer = datetime(2025, 7, 4, 12, 0, tzinfo=ZONE).astimezone(UTC)
    assert shifts.local_time(summer, ZONE) == "Fri 12:00 EDT"
