"""Joining a team debrief by phone (hotline.debriefs): the code, then the conference.

The caller chose "join a meeting" (or pressed ``*`` at the greeting) on the menu. They
have ``meetings.TRIES`` tries at the 6-digit code; then the usual menu. An open code puts
them in the debrief's ``<Conference>`` (twilio's TwiML builder): never recorded, no beep
or announcement when anyone joins or leaves, a spoken hold loop (``hold``) until a
facilitator is there. A facilitator (their roster number) starts it on entering; with one
facilitator their leaving ends it for everyone (endConferenceOnExit); with two, neither
ends it on exit and the last one out ends it by REST (``meetings.facilitator_left``).
The time limit is the debrief's jobs' (a warning a minute before, then the end); each
leg's ``timeLimit`` backs them up. The call stops being a hotline contact on joining.
"""

from __future__ import annotations

from flask import Blueprint, Response, abort, request
from twilio.twiml.voice_response import Dial, VoiceResponse

from hotline.core import phones
from hotline.core.extensions import db
from hotline.core.urls import public_url
from hotline.debriefs import meetings
from hotline.lifecycle import contacts
from hotline.models import Contact, Debrief, utcnow
from hotline.telephony.idempotency import once
from hotline.telephony.signature import protect
from hotline.telephony.twiml import (MENU_TIMEOUT_SECONDS, empty, flows, gather, respond,
                                     safe_view, say, to_caller)

bp = once(protect(Blueprint("debrief", __name__, url_prefix="/twilio/voice/debrief")))

#: Seconds to key in the 6 digits.
CODE_TIMEOUT_SECONDS = 10
#: Seconds of quiet between the hold prompts (the wait document loops).
HOLD_PAUSE_SECONDS = 20
#: Each leg's own time limit runs this long past the end (the end job ends it first).
TIME_LIMIT_GRACE_SECONDS = 120


def ask_code(contact: Contact, tries: int, twiml: VoiceResponse | None = None) -> VoiceResponse:
    """Ask for the meeting code (silence posts the same URL without Digits)."""
    twiml = twiml if twiml is not None else VoiceResponse()
    action = public_url("debrief.code", contact_id=contact.id, tries=tries)
    node = twiml.gather(input="dtmf", num_digits=meetings.CODE_DIGITS,
                        timeout=CODE_TIMEOUT_SECONDS, action=action, method="POST")
    say(node, contact.language, "debrief_code")
    twiml.redirect(action, method="POST")
    return twiml


def _menu(contact: Contact, twiml: VoiceResponse) -> Response:
    """Back to the usual menu (as hotline.voice.views asks it)."""
    action = public_url("voice.menu", contact_id=contact.id, turn=0)
    node = gather(twiml, "menu", contact.language, action, timeout=MENU_TIMEOUT_SECONDS)
    say(node, contact.language, "menu")
    twiml.redirect(action, method="POST")
    return respond(twiml)


@bp.post("/<int:contact_id>/code")
@safe_view(to_caller)
def code(contact_id: int) -> Response:
    """The code keyed in: into the conference, or try again, or back to the menu."""
    contact = db.session.get(Contact, contact_id)
    if contact is None:
        abort(404)
    tries = request.args.get("tries", default=0, type=int) + 1
    digits = request.form.get("Digits", "").strip()
    twiml = VoiceResponse()
    if not digits:
        say(twiml, contact.language, "no_input")
    else:
        check = meetings.check_code(db.session, digits, contact.caller_key)
        if check.kind == "open":
            return _join(contact, check.debrief)
        if check.kind == "limited":
            say(twiml, contact.language, "debrief_limited")
            return _menu(contact, twiml)
        say(twiml, contact.language, "debrief_early" if check.kind == "early"
            else "debrief_wrong")
    if tries >= meetings.TRIES:
        return _menu(contact, twiml)
    return respond(ask_code(contact, tries, twiml))


def _join(contact: Contact, debrief: Debrief) -> Response:
    number = phones.try_normalize(request.form.get("From"))
    facilitator = meetings.is_facilitator(db.session, debrief, number)
    language = contact.language
    remaining = int((meetings.ends_at(debrief) - utcnow()).total_seconds())
    two = debrief.second_facilitator_id is not None
    meetings.joined(db.session, debrief, facilitator)
    contacts.discard(db.session, contact)
    twiml = VoiceResponse()
    say(twiml, language, "debrief_facilitator" if facilitator else "debrief_joining")
    dial = Dial(action=public_url("debrief.left", debrief_id=debrief.id, lang=language,
                                  facilitator=int(facilitator)),
                method="POST", time_limit=remaining + TIME_LIMIT_GRACE_SECONDS)
    dial.conference(meetings.room(debrief.id), beep=False, record="do-not-record",
                    start_conference_on_enter=facilitator,
                    end_conference_on_exit=facilitator and not two,
                    wait_url=public_url("debrief.hold", lang=language), wait_method="POST")
    twiml.append(dial)
    return respond(twiml)


@bp.post("/hold")
@safe_view(empty)
def hold() -> Response:
    """The conference's wait URL until a facilitator is there (Twilio loops it)."""
    twiml = VoiceResponse()
    say(twiml, request.args.get("lang", "en"), "debrief_hold")
    twiml.pause(length=HOLD_PAUSE_SECONDS)
    return respond(twiml)


@bp.post("/warning")
@safe_view(empty)
def warning() -> Response:
    """Announced to everyone a minute before the time is up, in every offered language."""
    twiml = VoiceResponse()
    for language in flows().languages:
        say(twiml, language, "debrief_warning")
    return respond(twiml)


@bp.post("/<int:debrief_id>/left")
@safe_view(empty)
def left(debrief_id: int) -> Response:
    """The caller's conference is over for them (it ended, or time is up)."""
    if request.args.get("facilitator") == "1":
        meetings.facilitator_left(db.session, debrief_id)
    twiml = VoiceResponse()
    say(twiml, request.args.get("lang", "en"), "debrief_ended")
    twiml.hangup()
    return respond(twiml)
