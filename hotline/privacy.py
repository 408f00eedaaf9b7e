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


#: Anything with 7+ digits, optionally led by + and split by spaces, dots, dashes or brackets.
PHONE_LIKE = re.compile(r"(?<![\w])\+?\d[\d\s().-]{5,}\d(?![\w])")


IPV4 = re.compile(r"\d{1,3}(\.\d{1,3}){3}")
DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
#: Fewer digits than this is not a phone number worth hiding (ids, times, years).
MIN_DIGITS = 8


def _mask(match: re.Match) -> str:
    found = match.group(0)
    date = DATE.match(found)
    if date:  # a timestamp: keep the date, look again at what follows it
        return found[:date.end()] + redact(found[date.end():])
    if IPV4.fullmatch(found) or sum(ch.isdigit() for ch in found) < MIN_DIGITS:
        return found
    return "[redacted-number]"


def redact(text: str) -> str:
    """Replace phone-number-like runs (not dates, times or IPv4 addresses) with a marker."""
    return PHONE_LIKE.sub(_mask, text)


class RedactingFilter(logging.Filter):
    """Rewrite each record's message so no phone number reaches a log handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string must not crash logging
            message = str(record.msg)
        record.msg = redact(message)
        record.args = None
        return True


_factory_installed = False


def install_log_redaction() -> None:
    """Redact every log record at creation, whatever handler later sees it.

    A record factory (not a handler filter) covers every logger and every handler,
    including ones added later (pytest's, gunicorn's); tracebacks are redacted too.
    """
    global _factory_installed
    if _factory_installed:
        return
    previous = logging.getLogRecordFactory()

    def factory(*args, **kwargs) -> logging.LogRecord:
        entry = previous(*args, **kwargs)
        RedactingFilter().filter(entry)
        if entry.exc_info and entry.exc_info[0] is not None:
            entry.exc_text = redact("".join(
                traceback.format_exception(*entry.exc_info))).rstrip("\n")
        return entry

    logging.setLogRecordFactory(factory)
    _factory_installed = True
