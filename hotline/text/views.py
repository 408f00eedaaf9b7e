"""The text path's webhooks: incoming texts and the status of relayed ones.

Replies and relays go out in the webhook's own TwiML (``<Message>``), so a message body
exists only in this request's memory. Twilio keeps each message, though: an incoming
text's sid is filed (``message_records``) before anything else can fail, and every reply
carries a status callback that files its sid. The auditor then redacts them at Twilio.
"""

from __future__ import annotations

import logging

from flask import Blueprint, Response, current_app, request
from sqlalchemy.exc import IntegrityError
from twilio.twiml.messaging_response import MessagingResponse

from hotline.alerts import notify
from hotline.text import conversations
from hotline.telephony import message_records
from hotline.core import phones
from hotline.core.extensions import db, settings
from hotline.text.words import TextFlows
from hotline.telephony.signature import protect
from hotline.telephony.twiml import MIMETYPE, safe_view
from hotline.core.urls import public_url

log = logging.getLogger(__name__)

bp = protect(Blueprint("sms", __name__, url_prefix="/twilio/sms"))
# As for calls: a texter's webhooks check the gaps after the answer, at most every 30 s.
bp.after_request(notify.check_after)

#: Longest body handled; Twilio's own limit is 1,600 characters.
MAX_BODY_CHARS = 1600


def _respond(twiml: MessagingResponse) -> Response:
    return Response(str(twiml), mimetype=MIMETYPE)


def sorry() -> Response:
    """Safe reply when the hotline cannot handle a text: how to reach someone now, in the
    text's language (guessed from the body in memory: no database needed)."""
    texts: TextFlows = current_app.extensions["hotline.texts"]
    lang = texts.language_of(request.form.get("Body", ""))
    twiml = MessagingResponse()
    twiml.message(texts.message(lang, "sorry", crisis=settings().CRISIS_LINE_NUMBER),
                  status_callback=public_url("sms.status"))
    return _respond(twiml)


def _record(message_sid: str) -> bool:
    """Record the MessageSid, as handled and as a message to redact at Twilio, in the
    transaction now open (not committed); False when it was handled before (a repeated
    delivery: its INSERT meets the unique sid, and the transaction is rolled back)."""
    try:  # Core, one statement on PostgreSQL: nothing reads the rows back
        message_records.record_incoming(db.session, message_sid)
    except IntegrityError:
        db.session.rollback()
        return False
    return True


def _record_after_failure(message_sid: str) -> None:
    """A handler failed and its transaction (the record with it) was rolled back: the
    record alone, committed, so the sid is still redacted and a repeat still does nothing
    (a no-op when a commit inside the handler kept it already)."""
    db.session.rollback()
    try:
        if _record(message_sid):
            db.session.commit()
    except Exception:  # the database itself may be what failed: the auditor lists it later
        log.warning("could not record a text whose handler failed", exc_info=True)
        db.session.rollback()


@bp.post("")
@safe_view(sorry)
def incoming() -> Response:
    """An incoming text: keywords, supporter commands, a request or a conversation."""
    form = request.form
    message_sid = form.get("MessageSid", "")
    if not message_sid:
        return sorry()
    # The record and the text's changes commit together: one transaction a text (was one
    # for the record, committed first, and one for the changes). Nothing is lost for it:
    # a handler that fails has the record committed on its own (``_record_after_failure``),
    # and a repeat delivered meanwhile waits on the uncommitted sid, then finds it.
    if not _record(message_sid):
        return _respond(MessagingResponse())
    try:
        inbound = conversations.Inbound(
            number=phones.try_normalize(form.get("From")) or form.get("From", ""),
            body=form.get("Body", "")[:MAX_BODY_CHARS],
            media=form.get("NumMedia", default=0, type=int) or 0)
        outgoing = conversations.handle(db.session, current_app.extensions["hotline.texts"],
                                        inbound)
        db.session.commit()  # the text's changes, before any reply leaves
    except Exception:
        _record_after_failure(message_sid)
        raise  # safe_view answers with ``sorry``
    twiml = MessagingResponse()
    callback = public_url("sms.status")  # each reply's sid comes back to be filed
    for out in outgoing:
        twiml.message(out.body, **({"to": out.to} if out.to else {}),
                      status_callback=callback)
    return _respond(twiml)


@bp.post("/status")
@safe_view(lambda: Response(status=204))
def status() -> Response:
    """Status of a message the hotline sent (REST, reply or relay): its sid is filed for
    the auditor to redact at Twilio, whatever the status (``sent`` may be the last)."""
    message_records.file_sid(db.session, request.form.get("MessageSid"),
                           message_records.OUTBOUND)
    db.session.commit()
    return Response(status=204)
