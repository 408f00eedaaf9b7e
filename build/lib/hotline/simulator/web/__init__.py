"""The stand-in inside the app (simulator mode only): Twilio's REST API, the web phone.

``attach(app, settings)`` runs a TwilioSim in real time in this process, serves its REST
API under ``/2010-04-01/`` on the app's own port (so TWILIO_API_BASE_URL is the app's
address), gives every demo clinician, supporter and backup number an interactive phone,
and registers the ``/phone`` page and its JSON API. Off unless HOTLINE_SIMULATOR is set;
settings refuse it in production. One web process only: the sim's state is in memory.
"""

from __future__ import annotations

from flask import Flask

from hotline.models import utcnow
from hotline.core.settings import Settings
from hotline.simulator.web.phone import bp as phone_page
from hotline.simulator.web.standin import start as start_standin


def attach(app: Flask, settings: Settings) -> None:
    """Start the stand-in for ``app`` and register the web phone."""
    app.extensions["hotline.simulator.started"] = utcnow()
    sim = start_standin(app, settings)
    app.extensions["hotline.simulator"] = sim
    app.register_blueprint(phone_page)
