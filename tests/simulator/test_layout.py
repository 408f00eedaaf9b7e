"""The simulator package stays in small modules and keeps its public names."""

from __future__ import annotations

from pathlib import Path

import hotline.simulator as simulator
from hotline.simulator import engine, twiml

PACKAGE = Path(simulator.__file__).parent
#: Longest module allowed: modules stay around 400 lines; this is the hard stop.
MAX_LINES = 450


def test_every_module_is_short():
    lengths = {path.name: len(path.read_text().splitlines()) for path in PACKAGE.glob("*.py")}
    assert {name: n for name, n in lengths.items() if n > MAX_LINES} == {}
    assert {"state.py", "clock.py", "dialing.py", "controls.py", "messaging.py", "snapshot.py",
            "realtime.py", "twiml_base.py", "twiml_gather.py", "twiml_dial.py"} <= set(lengths)


def test_public_names_are_still_where_they_were():
    for name in simulator.__all__:
        assert getattr(simulator, name) is not None, name
    for name in ("CallStatus", "Direction", "Fetch", "HungUp", "Leg", "Mailbox", "Process",
                 "Receive", "Redirected", "Dequeued", "DialState", "Bridge", "Timer",
                 "TIMEOUT", "API_VERSION", "EPOCH", "TwilioSim"):
        assert hasattr(engine, name), name
    for name in ("Interpreter", "Mode", "Context", "parse_twiml", "gather_input",
                 "unconnected_status", "LEAVE", "END"):
        assert hasattr(twiml, name), name
    sim_methods = ("answer", "decline", "press", "speak", "hangup", "dial", "send_sms",
                   "snapshot", "pick_up", "create_call", "create_message", "next_due")
    assert all(callable(getattr(simulator.TwilioSim, m)) for m in sim_methods)
