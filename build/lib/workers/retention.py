"""The daily purge and the statistics warm-up, as jobs: thin adapters over
``hotline.retention.purge`` (which also schedules them, by these functions' names)."""

from __future__ import annotations

import logging
from datetime import timedelta
from zoneinfo import ZoneInfo

from hotline.retention import purge as retention
from hotline.disclosure import joint
from hotline.core.extensions import db, settings
from hotline.models import utcnow

log = logging.getLogger(__name__)

def purge() -> dict[str, int]:
    """Run retention now, then schedule tomorrow's; returns what was done (counts only)."""
    now = utcnow()
    try:
        done = retention.purge(db.session, now, settings())
    finally:
        retention.schedule(now + timedelta(minutes=1))
    log.info("purge done %s", done)
    return done


def warm_statistics() -> int:
    """``joint.warm_all`` for the program's zone; returns the days stored."""
    stored = joint.warm_all(db.session, ZoneInfo(settings().TIMEZONE))
    log.info("statistics cache warmed: %s days stored", stored)
    return stored
