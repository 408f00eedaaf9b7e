"""The privacy canary across the whole product.

Voice, text, callback and follow-up flows carry unique marker words and fresh caller
numbers; afterwards no marker and no raw number may be found in the database (rows, the
SQLite file's bytes, a pg_dump of PostgreSQL), in any Redis key or value, in RQ job
payloads, in the logs (JSON lines too), or in what /metrics serves. (Sealed numbers are
encrypted: their digits never appear.)
"""

from __future__ import annotations

import io
import logging
import subprocess
from pathlib import Path

from sqlalchemy import select

from hotline.core.extensions import db
from hotline.models import ContactEvent

from hotline.monitoring import logs as monitoring_logs
from hotline.monitoring import metrics
from hotline.privacy import primitives as privacy
from hotline.simulator import Answer, ScriptedPhone, Speak
from tests.privacy_scan import assert_kept_nowhere
from tests.scenario import heard
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
    # The same records as HOTLINE_LOG_FORMAT=json writes them (request ids and all).
    json_lines = io.StringIO()
    json_handler = logging.StreamHandler(json_lines)
    monitoring_logs.configure([json_handler], "json")
    logging.getLogger().addHandler(json_handler)
    privacy.redact_handlers(logging.getLogger())
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
    logging.getLogger().removeHandler(json_handler)
    with hotline.app.app_context():
        scrape = metrics.render().decode()  # what /metrics serves
    assert 'hotline_contacts_total{channel="sms",outcome="connected"}' in scrape
    assert '"request_id": "' in json_lines.getvalue()
    secrets = MARKERS + tuple(number[2:] for number in (CALLER, TEXTER, CALLBACK))
    assert_kept_nowhere(hotline.app, secrets,
                        "\n".join((caplog.text, json_lines.getvalue(), scrape)))
    url = hotline.app.extensions["hotline.settings"].DATABASE_URL
    if url.startswith("postgresql"):
        dump = pg_dump(url)
        assert "CREATE TABLE public.contacts" in dump
        assert not any(secret in dump for secret in secrets)


UNIT_WORD, UNIT_NAME = "CANARY-UNIT-5d2", "canary_unit_q"


def events(hotline) -> list[ContactEvent]:
    with hotline.app.app_context():
        return list(db.session.scalars(select(ContactEvent)))


def flows_with_canary_unit(folder):
    """A copy of ivr_flows/ whose roster.yaml lists one more unit: the canary."""
    import shutil

    import yaml

    from hotline.core import settings
    from hotline.roster import roles
    for path in Path(settings.load().IVR_FLOWS_DIR).glob("*.yaml"):
        shutil.copy(path, folder / path.name)
    data = yaml.safe_load((folder / roles.ROSTER_FILE).read_text(encoding="utf-8"))
    data["units"] = {**dict(list(data["units"].items())[:5]),
                     UNIT_NAME: {"en": [UNIT_WORD], "es": [UNIT_WORD]}}
    (folder / roles.ROSTER_FILE).write_text(yaml.safe_dump(data, allow_unicode=True),
                                            encoding="utf-8")
    return folder


def test_a_unit_a_caller_names_is_kept_nowhere_after_the_outcome(app_settings, tmp_path,
                                                                 request, caplog):
    """Issue 16: a caller (by voice, in words) and a texter name their unit to be kept
    away from it (no supporter is of it: the roster's own units are staff data, stored;
    tests/test_matching.py shows the routing) and once each contact has its outcome the
    unit is nowhere: database (rows, the SQLite file, a pg_dump), Redis, jobs, logs, or
    what the hotline asked the stand-in to send or dial (what Twilio must carry, and
    nothing more: the caller's own words, and the list of units spoken to them)."""
    caplog.set_level(logging.DEBUG)
    app_settings.update(IVR_FLOWS_DIR=str(flows_with_canary_unit(tmp_path)))
    hotline = request.getfixturevalue("hotline")
    hotline.supporter("Ada", phone_class=TextingPhone, hangup_after_bridge=20,
                      replies=[("Reply YES", "YES"), ("long night", "take care BYE")])
    caller = hotline.sim.add_phone(ScriptedPhone(
        CALLER, gather=["3", "2", Speak(f"the {UNIT_WORD} please")], hangup_after_bridge=20))
    hotline.call(caller)
    hotline.run()
    texter = hotline.sim.add_phone(TextingPhone(
        TEXTER, replies=[("Reply 1", f"NOT {UNIT_WORD}"), ("Reply 1 for a call", "2"),
                         ("texting with a peer", "long night"), ("check-in text", "NO")]))
    texter.text("hello")
    hotline.run()
    assert [c.outcome for c in hotline.contacts()] == ["connected", "connected"]
    assert any(c.kind == "match_asked" for c in events(hotline)) and all(
        "canary" not in repr(c.__dict__) for c in events(hotline))
    assert heard(caller, "Nobody from the unit you named will be offered your call")
    secrets = (UNIT_WORD, UNIT_NAME)
    assert_kept_nowhere(hotline.app, secrets, caplog.text)
    sent = [m["body"] for m in hotline.sim.messages if m["direction"] != "inbound"]
    dialed = [(leg.to, leg.url, leg.twiml) for leg in hotline.sim.legs.values()
              if leg.direction != "inbound"]
    assert sent and not any(s in repr(sent) + repr(dialed) for s in secrets)
    url = hotline.app.extensions["hotline.settings"].DATABASE_URL
    if url.startswith("postgresql"):
        dump = pg_dump(url)
        assert "CREATE TABLE public.contacts" in dump
        assert not any(secret in dump for secret in secrets)
