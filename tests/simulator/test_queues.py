"""<Enqueue> wait loops, <Leave>, and <Dial><Queue> bridging with the Enqueue action."""

from __future__ import annotations

from twilio.twiml.voice_response import Dial

from hotline.simulator import Answer, ScriptedPhone
from tests.simulator.conftest import BASE, CALLER, HOTLINE, SUPPORTER, kinds, response

SECOND_CALLER = "+15550133333"


def enqueue(r, action="/after"):
    r.enqueue("support", wait_url="/wait", action=action)


def dial_queue(r, url=None, action=None, timeout=None):
    dial = Dial(action=action, timeout=timeout)
    dial.queue("support", url=url)
    r.append(dial)


def hold_for(fake, seconds):
    fake.reply("/wait", response(lambda r: r.pause(length=seconds)))


def test_wait_url_loops_with_growing_queue_time_until_leave(sim, fake, caller):
    fake.reply("/voice", response(enqueue))

    @fake.route("/wait")
    def wait(form):
        if int(form["QueueTime"]) >= 10:
            return response(lambda r: r.leave())
        return response(lambda r: r.say("please hold"), lambda r: r.pause(length=4))

    fake.route("/after")(lambda form: response(lambda r: r.say(f"result {form['QueueResult']}")))
    leg = sim.dial(CALLER, HOTLINE)

    sim.run(until=lambda: leg.ended)

    waits = fake.to("/wait")
    assert [(w["QueueTime"], w["QueuePosition"], w["CurrentQueueSize"], w["AvgQueueTime"])
            for w in waits] == [("0", "1", "1", "0"), ("5", "1", "1", "5"), ("10", "1", "1", "10")]
    assert {w["QueueSid"] for w in waits} == {sim.queue_sid("support")}
    after = fake.to("/after")[0]
    assert (after["QueueResult"], after["QueueTime"], after["QueueSid"]) == (
        "leave", "10", sim.queue_sid("support"))
    assert leg.heard == ["please hold", "[pause 4]"] * 2 + ["result leave"]
    assert (leg.end_time, leg.queue, sim.queues["support"]) == (11, None, [])
    assert kinds(sim, leg.sid)[:3] == ["ring", "answer", "enqueue"]
    assert kinds(sim, leg.sid)[-3:] == ["queue-result", "say", "hangup"]


def test_queue_is_first_in_first_out_and_reports_positions(sim, fake, caller):
    sim.add_phone(ScriptedPhone(SECOND_CALLER, gather=[]))
    fake.reply("/voice", response(enqueue))
    hold_for(fake, 30)
    first = sim.dial(CALLER, HOTLINE)
    sim.advance(3)
    second = sim.dial(SECOND_CALLER, HOTLINE)
    sim.advance(1)

    assert sim.queues["support"] == [first.sid, second.sid]
    last = fake.to("/wait")[-1]
    assert (last["CallSid"], last["QueuePosition"], last["CurrentQueueSize"],
            last["AvgQueueTime"]) == (second.sid, "2", "2", "1")

    fake.reply("/agent", response(dial_queue))
    sim.add_phone(ScriptedPhone(SUPPORTER, ring=Answer(1)))
    agent = sim.create_call(to=SUPPORTER, from_=HOTLINE, url=f"{BASE}/agent")
    sim.run(until=lambda: agent.bridged_to is not None)
    assert (agent.bridged_to, sim.queues["support"]) == (first.sid, [second.sid])


def test_dial_queue_plays_the_queue_url_to_the_caller_then_bridges(sim, fake, caller):
    fake.reply("/voice", response(enqueue))
    hold_for(fake, 20)
    fake.reply("/agent", response(lambda r: dial_queue(r, url="/announce"),
                                  lambda r: r.say("call over")))
    fake.reply("/announce", response(lambda r: r.say("connecting you")))
    fake.route("/after")(lambda form: response(lambda r: r.say(f"after {form['QueueResult']}")))
    supporter = sim.add_phone(ScriptedPhone(SUPPORTER, ring=Answer(2), hangup_after_bridge=30))
    leg = sim.dial(CALLER, HOTLINE)
    agent = None

    def call_supporter():
        nonlocal agent
        agent = sim.create_call(to=SUPPORTER, from_=HOTLINE, url=f"{BASE}/agent")

    sim.schedule(3, call_supporter)
    sim.run(until=lambda: leg.ended)

    announce = fake.to("/announce")[0]
    assert (announce["CallSid"], announce["DequeingCallSid"], announce["QueueTime"],
            announce["QueueSid"]) == (leg.sid, agent.sid, "5", sim.queue_sid("support"))
    bridge = sim.bridges[0]
    assert (bridge.a, bridge.b, bridge.start, bridge.end) == (leg.sid, agent.sid, 6, 36)
    assert leg.heard == ["[pause 20]", "connecting you", "after bridged"]
    after = fake.to("/after")[0]
    assert (after["QueueResult"], after["QueueTime"], after["CallStatus"]) == (
        "bridged", "5", "in-progress")
    assert (agent.status, agent.end_time, agent.heard) == ("completed", 36, [])
    assert supporter.heard == []
    assert [t for t, p, _ in fake.requests if p == "/after"] == [36]
    assert kinds(sim, leg.sid) == ["ring", "answer", "enqueue", "pause", "dequeue", "say",
                                   "bridge", "unbridge", "queue-result", "say", "hangup"]


def test_caller_hanging_up_while_bridged_ends_the_dequeuers_dial(sim, fake, caller):
    fake.reply("/voice", response(enqueue))
    hold_for(fake, 20)
    fake.reply("/agent", response(lambda r: dial_queue(r, action="/dialed")))
    fake.route("/dialed")(lambda form: response(lambda r: r.say("thanks, partner")))
    sim.add_phone(ScriptedPhone(SUPPORTER, ring=Answer(1), hangup_after_bridge=None))
    leg = sim.dial(CALLER, HOTLINE)
    agent = sim.create_call(to=SUPPORTER, from_=HOTLINE, url=f"{BASE}/agent")
    sim.run(until=lambda: leg.bridged_to is not None)
    assert sim.now == 1
    sim.hangup(leg.sid, after=12)

    sim.run(until=lambda: agent.ended)

    dialed = fake.to("/dialed")[0]
    assert (dialed["DialCallStatus"], dialed["DialCallSid"], dialed["DialCallDuration"],
            dialed["QueueSid"], dialed["DialBridged"]) == (
        "completed", leg.sid, "12", sim.queue_sid("support"), "true")
    after = fake.to("/after")[0]
    assert (after["QueueResult"], after["CallStatus"], after["QueueTime"]) == (
        "bridged", "completed", "1")
    assert agent.heard == ["thanks, partner"]
    assert (leg.end_time, agent.end_time) == (13, 14)


def test_caller_hanging_up_in_the_queue_reports_hangup(sim, fake, caller):
    fake.reply("/voice", response(enqueue))
    hold_for(fake, 5)
    leg = sim.dial(CALLER, HOTLINE)
    sim.hangup(leg.sid, after=7)

    sim.run()

    after = fake.to("/after")[0]
    assert (after["QueueResult"], after["QueueTime"], after["CallStatus"]) == (
        "hangup", "7", "completed")
    assert sim.queues["support"] == [] and leg.queue is None
    assert [p for p in fake.paths()] == ["/voice", "/wait", "/wait", "/after", "/status"]
    assert fake.to("/status")[0]["CallDuration"] == "7"


def test_enqueue_without_action_goes_on_with_the_next_verb(sim, fake, caller):
    fake.reply("/voice", response(lambda r: r.enqueue("support", wait_url="/wait"),
                                  lambda r: r.say("next verb")))
    fake.reply("/wait", response(lambda r: r.leave()))
    leg = sim.dial(CALLER, HOTLINE)

    sim.run(until=lambda: leg.ended)

    assert leg.heard == ["next verb"] and leg.end_time == 1


def test_dial_queue_waits_for_a_caller_or_times_out(sim, fake, caller):
    fake.reply("/agent", response(lambda r: dial_queue(r, action="/dialed", timeout=10)))
    fake.reply("/voice", response(enqueue))
    hold_for(fake, 60)
    sim.add_phone(ScriptedPhone(SUPPORTER, ring=[Answer(0), Answer(0)], hangup_after_bridge=5))

    lonely = sim.create_call(to=SUPPORTER, from_=HOTLINE, url=f"{BASE}/agent")
    sim.run(until=lambda: lonely.ended)
    assert fake.to("/dialed")[0]["DialCallStatus"] == "no-answer"
    assert (lonely.end_time, fake.to("/dialed")[0]["DialBridged"]) == (10, "false")

    waiting = sim.create_call(to=SUPPORTER, from_=HOTLINE, url=f"{BASE}/agent")
    sim.advance(4)
    leg = sim.dial(CALLER, HOTLINE)
    sim.run(until=lambda: waiting.ended)
    assert (sim.bridges[0].start, sim.bridges[0].end) == (14, 19)
    assert fake.to("/dialed")[1]["DialCallStatus"] == "completed"
    assert leg.heard[-1] == "[pause 60]" and leg.status == "in-progress"


def announce_setup(sim, fake):
    fake.reply("/voice", response(enqueue))
    hold_for(fake, 20)
    fake.reply("/agent", response(lambda r: dial_queue(r, url="/announce", action="/dialed")))
    fake.reply("/announce", response(lambda r: r.say("x" * 45)))         # 3 s
    fake.route("/after")(lambda form: response(lambda r: r.say(f"after {form['QueueResult']}")))
    fake.route("/dialed")(lambda form: response(lambda r: r.hangup()))
    sim.add_phone(ScriptedPhone(SUPPORTER, ring=Answer(1), hangup_after_bridge=None))
    leg = sim.dial(CALLER, HOTLINE)
    agent = sim.create_call(to=SUPPORTER, from_=HOTLINE, url=f"{BASE}/agent")
    return leg, agent


def test_caller_gone_during_the_announcement_is_never_bridged(sim, fake, caller):
    leg, agent = announce_setup(sim, fake)
    sim.hangup(leg.sid, after=2)

    sim.run(until=lambda: agent.ended)

    assert sim.bridges == []
    dialed, after = fake.to("/dialed")[0], fake.to("/after")[0]
    assert (dialed["DialCallStatus"], dialed["DialBridged"], dialed["DialCallSid"]) == (
        "completed", "false", leg.sid)
    assert (after["QueueResult"], after["CallStatus"]) == ("bridged", "completed")
    assert (leg.end_time, agent.end_time) == (2, 2)


def test_supporter_gone_during_the_announcement_leaves_the_caller_to_the_action(
        sim, fake, caller):
    leg, agent = announce_setup(sim, fake)
    sim.hangup(agent.sid, after=2)

    sim.run(until=lambda: leg.ended)

    assert sim.bridges == []
    assert fake.to("/dialed")[0]["CallStatus"] == "completed"
    assert [(t, f["QueueResult"]) for t, p, f in fake.requests if p == "/after"] == [
        (4, "bridged")]
    assert leg.heard == ["[pause 20]", "x" * 45, "after bridged"]
