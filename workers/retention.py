"""The daily purge: ``hotline.retention.purge`` once a day at 03:00 program time.

It reschedules itself for the next day with one deterministic job id per day, so however
many workers start (each makes sure it is scheduled) there is only ever one purge a day.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from hotline.retention import purge as retention
from hotline.statistics import days as stats_cache
from hotline.core.extensions import db, jobs, settings
from hotline.models import utcnow
from workers.audit import _job_exists

log = logging.getLogger(__name__)

PURGE_JOB_ID = "hotline-purge"
#: Local time of the daily purge: the quietest hour of most lines.
AT = time(3, 0)


def next_slot(now: datetime, zone: ZoneInfo) -> datetime:
    """The next 03:00 in ``zone`` after ``now`` (aware, in ``zone``)."""
    local = now.astimezone(zone)
    day = local.date() if local.time() < AT else local.date() + timedelta(days=1)
    return datetime.combine(day, AT, tzinfo=zone)


def job_id(slot: datetime) -> str:
    """One id per local day: a second scheduling of the same day's purge is a no-op."""
    return f"{PURGE_JOB_ID}-{slot:%Y%m%d}"


def schedule(now: datetime | None = None) -> str:
    """Schedule the next daily purge unless it already is; returns its job id."""
    slot = next_slot(now or utcnow(), ZoneInfo(settings().TIMEZONE))
    ident = job_id(slot)
    if not _job_exists(ident):
        jobs.queue.enqueue_at(slot.astimezone(UTC), purge, job_id=ident)
    return ident


def purge() -> dict[str, int]:
    """Run retention now, then schedule tomorrow's; returns what was done (counts only)."""
    now = utcnow()
    try:
        done = retention.purge(db.session, now, settings())
    finally:
        schedule(now + timedelta(minutes=1))
    log.info("purge done %s", done)
    return done


WARM_JOB_ID = "hotline-stats-warm"


def enqueue_warm_up() -> None:
    """At a worker's start: warm the statistics cache now rather than at 03:00, so the
    first view of a long period after a deploy (or a cache emptied) does not count it
    whole. Idempotent: the warm-up only counts the days the cache lacks."""
    if not _job_exists(WARM_JOB_ID):
        jobs.queue.enqueue(warm_statistics, job_id=WARM_JOB_ID)


def warm_statistics() -> int:
    """``stats_cache.warm`` for the program's zone; returns the days stored."""
    stored = stats_cache.warm(db.session, ZoneInfo(settings().TIMEZONE))
    log.info("statistics cache warmed: %s days stored", stored)
    return stored
