"""The number's messaging fallback URL: settings only, no database, no Redis.

Twilio requests it when the messaging URL fails (an error, a timeout, a down app). It
answers with one short text, in the text's language when the body shows it: how to reach
a peer (call this number) and the crisis line. The body is read in memory only, never kept.
The reply's status callback files its sid for redaction once the app is back; the incoming
text itself is found and redacted by the auditor's reconciliation at Twilio.
"""

from __future__ import annotations

from flask import Blueprint, Response, current_app, request
from twilio.twiml.messaging_response import MessagingResponse

from hotline.alerts import signals
from hotline.core.extensions import settings
from hotline.core.urls import public_url
from hotline.telephony.signature import protect
from hotline.telephony.twiml import MIMETYPE, safe_view
from hotline.text.words import TextFlows

bp = protect(Blueprint("sms_fallback", __name__, url_prefix="/twilio/sms/fallback"))


@bp.post("")
@safe_view(lambda: Response(str(MessagingResponse()), mimetype=MIMETYPE))
def incoming() -> Response:
    """Twilio's messaging fallback URL: how to call, and the crisis line."""
    texts: TextFlows = current_app.extensions["hotline.texts"]
    lang = texts.language_of(request.form.get("Body", ""))
    twiml = MessagingResponse()
    twiml.message(texts.message(lang, "fallback", crisis=settings().CRISIS_LINE_NUMBER),
                  status_callback=public_url("sms.status"))
    # A hit is counted for the coordinators' alert after the answer is sent (best effort,
    # Redis with a short timeout): the texter is answered whatever happens to the count.
    return signals.record_fallback_after(Response(str(twiml), mimetype=MIMETYPE),
                                         "messaging", settings())
