"""The floor of a correct webhook: the least any Twilio webhook of the hotline must do.

The ceiling (``benchmarks/ceiling.py``) answers constant TwiML and does nothing else; no
correct webhook can come near it. This app does, per request, only what every hotline
webhook cannot skip, and answers the ceiling's constant TwiML:

* check ``X-Twilio-Signature`` with twilio's ``RequestValidator`` (one HMAC-SHA1);
* look up and keep the ``I-Twilio-Idempotency-Token`` in Redis (GET and SET NX EX in one
  round trip), so a retried delivery has one effect;
* write one row to the database and commit (nothing is lost: a contact, its event or
  its step is on disk before Twilio hears the answer), through SQLAlchemy Core.

No ORM, no state machine, no enqueue, no keyed hash, no TwiML built per request. Its
throughput is an upper bound for the hotline's; ``benchmarks/webhooks.py`` runs it under
the same gunicorn settings and load generator as the two others.

Run: ``gunicorn -c config/gunicorn.conf.py 'benchmarks.floor:create_app()'`` with
PUBLIC_BASE_URL, TWILIO_AUTH_TOKEN, DATABASE_URL and REDIS_URL set; ``create_table``
first.
"""

from __future__ import annotations

import hmac
import os
from datetime import UTC, datetime

import redis
from flask import Flask, Response, abort, request
from sqlalchemy import (Column, DateTime, Integer, MetaData, String, Table, create_engine,
                        insert)
from twilio.request_validator import RequestValidator

from benchmarks.ceiling import SMS_ROUTES, VOICE_ROUTES, sms_twiml, voice_twiml
from hotline.telephony.signature import _Form

metadata = MetaData()
steps = Table("bench_floor_steps", metadata,
              Column("id", Integer, primary_key=True),
              Column("route", String(80), nullable=False),
              Column("sid", String(64)),
              Column("at", DateTime(timezone=True), nullable=False))
KEEP_SECONDS = 600


def create_table(db_url: str) -> None:
    """The floor's one table (before gunicorn starts, so its workers do not race)."""
    engine = create_engine(db_url)
    metadata.create_all(engine)
    engine.dispose()


def create_app() -> Flask:
    base = os.environ["PUBLIC_BASE_URL"].rstrip("/")
    validator = RequestValidator(os.environ["TWILIO_AUTH_TOKEN"])
    engine = create_engine(os.environ["DATABASE_URL"], pool_size=8, max_overflow=8)
    store = redis.Redis.from_url(os.environ["REDIS_URL"])
    voice, sms = voice_twiml(base), sms_twiml()
    app = Flask(__name__)

    def answer(body: str, route: str) -> Response:
        url = base + request.full_path.rstrip("?")
        # one HMAC over the URL as configured, as the hotline's own check (validate()
        # always computes two: with and without the port)
        signed = validator.compute_signature(url, _Form(request.form)).encode()
        if not hmac.compare_digest(signed, request.headers.get("X-Twilio-Signature",
                                                                "").encode()):
            abort(403)
        key = "floor:idem:" + request.headers.get("I-Twilio-Idempotency-Token", "")
        # GET and SET NX in one round trip (a pipeline): generous to the floor
        kept, _ = store.pipeline(transaction=False).get(key).set(
            key, body, ex=KEEP_SECONDS, nx=True).execute()
        if kept is not None:
            return Response(kept, mimetype="text/xml")
        with engine.begin() as conn:
            conn.execute(insert(steps).values(
                route=route, sid=request.form.get("CallSid") or request.form.get("MessageSid"),
                at=datetime.now(UTC)))
        return Response(body, mimetype="text/xml")

    for n, rule in enumerate(VOICE_ROUTES):
        app.add_url_rule(rule, f"voice{n}", lambda _r=rule, **_ids: answer(voice, _r),
                         methods=["POST"])
    for n, rule in enumerate(SMS_ROUTES):
        app.add_url_rule(rule, f"sms{n}", lambda _r=rule: answer(sms, _r), methods=["POST"])
    app.add_url_rule("/healthz", "healthz", lambda: Response("ok\n", mimetype="text/plain"))
    return app
