"""Privacy primitives: keyed caller keys, sealed numbers, and a log filter.

* ``caller_key`` is an HMAC-SHA256 of the E.164 number under a secret key: stable enough
  to count repeat contacts, useless without the key (a bare SHA-256 of a phone number is
  reversible by brute force over the ~10^10 possible numbers).
* ``seal``/``unseal`` keep a raw number only while a callback or follow-up needs it,
  encrypted with Fernet under a key from settings.
* ``RedactingFilter`` strips anything that looks like a phone number from every log record.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import logging
import re
import traceback
from urllib.parse import unquote

from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from hotline.settings import Settings


@functools.lru_cache(maxsize=16)
def _derive(secret: str, purpose: bytes) -> bytes:
    """A 32-byte key for one purpose, derived from a root secret with HKDF (once per key)."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(
        secret.encode())


def caller_key(e164: str, settings: Settings) -> str:
    """The keyed HMAC that stands for a caller everywhere the hotline stores anything."""
    key = (settings.CALLER_KEY_SECRET.encode() if settings.CALLER_KEY_SECRET
           else _derive(settings.SECRET_KEY, b"hotline caller key"))
    return hmac.new(key, e164.encode(), hashlib.sha256).hexdigest()


def _fernet(settings: Settings) -> Fernet:
    return _fernet_for(settings.SEAL_KEY, settings.SECRET_KEY)


@functools.lru_cache(maxsize=16)
def _fernet_for(seal_key: str, secret_key: str) -> Fernet:
    if seal_key:
        return Fernet(seal_key.encode())
    return Fernet(base64.urlsafe_b64encode(_derive(secret_key, b"hotline seal")))


def seal(e164: str, settings: Settings) -> str:
    """Encrypt a number kept for a callback or follow-up."""
    return _fernet(settings).encrypt(e164.encode()).decode()


def unseal(token: str, settings: Settings) -> str:
    """Decrypt a sealed number (raises cryptography's InvalidToken if tampered with)."""
    return _fernet(settings).decrypt(token.encode()).decode()


#: A percent escape, encoded once or more (``%2B``, ``%252B``): URLs in logs carry numbers so.
_PCT = r"%(?:25)*"
_PLUS = rf"(?:\+|{_PCT}2[Bb])"
_DIGIT = rf"(?:\d|{_PCT}3\d)"
#: Spaces, dots, dashes, brackets and ``+`` (a space in form encoding), plain or escaped.
_SEPARATOR = rf"(?:[\s().+-]|{_PCT}(?:20|28|29|2[BbDdEe]))"
#: Anything with 7+ digits, optionally led by + and split by separators, in any of the
#: encodings above; not inside a word (a Twilio sid, a hash), but right after an escape.
PHONE_LIKE = re.compile(
    rf"(?:(?<![\w%])|(?<=%[0-9A-Fa-f]{{2}}))"
    rf"{_PLUS}?{_DIGIT}(?:{_DIGIT}|{_SEPARATOR}){{5,}}{_DIGIT}(?![\w])")


IPV4 = re.compile(r"\d{1,3}(\.\d{1,3}){3}")
DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
#: Fewer digits than this is not a phone number worth hiding (ids, times, years).
MIN_DIGITS = 8
MARK = "[redacted-number]"


def _decoded(text: str) -> str:
    """``text`` with its percent escapes undone (twice-encoded ones too)."""
    for _ in range(3):
        plain = unquote(text)
        if plain == text:
            break
        text = plain
    return text


def _mask(match: re.Match) -> str:
    found = match.group(0)
    date = DATE.match(found)
    if date:  # a timestamp: keep the date, look again at what follows it
        return found[:date.end()] + redact(found[date.end():])
    if IPV4.fullmatch(found) or sum(ch.isdigit() for ch in _decoded(found)) < MIN_DIGITS:
        return found
    return MARK


def redact(text: str) -> str:
    """Replace phone-number-like runs (not dates, times or IPv4 addresses) with a marker,
    whether written plainly, with separators, or percent- or form-encoded."""
    return PHONE_LIKE.sub(_mask, text)


class RedactingFilter(logging.Filter):
    """Rewrite each record's message (and traceback) so no phone number reaches a handler.

    Idempotent: a record already redacted when it was made passes through unchanged.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string must not crash logging
            message = str(record.msg)
        record.msg = redact(message)
        record.args = None
        if record.exc_info and record.exc_info[0] is not None and not record.exc_text:
            record.exc_text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


#: Loggers of libraries that write request lines and parameters (numbers) at INFO/DEBUG.
CHATTY_LIBRARIES = ("urllib3", "twilio.http_client", "requests")

_factory_installed = False


def install_log_redaction() -> None:
    """Redact every log record at creation, whatever handler later sees it, and again in
    every handler the root logger has (``redact_handlers``).

    A record factory covers every logger and every handler, including ones added later
    (pytest's, gunicorn's); tracebacks are redacted too. The handler filters also cover a
    record made without the factory (``logging.makeLogRecord``, a library's own
    ``makeRecord``).
    """
    global _factory_installed
    redact_handlers(logging.getLogger())
    if _factory_installed:
        return
    previous = logging.getLogRecordFactory()

    def factory(*args, **kwargs) -> logging.LogRecord:
        entry = previous(*args, **kwargs)
        _FILTER.filter(entry)
        return entry

    logging.setLogRecordFactory(factory)
    _factory_installed = True


_FILTER = RedactingFilter()


def redact_handlers(*loggers: logging.Logger) -> None:
    """Put the redacting filter on every handler of ``loggers`` (once per handler)."""
    for logger in loggers:
        for handler in logger.handlers:
            if not any(isinstance(f, RedactingFilter) for f in handler.filters):
                handler.addFilter(_FILTER)


#: A path segment that looks like a secret (an invitation token, a session id: 20+
#: url-safe characters), unless it is a Twilio sid (two letters and 32 hex digits).
_TOKEN_SEGMENT = re.compile(r"[A-Za-z0-9_-]{20,}")
_TWILIO_SID = re.compile(r"[A-Z]{2}[0-9a-f]{32}")
TOKEN_MARK = "[redacted-token]"


def redact_url(url: str) -> str:
    """A URL or path fit for an access log: no query string (its values may be numbers or
    tokens), token-like path segments masked, numbers redacted."""
    path = url.split("?", 1)[0].split("#", 1)[0]
    segments = [TOKEN_MARK if _TOKEN_SEGMENT.fullmatch(s) and not _TWILIO_SID.fullmatch(s)
                else s for s in path.split("/")]
    return redact("/".join(segments))
