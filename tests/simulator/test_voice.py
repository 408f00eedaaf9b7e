"""The TwiML interpreter on an inbound call: prompts, gathers, redirects, errors, endings."""

from __future__ import annotations

from twilio.twiml.voice_response import Gather

from hotline.simulator import (
    FlaskClientTransport, Press, ScriptedPhone, Silence, Speak, TwilioSim,
)
from tests.simulator.conftest import BASE, CALLER, HOTLINE, kinds, response


def test_say_and_pause_take_virtual_time_then_the_call_ends(sim, fake, caller):
    fake.reply("/voice", response(
        lambda r: r.say("Hi"),                              # 2 chars: the 1 s minimum
        lambda r: r.pause(length=3),
        lambda r: r.say("x" * 30, loop=2),                  # 30 chars: 2 s, twice
        lambda r: r.play("https://cdn.test/hold.mp3"),      # 2 s
    ))
    leg = sim.dial(CALLER, HOTLINE)

    assert sim.run(until=lambda: leg.ended)

    assert leg.heard == ["Hi", "[pause 3]", "x" * 30, "x" * 30, "[play https://cdn.test/hold.mp3]"]
    assert caller.heard == leg.heard
    assert (leg.status, leg.answer_time, leg.end_time, leg.duration) == ("completed", 0, 10, 10)
    assert kinds(sim, leg.sid) == ["ring", "answer", "say", "pause", "say", "say", "play", "hangup"]
    voice, status = fake.to("/voice"), fake.to("/status")
    assert [(f["CallStatus"], f["Direction"], f["From"], f["To"], f["Caller"], f["Called"])
            for f in voice] == [("ringing", "inbound", CALLER, HOTLINE, CALLER, HOTLINE)]
    assert voice[0]["AccountSid"] == sim.account_sid and voice[0]["ApiVersion"] == "2010-04-01"
    assert [(f["CallStatus"], f["CallDuration"], f["CallbackSource"]) for f in status] == [
        ("completed", "10", "call-progress-events")]


def test_gather_digits_post_the_action_and_replace_the_program(sim, fake):
    sim.add_phone(ScriptedPhone(CALLER, gather=[Press("2", after=1.0)]))
    gather = Gather(num_digits=1, action="/menu", timeout=5)
    gather.say("x" * 45)                                    # 3 s of prompt
    fake.reply("/voice", response(lambda r: r.append(gather), lambda r: r.say("never heard")))
    fake.route("/menu")(lambda form: response(lambda r: r.say(f"you pressed {form['Digits']}")))
    leg = sim.dial(CALLER, HOTLINE)

    sim.run(until=lambda: leg.ended)

    assert leg.heard == ["x" * 45, "you pressed 2"]
    assert leg.digits_sent == ["2"]
    assert [(t, p) for t, p, _ in fake.requests] == [(0, "/voice"), (3, "/menu"), (4, "/status")]
    menu = fake.to("/menu")[0]
    assert (menu["Digits"], menu["CallStatus"], menu["FinishedOnKey"]) == ("2", "in-progress", "")


def test_gather_without_input_falls_through_after_the_timeout(sim, fake, caller):
    gather = Gather(action="/menu", timeout=4)
    gather.say("press something")                           # 15 chars: 1 s
    fake.reply("/voice", response(lambda r: r.append(gather), lambda r: r.say("no input")))
    leg = sim.dial(CALLER, HOTLINE)

    sim.run(until=lambda: leg.ended)

    assert leg.heard == ["press something", "no input"]
    assert fake.to("/menu") == []
    assert [(t, k) for t, k, d in sim.events if k in ("gather", "input", "say")] == [
        (0, "gather"), (0, "say"), (5, "input"), (5, "say")]
    assert caller.prompts == ["press something"]


def test_digits_wait_for_finish_key_or_timeout_and_speech_is_passed_on(sim, fake):
    sim.add_phone(ScriptedPhone(CALLER, gather=["123#", Press("45", after=2), Speak("talk now"),
                                                Silence()]))
    fake.reply("/voice", response(lambda r: r.gather(action="/a", timeout=3)))
    fake.reply("/a", response(lambda r: r.gather(action="/b", timeout=3)))
    fake.reply("/b", response(lambda r: r.gather(action="/c", input="speech dtmf",
                                                 speech_timeout="auto")))
    fake.reply("/c", response(lambda r: r.gather(action="/d", action_on_empty_result=True,
                                                 timeout=2)))
    leg = sim.dial(CALLER, HOTLINE)

    sim.run(until=lambda: leg.ended)

    a, b, c, d = (fake.to(p)[0] for p in ("/a", "/b", "/c", "/d"))
    assert (a["Digits"], a["FinishedOnKey"]) == ("123", "#")
    assert b["Digits"] == "45"
    assert (c["SpeechResult"], c["Confidence"]) == ("talk now", "0.90")
    assert "Digits" not in d and "SpeechResult" not in d
    # 1 s to key in, 2 s + 3 s inter-digit timeout, 1 s + 1 s speech, 2 s of silence
    assert [t for t, p, _ in fake.requests if p in "/a/b/c/d"] == [1, 6, 8, 10]
    assert (leg.digits_sent, leg.speech_sent) == (["123", "45"], ["talk now"])


def test_redirect_fetches_the_next_document_relative_urls_included(sim, fake, caller):
    fake.reply("/voice", response(lambda r: r.say("one"), lambda r: r.redirect("next?step=2")))
    fake.reply("/next", response(lambda r: r.say("two"), lambda r: r.hangup(),
                                 lambda r: r.say("never")))
    leg = sim.dial(CALLER, HOTLINE)

    sim.run(until=lambda: leg.ended)

    assert fake.paths() == ["/voice", "/next", "/status"]
    assert fake.to("/next")[0]["CallStatus"] == "in-progress"
    assert [d["url"] for d in sim.events_of("redirect")] == [f"{BASE}/next?step=2"]
    assert leg.heard == ["one", "two"] and leg.end_time == 2


def test_app_errors_play_the_error_message_and_hang_up(sim, fake, caller):
    fake.reply("/voice", "<Response><Say>ok</Say><Bogus/></Response>")
    leg = sim.dial(CALLER, HOTLINE)
    sim.run(until=lambda: leg.ended)
    assert leg.heard == ["ok", "[application error]"]
    assert [d["detail"] for d in sim.events_of("error")] == [
        "<Bogus> not allowed in call document"]

    fake.reply("/voice", "this is not xml")
    second = sim.dial(CALLER, HOTLINE)
    sim.run(until=lambda: second.ended)
    assert second.heard == ["[application error]"]
    assert sim.events_of("error")[-1]["detail"] == "error 12100"

    fake.flask.view_functions["hook"] = lambda path: ("oops", 500)
    third = sim.dial(CALLER, HOTLINE)
    sim.run(until=lambda: third.ended)
    assert sim.events_of("error")[-1]["detail"] == "error 11200"
    assert third.status == "completed"


def test_fallback_url_is_requested_when_the_voice_url_fails(sim, fake, caller):
    sim.fallback_url = f"{BASE}/fallback"
    fake.reply("/voice", "<html>")
    fake.reply("/fallback", response(lambda r: r.say("backup")))
    leg = sim.dial(CALLER, HOTLINE)

    sim.run(until=lambda: leg.ended)

    fallback = fake.to("/fallback")[0]
    assert (fallback["ErrorCode"], fallback["ErrorUrl"]) == ("12100", f"{BASE}/voice")
    assert leg.heard == ["backup"]


def test_reject_ends_an_unanswered_call_busy_or_no_answer(sim, fake, caller):
    fake.reply("/voice", response(lambda r: r.reject(reason="busy")))
    busy = sim.dial(CALLER, HOTLINE)
    sim.run(until=lambda: busy.ended)
    fake.reply("/voice", response(lambda r: r.reject()))
    rejected = sim.dial(CALLER, HOTLINE)
    sim.run(until=lambda: rejected.ended)

    assert (busy.status, rejected.status) == ("busy", "no-answer")
    assert busy.answer_time is None and busy.heard == []
    assert [(f["CallStatus"], f["CallDuration"]) for f in fake.to("/status")] == [
        ("busy", "0"), ("no-answer", "0")]


def test_the_caller_hanging_up_interrupts_whatever_plays(sim, fake, caller):
    fake.reply("/voice", response(lambda r: r.say("x" * 150), lambda r: r.say("after")))
    leg = sim.dial(CALLER, HOTLINE)
    sim.hangup(leg.sid, after=4)

    sim.run(until=lambda: leg.ended)

    assert (leg.status, leg.end_time, leg.heard) == ("completed", 4, ["x" * 150])
    assert [(t, p, f["CallStatus"], f.get("CallDuration")) for t, p, f in fake.requests] == [
        (0, "/voice", "ringing", None), (4, "/status", "completed", "4")]
    assert sim.run() is False and sim.now == 4      # the interrupted Say's wake-up is stale


def test_message_verb_texts_the_caller_from_the_hotline(sim, fake, caller):
    fake.reply("/voice", response(lambda r: r.say("texting you"), lambda r: r.sms("the link")))
    leg = sim.dial(CALLER, HOTLINE)

    sim.run()

    assert [(m["to"], m["from"], m["body"], m["status"]) for m in sim.messages] == [
        (CALLER, HOTLINE, "the link", "delivered")]
    assert [m["body"] for m in caller.messages] == ["the link"]
    assert sim.events_of("message")[0] == {"sid": sim.messages[0]["sid"], "to": CALLER,
                                            "from_": HOTLINE, "direction": "outbound-reply"}
    assert leg.end_time == 1


def test_every_request_is_signed_over_the_full_url(sim, fake, caller):
    fake.reply("/voice", response(lambda r: r.redirect(f"{BASE}/q?a=1&b=two%20words")))
    fake.reply("/q", response(lambda r: r.say("signed")))
    leg = sim.dial(CALLER, HOTLINE)

    sim.run(until=lambda: leg.ended)

    assert fake.paths() == ["/voice", "/q", "/status"]       # each passed validation
    signed = [d for d in sim.events_of("request")]
    assert [d["url"] for d in signed] == [f"{BASE}/voice", f"{BASE}/q?a=1&b=two%20words",
                                          f"{BASE}/status"]


def test_a_sim_with_the_wrong_token_is_refused_by_the_app(fake):
    wrong = TwilioSim(FlaskClientTransport(fake.flask.test_client(), BASE),
                      account_sid="AC" + "2" * 32, auth_token="not-the-app's",
                      voice_url=f"{BASE}/voice", numbers=[HOTLINE])
    fake.reply("/voice", response(lambda r: r.say("unreachable")))
    leg = wrong.dial(CALLER, HOTLINE)

    wrong.run(until=lambda: leg.ended)

    assert fake.bad_signatures == [f"{BASE}/voice"] and fake.requests == []
    assert leg.heard == ["[application error]"]
    fake.bad_signatures.clear()
