"""Sending a follow-up exactly once, whatever retries, duplicates or crashes happen.

An idempotency record is written before the text goes out (state SENDING with the time);
a run that finds SENDING (the worker died mid-send, or Twilio errored) first asks Twilio
whether a text to that number went out since then, and only sends if none did.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from hotline import followups, privacy, twilio_api
from hotline.errors import TwilioApiError
from hotline.extensions import db, settings
from hotline.contacts import event
from hotline.models import Contact, FollowUp, FollowUpState, OptOut, utcnow

log = logging.getLogger(__name__)

#: A due time this close to now is sent now rather than rescheduled.
SLACK = timedelta(minutes=1)


def send_followup(followup_id: int) -> str:
    """Send one follow-up if it is still due, allowed and not sent already."""
    followup = db.session.get(FollowUp, followup_id)
    if followup is None or followup.state not in (FollowUpState.SCHEDULED.value,
                                                  FollowUpState.SENDING.value):
        return "nothing to do"
    cfg = settings()
    if db.session.get(OptOut, followup.caller_key) is not None or not followup.sealed_number:
        followups.cancel_for(db.session, followup.caller_key)
        return "canceled"
    number = privacy.unseal(followup.sealed_number, cfg)
    now = utcnow()
    when = followups.decent_time(now, followups.timezone_for(number, cfg), cfg)
    if when > now + SLACK:  # the scheduler ran late into quiet hours: wait for the morning
        followup.due_at = when
        db.session.commit()
        followups.enqueue(followup)
        return "rescheduled"
    if followup.state == FollowUpState.SENDING.value:
        sid = twilio_api.find_sent(cfg, number, since=followup.sending_at)
        if sid:
            return _sent(followup, sid, "recovered")
    followup.state = FollowUpState.SENDING.value
    followup.sending_at = now
    db.session.commit()  # the idempotency record, before anything leaves
    body = _flows().message(followup.language, followup.kind)
    sid = twilio_api.send_message(cfg, number, body)  # TwilioApiError: RQ retries
    return _sent(followup, sid, "sent")


def _sent(followup: FollowUp, sid: str, how: str) -> str:
    followup.state = FollowUpState.SENT.value
    followup.sent_at = utcnow()
    followup.message_sid = sid
    followup.awaiting = "helpful" if followup.kind == "survey" else None
    followup.sealed_number = None  # this text was its last use
    db.session.commit()
    contact = db.session.get(Contact, followup.contact_id)
    if contact is not None:
        event(db.session, contact, "followup_sent")
        db.session.commit()
    log.info("follow-up %s %s", followup.id, how)
    return how


def _flows() -> followups.FollowUpFlows:
    from flask import current_app
    return current_app.extensions["hotline.followups"]


__all__ = ["send_followup", "TwilioApiError"]
