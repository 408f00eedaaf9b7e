"""Privacy primitives: keyed caller keys, sealed numbers, and a log filter.

* ``caller_key`` is an HMAC-SHA256 of the E.164 number under a secret key: stable enough
  to count repeat contacts, useless without the key (a bare SHA-256 of a phone number is
  reversible by brute force over the ~10^10 possible numbers). Keys carry the version of
  their secret (``v2:...``), so a number has one key per live version (``caller_keys``) and
  a rotation keeps opt-outs and repeat counts (hotline/keys.py re-keys stored rows).
* ``seal``/``unseal`` keep a raw number only while a callback or follow-up needs it,
  encrypted with Fernet; the token is prefixed with the id of the key that sealed it, and
  any configured key opens it (MultiFernet), so the seal key can rotate.
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
from dataclasses import dataclass
from urllib.parse import unquote

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from hotline.core.settings import DERIVED, Settings, caller_secrets, seal_keys

#: A stored caller key is 64 characters (the columns' width): the hex HMAC, or for a
#: versioned secret ``v2:`` and the HMAC cut to fit (244 bits and more: still unguessable).
CALLER_KEY_LENGTH = 64


@functools.lru_cache(maxsize=16)
def _derive(secret: str, purpose: bytes) -> bytes:
    """A 32-byte key for one purpose, derived from a root secret with HKDF (once per key)."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(
        secret.encode())


@functools.lru_cache(maxsize=16)
def _caller_hmac_keys(secrets: str, secret_key: str) -> tuple[tuple[str, bytes], ...]:
    return tuple((version, _derive(secret_key, b"hotline caller key") if secret == DERIVED
                  else secret.encode()) for version, secret in caller_secrets(secrets))


def caller_keys(e164: str, settings: Settings) -> tuple[str, ...]:
    """The number's caller key under every live secret, newest first."""
    out = []
    for version, key in _caller_hmac_keys(settings.CALLER_KEY_SECRET, settings.SECRET_KEY):
        digest = hmac.new(key, e164.encode(), hashlib.sha256).hexdigest()
        out.append(f"{version}:{digest}"[:CALLER_KEY_LENGTH] if version else digest)
    return tuple(out)


def caller_key(e164: str, settings: Settings) -> str:
    """The keyed HMAC that stands for a caller everywhere the hotline stores anything (under
    the newest secret; hotline/keys.py moves a caller's older rows to it)."""
    return caller_keys(e164, settings)[0]


def code_hash(code: str, settings: Settings) -> str:
    """The keyed HMAC a meeting code is stored as while it is live (never the code): a
    6-digit code's plain hash could be reversed by trying all million."""
    key = _derive(settings.SECRET_KEY, b"hotline meeting code")
    return hmac.new(key, code.encode(), hashlib.sha256).hexdigest()


def daily_tag(value: str, day_secret: bytes, settings: Settings) -> str:
    """A keyed hash of ``value`` (a client address) for one day's rate limit, never the
    value: an HMAC under a key derived from SECRET_KEY, over the day's random secret and the
    value. The day's secret lives only as long as the day's counters (the caller keeps it in
    Redis with the same expiry), so once it is gone not even SECRET_KEY links a tag back to
    an address (the ~2^32 IPv4 addresses are otherwise easily tried one by one); and
    tomorrow's tags share nothing with today's."""
    key = _derive(settings.SECRET_KEY, b"hotline daily tag")
    return hmac.new(key, day_secret + b"|" + value.encode(), hashlib.sha256).hexdigest()


def caller_key_version(stored: str) -> str:
    """The version a stored caller key was made under ("" before versions)."""
    label, sep, _ = stored.partition(":")
    return label if sep else ""


@dataclass(frozen=True)
class Sealer:
    """The configured seal keys: the first seals, any opens."""
    ids: tuple[str, ...]                 # newest first
    by_id: dict[str, Fernet]
    multi: MultiFernet

    @property
    def newest(self) -> str:
        return self.ids[0]


def _key_id(key: bytes) -> str:
    """A short public name for a seal key, stored in front of each token it seals."""
    return "k" + hashlib.sha256(b"hotline seal key id " + key).hexdigest()[:8]


@functools.lru_cache(maxsize=16)
def _sealer_for(seal_key: str, secret_key: str) -> Sealer:
    keys = [base64.urlsafe_b64encode(_derive(secret_key, b"hotline seal")) if entry == DERIVED
            else entry.encode() for entry in seal_keys(seal_key)]
    fernets = [Fernet(key) for key in keys]
    ids = tuple(_key_id(base64.urlsafe_b64decode(key)) for key in keys)
    return Sealer(ids, dict(zip(ids, fernets)), MultiFernet(fernets))


def sealer(settings: Settings) -> Sealer:
    return _sealer_for(settings.SEAL_KEY, settings.SECRET_KEY)


def seal(e164: str, settings: Settings) -> str:
    """Encrypt a number kept for a callback or follow-up, under the newest seal key."""
    s = sealer(settings)
    return f"{s.newest}:{s.by_id[s.newest].encrypt(e164.encode()).decode()}"


def seal_key_id(token: str) -> str:
    """The id of the key that sealed ``token`` ("" for a token sealed before key ids)."""
    kid, sep, _ = token.partition(":")
    return kid if sep else ""


def unseal(token: str, settings: Settings) -> str:
    """Decrypt a sealed number (raises cryptography's InvalidToken if tampered with, or if
    the key that sealed it is no longer configured)."""
    s = sealer(settings)
    kid, sep, body = token.partition(":")
    if not sep:  # sealed before key ids: any configured key may open it
        return s.multi.decrypt(token.encode()).decode()
    if kid not in s.by_id:
        raise InvalidToken
    return s.by_id[kid].decrypt(body.encode()).decode()


def reseal(token: str, settings: Settings) -> str:
    """The same number sealed under the newest key (``token`` itself if it already is)."""
    s = sealer(settings)
    kid, sep, body = token.partition(":")
    if sep and kid == s.newest:
        return token
    if sep and kid not in s.by_id:
        raise InvalidToken
    # MultiFernet.rotate: opened with whichever key sealed it, sealed again with the first.
    return f"{s.newest}:{s.multi.rotate((body if sep else token).encode()).decode()}"


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
        except Exception:  # noqa: BLE001 - a broken format string must not crash logging
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
