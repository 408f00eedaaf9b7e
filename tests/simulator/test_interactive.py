"""Interactive phones: a person answers, declines, keys in and speaks from outside."""

from __future__ import annotations

import re
import threading

import pytest
from twilio.twiml.voice_response import Dial, Gather

from hotline.simulator import InteractivePhone, NoAnswer, ScriptedPhone
from tests.simulator.conftest import BASE, CALLER, HOTLINE, SUPPORTER, kinds, response

OTHER = "+15550144444"


def call_out(sim, to=SUPPORTER, **extra):
    """What the app's worker does: a REST call from the hotline to ``to``."""
    extra.setdefault("timeout", 20)
    return sim.create_call(to=to, from_=HOTLINE, url=f"{BASE}/offer", **extra)


def at(sim, t, action):
    """Do ``action`` at virtual time ``t`` (from the loop, as another thread would)."""
    sim.schedule(t - sim.now, action)


def test_a_call_rings_until_the_person_answers(sim, fake):
    ada = sim.add_phone(InteractivePhone(SUPPORTER, label="Ada"))
    fake.reply("/offer", response(lambda r: r.say("x" * 30)))           # 2 s
    leg = call_out(sim, status_callback=f"{BASE}/cb",
                   status_callback_events=["ringing", "answered"])
    sim.advance(7)
    assert (leg.status, leg.ring_box is not None) == ("ringing", True)

    sim.answer(leg.sid)

    assert leg.status == "ringing"                      # only scheduled: the loop answers
    sim.run(until=lambda: leg.ended)
    assert (leg.answer_time, leg.end_time, leg.status) == (7, 9, "completed")
    assert ada.heard == ["x" * 30] and ada.label == "Ada"
    assert kinds(sim, leg.sid) == ["ring", "decision", "answer", "say", "hangup"]
    assert [(t, p, f["CallStatus"]) for t, p, f in fake.requests] == [
        (0, "/cb", "ringing"), (7, "/cb", "in-progress"), (7, "/offer", "in-progress"),
        (9, "/cb", "completed")]


def test_decline_ends_busy_at_once_and_ignoring_ends_no_answer_at_the_timeout(sim, fake):
    sim.add_phone(InteractivePhone(SUPPORTER))
    declined = call_out(sim, status_callback=f"{BASE}/cb")
    ignored = call_out(sim, status_callback=f"{BASE}/cb")
    sim.advance(3)

    sim.decline(declined.sid)
    sim.run()

    assert (declined.status, declined.end_time, declined.answer_time) == ("busy", 3, None)
    assert (ignored.status, ignored.end_time) == ("no-answer", 20)
    assert [(t, f["CallSid"], f["CallStatus"]) for t, _, f in fake.requests] == [
        (3, declined.sid, "busy"), (20, ignored.sid, "no-answer")]
    assert fake.to("/offer") == []


def test_hanging_up_a_ringing_call_declines_it(sim, fake):
    sim.add_phone(InteractivePhone(SUPPORTER))
    now, later = call_out(sim), call_out(sim)
    sim.advance(2)
    sim.hangup(now.sid)
    sim.hangup(later.sid, after=3)
    sim.run()
    assert [(leg.status, leg.end_time) for leg in (now, later)] == [("busy", 2), ("busy", 5)]
    assert sim.events_of("decision") == [{"sid": now.sid, "decision": "decline"},
                                         {"sid": later.sid, "decision": "decline"}]


def test_the_first_of_two_people_to_answer_a_dial_wins(sim, fake, caller):
    sim.add_phone(InteractivePhone(SUPPORTER))
    sim.add_phone(InteractivePhone(OTHER))
    dial = Dial(action="/dialed", timeout=30)
    dial.number(SUPPORTER)
    dial.number(OTHER)
    fake.reply("/voice", response(lambda r: r.append(dial)))
    fake.route("/dialed")(lambda form: response(lambda r: r.say(form["DialCallStatus"])))
    leg = sim.dial(CALLER, HOTLINE)
    sim.advance(1)
    first, second = (c for c in sim.legs.values() if c.parent_sid == leg.sid)

    sim.answer(second.sid)
    sim.advance(0)

    assert (first.status, second.status, sim.bridges[0].b) == ("canceled", "in-progress",
                                                                second.sid)
    with pytest.raises(ValueError, match=r"cannot answer call CA\w+: it has already ended"):
        sim.answer(first.sid)
    sim.hangup(second.sid, after=5)                     # the person hangs up, 5 s later
    sim.run(until=lambda: leg.ended)
    assert (fake.to("/dialed")[0]["DialCallDuration"], leg.heard) == ("5", ["completed"])


def test_answer_decline_and_press_refuse_what_cannot_be_done_now(sim, fake, caller):
    sim.add_phone(InteractivePhone(SUPPORTER))
    sim.add_phone(ScriptedPhone(OTHER, ring=NoAnswer()))
    for path in ("/offer", "/voice"):
        fake.reply(path, response(lambda r: r.pause(length=60)))
    with pytest.raises(KeyError, match="no call CAnope"):
        sim.answer("CAnope")
    with pytest.raises(KeyError, match="no call CAnope"):
        sim.hangup("CAnope")
    leg = call_out(sim)
    with pytest.raises(ValueError, match="it is queued, not ringing"):
        sim.answer(leg.sid)
    scripted = call_out(sim, to=OTHER)
    inbound = sim.dial(CALLER, HOTLINE)
    with pytest.raises(ValueError, match=re.escape(f"it is {CALLER}'s own call to the hotline")):
        sim.decline(inbound.sid)
    sim.advance(1)
    with pytest.raises(ValueError, match="rings a scripted phone, which decides by itself"):
        sim.answer(scripted.sid)
    with pytest.raises(ValueError, match="cannot press keys on call CA\\w+: it is ringing, not"):
        sim.press(leg.sid, "1")
    sim.answer(leg.sid)
    sim.advance(1)
    with pytest.raises(ValueError, match="it is in-progress, not ringing"):
        sim.decline(leg.sid)
    with pytest.raises(ValueError, match="keys must be some of 0-9, \\* and #, not '1a'"):
        sim.press(leg.sid, "1a")
    with pytest.raises(ValueError, match="nothing to say"):
        sim.speak(leg.sid, "  ")
    with pytest.raises(ValueError, match="its phone is scripted, not interactive"):
        sim.press(inbound.sid, "1")
    sim.hangup(leg.sid)
    sim.advance(0)
    with pytest.raises(ValueError, match="already ended \\(completed\\)"):
        sim.hangup(leg.sid)
    with pytest.raises(ValueError, match="already ended"):
        sim.press(leg.sid, "1")


def test_a_key_during_the_prompts_cuts_them_short(sim, fake):
    sim.add_phone(InteractivePhone(CALLER))
    gather = Gather(num_digits=1, action="/menu", timeout=5)
    gather.say("x" * 45)                                                 # 3 s
    gather.say("never reached")
    fake.reply("/voice", response(lambda r: r.append(gather)))
    fake.route("/menu")(lambda form: response(lambda r: r.say(f"you pressed {form['Digits']}")))
    leg = sim.dial(CALLER, HOTLINE)
    sim.advance(1)
    assert (leg.gathering.prompting, leg.gathering.num_digits) == (True, 1)

    sim.press(leg.sid, "27")                            # numDigits=1: the 7 is not taken

    sim.run(until=lambda: leg.ended)
    assert leg.heard == ["x" * 45, "you pressed 2"]
    assert [(t, p) for t, p, _ in fake.requests] == [(0, "/voice"), (1, "/menu"), (2, "/status")]
    menu = fake.to("/menu")[0]
    assert (menu["Digits"], menu["FinishedOnKey"]) == ("2", "")
    assert kinds(sim, leg.sid) == ["ring", "answer", "gather", "say", "keys", "barge-in",
                                   "input", "say", "hangup"]
    assert leg.gathering is None and leg.digits_sent == ["2"]


def test_finish_key_ends_the_input_and_each_key_restarts_the_timeout(sim, fake):
    sim.add_phone(InteractivePhone(CALLER))
    first = Gather(action="/a", timeout=3)
    first.say("enter your code")                                         # 1 s
    fake.reply("/voice", response(lambda r: r.append(first)))
    fake.reply("/a", response(lambda r: r.gather(action="/b", timeout=3)))
    fake.reply("/b", response(lambda r: r.say("done")))
    leg = sim.dial(CALLER, HOTLINE)
    for t, keys in ((2, "1"), (4, "2"), (6, "3#9"), (7, "4"), (8, "5")):
        at(sim, t, lambda keys=keys: sim.press(leg.sid, keys))

    sim.run(until=lambda: leg.ended)

    a, b = fake.to("/a")[0], fake.to("/b")[0]
    assert (a["Digits"], a["FinishedOnKey"]) == ("123", "#")
    assert (b["Digits"], b["FinishedOnKey"]) == ("45", "")
    # /a when # is pressed; /b 3 s after the last key (the prompts ended at 1, keys at 2 and
    # 4 each pushed the timeout further)
    assert [(t, p) for t, p, _ in fake.requests] == [
        (0, "/voice"), (6, "/a"), (11, "/b"), (12, "/status")]
    assert leg.digits_sent == ["123", "45"]


def test_no_keys_times_out_after_the_prompts_and_keys_without_a_gather_are_dropped(sim, fake):
    sim.add_phone(InteractivePhone(CALLER))
    gather = Gather(action="/menu", timeout=4)
    gather.say("press something")                                        # 1 s
    fake.reply("/voice", response(lambda r: r.say("x" * 30), lambda r: r.append(gather),
                                  lambda r: r.say("no input")))
    leg = sim.dial(CALLER, HOTLINE)
    at(sim, 1, lambda: sim.press(leg.sid, "1"))          # while a plain <Say> plays

    sim.run(until=lambda: leg.ended)

    assert fake.to("/menu") == []
    assert leg.heard == ["x" * 30, "press something", "no input"]
    assert [(t, k, d) for t, k, d in sim.events if k in ("dropped", "gather", "input")] == [
        (1, "dropped", {"sid": leg.sid, "input": "dtmf"}),
        (2, "gather", {"sid": leg.sid, "prompt": "press something"}),
        (7, "input", {"sid": leg.sid, "timeout": True})]


def test_words_barge_in_unless_barge_in_is_off_and_keys_need_dtmf(sim, fake):
    sim.add_phone(InteractivePhone(CALLER))
    talk = Gather(input="speech dtmf", speech_timeout="auto", action="/a")
    talk.say("x" * 45)                                                   # 3 s
    listen = Gather(input="speech", barge_in=False, speech_timeout=2, action="/b")
    listen.say("x" * 30)                                                 # 2 s
    fake.reply("/voice", response(lambda r: r.append(talk)))
    fake.reply("/a", response(lambda r: r.append(listen)))
    fake.reply("/b", response(lambda r: r.hangup()))
    leg = sim.dial(CALLER, HOTLINE)
    at(sim, 1, lambda: sim.speak(leg.sid, "I  need to talk"))             # barges in
    at(sim, 3, lambda: sim.speak(leg.sid, "too early"))                   # prompts, no barge-in
    at(sim, 3.5, lambda: sim.press(leg.sid, "1"))                         # speech-only gather
    at(sim, 5, lambda: sim.speak(leg.sid, "after the prompt", confidence=0.5))

    sim.run(until=lambda: leg.ended)

    a, b = fake.to("/a")[0], fake.to("/b")[0]
    assert (a["SpeechResult"], a["Confidence"]) == ("I need to talk", "0.90")
    assert (b["SpeechResult"], b["Confidence"]) == ("after the prompt", "0.50")
    assert [(t, p) for t, p, _ in fake.requests if p in ("/a", "/b")] == [(2, "/a"), (7, "/b")]
    assert [t for t, k, _ in sim.events if k == "dropped"] == [3, 3.5]
    assert leg.speech_sent == ["I need to talk", "after the prompt"]


def test_an_interactive_caller_never_hangs_up_by_itself(sim, fake):
    rivera = sim.add_phone(InteractivePhone(CALLER))
    sim.add_phone(ScriptedPhone(SUPPORTER, ring=NoAnswer()))
    fake.reply("/voice", response(lambda r: r.dial(SUPPORTER, timeout=10),
                                  lambda r: r.pause(length=500)))
    leg = sim.dial(CALLER, HOTLINE)

    sim.advance(100)

    assert (leg.status, rivera.heard) == ("in-progress", ["[pause 500]"])
    done = threading.Thread(target=sim.hangup, args=(leg.sid,))    # a web request's thread
    done.start()
    done.join()
    sim.run()
    assert (leg.status, leg.end_time) == ("completed", 100)
