"""Privacy by construction: nothing records, every Twilio route is signed."""

from __future__ import annotations

import re

import pytest

from tests.twilio_files import ROOT

#: ``record="do-not-record"`` (a debrief's <Conference>) says the opposite, and is allowed.
FORBIDDEN = re.compile(r"\.record\(|record\s*=(?!\s*[\"']do-not-record[\"'])|transcribe|<Record|"
                       r"recording_status", re.I)


def test_no_code_asks_twilio_to_record_or_transcribe():
    offenders = []
    for folder in ("hotline", "workers", "ivr_flows"):
        for path in (ROOT / folder).rglob("*"):
            if path.suffix in {".py", ".yaml", ".html", ".js"}:
                for number, line in enumerate(path.read_text().splitlines(), 1):
                    if FORBIDDEN.search(line):
                        offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert offenders == []


def twilio_routes(app):
    return [rule for rule in app.url_map.iter_rules() if rule.rule.startswith("/twilio")]


def test_every_twilio_route_refuses_unsigned_and_missigned_requests(app, twilio):
    rules = twilio_routes(app)
    assert len(rules) >= 14
    for rule in rules:
        path = rule.rule.replace("<int:contact_id>", "1").replace("<int:offer_id>", "1") \
            .replace("<int:debrief_id>", "1")
        for signature in ("", "AAAAbogus="):
            response = twilio.post(path, {"CallSid": "CA1"}, signature=signature)
            assert response.status_code == 403, (rule.rule, signature)


def test_signature_from_another_account_is_refused(app):
    from tests.conftest import TwilioClient
    stranger = TwilioClient(app.test_client(), token="someone-elses-token")
    assert stranger.post("/twilio/voice", {"CallSid": "CA1"}).status_code == 403


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_other_methods_are_not_allowed(app, method):
    response = app.test_client().open("/twilio/voice", method=method)
    assert response.status_code in (403, 405)
