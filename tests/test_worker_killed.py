"""A real forking RQ worker (``hotline worker``) killed with SIGKILL in the middle of a job,
then replaced: no offer, follow-up or callback is lost or done twice.

Each test stops Twilio's side of one REST request until the worker is dead, so the kill
lands mid-job for sure. What the dead worker leaves behind is what production would see:
its job abandoned in RQ's started registry, a contact lock that lapses after its TTL, an
offer reserved but never rung. Recovery is the hotline's own: RQ's registry cleanup (and
retries where a job has them) and the per-minute auditor, run here with time moved on.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone

import pytest
from rq.registry import StartedJobRegistry
from sqlalchemy import select

from hotline.callbacks import requests as callbacks
from hotline.followups import consent
from hotline.core.extensions import db, jobs, redis_conn, settings
from hotline.models import CallbackRequest, Contact, ContactState, FollowUp, Offer
from hotline.simulator import Answer, TwilioSim, serve_in_thread
from tests.conftest import ACCOUNT_SID, AUTH_TOKEN, HOTLINE_NUMBER, run_jobs
from tests.servers import descendants
from tests.test_followups import NEW_YORK, consented_contact, due_now, texts_to
from tests.scenario import Hotline
from workers import audit

pytestmark = pytest.mark.slow


class Stuck:
    """Twilio takes the first REST request of ``method`` to ``to``, then hangs (until
    released). A held call is then refused, so Twilio never places it: the worst case,
    with no status callback ever coming; a held message goes out (Twilio had it)."""

    def __init__(self, sim: TwilioSim, method: str, to: str) -> None:
        self.reached, self.release = threading.Event(), threading.Event()
        inner = getattr(sim, method)

        def held(**kwargs):
            if kwargs.get("to") != to or self.release.is_set():
                return inner(**kwargs)
            self.reached.set()
            self.release.wait(30)
            if method == "create_call":
                raise ConnectionResetError("the caller of this request is gone")
            return inner(**kwargs)

        setattr(sim, method, held)


def start_worker(app_settings, base_url: str) -> subprocess.Popen:
    """``hotline worker`` as its own process group (the worker and its work horse)."""
    env = dict(os.environ, HOTLINE_ENV="test", HOTLINE_SEND_FROM_HOUR="0",
               HOTLINE_SEND_UNTIL_HOUR="24", TWILIO_API_BASE_URL=base_url,
               **{name: str(app_settings[name]) for name in (
                   "DATABASE_URL", "REDIS_URL", "TWILIO_AUTH_TOKEN", "TWILIO_ACCOUNT_SID",
                   "HOTLINE_NUMBER", "PUBLIC_BASE_URL")})
    if "RING_AT_ONCE" in app_settings:  # the worker rings as the test's app does
        env["HOTLINE_RING_AT_ONCE"] = str(app_settings["RING_AT_ONCE"])
    return subprocess.Popen([sys.executable, "-m", "hotline.cli", "worker"], env=env,
                            start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def kill_when(worker: subprocess.Popen, reached: threading.Event, what: str) -> None:
    """SIGKILL the worker and its work horse at once, once the job is inside the REST call."""
    try:
        assert reached.wait(30), f"the worker never reached Twilio ({what})"
    finally:
        for pid in [worker.pid] + descendants(worker.pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        worker.wait(timeout=10)


def abandoned_jobs_cleaned_up() -> None:
    """RQ finds the dead worker's job (time moved past its timeout): retried or failed."""
    StartedJobRegistry(queue=jobs.queue).cleanup(timestamp=time.time() + 100_000)


def test_worker_killed_mid_send_sends_exactly_once(app, app_settings, session, fresh_app):
    sim = TwilioSim(transport=None, account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN,
                    voice_url="https://hotline.example.org/twilio/voice",
                    numbers=(HOTLINE_NUMBER,), epoch=datetime.now(timezone.utc))
    stuck = Stuck(sim, "create_message", NEW_YORK)
    base_url, server = serve_in_thread(sim)
    app.extensions["hotline.settings"] = settings().replace(
        TWILIO_API_BASE_URL=base_url, SEND_FROM_HOUR=0, SEND_UNTIL_HOUR=24)
    contact = consented_contact(session)
    consent.agree(session, contact)
    first, second = session.scalars(select(FollowUp).order_by(FollowUp.sequence)).all()
    second.state = "canceled"
    session.commit()
    due_now(session)
    try:
        kill_when(start_worker(app_settings, base_url), stuck.reached, "follow-up")
    finally:
        stuck.release.set()
    db.session.expire_all()
    assert db.session.get(FollowUp, first.id).state == "sending"  # the idempotency record
    abandoned_jobs_cleaned_up()  # the send job has retries: it is queued again
    due_now(session)
    run_jobs(fresh_app)
    db.session.expire_all()
    followup = db.session.get(FollowUp, first.id)
    assert followup.state == "sent" and followup.sealed_number is None
    assert len(texts_to(sim, NEW_YORK)) == 1
    server.shutdown()


@pytest.fixture
def world(app_settings, request):
    # Phone by phone: the kill lands while the one phone of the first step is being rung.
    app_settings.update(RING_AT_ONCE=1)
    hotline = Hotline(request.getfixturevalue("fresh_app"))
    yield hotline
    hotline.server.shutdown()


def recover_offer_lost_with_its_worker(world, contact_id: int) -> None:
    """What production does after the kill, with time moved on: the dead worker's job is
    cleaned up, its contact lock lapses (60 s TTL), and the auditor (every minute) frees
    the offer that never rang and routes the contact again."""
    abandoned_jobs_cleaned_up()
    redis_conn.client.delete(f"hotline:lock:contact:{contact_id}")
    with world.app.app_context():
        [offer] = db.session.scalars(select(Offer).where(Offer.contact_id == contact_id))
        assert offer.state == "ringing" and offer.call_sid is None  # reserved, never rung
        offer.created_at -= timedelta(minutes=10)
        db.session.commit()
        assert audit.audit()["offers"] == 1


def on_hold(world) -> Contact:
    """Play the call until the caller has chosen "talk to a peer" and waits on hold."""
    def waiting() -> bool:
        return [c.state for c in world.contacts()] == ["waiting"]
    assert world.sim.run(until=waiting, max_seconds=120), world.contacts()
    [contact] = world.contacts()
    return contact


def test_worker_killed_while_ringing_a_supporter_the_caller_still_gets_one(world, app_settings):
    ada = world.supporter("Ada", hangup_after_bridge=30)
    bo = world.supporter("Bo", hangup_after_bridge=30)
    clinician = world.clinician(gather=["1"], hangup_after_bridge=None)
    stuck = Stuck(world.sim, "create_call", ada.number)
    world.sim.on_idle.clear()  # jobs go to the real worker, not to this process
    world.call(clinician)
    contact = on_hold(world)
    assert contact.state == "waiting" and jobs.queue.count == 1
    try:
        kill_when(start_worker(app_settings, world.base_url), stuck.reached, "offer")
    finally:
        stuck.release.set()
    recover_offer_lost_with_its_worker(world, contact.id)
    world.sim.on_idle.append(lambda: run_jobs(world.app))  # a new worker
    world.run()
    [contact] = world.contacts()
    assert contact.outcome == "connected" and contact.state == "ended"
    assert world.offers() == [("Ada", "no_answer", 1), ("Bo", "accepted", 1)]
    assert world.legs_to(ada) == [] and len(world.legs_to(bo)) == 1
    assert world.busy() == []


def test_worker_killed_during_a_callback_try_the_clinician_is_called_back_once(
        world, app_settings):
    ada = world.supporter("Ada", hangup_after_bridge=30)
    bo = world.supporter("Bo", hangup_after_bridge=30)
    clinician = world.clinician("+16175550191", ring=Answer(3), hangup_after_bridge=None)
    stuck = Stuck(world.sim, "create_call", ada.number)
    world.sim.on_idle.clear()
    with world.app.app_context():
        original = Contact(channel="voice", caller_key="k" * 64,
                           state=ContactState.OPTIONS.value)
        db.session.add(original)
        db.session.commit()
        callbacks.request(db.session, original, clinician.number)
        db.session.commit()
    try:  # start_try, then the try's routing job, which dies ringing Ada
        kill_when(start_worker(app_settings, world.base_url), stuck.reached, "callback")
    finally:
        stuck.release.set()
    with world.app.app_context():
        [callback] = db.session.scalars(select(CallbackRequest))
        assert callback.state == "calling"
        attempt_id = callback.attempt_contact_id
    recover_offer_lost_with_its_worker(world, attempt_id)
    world.sim.on_idle.append(lambda: run_jobs(world.app))
    run_jobs(world.app)  # nobody is on a call yet: the new worker starts the routing
    world.run()
    with world.app.app_context():
        [callback] = db.session.scalars(select(CallbackRequest))
        assert callback.state == "done" and callback.sealed_number is None
        tries = db.session.scalars(select(Contact).where(Contact.mode == "callback")).all()
        assert [(t.id, t.outcome) for t in tries] == [(attempt_id, "connected")]
    assert world.offers() == [("Ada", "no_answer", 1), ("Bo", "accepted", 1)]
    assert world.legs_to(ada) == [] and len(world.legs_to(bo)) == 1
    assert len([leg for leg in world.legs_to(clinician)
                if leg.direction == "outbound-api"]) == 1
    assert world.busy() == []
