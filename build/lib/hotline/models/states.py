"""Every mode, state, outcome, consent value and event kind, as str Enums.

The values are the strings the database and the statistics have always held, so a member
compares equal to its string (``ContactMode.TEXT == "text"``) and rows written before
these enums existed read the same. SQL expressions and stored values use ``.value``.
Nothing here imports the app: ``hotline.models`` takes its enums from this module.
"""

from __future__ import annotations

from enum import Enum


class Channel(str, Enum):
    VOICE = "voice"
    SMS = "sms"


class ContactState(str, Enum):
    MENU = "menu"            # hearing the menu
    WAITING = "waiting"      # in the queue, supporters being offered
    OPTIONS = "options"      # left the queue, choosing: keep waiting, callback, crisis line
    CONNECTED = "connected"  # bridged with a supporter
    ENDED = "ended"


class ContactMode(str, Enum):
    """How a text request (or a callback try) reaches a peer; None for an incoming call."""
    TEXT = "text"            # a conversation by SMS
    CALL = "call"            # a peer calls the clinician who texted
    CALLBACK = "callback"    # one try of a callback request


#: Modes where the hotline calls the clinician (their number is needed until it has).
OUTBOUND_MODES = (ContactMode.CALL.value, ContactMode.CALLBACK.value)


class Outcome(str, Enum):
    """Every contact ends with exactly one of these."""
    CONNECTED = "connected"
    CONNECTED_BACKUP = "connected_backup"
    CALLBACK_REQUESTED = "callback_requested"
    CRISIS_TRANSFER = "crisis_transfer"
    ABANDONED = "abandoned"
    FAILED = "failed"


#: Outcomes where the clinician reached a peer.
CONNECTED_OUTCOMES = (Outcome.CONNECTED.value, Outcome.CONNECTED_BACKUP.value)


class OfferState(str, Enum):
    RINGING = "ringing"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    NO_ANSWER = "no_answer"
    BUSY = "busy"
    FAILED = "failed"
    CANCELED = "canceled"


class CallbackState(str, Enum):
    PENDING = "pending"      # not yet tried (or waiting for its next try)
    CALLING = "calling"      # a try is under way
    DONE = "done"
    FAILED = "failed"        # every try missed; the clinician was texted


class Consent(str, Enum):
    """Check-in texts: None on the contact means not asked."""
    ASKED = "asked"
    YES = "yes"
    NO = "no"


class EventKind(str, Enum):
    """``ContactEvent.kind``: the statistics' vocabulary. An outcome is also an event of
    the same name (``Outcome``), written when the contact gets it."""
    STARTED = "started"
    QUEUED = "queued"
    OFFERED = "offered"
    ESCALATED = "escalated"
    EXHAUSTED = "exhausted"
    LEFT_QUEUE = "left_queue"
    BRIDGED = "bridged"
    ENDED = "ended"
    FOLLOWUP_CONSENT = "followup_consent"
    FOLLOWUP_DECLINED = "followup_declined"
    FOLLOWUP_SENT = "followup_sent"
    FOLLOWUP_REPLY = "followup_reply"
    # Caring for supporters (hotline.roster.care): a rule held a free supporter back from
    # this contact's offers (once per contact and rule), or paused one who missed it.
    CARE_COOLDOWN = "care_cooldown"
    CARE_CAP = "care_cap"
    CARE_PAUSED = "care_paused"
    MATCH_ASKED = "match_asked"  # the caller asked for a match (which one is not kept)
    OUTREACH_ACCEPTED = "outreach_accepted"  # a referred colleague said YES (hotline.outreach)


def value(member: Enum | str) -> str:
    """The stored string of an enum member (or of a plain string)."""
    return member.value if isinstance(member, Enum) else member
