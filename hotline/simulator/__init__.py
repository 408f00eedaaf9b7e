"""An offline Twilio stand-in: runs the app's webhooks and REST calls in virtual time.

``TwilioSim`` (engine) plays the calls, ``phones`` are the parties, ``transport`` is how the
sim reaches the app, and ``rest`` serves Twilio's REST API over the sim for the SDK.
"""

from hotline.simulator.engine import (
    API_VERSION, CallStatus, Direction, Fetch, Leg, TwilioSim,
)
from hotline.simulator.phones import (
    Answer, Busy, Fail, NoAnswer, Phone, Press, Reject, ScriptedPhone, Silence, Speak,
)
from hotline.simulator.rest import make_rest_app, serve_in_thread
from hotline.simulator.transport import FlaskClientTransport, HttpTransport, Transport

__all__ = [
    "API_VERSION", "Answer", "Busy", "CallStatus", "Direction", "Fail", "Fetch",
    "FlaskClientTransport", "HttpTransport", "Leg", "NoAnswer", "Phone", "Press", "Reject",
    "ScriptedPhone", "Silence", "Speak", "Transport", "TwilioSim", "make_rest_app",
    "serve_in_thread",
]
