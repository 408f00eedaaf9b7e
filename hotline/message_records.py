"""The message records at Twilio: every sid is kept (never a body) until Twilio confirms
the body blanked and the media deleted, and with ``HOTLINE_TWILIO_LOG_DAYS`` until the
record itself is deleted there.

- ``record`` files a sid in the caller's transaction (a second filing is a no-op: status
  callbacks come several times). Incoming texts are filed before they are handled, so a
  handler that fails, or Redis being down, cannot lose one; the hotline's own texts (REST,
  TwiML replies, relays) are filed by their status callback, and REST ones on sending too.
- ``sweep`` (the auditor, every minute) redacts what is not yet redacted: Body="" then the
  media. A refusal (still queued or sending, a 429, Twilio unreachable) is tried again
  with backoff, for as long as it takes: nothing is given up.
- ``delete_old`` (the daily purge) deletes at Twilio the records older than
  ``HOTLINE_TWILIO_LOG_DAYS``, whatever their direction, and forgets their sids;
  ``forget_done`` forgets the sids with nothing left to do.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from hotline import twilio_api
from hotline.errors import TwilioApiError
from hotline.models import FollowUp, MessageSid, utcnow
from hotline.settings import Settings

log = logging.getLogger(__name__)

INBOUND, OUTBOUND = "inbound", "outbound"
#: Messages redacted per sweep: the auditor runs every minute, the rest wait one.
BATCH = 100
#: Refusals in a row after which a sweep stops (the rest wait for the next minute).
GIVE_WAY = 3
#: Backoff of a refused redaction: 1 minute, doubling, at most an hour between tries.
FIRST_RETRY = timedelta(minutes=1)
LAST_RETRY = timedelta(hours=1)
#: A redacted sid is kept this long when no deletion at Twilio is due (a late status
#: callback then finds it and files nothing new).
KEEP_DONE = timedelta(days=7)


def file_sid(session: Session, sid: str | None, direction: str) -> None:
    """File ``sid`` as a message at Twilio still to redact (no commit: the caller's)."""
    if not sid:
        return
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    session.execute(insert(MessageSid).values(
        sid=sid, direction=direction, created_at=utcnow(), tries=0)
        .on_conflict_do_nothing(index_elements=["sid"]))


def backoff(tries: int) -> timedelta:
    """The wait after the ``tries``-th refusal."""
    return min(LAST_RETRY, FIRST_RETRY * 2 ** min(max(tries - 1, 0), 16))


def sweep(session: Session, settings: Settings, now: datetime | None = None) -> int:
    """Redact at Twilio the messages not yet redacted and due a try; returns how many
    Twilio confirmed. Does nothing when HOTLINE_REDACT_AT_TWILIO is off."""
    if not settings.REDACT_AT_TWILIO:
        return 0
    now = now or utcnow()
    due = session.scalars(select(MessageSid).where(
        MessageSid.redacted_at.is_(None),
        or_(MessageSid.next_try_at.is_(None), MessageSid.next_try_at <= now))
        .order_by(MessageSid.created_at).limit(BATCH)).all()
    confirmed = refused = 0
    for row in due:
        if refused >= GIVE_WAY:
            break  # Twilio is likely down: keep the auditor's pass short, go on next minute
        try:
            media = twilio_api.redact_message(settings, row.sid)
            if media:
                twilio_api.delete_media(settings, row.sid)
        except TwilioApiError as exc:  # refused for now: later, never given up
            row.tries += 1
            row.next_try_at = now + backoff(row.tries)
            log.info("message not redacted yet (try %s): %s", row.tries, exc)
            refused += 1
        else:
            row.redacted_at = now
            confirmed += 1
            refused = 0
        session.commit()
    return confirmed


def delete_old(session: Session, before: datetime, settings: Settings) -> dict[str, int]:
    """Delete at Twilio every message record from before ``before`` (in, out or relayed;
    its media go with it), then forget the sid. A failure is tried again next run."""
    sids = session.scalars(select(MessageSid.sid).where(MessageSid.created_at < before)
                           .order_by(MessageSid.created_at)).all()
    deleted = failed = 0
    for sid in sids:
        try:
            twilio_api.delete_message(settings, sid)
        except TwilioApiError as exc:
            log.warning("twilio message record not deleted: %s", exc)
            failed += 1
            continue
        session.execute(delete(MessageSid).where(MessageSid.sid == sid))
        session.execute(update(FollowUp).where(FollowUp.message_sid == sid)
                        .values(message_sid=None))
        session.commit()
        deleted += 1
    return {"twilio_messages": deleted, "twilio_messages_failed": failed}


def forget_done(session: Session, now: datetime, settings: Settings) -> int:
    """Forget the sids with nothing left to do at Twilio: redacted (or redaction is off),
    a week old, and no deletion there to come (HOTLINE_TWILIO_LOG_DAYS off)."""
    if settings.TWILIO_LOG_DAYS:
        return 0  # each is forgotten once ``delete_old`` deleted it
    done = MessageSid.created_at < now - KEEP_DONE
    if settings.REDACT_AT_TWILIO:
        done = done & MessageSid.redacted_at.is_not(None)
    return max(session.execute(delete(MessageSid).where(done)).rowcount or 0, 0)
