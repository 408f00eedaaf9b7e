"""The surge benchmark's queue-entry-to-ringing figure counts only this entry's rings."""

from __future__ import annotations

from types import SimpleNamespace

from benchmarks.surge import RouteLog, ring_latencies


def offer(contact, attempt, sid):
    return SimpleNamespace(contact_id=contact, attempt=attempt, call_sid=sid)


def test_a_callback_s_ring_is_not_the_queue_entry_s():
    """Caller 1 found everyone busy (attempt 1), asked for a callback at the options, and
    the callback rang a supporter 40 s later (attempt 3), their call still on: that ring is
    not this queue entry's (it made the p99 40 s). Caller 2 was rung 30 ms after entering."""
    stamps = [
        {"kind": "enqueue", "queue": "hotline-contact-1", "sid": "CAc1", "at": 100.0},
        {"kind": "placed", "sid": "CAs1", "at": 140.0},
        {"kind": "ring", "sid": "CAs1", "at": 140.001},
        {"kind": "enqueue", "queue": "hotline-contact-2", "sid": "CAc2", "at": 200.0},
        {"kind": "placed", "sid": "CAs2", "at": 200.02},
        {"kind": "ring", "sid": "CAs2", "at": 200.03},
    ]
    log = RouteLog(first_step={(1, 1): "tier2x0,exhausted", (1, 3): "tier1",
                               (2, 1): "tier1"})
    rings = ring_latencies(stamps, [offer(1, 3, "CAs1"), offer(2, 1, "CAs2")], log)
    assert [round(t, 3) for t in rings["free"]] == [0.03]
    assert rings["nobody"] == 1 and rings["waited"] == [] and rings["entries"] == 2
