"""With the database and Redis down, a caller still reaches a human; bad input never 500s."""

from __future__ import annotations

import time

import pytest

from hotline import create_app
from tests.conftest import BACKUP_NUMBERS, TwilioClient, settings_for, twiml

DEAD_POSTGRES = "postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=1"
DEAD_REDIS = "redis://127.0.0.1:1/0"


@pytest.fixture
def dead_app():
    return create_app(settings_for(DEAD_POSTGRES, DEAD_REDIS))


def test_fallback_url_works_with_database_and_redis_down(dead_app):
    doc = twiml(TwilioClient(dead_app.test_client()).post("/twilio/voice/fallback", {}))
    assert [n.text for n in doc.findall("Dial/Number")] == BACKUP_NUMBERS.split(",")


def test_incoming_call_with_database_down_reaches_the_backups(dead_app):
    client = TwilioClient(dead_app.test_client())
    doc = twiml(client.post("/twilio/voice", {"CallSid": "CA1", "From": "+16175550123"}))
    assert [n.text for n in doc.findall("Dial/Number")] == BACKUP_NUMBERS.split(",")


def test_talk_now_with_redis_down_reaches_the_backups(app_settings, session):
    from hotline.models import Contact
    app_settings["REDIS_URL"] = DEAD_REDIS
    app = create_app(app_settings)
    client = TwilioClient(app.test_client())
    with app.app_context():
        twiml(client.post("/twilio/voice", {"CallSid": "CA9", "From": "+16175550123"}))
        contact_id = session.query(Contact).one().id
        doc = twiml(client.post(f"/twilio/voice/{contact_id}/menu", {"Digits": "1"}))
    assert [n.text for n in doc.findall("Dial/Number")] == BACKUP_NUMBERS.split(",")
    with app.app_context():
        assert session.get(Contact, contact_id).outcome == "failed"


def test_a_hang_up_in_the_queue_with_redis_down_abandons_once_and_answers(app_settings,
                                                                          session):
    """The caller hung up while waiting, and Redis (jobs, kept answers) is down: the
    outcome is still written, once, the number forgotten, and each delivery answered with
    TwiML. Its repeat is turned away by the database, which needs no Redis; the job that
    would stop ringing phones is not enqueued (the auditor expires stray offers)."""
    from sqlalchemy import select

    from hotline.models import Contact, ContactEvent
    app_settings["REDIS_URL"] = DEAD_REDIS
    app = create_app(app_settings)
    client = TwilioClient(app.test_client())
    with app.app_context():
        twiml(client.post("/twilio/voice", {"CallSid": "CA8", "From": "+16175550123"}))
        contact = session.query(Contact).one()
        contact.state = "waiting"  # queued before Redis went down
        session.commit()
        hang_up = {"QueueResult": "hangup", "CallStatus": "completed", "CallSid": "CA8"}
        for _ in range(2):  # Twilio's retry of the same delivery
            response = client.post(f"/twilio/voice/{contact.id}/queue-exit", hang_up)
            assert response.status_code == 200 and response.mimetype == "text/xml"
        session.expire_all()
        contact = session.get(Contact, contact.id)
        assert (contact.outcome, contact.state, contact.sealed_number) == (
            "abandoned", "ended", None)
        assert session.scalars(select(ContactEvent.kind).where(
            ContactEvent.contact_id == contact.id, ContactEvent.kind == "abandoned")).all() \
            == ["abandoned"]


@pytest.mark.parametrize("path", ["/twilio/voice", "/twilio/voice/1/menu", "/twilio/voice/1/wait",
                                  "/twilio/voice/1/queue-exit", "/twilio/voice/1/options",
                                  "/twilio/voice/offer/1/answer", "/twilio/voice/offer/1/accept",
                                  "/twilio/voice/offer/1/status", "/twilio/voice/status"])
def test_missing_parameters_get_twiml_not_errors(twilio, path):
    response = twilio.post(path, {})
    assert response.status_code == 200 and response.mimetype == "text/xml"


def test_garbage_parameters_get_twiml(twilio):
    junk = {"CallSid": "x" * 5000, "From": "☎️" * 50, "QueueTime": "soon", "Digits": "\x00"}
    for path in ("/twilio/voice", "/twilio/voice/1/wait", "/twilio/voice/1/menu"):
        response = twilio.post(path, junk)
        assert response.status_code == 200, (path, response.data)


@pytest.mark.slow  # waits out the 5 s busy timeout on purpose
def test_a_locked_database_still_reaches_a_human_in_time(app, twilio, database_url):
    """Another process holds the write lock: the call fails over well inside Twilio's 15 s."""
    import time

    import sqlalchemy as sa
    other = sa.create_engine(database_url)
    with other.connect() as conn:
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql("BEGIN EXCLUSIVE")
        else:
            conn.exec_driver_sql("BEGIN")
            conn.exec_driver_sql("LOCK TABLE contacts IN ACCESS EXCLUSIVE MODE")
        started = time.monotonic()
        doc = twiml(twilio.post("/twilio/voice", {"CallSid": "CA" + "9" * 32,
                                                  "From": "+16175550123"}))
        elapsed = time.monotonic() - started
        conn.exec_driver_sql("ROLLBACK")
    other.dispose()
    assert [n.text for n in doc.findall("Dial/Number")] == BACKUP_NUMBERS.split(",")
    assert elapsed < 12


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)  # a server to drop
def test_a_database_restart_between_requests_is_invisible(app, database_url):
    """Pooled connections that sat idle are pinged before use: one the database dropped
    (a restart, a failover) is replaced before a webhook sees it."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.pool import NullPool

    from hotline.core.extensions import PING_AFTER_IDLE_SECONDS, db
    before = db.session.execute(text("select pg_backend_pid()")).scalar()
    db.session.remove()
    with create_engine(database_url, poolclass=NullPool).connect() as other:  # the restart
        other.execute(text("select pg_terminate_backend(pid) from pg_stat_activity "
                           "where datname = current_database() and pid <> pg_backend_pid()"))
    time.sleep(PING_AFTER_IDLE_SECONDS + 0.2)
    after = db.session.execute(text("select pg_backend_pid()")).scalar()
    assert after != before
