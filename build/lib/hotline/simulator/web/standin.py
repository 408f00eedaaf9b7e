"""Wiring the simulator into the running app: phones, real-time clock, REST on our port."""

from __future__ import annotations

import atexit
import os
import threading
from datetime import datetime, timezone
from typing import Any, Callable

from flask import Flask
from sqlalchemy import select

from hotline.core.extensions import db
from hotline.models import Supporter
from hotline.core.settings import Settings
from hotline.simulator import HttpTransport, TwilioSim, make_rest_app
from hotline.simulator.phones import Answer, InteractivePhone, ScriptedPhone
from hotline.simulator.realtime import RealtimeRunner
from hotline.core.urls import public_url

#: Fictional clinicians the visitor can call from (555-01xx numbers are reserved for fiction).
DEMO_CLINICIANS = (("+16175550142", "Dr. Rivera (resident)"),
                   ("+16175550143", "Sam Okafor, RN"))
#: Area codes of the extra fictional clinicians, 100 numbers each (+1 NPA 555 03xx).
EXTRA_AREA_CODES = ("617", "212", "312", "415", "206", "303", "512", "404", "602", "919")


def _extra_clinicians(count: int) -> tuple[tuple[str, str], ...]:
    """``HOTLINE_DEMO_CLINICIANS=N`` (soak and surge benchmarks): N more fictional
    clinicians, +1617555 03xx first (the soak's), then the same in other area codes."""
    count = min(count, 100 * len(EXTRA_AREA_CODES))
    return tuple((f"+1{EXTRA_AREA_CODES[i // 100]}55503{i % 100:02d}",
                  f"Clinician {i + 1} (benchmark)") for i in range(count))


DEMO_CLINICIANS += _extra_clinicians(int(os.environ.get("HOTLINE_DEMO_CLINICIANS") or 0))
#: Webhooks the stand-in has in flight at once: well above what one call ever needs, and
#: half the threads ``make run`` gives the one web process that serves both the webhooks
#: and the stand-in's REST API there.
WEBHOOK_THREADS = 8
#: Twilio's REST paths start with this; the dispatcher sends them to the stand-in.
REST_PREFIX = "/2010-04-01/"


def start(app: Flask, settings: Settings) -> TwilioSim:
    """Create the sim, its phones and its clock; route REST paths to it."""
    with app.app_context():
        sim = TwilioSim(
            HttpTransport(timeout=20), account_sid=settings.TWILIO_ACCOUNT_SID,
            auth_token=settings.TWILIO_AUTH_TOKEN,
            voice_url=public_url("voice.incoming"),
            status_callback_url=public_url("voice.call_status"),
            fallback_url=public_url("fallback.incoming"),
            sms_url=_optional_url("sms.incoming"), numbers=(settings.HOTLINE_NUMBER,),
            epoch=datetime.now(timezone.utc))
    # Twilio calls webhooks side by side; one call's slow webhook never holds up another's.
    sim.use_webhook_pool(WEBHOOK_THREADS)
    for number, label in DEMO_CLINICIANS:
        sim.add_phone(InteractivePhone(number, label=label))
    for number in settings.BACKUP_NUMBERS:
        sim.add_phone(InteractivePhone(number, label="Backup line"))
    crisis = ScriptedPhone(settings.CRISIS_LINE_NUMBER, ring=Answer(2), gather=(),
                           hangup_after_bridge=None)
    crisis.label = "Crisis line (simulated)"
    sim.add_phone(crisis)
    runner = RealtimeRunner(sim)
    runner.start()
    atexit.register(runner.stop)
    app.extensions["hotline.simulator.runner"] = runner
    # The supporters' phones come from the roster, read at the first request and not here:
    # nothing may touch the database while the app is created (`hotline db upgrade` creates
    # it on a database that has no tables yet).
    app.wsgi_app = RestDispatcher(app.wsgi_app, make_rest_app(sim),
                                  first=lambda: _sync_in_context(app, sim))
    return sim


def _sync_in_context(app: Flask, sim: TwilioSim) -> None:
    with app.app_context():
        sync_supporters(sim)


def _optional_url(endpoint: str) -> str | None:
    try:
        return public_url(endpoint)
    except Exception:  # the text path is not registered in this build
        return None


def sync_supporters(sim: TwilioSim) -> None:
    """Give every supporter on the roster an interactive phone (new ones included)."""
    for supporter in db.session.scalars(select(Supporter).where(Supporter.active.is_(True))):
        if supporter.phone not in sim.phones:
            sim.add_phone(InteractivePhone(supporter.phone, label=supporter.name))


class RestDispatcher:
    """WSGI: Twilio REST paths go to the stand-in, everything else to the app."""

    def __init__(self, app: Callable, rest: Any, first: Callable[[], None] | None = None) -> None:
        self.app, self.rest = app, rest
        self._first, self._first_lock = first, threading.Lock()

    def __call__(self, environ: dict, start_response: Callable):
        if self._first is not None:  # once, before any request (REST or page) is served
            with self._first_lock:
                if self._first is not None:
                    self._first()
                    self._first = None  # only once it worked: a failure is tried again
        target = self.rest if environ.get("PATH_INFO", "").startswith(REST_PREFIX) else self.app
        return target(environ, start_response)
