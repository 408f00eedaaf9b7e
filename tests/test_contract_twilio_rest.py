"""Contract tests: every REST call the app makes, against Prism serving Twilio's OpenAPI spec.

Prism validates each request (path, auth, required and enumerated parameters) against
Twilio's ``twilio_api_v2010.json`` and answers with the spec's examples. The spec comes with
the npm package ``@twilio/cli-core`` that ``make tools`` installs beside Prism (or from
TWILIO_OPENAPI_SPEC), and is never copied into the repository.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from twilio.base.exceptions import TwilioRestException

from hotline.lifecycle import routing
from hotline.telephony import api as twilio_api
from hotline.core.errors import TwilioApiError
from hotline.core.extensions import settings
from hotline.models import Contact, ContactState, Offer
from tests.servers import free_port
from tests.twilio_files import ROOT, openapi_spec_path

pytestmark = pytest.mark.contract

PRISM = ROOT / "node_modules" / ".bin" / "prism"


@pytest.fixture(scope="session")
def prism():
    spec = openapi_spec_path()
    if not PRISM.exists() or not shutil.which("node"):
        raise RuntimeError("Prism is not installed: run `make tools`")
    port = free_port()
    log = Path(os.environ.get("TMPDIR", "/tmp")) / f"prism-{port}.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([str(PRISM), "mock", "--errors", "-h", "127.0.0.1", "-p",
                                 str(port), str(spec)], stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 90
    while "Prism is listening" not in log.read_text():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"Prism did not start: {log.read_text()[-2000:]}")
        time.sleep(0.2)
    yield f"http://127.0.0.1:{port}"
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture
def app_settings(app_settings, prism):
    app_settings["TWILIO_API_BASE_URL"] = prism
    return app_settings


def outbound() -> twilio_api.OutboundCall:
    return twilio_api.OutboundCall(to="+16175550142", url="https://hotline.example.org/a",
                                   status_callback="https://hotline.example.org/s", timeout=20)


def test_create_call_matches_the_spec(app):
    sid = twilio_api.create_call(settings(), outbound())
    assert sid.startswith("CA") and len(sid) == 34


@pytest.mark.parametrize("answered", [False, True])
def test_end_call_matches_the_spec(app, answered):
    twilio_api.end_call(settings(), "CA" + "b" * 32, answered=answered)


def test_prism_rejects_what_the_spec_forbids(app, prism):
    """Proves the contract is checked: a call without To, or a bogus Status, is refused."""
    cfg = settings()
    rest = twilio_api.client(cfg)
    base = f"{prism}/2010-04-01/Accounts/{cfg.TWILIO_ACCOUNT_SID}/Calls"
    missing_to = rest.request("POST", f"{base}.json",
                              data={"From": cfg.HOTLINE_NUMBER, "Url": "https://x.org/a"})
    assert missing_to.status_code == 422 and "'To'" in missing_to.text
    bogus = rest.request("POST", f"{base}/CA{'b' * 32}.json", data={"Status": "paused"})
    assert bogus.status_code == 422 and "Status" in bogus.text


def test_wrong_credentials_shape_is_refused(app):
    cfg = settings().replace(TWILIO_ACCOUNT_SID="", TWILIO_AUTH_TOKEN="")
    with pytest.raises(TwilioApiError):
        twilio_api.create_call(cfg, outbound())


def test_routing_job_places_and_cancels_calls_through_the_spec(app, session, make_supporter,
                                                               worker):
    from workers.offer import cancel_offers, route
    ada = make_supporter("Ada")
    # A worker started with a bare environment has production's training rule on.
    ada.trained_on, ada.refresher_due = date(2026, 1, 5), date(2099, 1, 5)
    contact = Contact(caller_key="k" * 64, state=ContactState.WAITING.value, attempt=1)
    session.add(contact)
    session.commit()
    assert route(contact.id, 1) == "tier1"
    offer = session.scalars(select(Offer)).one()
    assert offer.call_sid.startswith("CA") and offer.state == "ringing"
    assert cancel_offers(contact.id) == 1
    session.refresh(offer)
    # held until the stopped leg's status callback (Prism sends none) or the safety net
    assert offer.state == "canceled" and offer.supporter.busy_with == offer.token
    assert routing.ringing(contact) == []


def test_worker_process_routes_a_queued_contact(app, app_settings, session, make_supporter):
    """`hotline worker --burst`, a separate process, runs the routing job end to end."""
    import sys

    from hotline.core.extensions import jobs
    from workers.offer import route
    ada = make_supporter("Ada")
    # A worker started with a bare environment has production's training rule on.
    ada.trained_on, ada.refresher_due = date(2026, 1, 5), date(2099, 1, 5)
    contact = Contact(caller_key="k" * 64, state=ContactState.WAITING.value, attempt=1)
    session.add(contact)
    session.commit()
    jobs.enqueue(route, contact.id, 1)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOTLINE_ENV": "test"}
    names = {"DATABASE_URL": "DATABASE_URL", "REDIS_URL": "REDIS_URL",
             "TWILIO_API_BASE_URL": "TWILIO_API_BASE_URL", "PUBLIC_BASE_URL": "PUBLIC_BASE_URL",
             "TWILIO_AUTH_TOKEN": "TWILIO_AUTH_TOKEN", "TWILIO_ACCOUNT_SID": "TWILIO_ACCOUNT_SID",
             "HOTLINE_NUMBER": "HOTLINE_NUMBER"}
    env.update({var: str(app_settings[key]) for key, var in names.items()})
    done = subprocess.run([sys.executable, "-m", "hotline.cli", "worker", "--burst"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    session.expire_all()
    offer = session.scalars(select(Offer)).one()
    assert offer.call_sid.startswith("CA") and offer.supporter.busy_with == offer.token
    assert "+1617555" not in done.stderr + done.stdout  # the worker logs no numbers


def test_send_redact_and_delete_a_message_match_the_spec(app):
    cfg = settings()
    sid = twilio_api.send_message(cfg, "+16175550142", "template text",
                                  status_callback="https://hotline.example.org/twilio/sms/status")
    assert sid.startswith(("SM", "MM")) and len(sid) == 34
    twilio_api.redact_message(cfg, sid)
    twilio_api.delete_message(cfg, sid)


def test_delete_a_call_log_matches_the_spec(app):
    twilio_api.delete_call(settings(), "CA" + "c" * 32)


def test_text_offer_job_sends_through_the_spec(app, session, make_supporter):
    from workers.offer import route
    make_supporter("Ada")
    contact = Contact(caller_key="k" * 64, state=ContactState.WAITING.value, attempt=1,
                      channel="sms", mode="text")
    session.add(contact)
    session.commit()
    assert route(contact.id, 1) == "tier1"
    offer = session.scalars(select(Offer)).one()
    assert offer.state == "ringing" and offer.supporter.busy_with == offer.token



@pytest.fixture
def generated_responses(app, monkeypatch):
    """Prism answers from the schema, not from the spec's examples: a Messages list example
    has relative page URIs, which its own schema (format uri) refuses under --errors."""
    http = twilio_api.client(settings()).http_client
    ask = http.request

    def request(method, url, params=None, data=None, headers=None, **kwargs):
        return ask(method, url, params, data, {**(headers or {}), "Prefer": "dynamic=true"},
                   **kwargs)

    monkeypatch.setattr(http, "request", request)


def test_listing_messages_matches_the_spec(app, generated_responses):
    """The reconciliation's listing: to, then from the hotline's number, since a time, and
    the next page of a listing (its URI as Twilio gives it)."""
    cfg = settings()
    since = datetime(2025, 1, 1, 12, 30, tzinfo=UTC)
    for number in ({"to": cfg.HOTLINE_NUMBER}, {"from_": cfg.HOTLINE_NUMBER}):
        page = twilio_api.list_messages(cfg, **number, sent_after=since, page_size=200)
        assert all(m.sid.startswith(("SM", "MM")) for m in page.messages)
    following = (f"/2010-04-01/Accounts/{cfg.TWILIO_ACCOUNT_SID}/Messages.json?"
                 f"From=%2B16175550100&DateSent%3E=2025-01-01T11%3A30%3A00Z&PageSize=200"
                 f"&Page=1&PageToken=PASM{'a' * 32}")
    twilio_api.list_messages(cfg, page_uri=following)
    with pytest.raises(TwilioApiError):  # the contract is checked: PageSize is 1 to 1000
        twilio_api.list_messages(cfg, to=cfg.HOTLINE_NUMBER, page_size=0)


def test_the_debriefs_conference_calls_match_the_spec(app, generated_responses):
    """Team debriefs: find the room in progress by its name, announce the one-minute
    warning to it, and end it (issue 17)."""
    cfg = settings()
    sid = twilio_api.find_conference(cfg, "hotline-debrief-1")
    assert sid is None or sid.startswith("CF")
    room = "CF" + "c" * 32
    twilio_api.announce_conference(cfg, room, "https://hotline.example.org/twilio/voice/"
                                              "debrief/warning")
    twilio_api.end_conference(cfg, room)
    with pytest.raises(TwilioRestException):  # the contract is checked: Status's values
        twilio_api.client(cfg).conferences(room).update(status="bogus")


def test_configure_and_doctor_requests_match_the_spec(app, generated_responses):
    """The number lookup by PhoneNumber, its update with every webhook configure sets, and
    the account fetch, as Prism checks them (its answers are generated: no state kept)."""
    from hotline.operations import doctor, number
    cfg = settings()
    found = twilio_api.find_number(cfg, cfg.HOTLINE_NUMBER)
    assert found is None or found.sid.startswith("PN")
    twilio_api.update_number(cfg, "PN" + "b" * 32, number.wanted())
    assert twilio_api.account_status(cfg) in ("active", "suspended", "closed")
    assert doctor.check_twilio_account(cfg).message  # a line whatever the generated status


def test_prism_rejects_a_bad_number_update(app, prism):
    cfg = settings()
    rest = twilio_api.client(cfg)
    url = (f"{prism}/2010-04-01/Accounts/{cfg.TWILIO_ACCOUNT_SID}/IncomingPhoneNumbers/"
           f"PN{'b' * 32}.json")
    bogus = rest.request("POST", url, data={"VoiceMethod": "PATCH"})
    assert bogus.status_code == 422 and "VoiceMethod" in bogus.text
