"""X-Twilio-Signature validation for every Twilio-facing route.

Twilio signs the full URL it requested (PUBLIC_BASE_URL + path + query) and the POST
parameters with the account's auth token. A request that fails is refused with 403
before any view runs; a valid one is let through. See
https://www.twilio.com/docs/usage/webhooks/webhooks-security.
"""

from __future__ import annotations

import logging

from flask import Blueprint, Response, request
from twilio.request_validator import RequestValidator

from hotline.extensions import settings
from hotline.urls import signed_url

log = logging.getLogger(__name__)

HEADER = "X-Twilio-Signature"


def request_url() -> str:
    """The URL Twilio signed for the current request."""
    query = request.query_string.decode("latin-1")
    return signed_url(request.path + (f"?{query}" if query else ""))


def is_valid() -> bool:
    """Whether the current request carries a valid Twilio signature."""
    signature = request.headers.get(HEADER, "")
    if not signature:
        return False
    params = request.form if request.method == "POST" else {}  # a MultiDict: repeats count
    return RequestValidator(settings().TWILIO_AUTH_TOKEN).validate(request_url(), params,
                                                                   signature)


def check_signature() -> Response | None:
    """``before_request`` hook: 403 unless the request is signed by Twilio."""
    if is_valid():
        return None
    log.warning("refused unsigned or mis-signed request to %s", request.endpoint)
    return Response("Forbidden: invalid or missing X-Twilio-Signature\n", status=403,
                    mimetype="text/plain")


def protect(blueprint: Blueprint) -> Blueprint:
    """Require a valid Twilio signature on every route of ``blueprint``."""
    blueprint.before_request(check_signature)
    return blueprint
