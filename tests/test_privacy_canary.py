"""The privacy canary across the whole product.

Voice, text, callback and follow-up flows carry unique marker words and fresh caller
numbers; afterwards no marker and no raw number may be found in the database (rows, the
SQLite file's bytes, a pg_dump of PostgreSQL), in any Redis key or value, in RQ job
payloads, or in the logs. (Sealed numbers are encrypted: their digits never appear.)
"""

from __future__ import annotations

import logging
import subprocess


from hotline.privacy import primitives as privacy
from hotline.simulator import Answer, ScriptedPhone, Speak
from tests.privacy_scan import assert_kept_nowhere
from tests.servers import pg_binary
from tests.scenario import TextingPhone, run_scheduled

CALLER, TEXTER, CALLBACK = "+16175550271", "+16175550272", "+16175550273"
MARKERS = ("CANARY-VOICE-7f3", "CANARY-TEXT-9b1", "CANARY-REPLY-2c8")


def pg_dump(url: str) -> str:
    """The whole PostgreSQL database as SQL text."""
    host_port = url.split("@", 1)[1].split("/", 1)[0]
    host, port = host_port.split(":")
    argv = [pg_binary("pg_dump"), "-h", host, "-p", port, "-U", "postgres", "hotline_test"]
    return subprocess.run(argv, check=True, capture_output=True, text=True).stdout


def test_no_marker_and_no_number_anywhere_after_every_flow(hotline, caplog):
    caplog.set_level(logging.DEBUG)
    for name in privacy.CHATTY_LIBRARIES:  # as an operator chasing a bug would turn them up
        caplog.set_level(logging.DEBUG, logger=name)
    hotline.app.extensions["hotline.settings"] = hotline.app.extensions[
        "hotline.settings"].replace(SEND_FROM_HOUR=0, SEND_UNTIL_HOUR=24)
    hotline.supporter("Ada", phone_class=TextingPhone, hangup_after_bridge=40,
                      replies=[("Reply YES", "YES"), (MARKERS[1], MARKERS[2] + " BYE")])
    # voice: speaks the marker, talks with a peer, says yes to check-ins
    caller = hotline.sim.add_phone(ScriptedPhone(
        CALLER, gather=[Speak(f"{MARKERS[0]} I need to talk"), "1"], hangup_after_bridge=None))
    hotline.call(caller)
    hotline.run()
    # text: a conversation carrying the marker, then yes to check-ins
    texter = hotline.sim.add_phone(TextingPhone(
        TEXTER, replies=[("Reply 1", "2"), ("texting with a peer", f"{MARKERS[1]} long night"),
                         ("check-in text", "YES"), ("How helpful", "4")]))
    texter.text("hello")
    hotline.run()
    # callback: a peer is rung, then the clinician
    asker = hotline.sim.add_phone(ScriptedPhone(CALLBACK, ring=Answer(2), gather=["2"],
                                                hangup_after_bridge=20))
    hotline.call(asker)
    hotline.run()
    # follow-ups: due now, sent, answered
    run_scheduled(hotline)
    hotline.run()
    run_scheduled(hotline)
    hotline.run()
    outcomes = {c.mode or c.channel: c.outcome for c in hotline.contacts()}
    assert outcomes["voice"] in ("connected", "callback_requested")
    assert outcomes["text"] == "connected" and outcomes["callback"] == "connected"
    assert any("How helpful" in body for body in texter.received())
    assert MARKERS[2] + " BYE" in texter.received()  # the supporter's words did arrive
    secrets = MARKERS + tuple(number[2:] for number in (CALLER, TEXTER, CALLBACK))
    assert_kept_nowhere(hotline.app, secrets, caplog.text)
    url = hotline.app.extensions["hotline.settings"].DATABASE_URL
    if url.startswith("postgresql"):
        dump = pg_dump(url)
        assert "CREATE TABLE public.contacts" in dump
        assert not any(secret in dump for secret in secrets)
