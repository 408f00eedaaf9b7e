"""The number's fallback URL: settings only, no database, no Redis.

Twilio requests it when the voice URL fails. It rings the backup numbers (each screened
with "press 1", so no voicemail takes the call), then the crisis line.
"""

from __future__ import annotations

from flask import Blueprint, Response, request
from twilio.twiml.voice_response import VoiceResponse

from hotline.alerts import signals
from hotline.core.extensions import settings
from hotline.core.urls import public_url
from hotline.telephony.signature import protect
from hotline.telephony.twiml import (after_crisis, crisis_dial, empty, respond, safe_view, say,
                                    to_caller)

bp = protect(Blueprint("fallback", __name__, url_prefix="/twilio/voice/fallback"))

@bp.post("")
@safe_view(to_caller)
def incoming() -> Response:
    """Twilio's fallback URL: ring the backup numbers, then the crisis line (the hit is
    counted for the coordinators' alert once the answer is sent, best effort)."""
    return signals.record_fallback_after(to_caller(), "voice", settings())


@bp.post("/screen")
@safe_view(empty)
def screen() -> Response:
    """Whisper to a backup number: press 1 to take the call (voicemail cannot)."""
    twiml = VoiceResponse()
    node = twiml.gather(input="dtmf", num_digits=1, timeout=settings().ACCEPT_SECONDS,
                        action=public_url("fallback.screen_result"), method="POST")
    say(node, "en", "fallback_screen")
    twiml.hangup()
    return respond(twiml)


@bp.post("/screen-result")
@safe_view(empty)
def screen_result() -> Response:
    """1 connects the backup supporter; anything else hangs up their leg."""
    twiml = VoiceResponse()
    if request.form.get("Digits") != "1":
        twiml.hangup()
    return respond(twiml)


@bp.post("/after-backup")
@safe_view(empty)
def after_backup() -> Response:
    """After the backup numbers: done if one answered, else the crisis line."""
    twiml = VoiceResponse()
    if request.form.get("DialCallStatus") == "completed":
        twiml.hangup()
    else:
        crisis_dial(twiml, "en", public_url("fallback.crisis_result"))
    return respond(twiml)


@bp.post("/crisis-result")
@safe_view(empty)
def crisis_result() -> Response:
    """After the crisis line on the fallback path."""
    return after_crisis("en")
