"""The one place that calls Twilio's REST API.

The base URL comes from settings (``TWILIO_API_BASE_URL``), so the offline stand-in,
Prism or a mock can take Twilio's place; region/edge settings do not do that.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.rest import Client

from hotline.core.errors import TwilioApiError
from hotline.core.settings import Settings
from twilio.http.http_client import TwilioHttpClient

log = logging.getLogger(__name__)

# No StatusCallbackEvent is sent: the answer webhook already says "answered", and Twilio's
# default, one `completed` callback carrying the final CallStatus (no-answer, busy, failed,
# canceled, completed), is all the routing needs.
#: Tolerated difference between our clock and Twilio's when looking for a sent text.
CLOCK_SKEW = timedelta(minutes=5)
#: Seconds before the REST client gives up on Twilio (webhooks never wait on it).
HTTP_TIMEOUT_SECONDS = 10


_local = threading.local()
os.register_at_fork(after_in_child=lambda: _local.__dict__.clear())


def client(settings: Settings) -> Client:
    """A REST client bound to the configured base URL, one per thread and configuration: its
    connection (TLS to Twilio) is kept alive from one request to the next. The timeout is
    part of the key: a client kept from before it changed would otherwise wait the old one."""
    key = (settings.TWILIO_ACCOUNT_SID, settings.TWILIO_AUTH_TOKEN,
           settings.TWILIO_API_BASE_URL, HTTP_TIMEOUT_SECONDS)
    clients = _local.__dict__.setdefault("clients", {})
    if key not in clients:
        rest = Client(settings.TWILIO_ACCOUNT_SID, settings.TWILIO_AUTH_TOKEN,
                      http_client=TwilioHttpClient(timeout=HTTP_TIMEOUT_SECONDS))
        rest.api.base_url = settings.TWILIO_API_BASE_URL.rstrip("/")
        clients[key] = rest
    return clients[key]


@dataclass(frozen=True)
class OutboundCall:
    """What the app asks Twilio to do: call ``to`` and fetch ``url`` when answered."""
    to: str
    url: str
    status_callback: str
    timeout: int


def create_call(settings: Settings, call: OutboundCall) -> str:
    """Call out from the hotline number; returns the new CallSid."""
    try:
        created = client(settings).calls.create(
            to=call.to, from_=settings.HOTLINE_NUMBER, url=call.url, method="POST",
            status_callback=call.status_callback, status_callback_method="POST",
            timeout=call.timeout)
    except (TwilioException, OSError) as exc:
        raise TwilioApiError(_describe(exc)) from None
    return created.sid


def end_call(settings: Settings, call_sid: str, answered: bool) -> None:
    """Stop a call: cancel it while it rings, hang it up once answered."""
    status = "completed" if answered else "canceled"
    try:
        client(settings).calls(call_sid).update(status=status)
    except (TwilioException, OSError) as exc:
        raise TwilioApiError(_describe(exc)) from None


def send_message(settings: Settings, to: str, body: str,
                 status_callback: str | None = None) -> str:
    """Text ``to`` from the hotline number; returns the MessageSid. The body is not logged."""
    try:
        created = client(settings).messages.create(
            to=to, from_=settings.HOTLINE_NUMBER, body=body,
            **({"status_callback": status_callback} if status_callback else {}))
    except (TwilioException, OSError) as exc:
        raise TwilioApiError(_describe(exc)) from None
    return created.sid


def redact_message(settings: Settings, message_sid: str) -> int | None:
    """Blank a message's body at Twilio (refused while it is still queued or sending).

    Returns how many media the message still has (the body's redaction leaves them), or
    None when Twilio no longer has the message: nothing is left to redact.
    """
    try:
        message = client(settings).messages(message_sid).update(body="")
    except (TwilioException, OSError) as exc:
        if _gone(exc):
            return None
        raise TwilioApiError(_describe(exc)) from None
    return int(message.num_media or 0)


def delete_media(settings: Settings, message_sid: str) -> int:
    """Delete every media (picture, file) of a message at Twilio; returns how many went."""
    try:
        media = client(settings).messages(message_sid).media.list()
        for item in media:
            try:
                client(settings).messages(message_sid).media(item.sid).delete()
            except (TwilioException, OSError) as exc:
                if not _gone(exc):
                    raise
    except (TwilioException, OSError) as exc:
        if _gone(exc):
            return 0
        raise TwilioApiError(_describe(exc)) from None
    return len(media)


def delete_message(settings: Settings, message_sid: str) -> None:
    """Delete a message's record at Twilio altogether (one already gone is no error)."""
    try:
        client(settings).messages(message_sid).delete()
    except (TwilioException, OSError) as exc:
        if not _gone(exc):
            raise TwilioApiError(_describe(exc)) from None


def delete_call(settings: Settings, call_sid: str) -> None:
    """Delete a finished call's log at Twilio (one already gone is no error)."""
    try:
        client(settings).calls(call_sid).delete()
    except (TwilioException, OSError) as exc:
        if not _gone(exc):
            raise TwilioApiError(_describe(exc)) from None


def find_conference(settings: Settings, name: str) -> str | None:
    """The sid of the conference called ``name`` while it is in progress (None: it has not
    started, or it is over)."""
    try:
        # One page only, as for a number: never a request to a next-page link.
        found = list(client(settings).conferences.page(friendly_name=name,
                                                       status="in-progress", page_size=20))
    except (TwilioException, OSError) as exc:
        raise TwilioApiError(_describe(exc)) from None
    return found[0].sid if found else None


def announce_conference(settings: Settings, conference_sid: str, url: str) -> None:
    """Play the TwiML at ``url`` (prompts) to everyone in a conference (one already over is
    no error)."""
    try:
        client(settings).conferences(conference_sid).update(announce_url=url,
                                                            announce_method="POST")
    except (TwilioException, OSError) as exc:
        if not _gone(exc):
            raise TwilioApiError(_describe(exc)) from None


def end_conference(settings: Settings, conference_sid: str) -> None:
    """End a conference for everyone in it (one already over is no error)."""
    try:
        client(settings).conferences(conference_sid).update(status="completed")
    except (TwilioException, OSError) as exc:
        if not _gone(exc):
            raise TwilioApiError(_describe(exc)) from None


@dataclass(frozen=True)
class ListedMessage:
    """A message as Twilio lists it, without its content: only what reconciliation needs."""
    sid: str
    inbound: bool
    #: When Twilio sent or received it (when it was created, if not sent yet).
    sent_at: datetime | None
    #: Nothing left to redact: an empty body and no media.
    blank: bool


@dataclass(frozen=True)
class MessagePage:
    """One page of a listing, and the next page's URI, path and query as Twilio gives it,
    whatever the base URL (None: the listing is complete)."""
    messages: tuple[ListedMessage, ...]
    next_uri: str | None


def list_messages(settings: Settings, *, to: str | None = None, from_: str | None = None,
                  sent_after: datetime | None = None, page_size: int = 50,
                  page_uri: str | None = None) -> MessagePage:
    """One page of the messages at Twilio to or from a number, sent since ``sent_after``,
    newest first; ``page_uri`` (a page's ``next_uri``) goes on with the same listing.
    Bodies are read only to tell whether they are blank, and never kept."""
    messages = client(settings).messages
    try:
        if page_uri:
            page = messages.get_page(client(settings).api.absolute_url(page_uri))
        else:
            filters = {"to": to} if to else {"from_": from_}
            page = messages.page(**filters, page_size=page_size,
                                 **({"date_sent_after": sent_after} if sent_after else {}))
        listed = tuple(ListedMessage(
            sid=m.sid, inbound=str(m.direction) == "inbound",
            sent_at=m.date_sent or m.date_created,
            blank=not m.body and str(m.num_media or "0") == "0") for m in page)
        following = page.next_page_url
        if following:
            parts = urlsplit(following)
            following = f"{parts.path}?{parts.query}" if parts.query else parts.path
        return MessagePage(listed, following)
    except (TwilioException, OSError, ValueError) as exc:
        raise TwilioApiError(_describe(exc)) from None


def _gone(exc: Exception) -> bool:
    return isinstance(exc, TwilioRestException) and exc.status == 404


def find_sent(settings: Settings, to: str, since: datetime | None,
              body: str | None = None) -> str | None:
    """The sid of a text the hotline sent ``to`` since ``since``, if Twilio has one (with
    ``body``: only that text, for a number that gets other texts too, like a supporter's)."""
    if since is None:
        return None
    earliest = since - CLOCK_SKEW
    try:
        found = client(settings).messages.list(to=to, from_=settings.HOTLINE_NUMBER,
                                               date_sent_after=earliest, limit=20)
    except (TwilioException, OSError) as exc:
        raise TwilioApiError(_describe(exc)) from None
    for message in found:
        created = message.date_created
        if body is not None and message.body and message.body != body:
            continue  # another text (a blank body was redacted: it may be this one)
        if created is None or created >= earliest:
            return message.sid
    return None


def _describe(exc: Exception) -> str:
    """An error message without the request's parameters (they hold phone numbers)."""
    if isinstance(exc, TwilioRestException):
        return f"twilio status {exc.status} code {exc.code}"
    return type(exc).__name__


#: An IncomingPhoneNumber's webhook fields (the SDK's and the resource's snake-case names).
NUMBER_FIELDS = ("voice_url", "voice_method", "voice_fallback_url", "voice_fallback_method",
                 "status_callback", "status_callback_method", "sms_url", "sms_method",
                 "sms_fallback_url", "sms_fallback_method")


@dataclass(frozen=True)
class NumberWebhooks:
    """A number at Twilio: its sid and its webhooks (``NUMBER_FIELDS``; '' when unset)."""
    sid: str
    webhooks: dict[str, str]


def find_number(settings: Settings, number: str) -> NumberWebhooks | None:
    """The account's IncomingPhoneNumber for ``number`` (None: the account has no such
    number)."""
    try:
        # One page only: a filter by number matches at most one, and never following a
        # next-page link keeps this one request whatever the answer holds.
        found = list(client(settings).incoming_phone_numbers.page(phone_number=number,
                                                                   page_size=20))
    except (TwilioException, OSError) as exc:
        raise TwilioApiError(_describe(exc)) from None
    if not found:
        return None
    return NumberWebhooks(found[0].sid, {name: str(getattr(found[0], name, None) or "")
                                         for name in NUMBER_FIELDS})


def update_number(settings: Settings, sid: str, changes: dict[str, str]) -> None:
    """Set some of a number's webhooks (``NUMBER_FIELDS`` names) at Twilio."""
    try:
        client(settings).incoming_phone_numbers(sid).update(**changes)
    except (TwilioException, OSError) as exc:
        raise TwilioApiError(_describe(exc)) from None


def account_status(settings: Settings) -> str:
    """The account's status at Twilio (``active``, ``suspended``, ``closed``): proves the
    credentials are accepted (a TwilioApiError says they are not, or Twilio is unreachable)."""
    try:
        return str(client(settings).api.v2010.accounts(settings.TWILIO_ACCOUNT_SID).fetch().status)
    except (TwilioException, OSError) as exc:
        raise TwilioApiError(_describe(exc)) from None
