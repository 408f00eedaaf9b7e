"""The text path's webhooks: incoming texts and the status of relayed ones.

Replies and relays go out in the webhook's own TwiML (``<Message>``), so a message body
exists only in this request's memory. Each relayed message is redacted at Twilio once it
is delivered, and each incoming one once handled, when HOTLINE_REDACT_AT_TWILIO is on.
"""

from __future__ import annotations

import logging

from flask import Blueprint, Response, current_app, request
from sqlalchemy.exc import IntegrityError
from twilio.twiml.messaging_response import MessagingResponse

from hotline import conversations, phones
from hotline.extensions import db, jobs, settings
from hotline.models import InboundMessage
from hotline.webhooks.signature import protect
from hotline.webhooks.twiml import MIMETYPE, safe_view
from hotline.urls import public_url
from workers.texts import redact

log = logging.getLogger(__name__)

bp = protect(Blueprint("sms", __name__, url_prefix="/twilio/sms"))

#: Message statuses after which Twilio allows a body to be redacted.
FINAL_MESSAGE_STATUSES = {"delivered", "undelivered", "failed", "received", "read"}
#: Longest body handled; Twilio's own limit is 1,600 characters.
MAX_BODY_CHARS = 1600


def _respond(twiml: MessagingResponse) -> Response:
    return Response(str(twiml), mimetype=MIMETYPE)


def sorry() -> Response:
    """Safe reply when the hotline cannot handle a text: how to reach someone now."""
    cfg = settings()
    twiml = MessagingResponse()
    twiml.message(f"We could not take your message just now. Please call this number, "
                  f"or call or text {cfg.CRISIS_LINE_NUMBER} to talk with someone now.")
    return _respond(twiml)


def _first_delivery(message_sid: str) -> bool:
    """Record the MessageSid; False when it was handled before (a repeated delivery)."""
    db.session.add(InboundMessage(message_sid=message_sid))
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        return False
    return True


@bp.post("")
@safe_view(sorry)
def incoming() -> Response:
    """An incoming text: keywords, supporter commands, a request or a conversation."""
    form = request.form
    message_sid = form.get("MessageSid", "")
    if not message_sid:
        return sorry()
    if not _first_delivery(message_sid):
        return _respond(MessagingResponse())
    inbound = conversations.Inbound(
        number=phones.try_normalize(form.get("From")) or form.get("From", ""),
        body=form.get("Body", "")[:MAX_BODY_CHARS],
        media=form.get("NumMedia", default=0, type=int) or 0)
    outgoing = conversations.handle(db.session, current_app.extensions["hotline.texts"],
                                    inbound)
    twiml = MessagingResponse()
    for out in outgoing:
        extra = {"status_callback": public_url("sms.status")} if out.relay else {}
        twiml.message(out.body, **({"to": out.to} if out.to else {}), **extra)
    if settings().REDACT_AT_TWILIO:
        _redact_later(message_sid)
    return _respond(twiml)


def _redact_later(message_sid: str) -> None:
    try:
        jobs.enqueue(redact, message_sid, retry=_retry())
    except Exception:  # Redis down: the reply matters more; the audit redacts later
        log.warning("redaction of an incoming message not queued")


def _retry():
    from workers.texts import REDACT_RETRY
    return REDACT_RETRY


@bp.post("/status")
@safe_view(lambda: Response(status=204))
def status() -> Response:
    """Status of a relayed message: once final, its body is redacted at Twilio."""
    if (request.form.get("MessageStatus") in FINAL_MESSAGE_STATUSES
            and settings().REDACT_AT_TWILIO and request.form.get("MessageSid")):
        _redact_later(request.form["MessageSid"])
    return Response(status=204)
