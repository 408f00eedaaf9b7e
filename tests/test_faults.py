"""Faults on real servers: Redis stops and comes back while clinicians call and text."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from hotline.core.extensions import db, jobs
from hotline.models import Contact, Offer
from tests.conftest import BACKUP_NUMBERS, TwilioClient, run_jobs, twiml


def test_redis_down_then_back_loses_nothing(app_on_own_redis, own_redis, make_supporter,
                                            monkeypatch):
    app = app_on_own_redis
    client = TwilioClient(app.test_client())
    with app.app_context():
        make_supporter("Ada")
    own_redis.kill()
    # a call still reaches a human: the backup numbers, then the crisis line
    call = twiml(client.post("/twilio/voice", {"CallSid": "CA" + "1" * 32,
                                               "From": "+16175550123"}))
    with app.app_context():
        contact_id = db.session.scalars(select(Contact.id)).one()
    doc = twiml(client.post(f"/twilio/voice/{contact_id}/menu", {"Digits": "1"}))
    assert [n.text for n in doc.findall("Dial/Number")] == BACKUP_NUMBERS.split(",")
    assert call.find("Gather") is not None
    # a text still gets a reply, and its request is kept
    client.post("/twilio/sms", {"MessageSid": "SM" + "1" * 32, "From": "+16175550124",
                                "Body": "hello"})
    reply = client.post("/twilio/sms", {"MessageSid": "SM" + "2" * 32, "From": "+16175550124",
                                        "Body": "2"})
    assert reply.status_code == 200 and b"<Message" in reply.data
    own_redis.start()  # Redis is back, empty
    with app.app_context():
        texter = db.session.scalars(select(Contact).where(Contact.channel == "sms")).one()
        assert texter.state == "waiting"
        texter.queued_at -= timedelta(minutes=5)
        db.session.commit()
        from workers import audit
        monkeypatch.setattr("hotline.escalation.runner._text_offer",
                            lambda offer, ring: True)  # no Twilio here
        assert audit.audit()["rerouted"] == 1
    run_jobs(app)
    with app.app_context():
        [offer] = db.session.scalars(select(Offer)).all()
        assert offer.contact_id == texter.id and offer.supporter.name == "Ada"
        assert jobs.queue.connection.ping()
