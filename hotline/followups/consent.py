"""Asking a clinician, after a conversation, whether they would like check-in texts.

No consent, no follow-up: the number is deleted on a no (or no answer); on a yes the
follow-ups keep their own sealed copies until each is sent.

Caller ID can be spoofed: someone could call from another person's number and say yes,
and that person would get check-in texts implying they had called. So a yes pressed on a
call counts only when the carrier vouched for the caller ID (STIR/SHAKEN full
attestation, Twilio's ``StirVerstat`` ``TN-Validation-Passed-A``). Otherwise the yes is
confirmed by text: the question goes to the number itself, and only a YES sent back from
it (an SMS reply reaches the number's real owner, not the spoofer) schedules anything.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import BindParameter, ColumnElement, and_
from sqlalchemy.orm import Session

from hotline.lifecycle import contacts
from hotline.followups import schedule as followups
from hotline.privacy import primitives as privacy
from hotline.core.extensions import settings
from hotline.lifecycle import effects
from hotline.models import Consent, Contact, ContactState, EventKind

#: Twilio's StirVerstat when the originating carrier vouches that the caller may use the
#: number (attestation A). B and C vouch only for the customer or the gateway, and a failed
#: or missing check vouches for nothing.
FULL_ATTESTATION = "TN-Validation-Passed-A"
#: How long a "would you like a check-in text?" question waits for its answer.
ANSWER_WINDOW = timedelta(hours=24)


def flows() -> followups.FollowUpFlows:
    """The follow-up texts of the current app."""
    return current_app.extensions["hotline.followups"]


def attested(stir_verstat: str | None) -> bool:
    """Whether a call's caller ID is vouched for by its carrier (full attestation)."""
    return (stir_verstat or "").strip() == FULL_ATTESTATION


def yes_on_the_call(session: Session, contact: Contact) -> str:
    """A yes pressed at the end of a call; returns the key of what to say back.

    Vouched-for caller ID: the follow-ups are scheduled now. Otherwise nothing is
    scheduled: the number is asked by text, as a caller who hung up first is, and only a
    YES from it counts (``answer_by_text``). A spoofer never sees that text.
    """
    if contact.caller_verified:
        agree(session, contact)
        return "consent_yes"
    ask_by_text(session, contact)
    return "consent_confirm"


def ask_by_text(session: Session, contact: Contact) -> None:
    """The caller left straight after the call: ask by a one-line text instead."""
    contact.consent = Consent.ASKED.value
    session.commit()
    effects.apply([effects.ask_consent(contact.id)])


def agree(session: Session, contact: Contact) -> None:
    """Yes: schedule the follow-ups, then forget the contact's own copy of the number."""
    number = privacy.unseal(contact.sealed_number, settings())
    contact.consent = Consent.YES.value
    contacts.event(session, contact, EventKind.FOLLOWUP_CONSENT)
    contacts.forget_number(session, contact)  # the follow-ups seal their own copies
    followups.schedule(session, contact, number, flows())  # commits it all, then enqueues


def decline(session: Session, contact: Contact) -> None:
    """No (or no answer): nothing will be sent, and the number is deleted."""
    contact.consent = Consent.NO.value
    contacts.event(session, contact, EventKind.FOLLOWUP_DECLINED)
    contacts.forget_number(session, contact)
    session.commit()


def awaiting_answer(asked_since: datetime | BindParameter) -> ColumnElement[bool]:
    """The contacts whose question still waits for a yes or no: asked when their contact
    ended, after ``asked_since`` (now less ANSWER_WINDOW). On the table's columns, so the
    SMS webhook's one read of its sender (hotline/text/conversations.py) stays plain Core."""
    c = Contact.__table__.c
    return and_(c.consent == Consent.ASKED.value, c.state == ContactState.ENDED.value,
                c.ended_at >= asked_since)


def answer_by_text(session: Session, contact: Contact, word: str) -> str | None:
    """A yes or no to the question, and what to text back; None when it is neither."""
    first = word.split()[0] if word.split() else ""
    if first in flows().yes_words and contact.sealed_number:
        agree(session, contact)
        return flows().message(contact.language, "consent_yes")
    if first in flows().no_words:
        decline(session, contact)
        return flows().message(contact.language, "consent_no")
    return None
