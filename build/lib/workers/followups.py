"""Sending a follow-up exactly once, whatever retries, duplicates or crashes happen.

An idempotency record is written before the text goes out (state SENDING with the time);
a run that finds SENDING (the worker died mid-send, or Twilio errored) first asks Twilio
whether a text to that number went out since then, and only sends if none did.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import select

from hotline.followups import schedule as followups
from hotline.telephony import message_records
from hotline.privacy import primitives as privacy
from hotline.lifecycle.contacts import event
from hotline.core.errors import TwilioApiError
from hotline.core.extensions import db, settings
from hotline.monitoring import counters
from hotline.models import Contact, EventKind, FollowUp, FollowUpState, OptOut, utcnow
from flask import current_app

log = logging.getLogger(__name__)

#: A due time this close to now is sent now rather than rescheduled.
SLACK = timedelta(minutes=1)


def send_followup(followup_id: int) -> str:
    """Send one follow-up if it is still due, allowed and not sent already."""
    row = db.session.execute(
        select(FollowUp, Contact, OptOut.caller_key.label("opted_out"))
        .outerjoin(Contact, Contact.id == FollowUp.contact_id)
        .outerjoin(OptOut, OptOut.caller_key == FollowUp.caller_key)
        .where(FollowUp.id == followup_id)).first()  # one round trip for all three
    if row is None or row.FollowUp.state not in (FollowUpState.SCHEDULED.value,
                                                 FollowUpState.SENDING.value):
        return "nothing to do"
    followup, contact = row.FollowUp, row.Contact
    cfg = settings()
    if row.opted_out is not None or not followup.sealed_number:
        followups.cancel_for(db.session, followup.caller_key)
        return "canceled"
    number = privacy.unseal(followup.sealed_number, cfg)
    now = utcnow()
    when = followups.decent_time(now, followups.timezone_for(number, cfg), cfg)
    if when > now + SLACK:  # the scheduler ran late into quiet hours: wait for the morning
        followup.due_at = when
        db.session.commit()
        _run_again(followup, when - now)
        return "rescheduled"
    body = _flows().message(followup.language, followup.kind)
    # TwilioApiError: RQ retries
    sid, how = followups.send_once(db.session, followup, number, body, cfg, now)
    return _sent(followup, contact, sid, how)


def _run_again(followup: FollowUp, delay: timedelta) -> None:
    """Schedule this follow-up's job again ``delay`` from now (``followups.run_again``)."""
    followups.run_again(followup, delay, followups.job_id(followup.id))


def _sent(followup: FollowUp, contact: Contact | None, sid: str, how: str) -> str:
    """Sent: the follow-up's state and its statistics event in one transaction."""
    followup.state = FollowUpState.SENT.value
    followup.sent_at = utcnow()
    followup.message_sid = sid
    message_records.file_sid(db.session, sid, message_records.OUTBOUND)  # to redact at Twilio
    followup.awaiting = "helpful" if followup.kind == "survey" else None
    followup.sealed_number = None  # this text was its last use
    if contact is not None:
        event(db.session, contact, EventKind.FOLLOWUP_SENT)
    counters.count_on_commit(db.session, "followups_sent", kind=followup.kind)
    db.session.commit()
    log.info("follow-up %s %s", followup.id, how)
    return how


def _flows() -> followups.FollowUpFlows:
    return current_app.extensions["hotline.followups"]


__all__ = ["TwilioApiError", "send_followup"]
