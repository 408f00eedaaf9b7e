"""The ceiling of the stack: a bare Flask app answering every webhook route with constant TwiML.

``benchmarks/webhooks.py`` runs it under gunicorn with exactly the hotline's settings, and
drives it with the same load generator, so the hotline's throughput can be read as a share
of what Flask + gunicorn + the generator can do at all on this machine. The routes have the
hotline's URL patterns (so routing costs the same); the answers are built once with
twilio's TwiML classes and contain what the generator follows (a Gather action, an Enqueue
action and waitUrl, a Message), so it plays the same sequences against both. No signature
check, no database, no Redis: that is the point.

Run: ``gunicorn -c config/gunicorn.conf.py 'benchmarks.ceiling:create_app()'`` with
PUBLIC_BASE_URL set to the base the generator signs against.
"""

from __future__ import annotations

import os

from flask import Flask, Response
from twilio.twiml.messaging_response import MessagingResponse
from twilio.twiml.voice_response import VoiceResponse

VOICE_ROUTES = ("/twilio/voice", "/twilio/voice/<int:contact_id>/menu",
                "/twilio/voice/<int:contact_id>/wait", "/twilio/voice/<int:contact_id>/queue-exit",
                "/twilio/voice/status")
SMS_ROUTES = ("/twilio/sms",)


def voice_twiml(base: str) -> str:
    """A menu and a queue, the size of the hotline's answers, for contact 1."""
    twiml = VoiceResponse()
    twiml.say("Thank you. I am finding a peer supporter for you now. Please stay on the line.",
              voice="Polly.Joanna", language="en-US")
    with twiml.gather(input="dtmf speech", num_digits=1, timeout=6, speech_timeout="auto",
                      action=f"{base}/twilio/voice/1/menu?turn=0", method="POST",
                      language="en-US", hints="talk, peer, someone, person, now, help") as g:
        g.say("To talk with a peer supporter now, press 1 or say talk.",
              voice="Polly.Joanna", language="en-US")
    twiml.enqueue("hotline-contact-1", action=f"{base}/twilio/voice/1/queue-exit",
                  method="POST", wait_url=f"{base}/twilio/voice/1/wait", wait_url_method="POST")
    return str(twiml)


def sms_twiml() -> str:
    twiml = MessagingResponse()
    twiml.message("Clinician Peer Support: confidential support from a fellow clinician. "
                  "Reply 1 for a call from a peer now, 2 to text with a peer.")
    return str(twiml)


def create_app() -> Flask:
    """The bare app: one view per hotline route pattern, each returning its constant."""
    base = os.environ.get("PUBLIC_BASE_URL", "http://127.0.0.1:5000").rstrip("/")
    voice, sms = voice_twiml(base), sms_twiml()
    app = Flask(__name__)

    def answer_voice(**_ids) -> Response:
        return Response(voice, mimetype="text/xml")

    def answer_sms() -> Response:
        return Response(sms, mimetype="text/xml")

    for n, rule in enumerate(VOICE_ROUTES):
        app.add_url_rule(rule, f"voice{n}", answer_voice, methods=["POST"])
    for n, rule in enumerate(SMS_ROUTES):
        app.add_url_rule(rule, f"sms{n}", answer_sms, methods=["POST"])
    app.add_url_rule("/healthz", "healthz", lambda: Response("ok\n", mimetype="text/plain"))
    return app
