"""``sim.snapshot()``: what a live panel shows, JSON-ready, paged by event index."""

from __future__ import annotations

import json

import pytest
from twilio.twiml.voice_response import Gather

from hotline.simulator import InteractivePhone, ScriptedPhone
from tests.simulator.conftest import BASE, CALLER, HOTLINE, SUPPORTER, response


@pytest.fixture
def story(sim, fake):
    """Dr. Rivera (interactive) calls in, presses 1 and waits in the queue; Ada is rung."""
    sim.add_phone(InteractivePhone(CALLER, label="Dr. Rivera"))
    sim.add_phone(InteractivePhone(SUPPORTER, label="Ada"))
    menu = Gather(num_digits=1, action="/menu")
    menu.say("press 1 to talk")                                          # 1 s
    fake.reply("/voice", response(lambda r: r.append(menu)))
    fake.reply("/menu", response(lambda r: r.enqueue("support", wait_url="/wait")))
    fake.reply("/wait", response(lambda r: r.say("please hold"), lambda r: r.pause(length=30)))
    fake.reply("/offer", response(lambda r: r.dial().queue("support")))
    return sim.dial(CALLER, HOTLINE)


def test_phones_show_their_own_calls_as_their_screens_would(sim, story):
    sim.advance(0.25)
    first = sim.snapshot()
    assert first["phones"][CALLER] == {
        "label": "Dr. Rivera", "kind": "interactive", "heard": ["press 1 to talk"],
        "messages": [],
        "legs": [{"sid": story.sid, "peer": HOTLINE, "incoming": False,
                  "status": "in-progress", "doing": "gathering", "num_digits": 1,
                  "answerable": False}]}

    sim.press(story.sid, "1")
    sim.advance(1.75)
    offer = sim.create_call(to=SUPPORTER, from_=HOTLINE, url=f"{BASE}/offer", timeout=20)
    sim.advance(1)
    second = sim.snapshot(since_event=first["next_event"])

    assert second["now"] == 3 and second["numbers"] == [HOTLINE]
    rivera, ada = second["phones"][CALLER], second["phones"][SUPPORTER]
    assert rivera["heard"] == ["press 1 to talk", "please hold", "[pause 30]"]
    assert [(leg["doing"], leg["num_digits"]) for leg in rivera["legs"]] == [("in queue", None)]
    assert ada == {
        "label": "Ada", "kind": "interactive", "heard": [], "messages": [],
        "legs": [{"sid": offer.sid, "peer": HOTLINE, "incoming": True, "status": "ringing",
                  "doing": "ringing", "num_digits": None, "answerable": True}]}
    assert second["queues"] == {"support": [story.sid]}
    assert second["legs"] == [
        {"sid": story.sid, "from": CALLER, "to": HOTLINE, "direction": "inbound",
         "status": "in-progress", "doing": "in queue", "queue": "support", "bridged_to": None,
         "parent_sid": None, "created_at": 0, "answered_at": 0, "ended_at": None},
        {"sid": offer.sid, "from": HOTLINE, "to": SUPPORTER, "direction": "outbound-api",
         "status": "ringing", "doing": "ringing", "queue": None, "bridged_to": None,
         "parent_sid": None, "created_at": 2, "answered_at": None, "ended_at": None}]
    assert [(e["i"], e["t"], e["kind"]) for e in second["events"]] == [
        (5, 0.25, "keys"), (6, 0.25, "barge-in"), (7, 0.25, "input"), (8, 0.25, "request"),
        (9, 0.25, "enqueue"), (10, 0.25, "request"), (11, 0.25, "say"), (12, 1.25, "pause"),
        (13, 2, "ring")]
    assert second["events"][0]["details"] == {"sid": story.sid, "digits": "1"}
    assert second["next_event"] == 14 == len(sim.events)
    assert json.loads(json.dumps(second)) == second


def test_bridges_and_ended_legs_stay_a_minute(sim, story):
    sim.advance(1)
    sim.press(story.sid, "1")
    offer = sim.create_call(to=SUPPORTER, from_=HOTLINE, url=f"{BASE}/offer", timeout=20)
    sim.advance(2)
    sim.answer(offer.sid)
    sim.advance(10)                                     # bridged at 3
    live = sim.snapshot()
    assert live["bridges"] == [{"a": story.sid, "b": offer.sid, "since": 3, "ended": False,
                                "until": None}]
    assert [leg["doing"] for leg in live["phones"][SUPPORTER]["legs"]] == ["bridged"]

    sim.hangup(offer.sid)
    sim.advance(0)                                      # both legs end at 13
    assert sim.snapshot()["phones"][SUPPORTER]["legs"] == []
    sim.advance(60)
    kept = sim.snapshot()
    assert [(leg["sid"], leg["ended_at"]) for leg in kept["legs"]] == [
        (story.sid, 13), (offer.sid, 13)]
    assert kept["bridges"][0]["ended"] is True and kept["bridges"][0]["until"] == 13
    sim.advance(0.5)
    gone = sim.snapshot()
    assert (gone["legs"], gone["bridges"]) == ([], [])
    assert len(sim.legs) == 2 and len(sim.bridges) == 1             # the state keeps them


def test_events_page_by_index_and_keep_the_newest(sim, story):
    sim.advance(5)
    total = len(sim.events)
    assert [e["i"] for e in sim.snapshot(since_event=total - 2)["events"]] == [total - 2,
                                                                             total - 1]
    assert sim.snapshot(since_event=total)["events"] == []
    capped = sim.snapshot(max_events=3)
    assert [e["i"] for e in capped["events"]] == [total - 3, total - 2, total - 1]
    assert capped["next_event"] == total


def test_phone_messages_show_both_ways_with_the_other_number_and_no_bodies_in_events(sim, fake):
    sim.sms_url = f"{BASE}/sms"
    rivera = sim.add_phone(ScriptedPhone(CALLER, label="Rivera"))
    fake.reply("/sms", "<Response><Message>we got it</Message></Response>")
    sim.send_sms(CALLER, HOTLINE, "I need to talk")
    sim.advance(1)

    snap = sim.snapshot()

    assert [(m["direction"], m["other"], m["body"], m["status"])
            for m in snap["phones"][CALLER]["messages"]] == [
        ("inbound", HOTLINE, "I need to talk", "received")]
    sim.advance(1)
    messages = sim.snapshot()["phones"][CALLER]["messages"]
    assert [(m["direction"], m["other"], m["body"], m["status"]) for m in messages] == [
        ("inbound", HOTLINE, "I need to talk", "received"),
        ("outbound-reply", HOTLINE, "we got it", "delivered")]
    assert snap["phones"][CALLER]["kind"] == "scripted" and rivera.label == "Rivera"
    dumped = json.dumps(sim.snapshot()["events"])
    assert "I need to talk" not in dumped and "we got it" not in dumped


def test_transcripts_and_messages_are_cut_to_the_last_thirty(sim):
    phone = sim.add_phone(InteractivePhone(CALLER))
    phone.heard.extend(f"line {i}" for i in range(40))
    phone.messages.extend({"sid": f"SM{i}", "from": HOTLINE, "to": CALLER, "body": str(i),
                           "status": "delivered", "direction": "outbound-api",
                           "created_at": float(i)} for i in range(35))
    view = sim.snapshot()["phones"][CALLER]
    assert view["heard"] == [f"line {i}" for i in range(10, 40)]
    assert [m["body"] for m in view["messages"]] == [str(i) for i in range(5, 35)]
