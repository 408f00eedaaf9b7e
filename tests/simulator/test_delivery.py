"""Webhooks side by side (``use_webhook_pool``), as Twilio calls them, in real time."""

from __future__ import annotations

import threading
import time
from itertools import pairwise

import pytest

from hotline.simulator import RealtimeRunner, ScriptedPhone
from tests.simulator.conftest import HOTLINE, response
from tests.simulator.test_realtime import wait_for

CALLERS = ("+15550111111", "+15550111112", "+15550111113")
#: Wall seconds the app takes to answer the first webhook of each call.
SLOW = 0.3


@pytest.fixture
def slow_app(fake):
    """``/voice`` takes ``SLOW`` wall seconds; every request's wall-clock span is kept."""
    spans: list[tuple[float, float]] = []
    lock = threading.Lock()

    def voice(form):
        started = time.monotonic()
        time.sleep(SLOW)
        with lock:
            spans.append((started, time.monotonic()))
        return response(lambda r: r.say("hello"))

    fake.route("/voice")(voice)
    return spans


def run_calls(sim) -> list:
    clock = RealtimeRunner(sim, speed=10.0)
    clock.start()
    try:
        legs = [sim.dial(number, HOTLINE) for number in CALLERS]
        wait_for(lambda: all(leg.ended for leg in legs), seconds=10)
    finally:
        clock.stop()
    return legs


def test_with_a_pool_the_calls_webhooks_overlap(sim, fake, slow_app):
    for number in CALLERS:
        sim.add_phone(ScriptedPhone(number))
    sim.use_webhook_pool(4)
    legs = run_calls(sim)
    assert len(slow_app) == 3
    first_end = min(end for _, end in slow_app)
    assert all(start < first_end for start, _ in slow_app)  # all three in flight at once
    assert all(leg.heard == ["hello"] and leg.status == "completed" for leg in legs)
    wait_for(lambda: len(fake.to("/status")) == 3)  # status callbacks sent without waiting
    def requested():
        return sorted(e[2]["url"].rsplit("/", 1)[1] for e in list(sim.events)
                      if e[1] == "request")
    # a sent webhook is logged by the loop once answered; the clock is stopped, so step it
    wait_for(lambda: sim.advance(0) or len(requested()) == 6)
    assert requested() == ["status"] * 3 + ["voice"] * 3


def test_without_a_pool_the_loop_posts_one_at_a_time(sim, fake, slow_app):
    for number in CALLERS:
        sim.add_phone(ScriptedPhone(number))
    run_calls(sim)
    spans = sorted(slow_app)
    assert all(later[0] >= earlier[1] for earlier, later in pairwise(spans))


def test_a_caller_hanging_up_while_the_app_works_is_not_held_up(sim, fake, slow_app):
    sim.add_phone(ScriptedPhone(CALLERS[0]))
    sim.use_webhook_pool(2)
    clock = RealtimeRunner(sim, speed=1.0)
    clock.start()
    try:
        leg = sim.dial(CALLERS[0], HOTLINE)
        wait_for(lambda: leg.requested_wall is not None)
        sim.hangup(leg.sid)
        wait_for(lambda: leg.ended, seconds=SLOW / 2)  # before the app has answered
    finally:
        clock.stop()
    assert leg.heard == [] and leg.status == "canceled"  # it never got its first document
