"""An offline Twilio stand-in: runs the app's webhooks and REST calls in virtual time.

``TwilioSim`` (engine) plays the calls, ``phones`` are the parties (scripted, or
interactive for a person at the web phone), ``transport`` is how the sim reaches the app,
``rest`` serves Twilio's REST API over the sim for the SDK, and ``RealtimeRunner`` drives
the sim with the wall clock.
"""

from hotline.simulator.engine import (
    API_VERSION, CallStatus, Direction, Fetch, Leg, TwilioSim,
)
from hotline.simulator.phones import (
    Answer, Busy, Fail, InteractivePhone, NoAnswer, Phone, Press, Reject, ScriptedPhone, Silence,
    Speak, Undecided,
)
from hotline.simulator.realtime import RealtimeRunner
from hotline.simulator.rest import make_rest_app, serve_in_thread
from hotline.simulator.transport import FlaskClientTransport, HttpTransport, Transport

__all__ = [
    "API_VERSION", "Answer", "Busy", "CallStatus", "Direction", "Fail", "Fetch",
    "FlaskClientTransport", "HttpTransport", "InteractivePhone", "Leg", "NoAnswer", "Phone",
    "Press", "RealtimeRunner", "Reject", "ScriptedPhone", "Silence", "Speak", "Transport",
    "TwilioSim", "Undecided", "make_rest_app", "serve_in_thread",
]
