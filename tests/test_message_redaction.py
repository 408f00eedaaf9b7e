"""Nothing left at Twilio: every message of a conversation, and of its faults, ends with
an empty body and no media at the stand-in, redacted by the auditor until Twilio confirms.

The stand-in plays Twilio (its REST API over HTTP, its webhooks signed into the app); the
auditor's pass is run by hand, as its minute job would.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from hotline import create_app
from hotline.telephony import message_records
from hotline.core.extensions import db, jobs, settings
from hotline.models import MessageSid, utcnow
from tests.conftest import HOTLINE_NUMBER, settings_for
from tests.scenario import Hotline, TextingPhone
from workers import audit

CLINICIAN = "+16175550301"


def audit_pass(app) -> dict:
    with app.app_context():
        done = audit.audit()
        db.session.remove()
        return done


def left_at_twilio(sim) -> list[tuple[str, str, int]]:
    """(direction, body, media kept) of every message the stand-in still holds words of."""
    with sim.lock:
        return [(m["direction"], m["body"], len(m.get("media", []))) for m in sim.messages
                if m["body"] or m.get("media")]


def filed(app) -> dict[str, tuple[str, bool]]:
    with app.app_context():
        rows = db.session.scalars(select(MessageSid)).all()
        db.session.remove()
        return {r.sid: (r.direction, r.redacted_at is not None) for r in rows}


def test_every_message_of_a_conversation_ends_blank_at_twilio(hotline):
    ada = hotline.supporter("Ada", phone_class=TextingPhone,
                            replies=[("Reply YES", "YES"), ("Long day", "I hear you. BYE")])
    doc = hotline.sim.add_phone(TextingPhone(CLINICIAN, replies=[("Reply 1", "2"),
                                                                 ("check-in text", "NO")]))
    doc.text("hello")
    hotline.run(600)
    hotline.sim.send_sms(CLINICIAN, HOTLINE_NUMBER, "Long day, a photo", media=("image/jpeg",))
    hotline.run(600)
    assert "I hear you. BYE" in doc.received() and "Long day, a photo" in ada.received()
    kinds = {m["direction"] for m in hotline.sim.messages}
    assert kinds == {"inbound", "outbound-api", "outbound-reply"}  # offers, replies, relays
    assert left_at_twilio(hotline.sim)  # Twilio holds the words until the auditor runs
    done = audit_pass(hotline.app)
    assert left_at_twilio(hotline.sim) == []
    assert done["redacted"] == len(hotline.sim.messages)
    assert set(filed(hotline.app)) == {m["sid"] for m in hotline.sim.messages}
    assert all(redacted for _, redacted in filed(hotline.app).values())
    assert audit_pass(hotline.app)["redacted"] == 0  # confirmed once: never asked again


@pytest.fixture
def hotline_on_own_redis(database_url, own_redis, fresh_app):
    app = create_app(settings_for(database_url, own_redis.url))
    world = Hotline(app)
    world.sim.on_idle.clear()  # jobs are run by hand: Redis is down for part of the story
    yield world
    world.server.shutdown()


def test_texts_handled_while_redis_is_down_or_the_handler_fails_end_blank(
        hotline_on_own_redis, own_redis, monkeypatch):
    hotline = hotline_on_own_redis
    own_redis.kill()
    hotline.sim.send_sms(CLINICIAN, HOTLINE_NUMBER, "hello, Redis is down")
    hotline.run(60)
    hotline.sim.send_sms(CLINICIAN, HOTLINE_NUMBER, "2")  # asks for a peer: a job to queue
    hotline.run(60)

    def fails(*args, **kwargs):
        raise RuntimeError("the handler breaks")

    monkeypatch.setattr("hotline.text.conversations.handle", fails)
    hotline.sim.send_sms(CLINICIAN, HOTLINE_NUMBER, "a photo of my shift", media=("image/png",))
    hotline.run(60)
    monkeypatch.undo()
    replies = [m["body"] for m in hotline.sim.messages if m["direction"] == "outbound-reply"]
    assert any("could not take your message" in body for body in replies)
    assert len(left_at_twilio(hotline.sim)) == len(hotline.sim.messages) == 6
    own_redis.start()  # back, and empty: no redaction job survived, none was ever queued
    audit_pass(hotline.app)
    assert left_at_twilio(hotline.sim) == []
    assert sorted(direction for direction, _ in filed(hotline.app).values()) == [
        "inbound"] * 3 + ["outbound"] * 3


def test_a_message_still_sending_is_tried_again_with_backoff_until_twilio_confirms(
        app, session, stand_in, twilio):
    message = stand_in.create_message(to=CLINICIAN, from_=HOTLINE_NUMBER, body="are you ok?")
    twilio.post("/twilio/sms/status", {"MessageSid": message["sid"],
                                       "MessageStatus": "queued"})
    for tries in range(1, 13):  # far past the 5 tries a job had: never given up
        before = utcnow()
        assert audit.audit()["redacted"] == 0
        after = utcnow()
        row = session.get(MessageSid, message["sid"])
        session.refresh(row)
        wait = message_records.backoff(tries)
        assert row.tries == tries and before + wait <= row.next_try_at <= after + wait
        assert audit.audit()["redacted"] == 0  # not due yet: Twilio is not asked
        session.execute(MessageSid.__table__.update().values(next_try_at=utcnow()
                                                             - timedelta(seconds=1)))
        session.commit()
    assert row.redacted_at is None and message["body"] == "are you ok?"
    assert [message_records.backoff(n) for n in (1, 2, 3, 7, 12)] == [
        timedelta(minutes=m) for m in (1, 2, 4, 60, 60)]
    with stand_in.lock:
        message["status"] = "sent"  # post-flight, though no delivery receipt ever comes
    assert audit.audit()["redacted"] == 1
    assert message["body"] == "" and session.get(MessageSid, message["sid"]).redacted_at
    refused = [path for method, path, form in stand_in.rest_log
               if method == "POST" and path.endswith(f"{message['sid']}.json")]
    assert len(refused) == 13
    assert not jobs.queue.count


def test_redaction_at_twilio_can_be_turned_off(app, session, stand_in, twilio):
    app.extensions["hotline.settings"] = settings().replace(REDACT_AT_TWILIO=False)
    message = stand_in.create_message(to=CLINICIAN, from_=HOTLINE_NUMBER, body="kept")
    twilio.post("/twilio/sms/status", {"MessageSid": message["sid"], "MessageStatus": "sent"})
    assert audit.audit()["redacted"] == 0 and message["body"] == "kept"
    assert session.get(MessageSid, message["sid"]) is not None  # log-days deletion still applies
