"""Consent at the end of a connected call: by a key press, or by a text if the caller left."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from hotline.extensions import db
from hotline.models import FollowUp
from tests.test_sms_end_to_end import TextingPhone
from tests.test_voice_end_to_end import Hotline, heard


@pytest.fixture
def hotline(fresh_app):
    world = Hotline(fresh_app)
    yield world
    world.server.shutdown()


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
