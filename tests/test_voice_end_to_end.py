"""End to end: clinicians call, supporters' phones ring, people get connected.

The offline Twilio simulator plays Twilio's part in virtual time: it calls the app's
webhooks (signed), serves the REST API the app's SDK calls over real HTTP, rings the
scripted phones and bridges queues. Jobs run with RQ's SimpleWorker between events.
Every TwiML document the simulator receives is validated against Twilio's schema.
"""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import text

from hotline.core.extensions import db
from hotline.models import Supporter
from hotline.simulator import Answer, Busy, NoAnswer, Press, ScriptedPhone, Silence, Speak
from tests.conftest import HOTLINE_NUMBER
from tests.privacy_scan import assert_kept_nowhere
from tests.scenario import heard


def test_supporter_accepts_and_both_stay_masked(hotline):
    ada = hotline.supporter("Ada", hangup_after_bridge=120)
    clinician = hotline.clinician(gather=["1"], hangup_after_bridge=None)
    hotline.call(clinician)
    hotline.run()
    [contact] = hotline.contacts()
    assert contact.outcome == "connected" and contact.state == "ended"
    assert hotline.offers() == [("Ada", "accepted", 1)]
    [leg] = hotline.legs_to(ada)
    assert leg.from_ == HOTLINE_NUMBER and leg.direction == "outbound-api"
    assert heard(ada, "Peer support call") and heard(clinician, "connected with a peer")
    assert ada.number not in " ".join(clinician.heard)
    assert clinician.number not in " ".join(ada.heard)
    [bridge] = hotline.sim.bridges
    assert bridge.duration(hotline.sim.now) >= 119
    assert hotline.busy() == []


@pytest.mark.usefixtures("one_at_a_time")
def test_no_answer_busy_decline_and_silence_pass_to_the_next(hotline):
    hotline.supporter("NoAnswer", ring=NoAnswer())
    hotline.supporter("Busy", ring=Busy())
    hotline.supporter("Declines", gather=["2"])
    hotline.supporter("Silent", gather=[Silence()])
    hotline.supporter("Accepts")
    clinician = hotline.clinician(gather=["1"])
    hotline.call(clinician)
    hotline.run()
    assert hotline.offers() == [("NoAnswer", "no_answer", 1), ("Busy", "busy", 1),
                                ("Declines", "declined", 1), ("Silent", "declined", 1),
                                ("Accepts", "accepted", 1)]
    [contact] = hotline.contacts()
    assert contact.outcome == "connected"
    assert hotline.busy() == []


def test_pressing_nothing_at_all_still_reaches_a_human(hotline):
    hotline.supporter("Ada")
    clinician = hotline.clinician(gather=[])
    hotline.call(clinician)
    hotline.run()
    assert hotline.contacts()[0].outcome == "connected"
    assert heard(clinician, "I did not hear a choice")


@pytest.mark.usefixtures("one_at_a_time")
def test_round_robin_across_calls(hotline):
    for name in ("A", "B", "C"):
        hotline.supporter(name, hangup_after_bridge=10)
    for i in range(4):
        hotline.call(hotline.clinician(number=f"+1617555030{i}", gather=["1"]), after=i * 200)
    hotline.run(1200)
    assert [name for name, state, _ in hotline.offers()] == ["A", "B", "C", "A"]
    assert all(c.outcome == "connected" for c in hotline.contacts())


def test_caller_hangs_up_while_a_supporter_rings(hotline):
    legs = hotline.call(hotline.clinician(gather=["1"]))  # placed when the run starts

    class HangsUpMidRing(ScriptedPhone):
        def on_ring(self, leg):
            hotline.sim.hangup(legs[0].sid, after=3)  # the caller gives up while it rings
            return NoAnswer()

    ada = hotline.sim.add_phone(HangsUpMidRing("+16175550011"))
    with hotline.app.app_context():
        db.session.add(Supporter(name="Ada", phone=ada.number, available=True))
        db.session.commit()
    hotline.run()
    [contact] = hotline.contacts()
    assert contact.outcome == "abandoned"
    assert hotline.offers() == [("Ada", "canceled", 1)]
    [leg] = hotline.legs_to(ada)
    assert leg.status == "canceled" and leg.end_time - legs[0].end_time < 1
    assert hotline.busy() == []


def test_backup_tier_rings_all_at_once_and_the_first_to_press_1_wins(hotline):
    hotline.supporter("Peer", ring=NoAnswer())
    slow = hotline.supporter("Slow backup", tier=2, ring=Answer(6))
    fast = hotline.supporter("Fast backup", tier=2, ring=Answer(2))
    clinician = hotline.clinician(gather=["1"])
    hotline.call(clinician)
    hotline.run()
    assert hotline.offers() == [("Peer", "no_answer", 1), ("Slow backup", "canceled", 2),
                                ("Fast backup", "accepted", 2)]
    assert hotline.contacts()[0].outcome == "connected_backup"
    rung = {leg.to: leg.created_at for leg in hotline.sim.legs.values()
            if leg.to in (slow.number, fast.number)}
    assert len(set(rung.values())) == 1  # rung at the same moment
    assert hotline.busy() == []


@pytest.mark.usefixtures("one_at_a_time")
def test_backup_tier_joins_after_the_wait_threshold(hotline):
    for i in range(8):
        hotline.supporter(f"Peer{i}", ring=NoAnswer())
    hotline.supporter("Backup", tier=2)
    hotline.call(hotline.clinician(gather=["1"]))
    hotline.run()
    offers = hotline.offers()
    assert ("Backup", "accepted", 2) in offers
    peers = [o for o in offers if o[2] == 1]
    assert 2 <= len(peers) < 8  # tier 2 rang at the threshold, before tier 1 ran out
    assert peers[-1][1] == "canceled"  # the peer still ringing was stopped
    assert hotline.contacts()[0].outcome == "connected_backup"


def test_nobody_available_offers_options_and_a_callback(hotline):
    hotline.supporter("Off duty", available=False)
    clinician = hotline.clinician(gather=["1", "2"])
    hotline.call(clinician)
    hotline.run()
    contact = hotline.contacts()[0]
    assert contact.outcome == "callback_requested"
    assert heard(clinician, "no peer supporter is free right now")
    # Nobody on, no shift: no time the roster cannot keep, and the crisis line (issue 14).
    assert heard(clinician, "as soon as one is available")
    assert not heard(clinician, "within 30 minutes")


def test_nobody_answers_then_silence_keeps_waiting_with_the_crisis_line_offered(hotline):
    """Issue 14, item 3: before, silence at the options put the caller through to the
    crisis line (~35 s); someone who simply holds on now keeps waiting for a peer."""
    hotline.supporter("Peer", ring=NoAnswer())
    hotline.supporter("Backup", tier=2, ring=Busy())
    crisis = hotline.sim.add_phone(ScriptedPhone("+18002738255", ring=Answer(1)))
    hotline.app.extensions["hotline.settings"] = settings_with(hotline.app,
                                                               CRISIS_LINE_NUMBER=crisis.number)
    clinician = hotline.clinician(gather=["1"])
    hotline.call(clinician)
    hotline.run()
    [contact] = hotline.contacts()
    assert contact.outcome != "crisis_transfer" and contact.attempt > 2
    assert not any(leg.to == crisis.number for leg in hotline.sim.legs.values())
    assert heard(clinician, "keep looking for a peer supporter")
    assert heard(clinician, f"hang up and call {crisis.number}")
    assert not heard(clinician, "connecting you to the crisis line")


def test_waiting_past_the_maximum_then_keep_waiting(hotline):
    for i in range(12):
        hotline.supporter(f"Peer{i}", ring=NoAnswer())
    late = hotline.supporter("Late", tier=2, available=False)
    clinician = hotline.clinician(gather=["1", "1"])
    hotline.call(clinician)

    def late_goes_on():
        with hotline.app.app_context():
            db.session.get(Supporter, 13).available = True
            db.session.commit()
    hotline.sim.schedule(200, late_goes_on)
    hotline.run(1500)
    assert heard(clinician, "To keep waiting, press 1")
    [contact] = hotline.contacts()
    assert contact.outcome == "connected_backup" and contact.attempt >= 2
    assert ("Late", "accepted", 2) in hotline.offers()
    assert late.number in [leg.to for leg in hotline.sim.legs.values()]


def test_several_callers_at_once_never_share_a_supporter(hotline):
    for name in ("A", "B", "C", "D"):
        hotline.supporter(name, hangup_after_bridge=60)
    for i in range(4):
        hotline.call(hotline.clinician(number=f"+1617555040{i}", gather=["1"],
                                       hangup_after_bridge=None))
    hotline.run()
    contacts = hotline.contacts()
    assert [c.outcome for c in contacts] == ["connected"] * 4
    assert len({c.supporter_id for c in contacts}) == 4
    assert sorted(name for name, state, _ in hotline.offers() if state == "accepted") == \
        ["A", "B", "C", "D"]


def test_supporter_on_a_call_is_not_offered_another(hotline):
    hotline.supporter("Only", hangup_after_bridge=300)
    first = hotline.clinician(number="+16175550501", gather=["1"], hangup_after_bridge=None)
    second = hotline.clinician(number="+16175550502", gather=["1", "2"])
    hotline.call(first)
    hotline.call(second, after=60)
    hotline.run(1500)
    one, two = hotline.contacts()[:2]
    assert one.outcome == "connected" and two.outcome == "callback_requested"
    assert hotline.offers() == [("Only", "accepted", 1)]


def test_nothing_the_caller_said_or_their_number_is_kept(hotline, caplog, redis_server):
    """Privacy canary: the caller's number and words appear in no table, key or log line."""
    caplog.set_level(logging.DEBUG)
    hotline.supporter("Ada", gather=[Press("1")])
    clinician = hotline.clinician(number="+16175550987",
                                  gather=[Speak("MARKER-canary-words talk")])
    hotline.call(clinician)
    hotline.run()
    assert hotline.contacts()[0].outcome == "connected"
    assert_kept_nowhere(hotline.app, ("6175550987", "MARKER-canary"), caplog.text)


def test_every_twiml_the_calls_produced_records_nothing(hotline):
    hotline.supporter("Ada", ring=NoAnswer())
    hotline.supporter("Bo", tier=2)
    hotline.call(hotline.clinician(gather=["8", "1"]))
    hotline.run()
    assert len(hotline.transport.documents) >= 8
    assert all("Record" not in doc and "record=" not in doc for doc in hotline.transport.documents)


def settings_with(app, **changes):
    return app.extensions["hotline.settings"].replace(**changes)


@pytest.mark.parametrize("dialect", ["any"])
def test_database_kind_is_exercised(hotline, dialect):
    with hotline.app.app_context():
        assert db.session.execute(text("select 1")).scalar() == 1


@pytest.mark.parametrize("status", [500, 429])
def test_twilio_refusing_a_call_moves_on_to_the_next_supporter(hotline, status):
    from hotline.simulator.rest import ApiError
    broken = hotline.supporter("Unreachable")
    hotline.supporter("Reachable")
    original = hotline.sim.create_call

    def refuse(**kwargs):
        if kwargs.get("to") == broken.number:
            raise ApiError(status, 20500 if status == 500 else 20429, "Twilio is unwell")
        return original(**kwargs)

    hotline.sim.create_call = refuse
    hotline.call(hotline.clinician(gather=["1"]))
    hotline.run()
    assert hotline.offers() == [("Unreachable", "failed", 1), ("Reachable", "accepted", 1)]
    assert hotline.contacts()[0].outcome == "connected"
    assert hotline.busy() == []


def test_a_changed_timeout_is_not_hidden_by_a_kept_client(monkeypatch):
    """Clients are kept per thread and configuration; one kept from before the timeout
    changed (a stand-in reusing an earlier test's port did this) would wait the old one."""
    from hotline.telephony import api as twilio_api
    from hotline.core.settings import Settings
    cfg = Settings()
    assert twilio_api.client(cfg).http_client.timeout == twilio_api.HTTP_TIMEOUT_SECONDS
    monkeypatch.setattr(twilio_api, "HTTP_TIMEOUT_SECONDS", 1)
    assert twilio_api.client(cfg).http_client.timeout == 1


def test_a_twilio_timeout_moves_on_and_a_late_ring_is_told_it_was_taken(hotline, monkeypatch):
    import threading
    import time

    from hotline.telephony import api as twilio_api
    monkeypatch.setattr(twilio_api, "HTTP_TIMEOUT_SECONDS", 1)
    from flask import request
    slow = hotline.supporter("Slow network")
    hotline.supporter("Fine")
    views = hotline.server.app.view_functions
    original = views["create_call"]

    late = threading.Event()

    def hang(*args, **kwargs):
        if request.form.get("To") != slow.number:
            return original(*args, **kwargs)
        time.sleep(2)  # Twilio answers after the client gave up (the call still rings)
        try:
            return original(*args, **kwargs)
        finally:
            late.set()

    views["create_call"] = hang
    hotline.call(hotline.clinician(gather=["1"]))
    hotline.run()
    # The slow request completes at "Twilio" after all (however loaded the machine)...
    assert late.wait(timeout=60)
    hotline.run()    # ...and that supporter's phone rings late
    assert hotline.offers() == [("Slow network", "failed", 1), ("Fine", "accepted", 1)]
    assert hotline.contacts()[0].outcome == "connected"
    assert heard(slow, "already been connected or has hung up")
    assert hotline.busy() == []
