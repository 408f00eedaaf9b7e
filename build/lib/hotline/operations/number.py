"""The hotline number's webhooks at Twilio, set from PUBLIC_BASE_URL.

``wanted`` is the one definition of what the number must point at; ``configure`` applies it
(only what differs, so a second run changes nothing) and ``doctor`` compares it.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from hotline.core.errors import HotlineError
from hotline.core.settings import Settings
from hotline.core.urls import public_url
from hotline.telephony import api as twilio_api

#: Each webhook of the number -> the endpoint serving it. Methods are all POST.
ENDPOINTS = {"voice_url": "voice.incoming", "voice_fallback_url": "fallback.incoming",
             "status_callback": "voice.call_status", "sms_url": "sms.incoming",
             "sms_fallback_url": "sms_fallback.incoming"}
METHODS = {"voice_method", "voice_fallback_method", "status_callback_method", "sms_method",
           "sms_fallback_method"}


class ConfigureError(HotlineError):
    """The number cannot be configured (a message saying what to do)."""


@dataclass(frozen=True)
class Change:
    """One webhook field: what Twilio has, and what it should be."""
    field: str
    before: str
    after: str

    def __str__(self) -> str:
        return f"{self.field}: {self.before or '(unset)'} -> {self.after}"


@dataclass(frozen=True)
class Plan:
    """The number's sid and what differs from ``wanted`` (empty: nothing to do)."""
    sid: str
    changes: tuple[Change, ...]


def wanted() -> dict[str, str]:
    """Every webhook field as it should be (app context: URLs from PUBLIC_BASE_URL)."""
    return {**{field: public_url(endpoint) for field, endpoint in ENDPOINTS.items()},
            **dict.fromkeys(METHODS, "POST")}


def plan(settings: Settings) -> Plan:
    """What ``configure`` would change on the hotline number (Twilio is asked, nothing set)."""
    if settings.is_production and urlsplit(settings.PUBLIC_BASE_URL).scheme != "https":
        raise ConfigureError("PUBLIC_BASE_URL must be an https:// URL in production: Twilio "
                             "would send callers' numbers in clear text")
    found = twilio_api.find_number(settings, settings.HOTLINE_NUMBER)
    if found is None:
        raise ConfigureError(f"the Twilio account has no number {settings.HOTLINE_NUMBER}: "
                             "check HOTLINE_NUMBER and TWILIO_ACCOUNT_SID")
    changes = tuple(Change(field, found.webhooks.get(field, ""), value)
                    for field, value in sorted(wanted().items())
                    if found.webhooks.get(field, "") != value)
    return Plan(found.sid, changes)


def configure(settings: Settings, dry_run: bool = False) -> Plan:
    """Point the hotline number at this install; returns what was (or would be) changed."""
    todo = plan(settings)
    if todo.changes and not dry_run:
        twilio_api.update_number(settings, todo.sid, {c.field: c.after for c in todo.changes})
    return todo
