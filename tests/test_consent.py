"""Consent at the end of a connected call: by a key press, or by a text if the caller left."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from hotline.core.extensions import db
from hotline.models import FollowUp
from hotline.simulator import Answer
from tests.conftest import HOTLINE_NUMBER
from tests.scenario import TextingPhone, heard, run_scheduled


def followups(hotline):
    with hotline.app.app_context():
        return list(db.session.scalars(select(FollowUp).order_by(FollowUp.sequence)))


def test_press_1_after_the_call_schedules_check_ins(hotline):
    hotline.supporter("Ada", hangup_after_bridge=60)  # the supporter ends the call
    clinician = hotline.clinician(gather=["1", "1"], hangup_after_bridge=None)
    hotline.call(clinician)
    hotline.run()
    assert heard(clinician, "would you like a short check-in text tomorrow")
    contact = hotline.contacts()[0]
    assert contact.consent == "yes" and contact.sealed_number is None
    rows = followups(hotline)
    assert [f.kind for f in rows] == ["survey", "checkin"]
    assert all(f.sealed_number for f in rows)  # each keeps its own sealed copy until sent


def test_no_key_means_no_and_the_number_goes(hotline):
    hotline.supporter("Ada", hangup_after_bridge=60)
    clinician = hotline.clinician(gather=["1"], hangup_after_bridge=None)
    hotline.call(clinician)
    hotline.run()
    contact = hotline.contacts()[0]
    assert contact.consent == "no" and contact.sealed_number is None
    assert followups(hotline) == []


def test_a_caller_who_hangs_up_first_is_asked_by_text(hotline):
    hotline.supporter("Ada", hangup_after_bridge=None)
    clinician = hotline.sim.add_phone(TextingPhone(
        "+16175550131", gather=["1"], hangup_after_bridge=45,
        replies=[("check-in text", "YES")]))
    hotline.call(clinician)
    hotline.run()
    assert any("check-in text" in body for body in clinician.received())
    assert any("We will check in by text" in body for body in clinician.received())
    contact = hotline.contacts()[0]
    assert contact.consent == "yes" and contact.sealed_number is None
    assert len(followups(hotline)) == 2


# --- a spoofed caller ID cannot sign someone else up ---------------------------------------

SPOOFED = "+16175550141"


def _spoofed_call(hotline, stir_verstat, replies=()):
    """Someone calls from SPOOFED's number (the carrier does not vouch for it), talks with a
    peer and presses 1 for check-ins. Texts to the number reach its real owner, who
    answers them as ``replies`` say."""
    hotline.app.extensions["hotline.settings"] = hotline.app.extensions[
        "hotline.settings"].replace(SEND_FROM_HOUR=0, SEND_UNTIL_HOUR=24)
    hotline.supporter("Ada", hangup_after_bridge=60)
    phone = hotline.sim.add_phone(TextingPhone(SPOOFED, ring=Answer(1), gather=["1", "1"],
                                               hangup_after_bridge=None, replies=replies))
    hotline.sim.schedule(0, lambda: hotline.sim.dial(SPOOFED, HOTLINE_NUMBER,
                                                     stir_verstat=stir_verstat))
    hotline.run()
    run_scheduled(hotline)  # whatever follow-up was scheduled is due now
    hotline.run()
    return phone


@pytest.mark.parametrize("stir_verstat", [None, "No-TN-Validation", "TN-Validation-Failed-A",
                                          "TN-Validation-Passed-C"])
def test_a_yes_from_an_unvouched_caller_id_sends_no_follow_up(hotline, stir_verstat):
    phone = _spoofed_call(hotline, stir_verstat)
    assert heard(phone, "To be sure this number is yours")
    contact = hotline.contacts()[0]
    assert contact.caller_verified is False and contact.consent == "asked"
    assert followups(hotline) == []
    # the number's owner got one neutral question, and nothing else
    assert len(phone.received()) == 1 and "Reply YES or NO" in phone.received()[0]


def test_the_numbers_owner_confirming_by_text_gets_the_check_ins(hotline):
    phone = _spoofed_call(hotline, None, replies=[("check-in text", "YES")])
    contact = hotline.contacts()[0]
    assert contact.consent == "yes" and contact.sealed_number is None
    assert [f.kind for f in followups(hotline)] == ["survey", "checkin"]
    received = phone.received()
    assert "Reply YES or NO" in received[0] and "We will check in by text" in received[1]
    assert any("How helpful" in body for body in received[2:])


def test_a_vouched_for_caller_id_is_recorded(hotline):
    hotline.supporter("Ada", hangup_after_bridge=60)
    clinician = hotline.clinician(gather=["1", "1"], hangup_after_bridge=None)
    hotline.call(clinician)  # the stand-in's phones are on carriers that attest (A)
    hotline.run()
    contact = hotline.contacts()[0]
    assert contact.caller_verified is True and contact.consent == "yes"
