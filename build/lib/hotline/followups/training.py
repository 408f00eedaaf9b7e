"""Training reminder texts: to a supporter 30 and 7 days before their refresher is due, and
a weekly digest to the coordinators (HOTLINE_COORDINATOR_PHONES) of who lapses within 60
days. The rule itself (who is trained) is ``hotline.roster.training``'s.

They go the follow-ups' way (``hotline.followups.schedule``), not a second one: a row per
text (``TrainingReminder``, its ``key`` saying what it is for, so planning twice makes one
row), an RQ job scheduled under a deterministic id (``job_id``), sent only in sending
hours (HOTLINE_SEND_FROM_HOUR to HOTLINE_SEND_UNTIL_HOUR, the recipient's local time,
spread over the morning's first hour), and exactly once through ``schedule.send_once``
(the SENDING record before the text leaves; a worker killed mid-send leaves it, and the
retry asks Twilio whether this text went out before sending).

``plan`` makes the rows for what is due and schedules every job Redis lacks: the auditor
runs it every minute and every worker at start, so a training recorded by the CLI (no job
queue), a new week, or a Redis that lost its jobs are all picked up within a minute. A
reminder whose supporter has since left the roster or recorded a refresher (their date
moved) is canceled when its time comes; a reminder whose day passed before it was planned
(a refresher recorded 10 days before it is due) is not made: the 7-day one still comes.
"""

from __future__ import annotations

import logging
import zlib
from datetime import date, datetime, time, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from hotline.core.extensions import db, settings
from hotline.followups import schedule
from hotline.lifecycle import effects
from hotline.models import FollowUpState, Supporter, TrainingReminder, insert_for, utcnow
from hotline.privacy import keys
from hotline.roster import training
from hotline.roster.shifts import program_zone
from hotline.telephony import message_records, outbound

log = logging.getLogger(__name__)

#: Days before the refresher date a supporter is reminded.
REMINDER_DAYS = (30, 7)
#: A due time this close to now is sent now rather than rescheduled (as follow-ups).
SLACK = timedelta(minutes=1)
#: Names listed in one digest text; the rest are counted (the roster page lists them all).
DIGEST_NAMES = 15


def job_id(reminder_id: int) -> str:
    """One RQ job per training text, whatever schedules it and however often."""
    return f"hotline-training-{reminder_id}"


def _morning(day: date, zone, key: str) -> datetime:
    """The first sending hour of ``day`` in ``zone``, spread by ``key`` over that hour."""
    cfg = settings()
    start = datetime.combine(day, time(cfg.SEND_FROM_HOUR), zone) + timedelta(
        seconds=zlib.crc32(key.encode()) % schedule.MORNING_SPREAD_SECONDS)
    return schedule.whole_second(schedule.decent_time(start, zone, cfg))


def wanted(session: Session, now: datetime) -> list[dict]:
    """The rows every text due from today on needs (existing ones are kept as they are)."""
    cfg = settings()
    on = training.today(now)
    rows = []
    for s in session.scalars(select(Supporter).where(
            Supporter.active.is_(True), Supporter.trained_on.is_not(None),
            Supporter.refresher_due.is_not(None))):
        for days in REMINDER_DAYS:
            day = s.refresher_due - timedelta(days=days)
            if day < on:
                continue  # its day passed before it was planned
            key = f"due_{days}:{s.id}:{s.refresher_due:%Y-%m-%d}"
            rows.append({"key": key, "kind": f"due_{days}", "supporter_id": s.id,
                         "recipient": None, "for_date": s.refresher_due,
                         "due_at": _morning(day, schedule.timezone_for(s.phone, cfg), key)})
    monday = on - timedelta(days=on.weekday())
    for phone in cfg.COORDINATOR_PHONES:
        key = f"digest:{monday:%Y-%m-%d}:{phone}"
        rows.append({"key": key, "kind": "digest", "supporter_id": None, "recipient": phone,
                     "for_date": monday, "due_at": _morning(monday, program_zone(), key)})
    return rows


def plan(session: Session, now: datetime | None = None) -> int:
    """Make the rows of every training text now due from today on, and schedule every
    job Redis lacks (new rows, and those a Redis loss took); returns jobs scheduled."""
    now = now or utcnow()
    rows = wanted(session, now)
    if rows:
        made = [dict(row, state=FollowUpState.SCHEDULED.value, created_at=now) for row in rows]
        session.execute(insert_for(session, TrainingReminder).values(made)
                        .on_conflict_do_nothing(index_elements=["key"]))
    session.commit()
    return schedule.restore_missing(session, TrainingReminder,
                                    job=effects.SEND_TRAINING_REMINDER, job_id_of=job_id)


def send(reminder_id: int) -> str:
    """Send one training text if it is still due, still true and not sent already."""
    session = db.session
    reminder = session.get(TrainingReminder, reminder_id)
    if reminder is None or reminder.state not in (FollowUpState.SCHEDULED.value,
                                                  FollowUpState.SENDING.value):
        return "nothing to do"
    cfg = settings()
    now = utcnow()
    number, body = _what(session, reminder, now)
    if number is None or keys.opted_out(session, number, cfg):
        reminder.state = FollowUpState.CANCELED.value
        session.commit()
        return "canceled"
    # Not before its time (a job run early: a duplicate, a restore), nor in quiet hours.
    when = schedule.decent_time(max(now, reminder.due_at), schedule.timezone_for(number, cfg),
                                cfg)
    if when > now + SLACK:  # the scheduler ran late into quiet hours: wait for the morning
        reminder.due_at = when
        session.commit()
        schedule.run_again(reminder, when - now, job_id(reminder.id),
                           job=effects.SEND_TRAINING_REMINDER)
        return "rescheduled"
    # TwilioApiError propagates: RQ retries (schedule.SEND_RETRY)
    sid, how = schedule.send_once(session, reminder, number, body, cfg, now, match_body=True)
    reminder.state = FollowUpState.SENT.value
    reminder.sent_at = utcnow()
    reminder.message_sid = sid
    message_records.file_sid(session, sid, message_records.OUTBOUND)  # to redact at Twilio
    session.commit()
    log.info("training text %s %s", reminder.id, how)
    return how


def _what(session: Session, reminder: TrainingReminder,
          now: datetime) -> tuple[str | None, str]:
    """(number, text) of a reminder, or (None, "") when it no longer holds."""
    flows = outbound.text_flows()
    cfg = settings()
    if reminder.kind == "digest":
        if reminder.recipient not in cfg.COORDINATOR_PHONES:
            return None, ""  # no longer a coordinator's number
        body = digest_text(session, now)
        return (reminder.recipient, body) if body else (None, "")
    supporter = session.get(Supporter, reminder.supporter_id)
    if (supporter is None or not supporter.active or supporter.trained_on is None
            or supporter.refresher_due != reminder.for_date):
        return None, ""  # left the roster, or a refresher moved the date
    return supporter.phone, flows.message(
        "en", "training_reminder", when=f"{reminder.for_date:%Y-%m-%d}",
        coordinator=cfg.COORDINATOR_CONTACT)


def digest_text(session: Session, now: datetime) -> str:
    """The coordinators' weekly text: who lapses within DIGEST_DAYS (lapsed and without a
    record too); "" when nobody does (no text is sent)."""
    flows = outbound.text_flows()
    on = training.today(now)
    people = training.lapsing(session, now)
    if not people:
        return ""
    parts = []
    for s in people[:DIGEST_NAMES]:
        state = training.state_of(s, on)
        if state is training.TrainingState.UNRECORDED:
            parts.append(flows.message("en", "training_digest_none", name=s.name))
        else:
            key = "training_digest_lapsed" if state is training.TrainingState.LAPSED \
                else "training_digest_due"
            parts.append(flows.message("en", key, name=s.name,
                                       when=f"{s.refresher_due:%Y-%m-%d}"))
    if len(people) > DIGEST_NAMES:
        parts.append(flows.message("en", "training_digest_more",
                                   count=len(people) - DIGEST_NAMES))
    return flows.message("en", "training_digest", count=training.DIGEST_DAYS,
                         names="; ".join(parts))


