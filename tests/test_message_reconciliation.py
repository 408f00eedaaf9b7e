"""Nothing left at Twilio even when the hotline never learned a message's sid: a text that
came while the database or the whole app was down, a reply whose status callbacks were all
lost. The auditor lists the messages to and from the hotline's number at the stand-in (every
15 minutes, a bounded number of pages a run), files the unknown ones, and redacts them.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.engine import make_url

from hotline.telephony import message_records
from hotline.core.extensions import db, redis_conn, settings
from hotline.models import MessageSid, utcnow
from tests.conftest import HOTLINE_NUMBER
from tests.servers import free_port
from tests.test_message_redaction import CLINICIAN, audit_pass, filed, left_at_twilio
from tests.scenario import Hotline, TextingPhone
from workers import audit


@pytest.fixture
def hotline(fresh_app):
    world = Hotline(fresh_app)
    world.sim.epoch = datetime.now(UTC)  # its messages are dated today
    yield world
    world.server.shutdown()


def unreachable(database_url: str, tmp_path) -> str:
    """A database URL of the same kind where no database answers."""
    if database_url.startswith("sqlite"):
        (tmp_path / "a-file").write_text("")
        return f"sqlite:///{tmp_path / 'a-file' / 'hotline.db'}"  # cannot be opened
    return make_url(database_url).set(port=free_port()).render_as_string(hide_password=False)


def test_a_text_that_came_while_the_database_was_down_ends_blank_at_twilio(
        hotline, database_url, tmp_path):
    down = create_engine(unreachable(database_url, tmp_path))
    db.session.remove()
    db.session.configure(bind=down)  # every webhook's session now fails to connect
    try:
        hotline.sim.send_sms(CLINICIAN, HOTLINE_NUMBER, "a photo of my shift",
                             media=("image/png",))
        hotline.run(60)
    finally:
        db.session.remove()
        db.session.configure(bind=db.engine)
        down.dispose()
    replies = [m["body"] for m in hotline.sim.messages if m["direction"] == "outbound-reply"]
    assert len(replies) == 1 and "could not take your message" in replies[0]
    assert filed(hotline.app) == {}  # neither the text nor the reply could be filed
    assert len(left_at_twilio(hotline.sim)) == 2
    done = audit_pass(hotline.app)
    assert done["reconciled"] == 2 and done["redacted"] == 2
    assert left_at_twilio(hotline.sim) == []
    assert sorted(filed(hotline.app).values()) == [("inbound", True), ("outbound", True)]


class LosingStatusCallbacks:
    """Every status callback of a text is lost on its way to the app."""

    def __init__(self, inner) -> None:
        self.inner = inner

    def post(self, url, params, headers):
        if url.endswith("/twilio/sms/status"):
            return 503, ""
        return self.inner.post(url, params, headers)


def test_replies_whose_status_callbacks_were_all_lost_end_blank_at_twilio(hotline):
    hotline.sim.transport = LosingStatusCallbacks(hotline.sim.transport)
    doc = hotline.sim.add_phone(TextingPhone(CLINICIAN, replies=[]))
    doc.text("hello")
    hotline.run(60)
    replies = [m for m in hotline.sim.messages if m["direction"] == "outbound-reply"]
    assert replies and all(m["body"] for m in replies)
    assert {m["sid"] for m in replies}.isdisjoint(filed(hotline.app))
    assert audit_pass(hotline.app)["reconciled"] == len(replies)
    assert left_at_twilio(hotline.sim) == []
    assert set(filed(hotline.app)) == {m["sid"] for m in hotline.sim.messages}


def posts_to(stand_in, sid: str) -> int:
    return sum(1 for method, path, _ in stand_in.rest_log
               if method == "POST" and f"/{sid}" in path)


def test_already_blank_messages_are_filed_as_redacted_and_cost_no_call(app, session, stand_in):
    blank = stand_in.create_message(to=CLINICIAN, from_=HOTLINE_NUMBER, body="are you ok?")
    with stand_in.lock:
        blank.update(body="", status="delivered")  # redacted before its sid was forgotten
    # the app was down: the stand-in has no webhook for the number, it just keeps the text
    words = stand_in.send_sms(CLINICIAN, HOTLINE_NUMBER, "I am not ok")
    done = audit.audit()
    assert done["reconciled"] == 2 and done["redacted"] == 1
    assert posts_to(stand_in, blank["sid"]) == 0 and posts_to(stand_in, words["sid"]) == 1
    assert words["body"] == ""
    rows = {row.sid: row for row in session.scalars(select(MessageSid))}
    assert rows[blank["sid"]].direction == "outbound" and rows[blank["sid"]].redacted_at
    assert rows[words["sid"]].direction == "inbound" and rows[words["sid"]].redacted_at


def listings(stand_in) -> list[dict[str, str]]:
    """The query of every Messages list request, in order."""
    return [params for method, path, params in stand_in.rest_log
            if method == "GET" and path.endswith("/Messages.json")]


def state() -> dict[str, str]:
    stored = redis_conn.client.hgetall(message_records.RECONCILE_KEY)
    return {k.decode(): v.decode() for k, v in stored.items()}


def sent_after(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_the_window_is_bounded_and_the_watermark_moves_only_after_a_complete_listing(
        app, session, stand_in, monkeypatch):
    monkeypatch.setattr(message_records, "RECONCILE_PAGE_SIZE", 2)
    monkeypatch.setattr(message_records, "RECONCILE_PAGES", 2)
    texts = [stand_in.send_sms(CLINICIAN, HOTLINE_NUMBER, f"text {n}") for n in range(5)]
    old = stand_in.send_sms(CLINICIAN, HOTLINE_NUMBER, "four days ago")
    with stand_in.lock:
        old["created_at"] = -timedelta(days=4).total_seconds()
    replies = [stand_in.create_message(to=CLINICIAN, from_=HOTLINE_NUMBER, body=f"reply {n}")
               for n in range(3)]
    with stand_in.lock:
        for m in replies:
            m["status"] = "sent"

    before = utcnow()
    assert audit.audit()["reconciled"] == 4  # two pages of texts in: cut short
    after = utcnow()
    first = listings(stand_in)
    assert len(first) == 2 and first[0]["To"] == HOTLINE_NUMBER
    window = first[0]["DateSent>"]  # the first listing: RECONCILE_WINDOW back, no further
    assert sent_after(before - message_records.RECONCILE_WINDOW) <= window \
        <= sent_after(after - message_records.RECONCILE_WINDOW)
    assert "watermark" not in state() and state()["phase"] == "to"

    assert audit.audit()["reconciled"] == 3  # the minute after: it goes on, still cut short
    assert len(listings(stand_in)) == 4 and "watermark" not in state()
    assert [q.get("To", q.get("From")) for q in listings(stand_in)[2:]] == [HOTLINE_NUMBER] * 2
    assert "From" in listings(stand_in)[3] and state()["phase"] == "from"

    working = settings()
    app.extensions["hotline.settings"] = working.replace(TWILIO_API_BASE_URL="http://127.0.0.1:9")
    assert audit.audit()["reconciled"] == 0  # Twilio unreachable: nothing moves
    assert "watermark" not in state() and len(listings(stand_in)) == 4
    app.extensions["hotline.settings"] = working
    assert audit.audit()["reconciled"] == 0  # not due again for 15 minutes: no listing
    assert len(listings(stand_in)) == 4

    redis_conn.client.delete(message_records.RECONCILE_DUE_KEY)  # 15 minutes later
    assert audit.audit()["reconciled"] == 1  # this half listed again, to its end
    watermark = datetime.fromisoformat(state()["watermark"])
    assert before <= watermark <= after  # when the complete listing started
    assert set(state()) == {"watermark"}
    assert set(filed(app)) == {m["sid"] for m in texts + replies}  # never the 4-day-old one
    assert old["body"] == "four days ago"

    redis_conn.client.delete(message_records.RECONCILE_DUE_KEY)
    seen = len(listings(stand_in))
    assert audit.audit()["reconciled"] == 0
    assert {q["DateSent>"] for q in listings(stand_in)[seen:]} == {
        sent_after(watermark - message_records.RECONCILE_MARGIN)}
    assert all(m["body"] == "" for m in texts + replies)


def test_reconciliation_is_off_with_nothing_to_do_at_twilio(app, stand_in):
    app.extensions["hotline.settings"] = settings().replace(REDACT_AT_TWILIO=False)
    kept = stand_in.send_sms(CLINICIAN, HOTLINE_NUMBER, "kept")
    assert audit.audit()["reconciled"] == 0 and listings(stand_in) == []
    app.extensions["hotline.settings"] = settings().replace(TWILIO_LOG_DAYS=30)
    assert audit.audit()["reconciled"] == 1 and kept["body"] == "kept"  # for log-days deletion
    assert filed(app) == {kept["sid"]: ("inbound", False)}
