"""How the simulator reaches the app's webhooks: in-process (Flask test client) or over HTTP."""

from __future__ import annotations

import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Protocol

#: Twilio's webhook requests carry this user agent; some apps log or check it.
USER_AGENT = "TwilioProxy/1.1 (hotline-simulator)"


DEFAULT_PORTS = {"http": 80, "https": 443}


def origin(url: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of an absolute http(s) URL, default ports filled in; else None."""
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname or parts.username is not None:
        return None
    return parts.scheme, parts.hostname.lower(), port or DEFAULT_PORTS[parts.scheme]


class Transport(Protocol):
    """Delivers one signed, form-encoded webhook POST and returns (status, body)."""

    def post(self, url: str, params: dict[str, str], headers: dict[str, str]) -> tuple[int, str]:
        """POST ``params`` to the absolute ``url`` with ``headers``; return (status, body)."""
        ...  # pragma: no cover


class FlaskClientTransport:
    """Posts to a Flask app through its test client (no sockets, same thread).

    ``public_base_url`` is the app's external base (what it puts in its TwiML URLs); the
    request goes to the path and query under it, with the test client's ``base_url`` set to
    the public scheme and host, so ``request.url`` in the app is exactly the URL that was
    signed. A URL outside that base raises ``ValueError`` (an application error to the sim).
    """

    def __init__(self, client: Any, public_base_url: str) -> None:
        """Wrap a ``flask.testing.FlaskClient`` serving ``public_base_url``."""
        self.client = client
        self.public_base_url = public_base_url.rstrip("/")

    def post(self, url: str, params: dict[str, str], headers: dict[str, str]) -> tuple[int, str]:
        """POST form data through the test client."""
        if not url.startswith(self.public_base_url + "/"):
            raise ValueError(f"URL outside the app's public base: {url}")
        parts = urllib.parse.urlsplit(url)
        path = urllib.parse.urlunsplit(("", "", parts.path, parts.query, ""))
        response = self.client.post(path, data=params, headers=headers,
                                    base_url=f"{parts.scheme}://{parts.netloc}")
        return response.status_code, response.get_data(as_text=True)


class HttpTransport:
    """Posts over real HTTP with urllib (for a server running elsewhere)."""

    def __init__(self, timeout: float = 10) -> None:
        """``timeout`` is the socket timeout in seconds for each request."""
        self.timeout = timeout

    def post(self, url: str, params: dict[str, str], headers: dict[str, str]) -> tuple[int, str]:
        """POST form-encoded ``params``; HTTP errors are returned, not raised."""
        data = urllib.parse.urlencode(params).encode()
        all_headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "User-Agent": USER_AGENT,
            **headers,
        }
        request = urllib.request.Request(url, data=data, headers=all_headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return response.status, response.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode("utf-8", "replace")
