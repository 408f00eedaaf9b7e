"""``RealtimeRunner``: the sim follows the wall clock (20 times faster here) in a thread."""

from __future__ import annotations

import threading
import time

import pytest

from hotline.simulator import InteractivePhone, RealtimeRunner, ScriptedPhone
from hotline.simulator.realtime import MAX_SLEEP
from tests.simulator.conftest import BASE, CALLER, HOTLINE, SUPPORTER, response

SPEED = 20.0


def wait_for(condition, seconds=2.0):
    """Poll ``condition`` from the test's thread until it holds (fail after ``seconds``)."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.005)


@pytest.fixture
def runner(sim):
    clock = RealtimeRunner(sim, speed=SPEED)
    clock.start()
    yield clock
    clock.stop()


def test_a_call_plays_out_at_the_runners_speed(sim, fake, runner):
    sim.add_phone(ScriptedPhone(CALLER))
    fake.reply("/voice", response(lambda r: r.say("x" * 30), lambda r: r.pause(length=2)))
    idle = []
    sim.on_idle.append(lambda: idle.append(threading.current_thread().name))
    started = time.monotonic()

    leg = sim.dial(CALLER, HOTLINE)                     # from the test's thread
    wait_for(lambda: leg.ended)

    elapsed = time.monotonic() - started
    assert (leg.status, leg.end_time - leg.created_at) == ("completed", 4)   # exact virtual time
    # things scheduled from another thread start at ``sim.now``, which lags the wall clock
    # by at most one sleep
    assert 4 / SPEED - MAX_SLEEP <= elapsed < 4 / SPEED + 1.0
    assert leg.heard == ["x" * 30, "[pause 2]"]
    assert idle and set(idle) == {"twilio-sim-clock"}
    assert [p for _, p, _ in fake.requests] == ["/voice", "/status"]


def test_a_click_from_another_thread_is_taken_promptly(sim, fake, runner):
    sim.add_phone(InteractivePhone(SUPPORTER))
    fake.reply("/offer", response(lambda r: r.say("thanks")))
    leg = sim.create_call(to=SUPPORTER, from_=HOTLINE, url=f"{BASE}/offer", timeout=20)
    wait_for(lambda: leg.ring_box is not None)
    clicked = sim.now

    threading.Thread(target=sim.answer, args=(leg.sid,)).start()     # a web request
    wait_for(lambda: leg.ended)

    # answered within a few polls of the click (MAX_SLEEP wall seconds each), long before
    # the 20 s ring timeout
    assert leg.answer_time - clicked <= 3 * MAX_SLEEP * SPEED
    assert leg.status == "completed" and leg.heard == ["thanks"]


def test_scheduling_from_another_thread_wakes_the_runner(sim, runner):
    assert sim.on_schedule == [runner._wake.set]
    ran = threading.Event()

    sim.schedule(0, ran.set)

    assert ran.wait(1.0)
    runner.stop()
    assert sim.on_schedule == []


def test_stop_joins_the_thread_and_the_clock_stands_still(sim, runner):
    time.sleep(0.06)
    assert runner.running and sim.now > 0

    runner.stop()

    assert not runner.running
    assert not any(t.name == "twilio-sim-clock" for t in threading.enumerate())
    stopped = sim.now
    time.sleep(0.06)
    assert sim.now == stopped
    runner.stop()                                       # twice is fine


def test_a_failing_event_is_kept_and_the_clock_goes_on(sim, runner):
    done = threading.Event()

    def broken():
        raise RuntimeError("boom")

    sim.schedule(0.5, broken)
    sim.schedule(1.0, done.set)

    assert done.wait(1.0)
    assert [str(e) for e in runner.errors] == ["boom"]


def test_speed_must_be_positive_and_a_runner_starts_once(sim, runner):
    with pytest.raises(ValueError, match="speed must be positive"):
        RealtimeRunner(sim, speed=0)
    with pytest.raises(RuntimeError, match="already running"):
        runner.start()
