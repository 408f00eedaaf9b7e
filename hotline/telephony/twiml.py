"""TwiML building blocks shared by the webhooks: built only with twilio's TwiML classes."""

from __future__ import annotations

import functools
import logging
from typing import Callable

from flask import Response, current_app
from twilio.twiml.voice_response import Dial, Gather, VoiceResponse

from hotline.core.extensions import settings
from hotline.core.flows import Flows
from hotline.core.urls import public_url
from flask import request
from hotline.core.extensions import db

log = logging.getLogger(__name__)

MIMETYPE = "text/xml"
#: Seconds a menu waits for a key or speech before falling through to "no input".
MENU_TIMEOUT_SECONDS = 6


def flows() -> Flows:
    """The validated IVR flows of the current app."""
    return current_app.extensions["hotline.flows"]


def respond(twiml: VoiceResponse) -> Response:
    """An HTTP response carrying ``twiml``."""
    return Response(str(twiml), mimetype=MIMETYPE)


def say(node: VoiceResponse | Gather, lang: str, key: str, **values) -> None:
    """Speak prompt ``key`` in ``lang`` with that language's voice."""
    speak(node, lang, flows().prompt(lang, key, **values))


def speak(node: VoiceResponse | Gather, lang: str, text: str) -> None:
    """Speak ``text`` in ``lang``'s voice."""
    language = flows().language(lang)
    node.say(text, voice=language.voice, language=language.say)


#: Two contact ids no document says otherwise: ``kept_but_for_id``'s proof that only the
#: id varies.
STAND_INS = (918273645, 564738291)


def kept_but_for_id(name: str, key: tuple, contact_id: int,
                    build: Callable[[int], VoiceResponse]) -> Response:
    """``respond(build(contact_id))`` for a document that is the same for every contact
    but for its id (in its URLs, its queue's name), such as the greeting and the words
    and ``<Enqueue>`` of a caller put in the queue: building it with twilio's classes
    costs as much as the webhook's write. It is built by ``build`` once per ``key`` (and
    base URL) for a stand-in id and kept split at that id; each answer puts its own id
    in. It is kept only if two different stand-ins split it into the same parts, i.e.
    nothing else in it changes with the id; otherwise it is built per answer, as ever."""
    kept = current_app.extensions.setdefault(f"hotline.kept.{name}", {})
    key = (*key, settings().PUBLIC_BASE_URL)
    if key not in kept:
        built = [str(build(n)).split(str(n)) for n in STAND_INS]
        kept[key] = built[0] if built[0] == built[1] else None
    parts = kept[key]
    if parts is None:
        return respond(build(contact_id))
    return Response(str(contact_id).join(parts), mimetype=MIMETYPE)


#: Documents ``said_then_paused`` keeps: one per app, language, words and pause (the
#: words come from the flows, so there are a few dozen); bounded all the same.
_SAID_MAX = 256


def said_then_paused(lang: str, text: str, seconds: int) -> Response:
    """``text`` said in ``lang``'s voice, then a pause of ``seconds``: the queue's usual
    answer to its wait poll, the most frequent webhook. It is the same document for
    every caller who hears those words, so it is built (``speak``, twilio's classes) once
    per app, language, words and pause, and kept."""
    kept = current_app.extensions.setdefault("hotline.said_then_paused", {})
    key = (lang, text, seconds)
    body = kept.get(key)
    if body is None:
        twiml = VoiceResponse()
        speak(twiml, lang, text)
        twiml.pause(length=seconds)
        if len(kept) >= _SAID_MAX:
            kept.clear()
        body = kept[key] = str(twiml)
    return Response(body, mimetype=MIMETYPE)


def gather(twiml: VoiceResponse, menu: str, lang: str, action: str,
           timeout: int = MENU_TIMEOUT_SECONDS) -> Gather:
    """A one-key-or-speech ``<Gather>`` for ``menu``, posting to ``action``."""
    language = flows().language(lang)
    return twiml.gather(input="dtmf speech", num_digits=1, timeout=timeout,
                        speech_timeout="auto", action=action, method="POST",
                        language=language.speech, hints=flows().hints(menu, lang))


def fallback_twiml(lang: str = "en") -> VoiceResponse:
    """Ring the backup numbers, then the crisis line: needs no database and no Redis."""
    cfg = settings()
    twiml = VoiceResponse()
    say(twiml, lang, "technical")
    if cfg.BACKUP_NUMBERS:
        dial = Dial(action=public_url("fallback.after_backup"), method="POST",
                    timeout=cfg.RING_SECONDS + cfg.ACCEPT_SECONDS,
                    caller_id=cfg.HOTLINE_NUMBER)
        for number in cfg.BACKUP_NUMBERS:
            dial.number(number, url=public_url("fallback.screen"), method="POST")
        twiml.append(dial)
    else:
        crisis_dial(twiml, lang, public_url("fallback.crisis_result"))
    return twiml


def crisis_dial(twiml: VoiceResponse, lang: str, action: str) -> None:
    """Transfer to the crisis line; ``action`` hears whether it connected.

    No callerId: the crisis line sees the caller's own number, so it can call back if
    the line drops (the masking promise is about peer supporters, not crisis services).
    """
    say(twiml, lang, "crisis_transfer")
    twiml.dial(settings().CRISIS_LINE_NUMBER, action=action, method="POST")


def after_crisis(lang: str) -> Response:
    """After a crisis-line transfer: if it did not connect, say how to reach it directly."""
    twiml = VoiceResponse()
    if request.form.get("DialCallStatus") != "completed":
        say(twiml, lang, "crisis_failed", crisis=" ".join(settings().CRISIS_LINE_NUMBER))
    twiml.hangup()
    return respond(twiml)


def safe_view(fallback: Callable[[], Response]) -> Callable:
    """Any error inside the view answers with ``fallback()`` instead of a 500."""

    def decorate(view: Callable) -> Callable:
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            try:
                return view(*args, **kwargs)
            except Exception:
                log.exception("webhook %s failed; answering with safe TwiML", view.__name__)
                _rollback()
                return fallback()
        return wrapper
    return decorate


def _rollback() -> None:
    try:
        db.session.rollback()
    except Exception:  # the database itself may be what failed
        log.warning("rollback failed", exc_info=True)


def to_caller() -> Response:
    """Safe answer on a caller's leg: reach a human without the database or Redis."""
    return respond(fallback_twiml())


def to_supporter() -> Response:
    """Safe answer on a supporter's leg: apologise and hang up (the caller is re-routed)."""
    twiml = VoiceResponse()
    say(twiml, "en", "offer_taken")
    twiml.hangup()
    return respond(twiml)


#: An empty ``<Response/>``, built once: the answer to every status callback.
_EMPTY = str(VoiceResponse())


def empty() -> Response:
    """Safe answer to a status callback, whose body Twilio ignores."""
    return Response(_EMPTY, mimetype=MIMETYPE)
