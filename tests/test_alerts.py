"""Alerts to the coordinators (issue 18): each condition opens one alert, texted to
HOTLINE_ALERT_PHONES, POSTed as {"text": ...} to HOTLINE_ALERT_WEBHOOK_URL and shown on the
dashboard; repeated only after HOTLINE_ALERT_REPEAT_MINUTES; "resolved" once it clears; and
never a caller's number or words in any of them."""

from __future__ import annotations

import json
import threading
import uuid
from datetime import date, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import select

from hotline.alerts import notify, signals
from hotline.core.errors import FlowError, SettingsError
from hotline.core.extensions import db, settings
from hotline.core.settings import load
from hotline.escalation import auditor
from hotline.models import Contact, OpenAlert, Outcome
from hotline.roster import shifts
from tests.conftest import HOTLINE_NUMBER

COORD = "+16175550190"
CANARY_CALLER, CANARY_TEXTER = "+16175550281", "+16175550282"
CANARY_WORDS = ("CANARY-ALERT-4d2", "CANARY-ALERT-8e5")


@pytest.fixture
def webhook():
    """A local incoming-webhook server (as Slack's or Teams'): the JSON bodies it got."""
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's name
            length = int(self.headers["Content-Length"])
            assert self.headers["Content-Type"] == "application/json"
            received.append(json.loads(self.rfile.read(length)))
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):  # quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    server.received = received
    server.url = f"http://127.0.0.1:{server.server_port}/hook"
    yield server
    server.shutdown()


def configure(app, **changes):
    app.extensions["hotline.settings"] = settings().replace(**changes)


@pytest.fixture
def alerting(app, clock, stand_in, webhook):
    """Alerts on: one coordinator phone, the local webhook, repeats after 60 minutes; the
    worker's heartbeat fresh (its own test says what a stale one does)."""
    configure(app, ALERT_PHONES=(COORD,), ALERT_WEBHOOK_URL=webhook.url,
              ALERT_REPEAT_MINUTES=60)
    signals.beat(clock.now)
    return webhook


def texts(sim):
    return [m["body"] for m in sim.messages if m["to"] == COORD]


def trained(supporter):
    supporter.trained_on, supporter.refresher_due = date(2026, 1, 1), date(2028, 1, 1)
    db.session.commit()


def test_nobody_on_shift_fires_once_repeats_after_its_interval_and_resolves(
        app, clock, stand_in, alerting, make_supporter):
    ada = make_supporter("Ada", available=False)
    trained(ada)
    assert notify.check(only=("nobody_now",)) == {"nobody_now": "alert"}
    assert len(texts(stand_in)) == 1 and "nobody is on shift now" in texts(stand_in)[0]
    assert [b["text"] for b in alerting.received] == texts(stand_in)
    clock.advance(minutes=59)
    assert notify.check(only=("nobody_now",)) == {}  # open already: nothing sent
    assert len(texts(stand_in)) == 1
    clock.advance(minutes=1)
    assert notify.check(only=("nobody_now",)) == {"nobody_now": "repeat"}
    assert "still open" in texts(stand_in)[1]
    assert notify.check(only=("nobody_now",)) == {}
    ada.available = True  # switched ON
    db.session.commit()
    assert notify.check(only=("nobody_now",)) == {"nobody_now": "resolved"}
    assert "RESOLVED" in texts(stand_in)[2] and len(alerting.received) == 3
    assert notify.check(only=("nobody_now",)) == {}  # resolved once
    assert db.session.scalars(select(OpenAlert)).all() == []


def test_outside_program_hours_nobody_on_shift_is_no_alert(app, clock, alerting):
    # 15:00 UTC is 11:00 in New York
    configure(app, PROGRAM_HOURS="18:00-08:00")
    assert notify.check(only=("nobody_now", "nobody_soon")) == {}
    configure(app, PROGRAM_HOURS="08:00-18:00")
    assert notify.check(only=("nobody_now",)) == {"nobody_now": "alert"}


def test_a_gap_within_the_hour_is_named(app, clock, stand_in, alerting, make_supporter):
    ada = make_supporter("Ada", available=False)
    trained(ada)
    shifts.back_to_schedule(db.session, ada)
    # Wednesday 10:00-11:30 New York; now is 11:00: covered, then a gap at 11:30
    shifts.add_shift(db.session, ada, "Wednesday", "10:00", "11:30")
    assert notify.check(only=("nobody_now", "nobody_soon")) == {"nobody_soon": "alert"}
    assert "from Wed 11:30 EDT" in texts(stand_in)[0]
    shifts.add_shift(db.session, ada, "Wednesday", "11:30", "18:00")
    assert notify.check(only=("nobody_soon",)) == {"nobody_soon": "resolved"}


def ended(outcome: Outcome, at) -> Contact:
    contact = Contact(caller_key=uuid.uuid4().hex * 2, channel="voice", state="ended",
                      outcome=outcome.value, ended_at=at)
    db.session.add(contact)
    db.session.commit()
    return contact


def test_contacts_ending_without_a_peer_above_the_threshold(app, clock, stand_in, alerting):
    configure(app, ALERT_UNANSWERED_PER_HOUR=3)
    ended(Outcome.ABANDONED, clock.now - timedelta(minutes=10))
    ended(Outcome.FAILED, clock.now - timedelta(minutes=20))
    ended(Outcome.CONNECTED, clock.now - timedelta(minutes=5))  # reached a peer
    ended(Outcome.ABANDONED, clock.now - timedelta(minutes=70))  # over an hour ago
    assert notify.check(only=("unanswered",)) == {}
    ended(Outcome.ABANDONED, clock.now - timedelta(minutes=1))
    assert notify.check(only=("unanswered",)) == {"unanswered": "alert"}
    assert "3 contacts in the last hour" in texts(stand_in)[0]
    clock.advance(minutes=51)  # two of them are now over an hour old
    assert notify.check(only=("unanswered",)) == {"unanswered": "resolved"}


def test_the_fallback_webhook_counts_without_delaying_the_caller_and_alerts(
        app, clock, stand_in, alerting, twilio):
    response = twilio.post("/twilio/voice/fallback", {"CallSid": "CA1", "From": CANARY_CALLER})
    assert response.status_code == 200
    response.close()  # the server closes it once sent: then the hit is counted
    assert signals.fallback_hits() == {"voice": 1}
    assert notify.check(only=("fallback",)) == {"fallback": "alert"}
    assert "voice fallback webhook answered 1 time" in texts(stand_in)[0]
    db.session.commit()
    signals.redis_conn.client.delete(signals.FALLBACK_KEY.format(which="voice"))  # 15 min on
    assert notify.check(only=("fallback",)) == {"fallback": "resolved"}


def test_the_messaging_fallback_counts_its_hits_too(app, clock, stand_in, alerting, twilio):
    response = twilio.post("/twilio/sms/fallback", {"MessageSid": "SM1", "From": CANARY_CALLER,
                                                    "Body": "hello"})
    assert response.status_code == 200
    response.close()
    assert signals.fallback_hits() == {"messaging": 1}
    assert notify.check(only=("fallback",)) == {"fallback": "alert"}


def test_the_fallback_answers_when_redis_is_down(app):
    configure(app, REDIS_URL="redis://127.0.0.1:9/0")  # nothing listens there
    signals.record_fallback("voice", settings())  # logged, never raised


def test_no_worker_heartbeat_for_two_minutes_is_seen_from_the_dashboard(
        app, clock, stand_in, alerting, coordinator):
    clock.advance(minutes=1, seconds=59)
    notify.web_check(force=True)
    assert texts(stand_in) == []
    clock.advance(seconds=1)
    page = coordinator.get("/dashboard/now")  # the web side: the worker cannot say it
    assert page.status_code == 200
    assert b"no worker has checked in for 2 minutes" in page.data
    assert "(the last: Wed 11:00 EDT)" in texts(stand_in)[0]
    auditor.audit()  # a worker again: its pass beats, then resolves
    assert "a worker is checking in again" in texts(stand_in)[-1]
    assert b"no worker has checked in" not in coordinator.get("/dashboard/now").data


def test_a_training_lapse_leaving_a_shift_uncovered(app, clock, stand_in, alerting,
                                                    make_supporter):
    configure(app, REQUIRE_TRAINING=True)
    ada, bea = make_supporter("Ada", available=False), make_supporter("Bea", available=False)
    trained(ada)
    bea.trained_on, bea.refresher_due = date(2024, 1, 1), date(2026, 6, 1)  # lapsed
    db.session.commit()
    for s in (ada, bea):
        shifts.back_to_schedule(db.session, s)
    shifts.add_shift(db.session, ada, "Monday", "08:00", "16:00")
    shifts.add_shift(db.session, bea, "Monday", "12:00", "18:00")  # 16:00-18:00: nobody
    assert notify.check(only=("training_lapse",)) == {"training_lapse": "alert"}
    assert "1 weekly shift(s), Monday 12:00–18:00 first" in texts(stand_in)[0]
    configure(app, REQUIRE_TRAINING=False)  # then a lapse leaves nobody out
    assert notify.check(only=("training_lapse",)) == {"training_lapse": "resolved"}
    configure(app, REQUIRE_TRAINING=True)
    assert notify.check(only=("training_lapse",)) == {"training_lapse": "alert"}
    shifts.add_shift(db.session, ada, "Monday", "16:00", "20:00")  # a trained one covers it
    assert notify.check(only=("training_lapse",)) == {"training_lapse": "resolved"}


def test_two_checkers_at_once_send_one_alert(app, clock, stand_in, alerting):
    db.session.add(OpenAlert(condition="nobody_now", opened_at=clock.now,
                             notified_at=clock.now, summary="x"))
    db.session.commit()  # as if the other checker had just opened it
    assert notify.check(only=("nobody_now",)) == {}
    assert texts(stand_in) == []


def test_the_canary_finds_no_caller_number_or_words_in_any_alert(
        app, clock, stand_in, alerting, twilio, coordinator):
    configure(app, ALERT_UNANSWERED_PER_HOUR=1)
    from tests.test_sms import text  # a clinician's text, as Twilio posts it
    text(twilio, f"{CANARY_WORDS[0]} rough night", sender=CANARY_TEXTER)
    twilio.post("/twilio/voice", {"CallSid": "CA" + "c" * 32, "From": CANARY_CALLER,
                                  "To": HOTLINE_NUMBER, "CallStatus": "ringing",
                                  "Direction": "inbound"})
    twilio.post("/twilio/voice/fallback", {"CallSid": "CA" + "d" * 32, "From": CANARY_CALLER,
                                           "SpeechResult": CANARY_WORDS[1]}).close()
    clock.advance(minutes=31)  # the auditor ends both: nobody ever answered
    signals.beat(clock.now)
    sent = auditor.audit()
    assert sent["alerts"] >= 3
    assert db.session.scalar(select(Contact.outcome).where(Contact.channel == "voice"))
    everything = texts(stand_in) + [json.dumps(b) for b in alerting.received] + [
        coordinator.get("/dashboard/now").get_data(as_text=True)]
    joined = "\n".join(everything)
    assert "ended without reaching a peer" in joined and "fallback webhook" in joined
    assert "nobody is on shift now" in joined
    for secret in (CANARY_CALLER, CANARY_TEXTER, *CANARY_WORDS, "rough night"):
        for form in (secret, secret.lstrip("+"), secret[-7:]):
            assert form not in joined


def test_bad_alert_settings_are_named():
    with pytest.raises(SettingsError, match="HOTLINE_ALERT_PHONES"):
        load({}, {"ALERT_PHONES": "617-555-0190"})
    with pytest.raises(SettingsError, match="HOTLINE_PROGRAM_HOURS"):
        load({}, {"PROGRAM_HOURS": "9 to 5"})
    with pytest.raises(SettingsError, match="HOTLINE_ALERT_WEBHOOK_URL"):
        load({}, {"ALERT_WEBHOOK_URL": "ftp://example.org/x"})
    assert load({}, {"PROGRAM_HOURS": "08:00-20:00"}).PROGRAM_HOURS == "08:00-20:00"


def test_alert_words_are_checked_at_start(tmp_path):
    from hotline.alerts import conditions, words
    (tmp_path / "alerts.yaml").write_text(
        "prefix: a\nrepeat_prefix: b\nresolved_prefix: c\nmessages: {nobody_now: "
        "{alert: 'hi {caller}', resolved: ok}}\n")
    with pytest.raises(FlowError, match="messages must have exactly"):
        words.load(tmp_path, frozenset(conditions.CONDITIONS))
    with pytest.raises(FlowError, match="unknown placeholders"):
        words.load(tmp_path, frozenset({"nobody_now"}))


def test_a_callers_webhook_raises_nobody_on_shift_once_its_answer_is_sent(
        app, clock, stand_in, alerting, make_supporter, twilio, monkeypatch):
    """The webhook that meets the gap checks it after answering (at most every 30 s per
    process): the alert does not wait for the worker's next minute."""
    trained(make_supporter("Ada", available=False))
    calls = []
    checked = notify.check
    monkeypatch.setattr(notify, "check", lambda **kw: calls.append(kw) or checked(**kw))
    response = twilio.post("/twilio/voice", {"CallSid": "CA1", "From": CANARY_CALLER})
    assert response.status_code == 200 and texts(stand_in) == []  # the caller first
    response.close()  # sent: now the check runs
    assert calls == [{"only": notify.WEBHOOK_CONDITIONS}]
    assert len(texts(stand_in)) == 1 and "nobody is on shift now" in texts(stand_in)[0]
    again = twilio.post("/twilio/sms", {"MessageSid": "SM1", "From": CANARY_CALLER,
                                        "Body": "hello"})
    again.close()
    assert len(calls) == 1  # within 30 s: not checked again
