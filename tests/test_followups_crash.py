"""A real forking RQ worker killed in the middle of sending a follow-up: it goes out once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone

from rq.registry import StartedJobRegistry
from sqlalchemy import select

from hotline import consent
from hotline.extensions import db, jobs, settings
from hotline.models import FollowUp
from hotline.simulator import TwilioSim, serve_in_thread
from tests.conftest import ACCOUNT_SID, AUTH_TOKEN, HOTLINE_NUMBER, run_jobs
from tests.test_followups import NEW_YORK, consented_contact, due_now, texts_to


class StuckSim(TwilioSim):
    """Twilio takes the message, then never answers (until released)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.release = threading.Event()

    def create_message(self, **kwargs):
        message = super().create_message(**kwargs)
        if kwargs.get("to") == NEW_YORK and not self.release.is_set():
            self.release.wait(30)
        return message


def test_worker_killed_mid_send_sends_exactly_once(app, app_settings, session, fresh_app):
    sim = StuckSim(transport=None, account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN,
                   voice_url="https://hotline.example.org/twilio/voice",
                   numbers=(HOTLINE_NUMBER,), epoch=datetime.now(timezone.utc))
    base_url, server = serve_in_thread(sim)
    app.extensions["hotline.settings"] = settings().replace(
        TWILIO_API_BASE_URL=base_url, SEND_FROM_HOUR=0, SEND_UNTIL_HOUR=24)
    contact = consented_contact(session)
    consent.agree(session, contact)
    first, second = session.scalars(select(FollowUp).order_by(FollowUp.sequence)).all()
    second.state = "canceled"
    session.commit()
    due_now(session)
    env = dict(os.environ, HOTLINE_ENV="test", HOTLINE_SEND_FROM_HOUR="0",
               HOTLINE_SEND_UNTIL_HOUR="24", TWILIO_API_BASE_URL=base_url,
               **{name: str(app_settings[key]) for key, name in (
                   ("DATABASE_URL", "DATABASE_URL"), ("REDIS_URL", "REDIS_URL"),
                   ("TWILIO_AUTH_TOKEN", "TWILIO_AUTH_TOKEN"),
                   ("TWILIO_ACCOUNT_SID", "TWILIO_ACCOUNT_SID"),
                   ("HOTLINE_NUMBER", "HOTLINE_NUMBER"),
                   ("PUBLIC_BASE_URL", "PUBLIC_BASE_URL"))})
    worker = subprocess.Popen([sys.executable, "-m", "hotline.cli", "worker"], env=env,
                              start_new_session=True, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while not texts_to(sim, NEW_YORK) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert texts_to(sim, NEW_YORK), "the worker never reached Twilio"
        os.killpg(worker.pid, signal.SIGKILL)  # the worker and its work horse, mid-send
        worker.wait(timeout=10)
    finally:
        sim.release.set()
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
    db.session.expire_all()
    assert db.session.get(FollowUp, first.id).state == "sending"  # the idempotency record
    # RQ finds the abandoned job (time-travelled past its timeout) and retries it
    StartedJobRegistry(queue=jobs.queue).cleanup(timestamp=time.time() + 100_000)
    due_now(session)
    run_jobs(fresh_app)
    db.session.expire_all()
    followup = db.session.get(FollowUp, first.id)
    assert followup.state == "sent" and followup.sealed_number is None
    assert len(texts_to(sim, NEW_YORK)) == 1
    server.shutdown()
