"""The facilitators' reminder texts: the day before a debrief and 15 minutes before.

They go the follow-ups' way (``hotline.followups.schedule``): a row per text, an RQ job
under a deterministic id, and exactly once through ``schedule.send_once`` (the SENDING
record before the text leaves; a retry asks Twilio whether it went out). The day-before
text keeps to sending hours (the supporter's local time); the 15-minute one goes when it
is due (the debrief is then). The rows are deleted when the debrief ends.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from hotline.core import flows
from hotline.core.extensions import db, jobs, settings
from hotline.debriefs import texts
from hotline.followups import schedule
from hotline.models import Debrief, DebriefReminder, DebriefState, FollowUpState, Supporter, utcnow
from hotline.privacy import keys
from hotline.roster.shifts import program_zone
from hotline.telephony import message_records

log = logging.getLogger(__name__)

SEND_JOB = "workers.debriefs.send_reminder"
#: (kind, how long before the start); the text key is ``reminder_<kind>``.
WHEN = (("day_before", timedelta(days=1)), ("soon", timedelta(minutes=15)))
#: A due time this close to now is sent now rather than rescheduled.
SLACK = timedelta(minutes=1)


def job_id(reminder_id: int) -> str:
    """One RQ job per reminder text."""
    return f"hotline-debrief-reminder-{reminder_id}"


def plan(session: Session, debrief: Debrief, facilitating: Iterable[Supporter],
         now: datetime) -> list[DebriefReminder]:
    """The reminder rows of a new debrief (flushed; enqueue them after the commit). A
    reminder whose time has passed is not made, except the 15-minute one: sent now."""
    cfg = settings()
    made = []
    for supporter in facilitating:
        for kind, before in WHEN:
            due = debrief.starts_at - before
            if kind == "day_before":
                if due <= now:
                    continue
                due = schedule.decent_time(due, schedule.timezone_for(supporter.phone, cfg),
                                           cfg)
                if due >= debrief.starts_at - WHEN[1][1]:
                    continue  # quiet hours pushed it past the other reminder
            due = schedule.whole_second(max(due, now))
            reminder = DebriefReminder(debrief_id=debrief.id, supporter_id=supporter.id,
                                       kind=kind, due_at=due)
            session.add(reminder)
            made.append(reminder)
    session.flush()
    return made


def enqueue(planned: list[DebriefReminder]) -> None:
    schedule.enqueue_many(planned, job=SEND_JOB, job_id_of=job_id)


def restore(session: Session) -> int:
    """Schedule again every pending reminder whose job Redis lost."""
    return schedule.restore_missing(session, DebriefReminder, job=SEND_JOB, job_id_of=job_id)


def cancel_jobs(reminder_ids: Iterable[int]) -> None:
    for reminder_id in reminder_ids:
        jobs.cancel(job_id(reminder_id))


def send(reminder_id: int) -> str:
    """Send one reminder if its debrief is still on and it was not sent already."""
    session = db.session
    reminder = session.get(DebriefReminder, reminder_id)
    if reminder is None or reminder.state not in (FollowUpState.SCHEDULED.value,
                                                  FollowUpState.SENDING.value):
        return "nothing to do"
    debrief = session.get(Debrief, reminder.debrief_id)
    supporter = session.get(Supporter, reminder.supporter_id)
    cfg = settings()
    now = utcnow()
    if debrief is None or debrief.state != DebriefState.SCHEDULED or supporter is None \
            or not supporter.active or keys.opted_out(session, supporter.phone, cfg):
        reminder.state = FollowUpState.CANCELED.value
        session.commit()
        return "canceled"
    if reminder.kind == "day_before":
        decent = schedule.decent_time(max(now, reminder.due_at),
                                      schedule.timezone_for(supporter.phone, cfg), cfg)
        if decent > now + SLACK:  # the scheduler ran late into quiet hours
            reminder.due_at = decent
            session.commit()
            schedule.run_again(reminder, decent - now, job_id(reminder.id), job=SEND_JOB)
            return "rescheduled"
    language = supporter.languages.split(",")[0] or "en"
    if language not in flows.current().languages:
        language = "en"
    local = debrief.starts_at.astimezone(program_zone())
    body = texts.current().text(
        language, f"reminder_{reminder.kind}",
        when=f"{local:%H:%M}" if reminder.kind == "soon" else when(debrief.starts_at, language),
        minutes=flows.duration(language, debrief.minutes), number=cfg.HOTLINE_NUMBER)
    # TwilioApiError propagates: RQ retries (schedule.SEND_RETRY)
    sid, how = schedule.send_once(session, reminder, supporter.phone, body, cfg, now,
                                  match_body=True)
    reminder.state = FollowUpState.SENT.value
    reminder.sent_at = utcnow()
    message_records.file_sid(session, sid, message_records.OUTBOUND)  # to redact at Twilio
    session.commit()
    log.info("debrief reminder %s %s", reminder.id, how)
    return how


def when(moment: datetime, language: str) -> str:
    """A start as people read it, in the program's time zone: "Thursday 2026-07-02 14:00 EDT"."""
    local = moment.astimezone(program_zone())
    day = flows.current().prompt(language, "weekdays")[local.weekday()]
    return f"{day} {local:%Y-%m-%d %H:%M %Z}"
