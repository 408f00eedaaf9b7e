"""Phone numbers: parse and normalise to E.164 with phonenumbers."""

from __future__ import annotations

import phonenumbers

from hotline.core.errors import InvalidPhoneNumber

#: Region assumed for numbers written without a country code (the hotline is US-first).
DEFAULT_REGION = "US"


def normalize(raw: str, region: str = DEFAULT_REGION) -> str:
    """Return ``raw`` as E.164, or raise InvalidPhoneNumber with a clear message."""
    text = (raw or "").strip()
    if not text:
        raise InvalidPhoneNumber("a phone number is required")
    try:
        parsed = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        raise InvalidPhoneNumber("not a phone number; write it like +1 617 555 0100") from None
    if not phonenumbers.is_valid_number(parsed):
        raise InvalidPhoneNumber("not a valid phone number; check the digits and country code")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def try_normalize(raw: str | None, region: str = DEFAULT_REGION) -> str | None:
    """E.164 for ``raw``, or None when it is absent or invalid (webhook input)."""
    try:
        return normalize(raw or "", region)
    except InvalidPhoneNumber:
        return None
