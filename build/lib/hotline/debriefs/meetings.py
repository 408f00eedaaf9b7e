"""A debrief's life: scheduled with a meeting code, joined by phone, ended and forgotten.

The code: 6 digits from ``secrets``, unique among live debriefs (the table's unique
``code_hash`` backs the check), stored only as a keyed hash (``privacy.code_hash``) and
cleared at the end; the plain code exists once, in the invitation the coordinator is
shown. A code opens ``OPENS_BEFORE`` the start and closes at the end (start + minutes).

Guessing is bounded twice: a call has ``TRIES`` tries, and every failed code (wrong, or
right but not open yet) counts against the calling number (its caller key) and against
all callers together, per clock hour, in Redis; past either limit no code is checked.

At the end (a scheduled job; ``end_overdue`` catches a lost one) everything but the day
and the number of participants is cleared and the reminders are deleted.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hotline.core import flows, phones
from hotline.core.errors import HotlineError
from hotline.core.extensions import jobs, redis_conn, settings
from hotline.debriefs import reminders, texts
from hotline.models import Debrief, DebriefReminder, DebriefState, Supporter, utcnow
from hotline.privacy import primitives as privacy
from hotline.roster.shifts import program_zone

log = logging.getLogger(__name__)

CODE_DIGITS = 6
#: A code works from this long before the start.
OPENS_BEFORE = timedelta(minutes=15)
#: Codes one call may try before it goes back to the menu.
TRIES = 3
#: The warning before the time is up.
WARN_BEFORE = timedelta(minutes=1)
#: Durations a coordinator may choose.
MIN_MINUTES, MAX_MINUTES = 15, 240
#: Facilitators a debrief has at most.
MAX_FACILITATORS = 2
#: The jobs (workers/debriefs.py), by name: nothing in hotline imports workers.
END_JOB = "workers.debriefs.end"
WARN_JOB = "workers.debriefs.warn"
CLOSE_ROOM_JOB = "workers.debriefs.close_room"
#: Seconds a failed-code counter lives (its clock hour, and some).
LIMIT_TTL = 2 * 3600


class DebriefError(HotlineError, ValueError):
    """A debrief that cannot be scheduled as asked (the message says why)."""


@dataclass(frozen=True)
class Scheduled:
    """What the coordinator is shown once: the code and the invitation to forward."""
    debrief_id: int
    code: str
    invitation: str


@dataclass(frozen=True)
class Check:
    """A code entered by phone: ``open`` (with the debrief), ``early``, ``wrong`` or
    ``limited`` (too many failed codes: not checked)."""
    kind: str
    debrief: Debrief | None = None


def room(debrief_id: int) -> str:
    """The Twilio conference's name (no event, no team: only the id)."""
    return f"hotline-debrief-{debrief_id}"


def ends_at(debrief: Debrief) -> datetime:
    return debrief.starts_at + timedelta(minutes=debrief.minutes)


def facilitators(session: Session, raw_phones: list[str]) -> list[Supporter]:
    """The active supporters with these roster numbers (1 or 2, distinct)."""
    if not 1 <= len(raw_phones) <= MAX_FACILITATORS:
        raise DebriefError("a debrief has one facilitator, or two")
    found = []
    for raw in raw_phones:
        number = phones.normalize(raw)
        supporter = session.scalar(select(Supporter).where(Supporter.phone == number,
                                                           Supporter.active.is_(True)))
        if supporter is None:
            raise DebriefError(f"no supporter on the roster has the number {number}")
        if supporter in found:
            raise DebriefError("the two facilitators must be different supporters")
        found.append(supporter)
    return found


def schedule(session: Session, starts_at: datetime, minutes: int, facilitating: list[Supporter],
             language: str = "en", now: datetime | None = None) -> Scheduled:
    """Schedule a debrief: its code, reminders and end; returns what is shown once."""
    now = now or utcnow()
    if not MIN_MINUTES <= minutes <= MAX_MINUTES:
        raise DebriefError(f"a debrief lasts {MIN_MINUTES} to {MAX_MINUTES} minutes")
    if starts_at.tzinfo is None:
        raise DebriefError("the start needs a time zone")
    if starts_at <= now:
        raise DebriefError("the start must be in the future")
    if not 1 <= len(facilitating) <= MAX_FACILITATORS:
        raise DebriefError("a debrief has one facilitator, or two")
    cfg = settings()
    for _ in range(20):  # a clash among live codes is rare (a handful among a million)
        code = f"{secrets.randbelow(10 ** CODE_DIGITS):0{CODE_DIGITS}d}"
        debrief = Debrief(day=starts_at.astimezone(program_zone()).date(), starts_at=starts_at,
                          minutes=minutes, facilitator_id=facilitating[0].id,
                          second_facilitator_id=facilitating[1].id if len(facilitating) > 1
                          else None, code_hash=privacy.code_hash(code, cfg),
                          state=DebriefState.SCHEDULED)
        session.add(debrief)
        try:
            session.flush()  # the unique code_hash: a live debrief has this code
        except IntegrityError:
            session.rollback()
            continue
        break
    else:  # pragma: no cover - twenty clashes in a row
        raise DebriefError("could not issue a meeting code; try again")
    planned = reminders.plan(session, debrief, facilitating, now)
    session.commit()
    reminders.enqueue(planned)
    end = ends_at(debrief)
    jobs.queue.enqueue_at(end - WARN_BEFORE, WARN_JOB, debrief.id,
                          job_id=f"hotline-debrief-warn-{debrief.id}")
    jobs.queue.enqueue_at(end, END_JOB, debrief.id, job_id=f"hotline-debrief-end-{debrief.id}")
    log.info("debrief %s scheduled", debrief.id)
    return Scheduled(debrief.id, code, invitation(debrief, code, language))


def invitation(debrief: Debrief, code: str, language: str) -> str:
    """The plain text a coordinator forwards: when, how long, the number and the code."""
    return texts.current().text(
        language, "invitation", when=reminders.when(debrief.starts_at, language),
        minutes=flows.duration(language, debrief.minutes),
        number=settings().HOTLINE_NUMBER, code=" ".join(code))


def check_code(session: Session, digits: str, caller_key: str,
               now: datetime | None = None) -> Check:
    """What a code entered by phone opens, counting failures against the limits."""
    now = now or utcnow()
    cfg = settings()
    hour = int(now.timestamp()) // 3600
    mine, everyone = (f"hotline:debrief:failed:{caller_key}:{hour}",
                      f"hotline:debrief:failed:all:{hour}")
    client = redis_conn.client
    counts = [int(c or 0) for c in client.mget(mine, everyone)]
    if counts[0] >= cfg.DEBRIEF_WRONG_CODES_PER_CALLER or \
            counts[1] >= cfg.DEBRIEF_WRONG_CODES_PER_HOUR:
        log.warning("meeting codes not checked: failed-code limit reached")
        return Check("limited")
    debrief = None
    if len(digits) == CODE_DIGITS and digits.isdigit():
        debrief = session.scalar(select(Debrief).where(
            Debrief.code_hash == privacy.code_hash(digits, cfg),
            Debrief.state == DebriefState.SCHEDULED))
    if debrief is not None and debrief.starts_at - OPENS_BEFORE <= now < ends_at(debrief):
        return Check("open", debrief)
    with client.pipeline() as pipe:
        for key in (mine, everyone):
            pipe.incr(key)
            pipe.expire(key, LIMIT_TTL)
        pipe.execute()
    if debrief is not None and now < debrief.starts_at - OPENS_BEFORE:
        return Check("early")
    return Check("wrong")


def facilitator_ids(debrief: Debrief) -> list[int]:
    return [i for i in (debrief.facilitator_id, debrief.second_facilitator_id) if i]


def is_facilitator(session: Session, debrief: Debrief, number: str | None) -> bool:
    """Whether ``number`` is the roster number of one of the debrief's facilitators."""
    if number is None:
        return False
    return session.scalar(select(Supporter.id).where(
        Supporter.phone == number, Supporter.id.in_(facilitator_ids(debrief)))) is not None


def _present_key(debrief_id: int) -> str:
    return f"hotline:debrief:{debrief_id}:facilitators"


def joined(session: Session, debrief: Debrief, facilitator: bool) -> None:
    """Someone is put through: a participant is counted (one more, atomically); a
    facilitator is counted as present (for two facilitators: the last one out ends it)."""
    if facilitator:
        key = _present_key(debrief.id)
        redis_conn.client.incr(key)
        redis_conn.client.expire(key, int((debrief.minutes or MAX_MINUTES) * 60 + 3600))
        return
    session.execute(update(Debrief).where(Debrief.id == debrief.id).values(
        participants=Debrief.participants + 1))
    session.commit()


def facilitator_left(session: Session, debrief_id: int) -> None:
    """A facilitator's call left the conference. With two facilitators (neither ends it on
    exit, so one dropping out does not end it), the last one out ends it by REST."""
    debrief = session.get(Debrief, debrief_id)
    remaining = redis_conn.client.decr(_present_key(debrief_id))
    if debrief is None or debrief.second_facilitator_id is None:
        return  # one facilitator: their endConferenceOnExit already ended it
    if remaining <= 0:
        jobs.queue.enqueue(CLOSE_ROOM_JOB, debrief_id)


def end(session: Session, debrief_id: int) -> bool:
    """Forget everything but the day and the participants; True if it ended now."""
    ended = session.execute(update(Debrief).where(
        Debrief.id == debrief_id, Debrief.state == DebriefState.SCHEDULED).values(
        state=DebriefState.ENDED, starts_at=None, minutes=None, facilitator_id=None,
        second_facilitator_id=None, code_hash=None)).rowcount
    reminder_ids = list(session.scalars(select(DebriefReminder.id).where(
        DebriefReminder.debrief_id == debrief_id)))
    session.execute(delete(DebriefReminder).where(DebriefReminder.debrief_id == debrief_id))
    session.commit()
    reminders.cancel_jobs(reminder_ids)
    redis_conn.client.delete(_present_key(debrief_id))
    if ended:
        log.info("debrief %s ended and forgotten", debrief_id)
    return bool(ended)


def end_overdue(session: Session, now: datetime | None = None) -> list[int]:
    """The debriefs whose time is up but which are still live (a lost end job)."""
    now = now or utcnow()
    return [d.id for d in session.scalars(select(Debrief).where(
        Debrief.state == DebriefState.SCHEDULED)) if ends_at(d) <= now]


def upcoming(session: Session) -> list[Debrief]:
    """Live debriefs, soonest first (the dashboard's list)."""
    return list(session.scalars(select(Debrief).where(
        Debrief.state == DebriefState.SCHEDULED).order_by(Debrief.starts_at)))


def held(session: Session) -> list[Debrief]:
    """Ended debriefs (day and participants only), latest first."""
    return list(session.scalars(select(Debrief).where(
        Debrief.state == DebriefState.ENDED).order_by(Debrief.day.desc(), Debrief.id.desc())))
