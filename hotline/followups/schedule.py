"""Consented check-in texts: when they go out, and what a reply to one means.

Delays come from ivr_flows/followups.yaml; a text is only sent between SEND_FROM_HOUR and
SEND_UNTIL_HOUR in the clinician's local time (the time zone of their number, or the
program's when a number spans several zones); a time outside moves to the next morning,
spread over its first hour.
Scheduling is RQ's (a scheduled job with a deterministic job id: a follow-up scheduled
twice is one job), written in pipelined batches so that restoring a whole Redis's worth of
follow-ups takes seconds. Scores are stored with the day and channel only.
"""

from __future__ import annotations

import logging
import math
import re
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from itertools import islice
from pathlib import Path
from zoneinfo import ZoneInfo

import phonenumbers
from phonenumbers import timezone as number_timezones
from rq import Retry, get_current_job
from rq.job import Job, JobStatus
from sqlalchemy import select
from sqlalchemy.orm import Session

from hotline.models.followups import REPLY_WINDOW
from hotline.privacy import primitives as privacy
from hotline.core.errors import FlowError
from hotline.core.extensions import jobs, settings
from hotline.core.flows import Language, check_texts, load_languages, read_yaml
from hotline.lifecycle import effects
from hotline.models import Contact, EventKind, FollowUp, FollowUpState, Score, utcnow
from hotline.core.settings import Settings
from hotline.core.urls import public_url
from hotline.telephony import api as twilio_api
from hotline.lifecycle.contacts import event

log = logging.getLogger(__name__)

FOLLOWUP_FILE = "followups.yaml"
UNITS = {"m": "minutes", "h": "hours", "d": "days"}
#: Every text of followups.yaml the code sends or speaks (follow-ups, consent, a missed
#: callback): each must exist in every language.
MESSAGES = frozenset({"consent_voice", "consent_text", "consent_yes", "consent_no",
                      "consent_confirm", "survey", "burnout", "checkin", "thanks",
                      "callback_missed"})
#: Sending retries on Twilio errors, with backoff.
SEND_RETRY = Retry(max=4, interval=[30, 120, 600, 1800])
#: Texts moved out of quiet hours go out over the first hour of the morning, not all in its
#: first second: a night's follow-ups due at 08:00:00 at once would queue behind each other
#: (and in front of the routing of live calls) and meet the sender's rate limit at Twilio.
MORNING_SPREAD_SECONDS = 3600
#: Jobs written to Redis per round trip (one MULTI/EXEC): big enough to amortise the trip,
#: small enough that a batch is a few hundred kilobytes and never blocks Redis for long.
ENQUEUE_BATCH = 1000
#: Redis lock of ``restore``, and how long one restore may hold it (or be waited for).
RESTORE_LOCK = "hotline:lock:followups-restore"
RESTORE_LOCK_SECONDS = 300


@dataclass(frozen=True)
class FollowUpFlows:
    delays: tuple[timedelta, ...]
    messages: dict[str, dict[str, str]]
    #: Words that answer "would you like a check-in text?" by text, in any language.
    yes_words: frozenset[str] = frozenset()
    no_words: frozenset[str] = frozenset()

    def message(self, lang: str, key: str) -> str:
        return (self.messages.get(lang) or self.messages["en"])[key]


def load(folder: str | Path, languages: dict[str, Language] | None = None) -> FollowUpFlows:
    """Read and validate ``followups.yaml`` (languages from ``languages.yaml``)."""
    path = Path(folder) / FOLLOWUP_FILE
    data = read_yaml(path)
    languages = languages if languages is not None else load_languages(folder)
    delays = []
    for raw in data.get("delays") or []:
        match = re.fullmatch(r"(\d+)([mhd])", str(raw).strip())
        if not match:
            raise FlowError(f"{path}: delay {raw!r} must look like 30m, 24h or 7d")
        delays.append(timedelta(**{UNITS[match[2]]: int(match[1])}))
    if not delays:
        raise FlowError(f"{path}: 'delays' needs at least one delay")
    messages = data.get("messages")
    check_texts(path, "messages", messages, languages, set(), MESSAGES)
    answers = data.get("consent_words")
    if not isinstance(answers, dict) or set(answers) != {"yes", "no"} or not all(
            isinstance(words, list) and words for words in answers.values()):
        raise FlowError(f"{path}: consent_words needs lists of 'yes' and 'no' words")
    yes, no = ({str(w).strip().upper() for w in answers[k]} for k in ("yes", "no"))
    if yes & no:
        raise FlowError(f"{path}: consent_words: {sorted(yes & no)} both yes and no")
    return FollowUpFlows(delays=tuple(delays), messages=messages, yes_words=frozenset(yes),
                         no_words=frozenset(no))


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
        due = send_time(now + delay * cfg.FOLLOWUP_DELAY_SCALE, zone, cfg, contact.caller_key)
        followup = FollowUp(contact_id=contact.id, caller_key=contact.caller_key,
                            sealed_number=privacy.seal(number, cfg), sequence=sequence,
                            kind="survey" if sequence == 1 else "checkin",
                            channel=contact.channel, language=contact.language, due_at=due)
        session.add(followup)
        made.append(followup)
    session.commit()
    enqueue_many(made)
    return made


def send_time(wanted: datetime, zone: ZoneInfo, cfg: Settings, caller_key: str) -> datetime:
    """When a follow-up wanted at ``wanted`` goes out: then if it is in sending hours, else
    in the first hour of the next morning (the same minute for every text of one caller)."""
    due = decent_time(wanted, zone, cfg)
    if due != wanted:
        due += timedelta(seconds=zlib.crc32(caller_key.encode()) % MORNING_SPREAD_SECONDS)
    return whole_second(due)


def whole_second(when: datetime) -> datetime:
    """``when`` rounded up to a whole second: RQ's scheduler counts whole seconds, so a job
    due at 12:00:00.7 would otherwise be moved to the queue at 12:00:00, before its time."""
    return when + timedelta(microseconds=-when.microsecond % 1_000_000)


def enqueue(followup: FollowUp) -> None:
    """(Re)schedule the send job of a follow-up at its due time."""
    enqueue_many([followup])


def enqueue_many(followups: Iterable[FollowUp], batch: int = ENQUEUE_BATCH, *,
                 job: str = effects.SEND_FOLLOWUP,
                 job_id_of: Callable[[int], str] = job_id) -> int:
    """(Re)schedule the send jobs of many follow-ups, ``batch`` jobs per Redis round trip.
    Any scheduled text with an ``id`` and a ``due_at`` goes the same way: ``job`` (a job
    name, called with the id) under ``job_id_of(id)`` (the training reminders do).

    What ``Queue.enqueue_at`` writes (the job hash, its place in the queue's
    ScheduledJobRegistry, the queue in the set of queues), but in one MULTI/EXEC per batch:
    RQ 2's ``enqueue_at(pipeline=...)`` still adds each job to the registry in a round trip
    of its own. Returns the number of jobs written.
    """
    queue = jobs.queue
    registry = queue.scheduled_job_registry
    count = 0
    pending = iter(followups)
    with queue.connection.pipeline() as pipe:
        while chunk := list(islice(pending, batch)):
            pipe.sadd(queue.redis_queues_keys, queue.key)
            scores = {}
            for followup in chunk:
                made = queue.create_job(job, args=(followup.id,),
                                        job_id=job_id_of(followup.id), retry=SEND_RETRY,
                                        status=JobStatus.SCHEDULED)
                made.save(pipeline=pipe)
                pipe.persist(made.key)  # a finished run's hash of the same id was expiring
                scores[made.id] = math.ceil(followup.due_at.timestamp())
            pipe.zadd(registry.key, scores)
            pipe.execute()
            count += len(chunk)
    return count


def restore(session: Session, batch: int = ENQUEUE_BATCH) -> int:
    """Schedule again every pending follow-up whose job Redis no longer has (a Redis
    without persistence restarted, or was flushed); returns how many. Cheap when nothing
    is missing: one query, then one EXISTS per follow-up, pipelined. One process at a time
    (workers starting together): a job restored twice could run twice at once."""
    restored = restore_missing(session, FollowUp, batch)
    if restored:
        log.warning("restored %s follow-up jobs missing from Redis", restored)
    return restored


def restore_missing(session: Session, model: type, batch: int = ENQUEUE_BATCH, *,
                    job: str = effects.SEND_FOLLOWUP,
                    job_id_of: Callable[[int], str] = job_id) -> int:
    """``restore`` for any table of scheduled texts (``id``, ``due_at``, ``state`` in the
    follow-ups' states): the training reminders use it too, under the same lock."""
    connection = jobs.queue.connection
    with connection.lock(RESTORE_LOCK, timeout=RESTORE_LOCK_SECONDS,
                         blocking_timeout=RESTORE_LOCK_SECONDS):
        rows = session.execute(select(model.id, model.due_at).where(
            model.state.in_([FollowUpState.SCHEDULED.value, FollowUpState.SENDING.value])
        ).order_by(model.id))
        missing = []
        while chunk := rows.fetchmany(batch * 10):
            with connection.pipeline(transaction=False) as pipe:
                for row in chunk:
                    pipe.exists(Job.key_for(job_id_of(row.id)))
                found = pipe.execute()
            missing.extend(row for row, exists in zip(chunk, found) if not exists)
        restored = enqueue_many(missing, batch, job=job, job_id_of=job_id_of)
        session.commit()  # ends the read; the lock is released next
    return restored


def run_again(record: object, delay: timedelta, own_job_id: str,
              job: str = effects.SEND_FOLLOWUP) -> None:
    """From inside a send job: run it again ``delay`` from now (quiet hours).

    From inside the job itself, scheduling it anew under its own id does not last: once
    this run returns, RQ marks the job finished and lets it expire (500 s), and the text
    would wait for the auditor. RQ's repeat schedules the job again after that instead.
    Run outside its own job (tests, the auditor), ``record`` is scheduled anew instead.
    """
    current = get_current_job()
    if current is None or current.id != own_job_id:  # not run as its own job
        enqueue_many([record], job=job, job_id_of=lambda _id: own_job_id)
        return
    current.repeats_left = 1
    current.repeat_intervals = [max(1, math.ceil(delay.total_seconds()))]


def send_once(session: Session, record: object, number: str, body: str,
              cfg: Settings, now: datetime, match_body: bool = False) -> tuple[str, str]:
    """Send ``body`` to ``number`` exactly once for ``record`` (a follow-up, a training
    reminder: ``state`` and ``sending_at``); returns (sid, "sent" or "recovered").

    An idempotency record is written before the text goes out (state SENDING with the
    time); a run that finds SENDING (the worker died mid-send, or Twilio errored) first
    asks Twilio whether this text went out to that number since then, and only sends if
    none did (``match_body``: only this text counts, for a number that gets others too).
    TwilioApiError propagates: the job's retries try again.
    """
    if record.state == FollowUpState.SENDING.value:
        sid = twilio_api.find_sent(cfg, number, since=record.sending_at,
                                   body=body if match_body else None)
        if sid:
            return sid, "recovered"
    record.state = FollowUpState.SENDING.value
    record.sending_at = now
    session.commit()  # the idempotency record, before anything leaves
    return twilio_api.send_message(cfg, number, body,
                                   status_callback=public_url("sms.status")), "sent"


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
    jobs.cancel(job_id(followup_id))


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
            event(session, contact, EventKind.FOLLOWUP_REPLY)
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
