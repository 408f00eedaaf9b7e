"""Consented check-in texts: when they go out, and what a reply to one means.

Delays come from ivr_flows/followups.yaml; a text is only sent between SEND_FROM_HOUR and
SEND_UNTIL_HOUR in the clinician's local time (the time zone of their number, or the
program's when a number spans several zones); a time outside moves to the next morning.
Scheduling is RQ's (``enqueue_at`` with a deterministic job id: a follow-up scheduled twice
is one job). Scores are stored with the day and channel only.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import phonenumbers
from phonenumbers import timezone as number_timezones
from rq import Retry
from rq.exceptions import NoSuchJobError
from rq.job import Job
from sqlalchemy import select
from sqlalchemy.orm import Session

from hotline import privacy
from hotline.errors import FlowError
from hotline.extensions import jobs, settings
from hotline.flows import read_yaml
from hotline.models import Contact, FollowUp, FollowUpState, Score, utcnow
from hotline.settings import Settings

log = logging.getLogger(__name__)

FOLLOWUP_FILE = "followups.yaml"
UNITS = {"m": "minutes", "h": "hours", "d": "days"}
#: Sending retries on Twilio errors, with backoff.
SEND_RETRY = Retry(max=4, interval=[30, 120, 600, 1800])
#: How long after a follow-up a numeric reply still counts as its answer.
REPLY_WINDOW = timedelta(days=3)


@dataclass(frozen=True)
class FollowUpFlows:
    delays: tuple[timedelta, ...]
    messages: dict[str, dict[str, str]]

    def message(self, lang: str, key: str) -> str:
        return (self.messages.get(lang) or self.messages["en"])[key]


def load(folder: str | Path) -> FollowUpFlows:
    """Read and validate ``followups.yaml``."""
    path = Path(folder) / FOLLOWUP_FILE
    data = read_yaml(path)
    delays = []
    for raw in data.get("delays") or []:
        match = re.fullmatch(r"(\d+)([mhd])", str(raw).strip())
        if not match:
            raise FlowError(f"{path}: delay {raw!r} must look like 30m, 24h or 7d")
        delays.append(timedelta(**{UNITS[match[2]]: int(match[1])}))
    if not delays:
        raise FlowError(f"{path}: 'delays' needs at least one delay")
    messages = data.get("messages") or {}
    if set(messages) != {"en", "es"} or set(messages["en"]) != set(messages["es"]):
        raise FlowError(f"{path}: messages must have the same keys in en and es")
    return FollowUpFlows(delays=tuple(delays), messages=messages)


def timezone_for(e164: str, cfg: Settings) -> ZoneInfo:
    """The number's own time zone when it has exactly one, else the program's."""
    try:
        zones = number_timezones.time_zones_for_number(phonenumbers.parse(e164))
    except phonenumbers.NumberParseException:
        zones = ()
    real = [z for z in zones if z != "Etc/Unknown"]
    return ZoneInfo(real[0] if len(real) == 1 else cfg.TIMEZONE)


def decent_time(when: datetime, zone: ZoneInfo, cfg: Settings) -> datetime:
    """``when`` if it falls in sending hours locally, else the next morning's first hour."""
    local = when.astimezone(zone)
    start = time(cfg.SEND_FROM_HOUR)
    if local.time() < start:
        local = datetime.combine(local.date(), start, zone)
    elif cfg.SEND_UNTIL_HOUR < 24 and local.hour >= cfg.SEND_UNTIL_HOUR:
        local = datetime.combine(local.date() + timedelta(days=1), start, zone)
    return local.astimezone(when.tzinfo)


def job_id(followup_id: int) -> str:
    """One RQ job per follow-up, whatever schedules it and however often."""
    return f"hotline-followup-{followup_id}"


def schedule(session: Session, contact: Contact, number: str, flows: FollowUpFlows,
             now: datetime | None = None) -> list[FollowUp]:
    """Create and schedule every follow-up for a contact that said yes."""
    cfg = settings()
    now = now or utcnow()
    zone = timezone_for(number, cfg)
    made = []
    for sequence, delay in enumerate(flows.delays, start=1):
        due = decent_time(now + delay * cfg.FOLLOWUP_DELAY_SCALE, zone, cfg)
        followup = FollowUp(contact_id=contact.id, caller_key=contact.caller_key,
                            sealed_number=privacy.seal(number, cfg), sequence=sequence,
                            kind="survey" if sequence == 1 else "checkin",
                            channel=contact.channel, language=contact.language, due_at=due)
        session.add(followup)
        made.append(followup)
    session.commit()
    for followup in made:
        enqueue(followup)
    return made


def enqueue(followup: FollowUp) -> None:
    """(Re)schedule the send job of a follow-up at its due time."""
    from workers.followups import send_followup
    jobs.queue.enqueue_at(followup.due_at, send_followup, followup.id,
                          job_id=job_id(followup.id), retry=SEND_RETRY)


def cancel_for(session: Session, caller_key: str) -> int:
    """STOP: every pending follow-up of this caller is canceled and its number deleted."""
    pending = session.scalars(select(FollowUp).where(
        FollowUp.caller_key == caller_key,
        FollowUp.state.in_([FollowUpState.SCHEDULED.value, FollowUpState.SENDING.value])))
    count = 0
    for followup in pending:
        followup.state = FollowUpState.CANCELED.value
        followup.sealed_number = None
        _cancel_job(followup.id)
        count += 1
    for followup in session.scalars(select(FollowUp).where(FollowUp.caller_key == caller_key)):
        followup.awaiting = None
    session.commit()
    return count


def _cancel_job(followup_id: int) -> None:
    try:
        job = Job.fetch(job_id(followup_id), connection=jobs.queue.connection)
    except NoSuchJobError:
        return
    job.cancel()
    job.delete()


def answer(session: Session, caller_key: str, body: str, flows: FollowUpFlows,
           now: datetime | None = None) -> str | None:
    """A reply of 1 to 5 to a follow-up's question: store the score, say what comes next."""
    value = body.strip()
    if value not in {"1", "2", "3", "4", "5"}:
        return None
    now = now or utcnow()
    followup = session.scalar(select(FollowUp).where(
        FollowUp.caller_key == caller_key, FollowUp.awaiting.is_not(None),
        FollowUp.sent_at >= now - REPLY_WINDOW).order_by(FollowUp.id.desc()))
    if followup is None:
        return None
    session.add(Score(day=now.date(), channel=followup.channel, kind=followup.awaiting,
                      value=int(value)))
    if followup.awaiting == "helpful":  # one reply per follow-up in the statistics
        contact = session.get(Contact, followup.contact_id)
        if contact is not None:
            from hotline.contacts import event
            event(session, contact, "followup_reply")
    if followup.awaiting == "helpful" and settings().ASK_BURNOUT:
        followup.awaiting = "burnout"
        reply = flows.message(followup.language, "burnout")
    else:
        followup.awaiting = None
        followup.state = FollowUpState.REPLIED.value
        reply = flows.message(followup.language, "thanks")
    session.commit()
    log.info("follow-up %s answered", followup.id)
    return reply
