"""The stand-in checks REST parameters against Twilio's OpenAPI spec (from @twilio/cli-core)."""

from __future__ import annotations

import json
import logging
import time

import pytest
import requests
from werkzeug.datastructures import MultiDict

from hotline.simulator import Answer, NoAnswer, ScriptedPhone, spec
from tests.twilio_files import openapi_spec_path
from tests.simulator.conftest import ACCOUNT_SID, AUTH_TOKEN, BASE, HOTLINE, SUPPORTER

ACCOUNT = f"/2010-04-01/Accounts/{ACCOUNT_SID}"
CALL = {"To": SUPPORTER, "From": HOTLINE, "Url": f"{BASE}/offer"}


@pytest.fixture
def twilio_spec():
    """Twilio's spec where the stand-in looks for it (a missing spec fails, never skips)."""
    return openapi_spec_path()


def post(rest, path: str, data: dict | list, auth=(ACCOUNT_SID, AUTH_TOKEN)) -> requests.Response:
    """A raw form POST to the stand-in served in a thread (a list of pairs may repeat keys)."""
    return requests.post(rest.api.base_url + ACCOUNT + path, data=data, auth=auth, timeout=10)


def test_the_sdk_creates_updates_and_texts_within_the_spec(twilio_spec, sim, fake, rest):
    sim.add_phone(ScriptedPhone(SUPPORTER, ring=NoAnswer()))
    call = rest.calls.create(                      # what hotline.telephony.api sends, and more
        to=SUPPORTER, from_=HOTLINE, url=f"{BASE}/offer", method="POST",
        status_callback=f"{BASE}/cb", status_callback_method="POST", timeout=20,
        status_callback_event=["initiated", "ringing", "answered", "completed"])
    assert rest.calls(call.sid).update(status="canceled").status == "canceled"
    message = rest.messages.create(to=SUPPORTER, from_=HOTLINE, body="hello",
                                   status_callback=f"{BASE}/sms")
    sim.run()                                      # only a message no longer sending redacts
    assert rest.messages(message.sid).update(body="").body == ""
    assert rest.messages(message.sid).delete() is True
    assert [m for m, _, _ in sim.rest_log] == ["POST", "POST", "POST", "POST", "DELETE"]


@pytest.mark.parametrize(("data", "param", "code"), [
    ({**CALL, "Recrod": "true"}, "Recrod", 20001),
    ({"From": HOTLINE, "Url": f"{BASE}/offer"}, "To", 21201),
    ({**CALL, "To": ""}, "To", 21201),
    ({**CALL, "Timeout": "soon"}, "Timeout", 20001),
    ({**CALL, "Timeout": "2.5"}, "Timeout", 20001),
    ({**CALL, "Url": "/offer"}, "Url", 21205),
    ({**CALL, "StatusCallback": "ftp://hotline.test/cb"}, "StatusCallback", 20001),
    ({**CALL, "Method": "PUT"}, "Method", 20001),
    ({**CALL, "Record": "yes"}, "Record", 20001),
    ({**CALL, "Byoc": "BY123"}, "Byoc", 20001),
    ([*CALL.items(), ("Timeout", "20"), ("Timeout", "30")], "Timeout", 20001),
])
def test_a_create_breaking_the_spec_is_400_naming_the_parameter(twilio_spec, sim, rest, data,
                                                                param, code):
    refused = post(rest, "/Calls.json", data)

    body = refused.json()
    assert (refused.status_code, body["code"], body["status"]) == (400, code, 400)
    assert f"'{param}'" in body["message"]
    assert body["more_info"] == f"https://www.twilio.com/docs/errors/{code}"
    assert sim.legs == {} and sim.events[-1][1] == "rest"          # nothing else happened


def test_a_bad_status_is_400_and_leaves_the_call_alone(twilio_spec, sim, rest):
    sim.add_phone(ScriptedPhone(SUPPORTER, ring=Answer(5)))
    sid = post(rest, "/Calls.json", CALL).json()["sid"]
    sim.advance(1)

    refused = post(rest, f"/Calls/{sid}.json", {"Status": "busy"})

    assert (refused.status_code, refused.json()["code"]) == (400, 21218)
    assert refused.json()["message"] == ("Invalid value 'busy' for parameter 'Status': "
                                         "must be one of canceled, completed.")
    sim.advance(1)
    assert sim.legs[sid].status == "ringing"


def test_every_problem_is_reported_at_once(twilio_spec, rest):
    refused = post(rest, "/Messages.json", {"Body": "hi", "MaxPrice": "cheap", "Colour": "red"})

    message = refused.json()["message"]
    assert (refused.status_code, refused.json()["code"]) == (400, 21604)   # the first: To
    assert message == ("Required parameter 'To' is missing. Invalid value 'cheap' for "
                       "parameter 'MaxPrice': must be a number. Unknown parameter 'Colour'.")


def test_repeated_keys_are_the_items_of_an_array_parameter(twilio_spec, sim, rest):
    events = [("StatusCallbackEvent", e) for e in ("initiated", "completed")]
    created = post(rest, "/Calls.json", [*CALL.items(), *events])
    assert created.status_code == 201
    assert sim.legs[created.json()["sid"]].status_callback_events == {"initiated", "completed"}


def test_path_parameters_must_match_their_pattern(twilio_spec, sim, rest):
    refused = post(rest, "/Calls/CA-not-a-sid.json", {"Status": "canceled"})
    assert (refused.status_code, refused.json()["code"]) == (400, 20001)
    assert "path parameter 'Sid'" in refused.json()["message"]


def test_authentication_comes_before_the_spec(twilio_spec, sim, rest):
    refused = post(rest, "/Calls.json", {"Bogus": "1"}, auth=(ACCOUNT_SID, "wrong"))
    assert (refused.status_code, refused.json()["code"]) == (401, 20003)


def test_validate_follows_refs_enums_of_items_and_ignored_formats(twilio_spec):
    app = f"{ACCOUNT}/ConnectApps/CN{'a' * 32}.json"
    form = MultiDict([("Permissions", "get-all"), ("Permissions", "delete-all")])
    assert [str(p) for p in spec.validate("POST", app, form)] == [
        "Invalid value 'delete-all' for parameter 'Permissions': must be one of get-all, "
        "post-all."]
    texts = f"{ACCOUNT}/Messages.json"
    ok = MultiDict({"To": SUPPORTER, "MediaUrl": "cat.gif", "ProvideFeedback": "True",
                    "ContentRetention": "discard", "Attempt": "-1"})
    assert spec.validate("POST", texts, ok) == []           # MediaUrl: x-twilio ignoreFormat
    bad = MultiDict({"To": SUPPORTER, "ContentRetention": "forever"})
    assert [p.param for p in spec.validate("POST", texts, bad)] == ["ContentRetention"]
    assert spec.validate("POST", "/2010-04-01/Nothing/Here.json", bad) == []
    assert spec.validate("PATCH", texts, bad) == []


def test_literal_paths_win_over_templates(twilio_spec):
    op, values = spec.find_operation("POST", f"{ACCOUNT}/IncomingPhoneNumbers/Local.json")
    assert values == {"AccountSid": ACCOUNT_SID} and "PhoneNumber" in op.form["required"]


def test_validation_is_fast_once_loaded(twilio_spec):
    path, form = f"{ACCOUNT}/Calls/CA{'b' * 32}.json", MultiDict({"Status": "completed"})
    spec.validate("POST", path, form)
    start = time.perf_counter()
    for _ in range(1000):
        assert spec.validate("POST", path, form) == []
    assert time.perf_counter() - start < 1.0                # typically ~20 ms


def test_without_a_spec_nothing_is_checked_and_that_is_logged_once(tmp_path, monkeypatch,
                                                                     caplog, sim, rest):
    monkeypatch.setenv("TWILIO_OPENAPI_SPEC", str(tmp_path / "absent.json"))
    with caplog.at_level(logging.INFO, logger="hotline.simulator.spec"):
        for _ in range(2):
            assert post(rest, "/Calls.json", {**CALL, "Unknown": "x"}).status_code == 201
    assert [r.getMessage() for r in caplog.records if r.name == spec.__name__] == [
        f"Twilio's OpenAPI spec not found at {tmp_path / 'absent.json'}: "
        "REST parameters are not checked"]


def test_the_spec_path_can_be_given_in_the_environment(tmp_path, monkeypatch, rest):
    small = {"paths": {"/2010-04-01/Accounts/{AccountSid}/Calls.json": {"post": {
        "requestBody": {"$ref": "#/components/requestBodies/call"}}}},
        "components": {"requestBodies": {"call": {"content": {
            "application/x-www-form-urlencoded": {"schema": {
                "required": ["To"], "properties": {"To": {"$ref": "#/components/to"}}}}}}},
            "to": {"type": "string", "pattern": "^\\+"}}}
    (tmp_path / "small.json").write_text(json.dumps(small))
    monkeypatch.setenv("TWILIO_OPENAPI_SPEC", str(tmp_path / "small.json"))

    refused = post(rest, "/Calls.json", {"To": "5550122222", "From": HOTLINE})

    assert refused.json()["message"] == ("Invalid value '5550122222' for parameter 'To': "
                                         "must match ^\\+. Unknown parameter 'From'.")
