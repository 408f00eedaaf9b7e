"""Absolute URLs handed to Twilio, always built against PUBLIC_BASE_URL.

Twilio signs each request with the exact URL it was given, so every URL the app hands
out must start with the same base the signature check uses. This is what
``url_for(..., _external=True)`` does, bound to PUBLIC_BASE_URL instead of the request's
host, so it works the same in a request, in a job (app context only) and in the CLI.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import current_app

from hotline.core.extensions import settings


def public_url(endpoint: str, _method: str = "POST", **values: Any) -> str:
    """The absolute URL of ``endpoint`` under PUBLIC_BASE_URL (query args from extras):
    a webhook's (POST, Twilio's), or a page's (``_method="GET"``: what a QR code or a
    printed poster carries, whatever host the page was opened at)."""
    base = urlsplit(settings().PUBLIC_BASE_URL)
    adapter = current_app.url_map.bind(base.netloc, script_name=base.path or "/",
                                       url_scheme=base.scheme)
    return adapter.build(endpoint, values, method=_method, force_external=True)


def signed_url(path_with_query: str) -> str:
    """The URL Twilio signed for a request that arrived at ``path_with_query``."""
    base = settings().PUBLIC_BASE_URL.rstrip("/")
    return base + path_with_query
