"""X-Twilio-Signature validation for every Twilio-facing route.

Twilio signs the full URL it requested (PUBLIC_BASE_URL + path + query) and the POST
parameters with the account's auth token. A request that fails is refused with 403
before any view runs; a valid one is let through. See
https://www.twilio.com/docs/usage/webhooks/webhooks-security.
"""

from __future__ import annotations

import functools
import hmac
import logging
from urllib.parse import urlparse

from flask import Blueprint, Response, request
from twilio.request_validator import RequestValidator, add_port, remove_port

from hotline.core.extensions import settings
from hotline.core.urls import signed_url

log = logging.getLogger(__name__)

HEADER = "X-Twilio-Signature"


def request_url() -> str:
    """The URL Twilio signed for the current request."""
    query = request.query_string.decode("latin-1")
    return signed_url(request.path + (f"?{query}" if query else ""))


@functools.lru_cache(maxsize=4)
def _validator(token: str) -> RequestValidator:
    return RequestValidator(token)


class _Form:
    """The POST parameters as twilio's validator reads them (``getall``: repeats count).

    Handing it the MultiDict itself costs an AttributeError per parameter (it tries
    ``getall`` first), twice per request.
    """

    __slots__ = ("lists",)

    def __init__(self, form) -> None:
        self.lists = dict(form.lists())

    def __iter__(self):
        return iter(self.lists)

    def getall(self, name: str) -> list[str]:
        return self.lists[name]


def is_valid() -> bool:
    """Whether the current request carries a valid Twilio signature.

    What ``RequestValidator.validate`` accepts (the URL signed with or without its port),
    but the URL as configured is tried first and the other form only when it fails.
    """
    signature = request.headers.get(HEADER, "").encode()
    if not signature:
        return False
    validator = _validator(settings().TWILIO_AUTH_TOKEN)
    params = _Form(request.form) if request.method == "POST" else {}
    url = request_url()
    if _signs(validator, url, params, signature):
        return True
    # The other form is parsed and signed only now: nearly every request matched above.
    parsed = urlparse(url)
    other = remove_port(parsed) if parsed.port else add_port(parsed)
    return _signs(validator, other, params, signature)


def _signs(validator: RequestValidator, url: str, params, signature: bytes) -> bool:
    return hmac.compare_digest(validator.compute_signature(url, params).encode(), signature)


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
