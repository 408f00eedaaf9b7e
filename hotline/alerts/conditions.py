"""The conditions under which the line could fail a caller: each a function of the time that
returns the values of its alert text (``ivr_flows/alerts.yaml``), or None when it does not
hold. Counts and times only: nothing here reads a caller's number or words.

*Program hours* are HOTLINE_PROGRAM_HOURS (24/7 by default, or a daily window on the
program's clock): the hours the line promises a peer. Shifts do not define them: a gap
between shifts is exactly what must be noticed.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Callable

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hotline.alerts import signals
from hotline.core.settings import Settings, program_hours
from hotline.models import MINUTES_PER_WEEK, Contact, Outcome, Shift, Supporter
from hotline.roster import shifts, training
from hotline.staffing import coverage

#: Contacts ending so count as not reaching a peer ("nobody free" ends a text FAILED).
UNANSWERED = (Outcome.ABANDONED.value, Outcome.FAILED.value)
#: "In the next hour" is looked at every this many minutes.
AHEAD_STEP = 5
#: A lapsed supporter's shift is looked at every this many minutes for a trained one.
COVER_STEP = 15

Condition = Callable[[Session, datetime, Settings], "dict[str, object] | None"]


def in_program_hours(moment: datetime, cfg: Settings) -> bool:
    """Is ``moment`` inside HOTLINE_PROGRAM_HOURS (program time zone)?"""
    window = program_hours(cfg.PROGRAM_HOURS)
    if window is None:
        return True
    local = moment.astimezone(shifts.program_zone())
    minute, (start, end) = local.hour * 60 + local.minute, window
    return start <= minute < end if start < end else (minute >= start or minute < end)


def nobody_now(session: Session, now: datetime, cfg: Settings) -> dict | None:
    if in_program_hours(now, cfg) and not shifts.offered_now(session, now):
        return {}
    return None


def nobody_soon(session: Session, now: datetime, cfg: Settings) -> dict | None:
    """Covered now (else ``nobody_now`` says it), but not at some time in the next hour."""
    if not shifts.offered_now(session, now):
        return None
    for step in range(AHEAD_STEP, 61, AHEAD_STEP):
        moment = now + timedelta(minutes=step)
        if in_program_hours(moment, cfg) and not shifts.offered_now(session, moment):
            return {"when": shifts.local_time(moment)}
    return None


def unanswered(session: Session, now: datetime, cfg: Settings) -> dict | None:
    count = session.scalar(select(func.count(Contact.id)).where(
        Contact.outcome.in_(UNANSWERED),
        func.coalesce(Contact.ended_at, Contact.created_at) >= now - timedelta(hours=1)))
    return {"count": count} if count >= cfg.ALERT_UNANSWERED_PER_HOUR else None


def fallback(session: Session, now: datetime, cfg: Settings) -> dict | None:
    hits = signals.fallback_hits()
    if not hits:
        return None
    return {"which": " and ".join(sorted(hits)), "count": sum(hits.values())}


def worker_silent(session: Session, now: datetime, cfg: Settings) -> dict | None:
    last = signals.last_beat()
    if last is not None and now - last < signals.HEARTBEAT_STALE:
        return None
    return {"when": shifts.local_time(last) if last else "none within a day"}


def _covers(shift: Shift, minute: int) -> bool:
    return any(shift.start_minute <= minute + k < shift.end_minute
               for k in (-MINUTES_PER_WEEK, 0, MINUTES_PER_WEEK))


def training_lapse(session: Session, now: datetime, cfg: Settings) -> dict | None:
    """Weekly shifts of a supporter whose training lapsed (or was never recorded) during
    which no supporter with current training is on shift, inside program hours."""
    if not cfg.REQUIRE_TRAINING:
        return None
    states = training.states(session, now)
    ok = {training.TrainingState.CURRENT, training.TrainingState.DUE_SOON}
    active = session.scalars(select(Shift).join(Supporter).where(
        Supporter.active.is_(True)).order_by(Shift.start_minute)).all()
    trained = [s for s in active if states.get(s.supporter_id) in ok]
    zone, monday = shifts.program_zone(), _week_start(now)
    uncovered = []
    for shift in active:
        if states.get(shift.supporter_id) in ok:
            continue
        for minute in range(shift.start_minute, shift.end_minute, COVER_STEP):
            moment = (monday + timedelta(minutes=minute)).astimezone(zone)
            if in_program_hours(moment, cfg) and not any(_covers(t, minute % MINUTES_PER_WEEK)
                                                         for t in trained):
                uncovered.append(shift)
                break
    if not uncovered:
        return None
    return {"count": len(uncovered), "shift": shifts.describe(uncovered[0])}


def coverage_gap(session: Session, now: datetime, cfg: Settings) -> dict | None:
    """An hour of the next HOTLINE_COVERAGE_ALERT_HOURS, inside program hours, with fewer
    supporters on shift than the coverage page's advice (the same numbers:
    ``hotline.staffing.coverage``). Quiet until a month of demand is published: without
    it there is no advice to fall short of (``nobody_now`` and ``nobody_soon`` still watch
    the coming hour)."""
    if not cfg.COVERAGE_ALERT_HOURS:
        return None
    plan = coverage.build(session, now, cfg)
    if not plan.has_demand:
        return None
    gaps = [(start, hour) for start, hour in plan.ahead(now, cfg.COVERAGE_ALERT_HOURS)
            if hour.under]
    if not gaps:
        return None
    return {"count": len(gaps), "when": shifts.local_time(gaps[0][0]),
            "window": f"{cfg.COVERAGE_ALERT_HOURS} hours"}


def _week_start(now: datetime) -> datetime:
    """Monday 00:00 of ``now``'s week on the program's clock (what week minutes count from)."""
    local = now.astimezone(shifts.program_zone())
    return (local - timedelta(days=local.weekday())).replace(hour=0, minute=0, second=0,
                                                             microsecond=0)


#: Every condition, by the name its alert row and texts use (ivr_flows/alerts.yaml).
CONDITIONS: dict[str, Condition] = {
    "nobody_now": nobody_now, "nobody_soon": nobody_soon, "unanswered": unanswered,
    "fallback": fallback, "worker_silent": worker_silent, "training_lapse": training_lapse,
    "coverage_gap": coverage_gap}
