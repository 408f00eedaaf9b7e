"""End to end by text: clinicians and supporters texting at once through the simulator.

The simulator posts each text to the app's SMS webhook (signed), delivers the TwiML
replies and relays to the phones, and serves the REST API the jobs send offers with.
"""

from __future__ import annotations

import pytest

import logging

from hotline.simulator import Answer
from tests.conftest import HOTLINE_NUMBER, run_jobs
from tests.privacy_scan import assert_kept_nowhere
from tests.scenario import TextingPhone, clinician, connected_conversation, run_scheduled


def test_a_clinician_texts_with_a_peer_and_neither_sees_the_other(hotline):
    ada = hotline.supporter("Ada", phone_class=TextingPhone,
                            replies=[("Reply YES", "YES"), ("Long day", "I hear you. BYE")])
    doc = clinician(hotline, "+16175550171",
                    replies=[("Reply 1", "2"), ("check-in text", "NO")])
    doc.text("hello")
    hotline.run(600)
    doc.text("Long day, hard loss", after=0)
    hotline.run(600)
    ada.text("BYE")
    hotline.run(600)
    assert any("texting with a peer supporter" in b for b in doc.received())
    assert "Long day, hard loss" in ada.received()
    assert "I hear you. BYE" in doc.received()
    assert any("conversation has ended" in b for b in doc.received())
    everything = " ".join(doc.received() + ada.received())
    assert ada.number not in everything and doc.number not in everything
    relays = [m for m in hotline.sim.messages if m["direction"] != "inbound"]
    assert all(m["from"] == HOTLINE_NUMBER for m in relays)
    [contact] = hotline.contacts()
    assert contact.outcome == "connected" and contact.state == "ended"
    assert contact.sealed_number is None


@pytest.mark.usefixtures("one_at_a_time")
def test_several_clinicians_and_supporters_at_once(hotline):
    supporters = [hotline.supporter(f"S{i}", phone_class=TextingPhone,
                                    replies=[("Reply YES", "YES")]) for i in range(3)]
    doctors = [clinician(hotline, f"+161755502{i:02d}", replies=[("Reply 1", "2")])
               for i in range(3)]
    for doctor in doctors:
        doctor.text("hi")
    hotline.run(900)
    contacts = hotline.contacts()
    assert [c.outcome for c in contacts] == ["connected"] * 3
    assert len({c.supporter_id for c in contacts}) == 3
    for i, doctor in enumerate(doctors):
        doctor.text(f"marker-{i}")
    hotline.run(600)
    got = {s.number: [b for b in s.received() if b.startswith("marker-")] for s in supporters}
    assert sorted(sum(got.values(), [])) == ["marker-0", "marker-1", "marker-2"]
    assert all(len(v) == 1 for v in got.values())  # each conversation stays with its pair


def test_pass_then_tier_two_then_nobody_left(hotline):
    hotline.supporter("Passes", phone_class=TextingPhone, replies=[("Reply YES", "PASS")])
    hotline.supporter("Backup", tier=2, phone_class=TextingPhone,
                      replies=[("Reply YES", "PASS")])
    doc = clinician(hotline, "+16175550181", replies=[("Reply 1", "2")])
    doc.text("hello")
    hotline.run(900)
    assert any("no peer supporter is free right now" in b for b in doc.received())
    [contact] = hotline.contacts()
    assert contact.state == "options" and contact.outcome is None
    assert hotline.offers() == [("Passes", "declined", 1), ("Backup", "declined", 2)]
    doc.text("3")
    hotline.run(60)
    assert hotline.contacts()[0].outcome == "callback_requested"


@pytest.mark.usefixtures("one_at_a_time")
def test_no_reply_moves_the_offer_on(hotline):
    silent = hotline.supporter("Silent", phone_class=TextingPhone)
    hotline.supporter("Ready", phone_class=TextingPhone, replies=[("Reply YES", "YES")])
    doc = clinician(hotline, "+16175550182", replies=[("Reply 1", "2")])
    doc.text("hello")
    hotline.run(300)
    assert hotline.offers() == [("Silent", "ringing", 1)]
    run_scheduled(hotline)  # HOTLINE_SMS_ACCEPT_SECONDS later
    hotline.run(300)
    assert hotline.offers() == [("Silent", "no_answer", 1), ("Ready", "accepted", 1)]
    moved = [b for b in silent.received() if "moved on" in b]   # once (issue 14: it was twice)
    assert moved == ["The request has moved on to another supporter."]


def test_a_quiet_conversation_closes_with_a_message_to_both(hotline):
    ada, doc = connected_conversation(hotline, "+16175550183")
    assert hotline.contacts()[0].state == "connected"
    run_scheduled(hotline)
    hotline.run(60)
    assert any("closed after a quiet period" in b for b in doc.received())
    assert any("closed after a quiet period" in b for b in ada.received())
    [contact] = hotline.contacts()
    assert contact.state == "ended" and contact.sealed_number is None
    assert hotline.busy() == []


def test_a_call_me_request_rings_the_peer_first_then_the_clinician(hotline):
    hotline.supporter("Ada", hangup_after_bridge=60)
    doc = hotline.sim.add_phone(TextingPhone("+16175550184", replies=[("Reply 1", "1")],
                                             ring=Answer(2),
                                             hangup_after_bridge=None))
    doc.text("hello")
    hotline.run(900)
    [contact] = hotline.contacts()
    assert contact.outcome == "connected" and contact.mode == "call"
    legs = list(hotline.sim.legs.values())
    to_ada = [leg for leg in legs if leg.to != doc.number and leg.direction == "outbound-api"]
    to_doc = [leg for leg in legs if leg.to == doc.number]
    assert to_ada and to_doc and to_ada[0].created_at < to_doc[0].created_at
    assert all(leg.from_ == HOTLINE_NUMBER for leg in to_ada + to_doc)
    assert any("connected with a peer" in line for line in doc.heard)


def test_texted_words_and_the_number_are_kept_nowhere(hotline, caplog):
    """Privacy canary: a unique marker and the clinician's number in no table, key or log."""
    caplog.set_level(logging.DEBUG)
    hotline.supporter("Ada", phone_class=TextingPhone,
                      replies=[("Reply YES", "YES"), ("CANARY", "reply-CANARY-2")])
    doc = clinician(hotline, "+16175550199", replies=[("Reply 1", "2")])
    doc.text("hello")
    hotline.run(600)
    doc.text("secret CANARY-marker words")
    hotline.run(600)
    assert "reply-CANARY-2" in doc.received()
    run_jobs(hotline.app)
    assert_kept_nowhere(hotline.app, ("CANARY", "6175550199"), caplog.text)
    # the auditor's pass redacted every body at the stand-in, incoming ones too
    from workers import audit
    with hotline.app.app_context():
        assert audit.audit()["redacted"] == len(hotline.sim.messages)
    relayed = [m for m in hotline.sim.messages if "CANARY" in (m.get("body") or "")]
    assert relayed == []
