"""<Dial><Number>: whisper on the called leg, busy / no-answer, simultaneous ringing."""

from __future__ import annotations

from twilio.twiml.voice_response import Dial, Gather

from hotline.simulator import Answer, Busy, Fail, NoAnswer, Reject, ScriptedPhone
from tests.simulator.conftest import BASE, CALLER, HOTLINE, SUPPORTER, kinds, response

OTHER = "+15550144444"
THIRD = "+15550155555"


def dial_numbers(*numbers, url=None, **attrs):
    def build(r):
        dial = Dial(action="/dialed", **attrs)
        for number in numbers:
            dial.number(number, url=url)
        r.append(dial)
    return build


def whisper_press_1(fake):
    gather = Gather(num_digits=1, action="/whisper-answer", timeout=5)
    gather.say("peer support call: press 1 now")             # 30 chars: 2 s
    fake.reply("/whisper", response(lambda r: r.append(gather), lambda r: r.hangup()))

    @fake.route("/whisper-answer")
    def answer(form):
        return response() if form["Digits"] == "1" else response(lambda r: r.hangup())


def run_call(sim, fake, build):
    fake.reply("/voice", response(build, lambda r: r.say("after dial")))
    fake.route("/dialed")(lambda form: response(lambda r: r.say(form["DialCallStatus"])))
    leg = sim.dial(CALLER, HOTLINE)
    sim.run(until=lambda: leg.ended)
    return leg


def children(sim, leg):
    return [c for c in sim.legs.values() if c.parent_sid == leg.sid]


def test_whisper_accepted_then_bridged_and_the_action_gets_the_duration(sim, fake, caller):
    whisper_press_1(fake)
    supporter = sim.add_phone(ScriptedPhone(SUPPORTER, ring=Answer(3), gather=["1"],
                                            hangup_after_bridge=20))

    leg = run_call(sim, fake, dial_numbers(SUPPORTER, url="/whisper"))

    [child] = children(sim, leg)
    whisper = fake.to("/whisper")[0]
    assert (whisper["CallSid"], whisper["ParentCallSid"], whisper["Direction"],
            whisper["CallStatus"], whisper["From"], whisper["To"]) == (
        child.sid, leg.sid, "outbound-dial", "in-progress", CALLER, SUPPORTER)
    dialed = fake.to("/dialed")[0]
    assert (dialed["DialCallStatus"], dialed["DialCallSid"], dialed["DialCallDuration"]) == (
        "completed", child.sid, "20")
    assert supporter.heard == ["peer support call: press 1 now"]
    assert leg.heard == ["completed"]
    bridge = sim.bridges[0]
    assert (bridge.a, bridge.b, bridge.start, bridge.end) == (leg.sid, child.sid, 5, 25)
    assert (child.status, child.answer_time, child.end_time) == ("completed", 3, 25)
    assert kinds(sim, child.sid) == ["ring", "answer", "gather", "say", "input", "bridge",
                                     "unbridge", "hangup"]


def test_whisper_refused_counts_as_no_answer(sim, fake, caller):
    whisper_press_1(fake)
    sim.add_phone(ScriptedPhone(SUPPORTER, ring=Answer(1), gather=["2"]))

    leg = run_call(sim, fake, dial_numbers(SUPPORTER, url="/whisper"))

    [child] = children(sim, leg)
    assert fake.to("/dialed")[0]["DialCallStatus"] == "no-answer"
    assert child.status == "completed" and sim.bridges == []
    assert leg.heard == ["no-answer"]


def test_busy_failed_and_unanswered_numbers(sim, fake, caller):
    results = {}
    for reply in (Busy(), Fail(), NoAnswer(), Reject(), Answer(12)):
        sim.add_phone(ScriptedPhone(SUPPORTER, ring=reply))
        start = sim.now
        leg = run_call(sim, fake, dial_numbers(SUPPORTER, timeout=10))
        [child] = children(sim, leg)
        results[type(reply).__name__] = (fake.to("/dialed")[-1]["DialCallStatus"], child.status,
                                         child.end_time - start)
    assert results == {
        "Busy": ("busy", "busy", 0), "Fail": ("failed", "failed", 0),
        "NoAnswer": ("no-answer", "no-answer", 10), "Reject": ("busy", "busy", 1),
        "Answer": ("no-answer", "no-answer", 10),
    }


def test_simultaneous_ring_first_answer_wins_others_are_canceled(sim, fake, caller):
    sim.add_phone(ScriptedPhone(SUPPORTER, ring=NoAnswer()))
    winner_phone = sim.add_phone(ScriptedPhone(OTHER, ring=Answer(5), hangup_after_bridge=10))
    sim.add_phone(ScriptedPhone(THIRD, ring=Answer(8)))

    leg = run_call(sim, fake, dial_numbers(SUPPORTER, OTHER, THIRD))

    first, winner, third = children(sim, leg)
    assert [c.to for c in (first, winner, third)] == [SUPPORTER, OTHER, THIRD]
    assert [(c.status, c.end_time) for c in (first, winner, third)] == [
        ("canceled", 5), ("completed", 15), ("canceled", 5)]
    assert fake.to("/dialed")[0]["DialCallSid"] == winner.sid
    assert winner_phone.heard == [] and leg.end_time == 16


def test_a_bare_number_and_no_action_continue_with_the_next_verb(sim, fake, caller):
    sim.add_phone(ScriptedPhone(SUPPORTER, ring=Answer(1), hangup_after_bridge=3))
    fake.reply("/voice", response(lambda r: r.dial(SUPPORTER, caller_id=HOTLINE),
                                  lambda r: r.say("after dial")))
    leg = sim.dial(CALLER, HOTLINE)

    sim.run(until=lambda: leg.ended)

    [child] = children(sim, leg)
    assert (child.from_, child.to) == (HOTLINE, SUPPORTER)
    assert leg.heard == ["after dial"] and leg.end_time == 5


def test_caller_hanging_up_while_ringing_cancels_and_tells_the_action(sim, fake, caller):
    sim.add_phone(ScriptedPhone(SUPPORTER, ring=NoAnswer()))
    fake.reply("/voice", response(dial_numbers(SUPPORTER)))
    leg = sim.dial(CALLER, HOTLINE)
    sim.hangup(leg.sid, after=4)

    sim.run()

    [child] = children(sim, leg)
    assert (child.status, child.end_time, leg.status, leg.end_time) == (
        "canceled", 4, "completed", 4)
    dialed = fake.to("/dialed")[0]
    assert (dialed["DialCallStatus"], dialed["CallStatus"], dialed["DialBridged"]) == (
        "canceled", "completed", "false")
    assert sim.now == 4


def test_time_limit_cuts_the_bridge(sim, fake, caller):
    sim.add_phone(ScriptedPhone(SUPPORTER, ring=Answer(0), hangup_after_bridge=None))

    leg = run_call(sim, fake, dial_numbers(SUPPORTER, time_limit=7))

    [child] = children(sim, leg)
    assert fake.to("/dialed")[0]["DialCallDuration"] == "7"
    assert (child.status, child.end_time) == ("completed", 7)
    assert leg.heard == ["completed"]


def test_unknown_numbers_never_answer(sim, fake, caller):
    leg = run_call(sim, fake, dial_numbers("+15559999999", timeout=3))
    assert fake.to("/dialed")[0]["DialCallStatus"] == "no-answer" and leg.end_time == 4
    assert f"{BASE}/dialed" in [d["url"] for d in sim.events_of("request")]


def test_an_instant_answer_cancels_numbers_not_yet_ringing(sim, fake, caller):
    sim.add_phone(ScriptedPhone(SUPPORTER, ring=Answer(0), hangup_after_bridge=2))
    other = sim.add_phone(ScriptedPhone(OTHER, ring=NoAnswer()))

    leg = run_call(sim, fake, dial_numbers(SUPPORTER, OTHER))

    first, second = children(sim, leg)
    assert (first.status, second.status, second.start_time, second.end_time) == (
        "completed", "canceled", None, 0)
    assert leg.end_time == 3 and other.heard == []
