"""What the alerts read from Redis: the worker's heartbeat and the fallback webhooks' hits.

*Heartbeat*: every auditor pass (every minute, on a worker with the scheduler: the
auditor is scheduled, never run by hand) writes the time into ``HEARTBEAT_KEY``. Its age is
the age of the last pass, so a dead worker and a dead scheduler both show; the web side
reads it (``hotline.alerts.notify.web_check``), since a dead worker cannot report itself.

*Fallback hits*: the fallback webhooks must answer with neither the database nor Redis, so
a hit is counted best effort, after the response is sent (``record_fallback_after``), on a
Redis client with a short timeout; Redis down loses the count, never the caller's answer.
The counter lives ``FALLBACK_WINDOW`` after the last hit: the alert holds while it lives.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime, timedelta

from flask import Response
from redis import Redis

from hotline.core.extensions import redis_conn
from hotline.core.settings import Settings
from hotline.models import utcnow

log = logging.getLogger(__name__)

HEARTBEAT_KEY = "hotline:worker:heartbeat"
#: No heartbeat for this long: no worker is running the auditor (the issue's 2 minutes).
HEARTBEAT_STALE = timedelta(minutes=2)
FALLBACK_KEY = "hotline:alerts:fallback:{which}"
FALLBACKS = ("voice", "messaging")
#: A fallback hit keeps its alert open this long after the last one.
FALLBACK_WINDOW = timedelta(minutes=15)
#: The fallback's own Redis client gives up after this (seconds): never holds a worker long.
FALLBACK_REDIS_TIMEOUT = 0.5

_clients: dict[str, Redis] = {}
_clients_lock = threading.Lock()


def beat(now: datetime | None = None) -> None:
    """The auditor ran: note when (kept a day, so a stale one is still readable)."""
    redis_conn.client.set(HEARTBEAT_KEY, (now or utcnow()).isoformat(), ex=int(timedelta(days=1)
                                                                         .total_seconds()))


def last_beat() -> datetime | None:
    """When the auditor last ran, or None (never, or over a day ago)."""
    raw = redis_conn.client.get(HEARTBEAT_KEY)
    if not raw:
        return None
    moment = datetime.fromisoformat(raw.decode() if isinstance(raw, bytes) else raw)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _fallback_client(cfg: Settings) -> Redis | None:
    """A Redis client with a short timeout (the embedded Redis of development has no URL:
    the app's own client, on a local socket, is as quick)."""
    if not cfg.REDIS_URL:
        return None
    with _clients_lock:
        client = _clients.get(cfg.REDIS_URL)
        if client is None:
            client = _clients[cfg.REDIS_URL] = Redis.from_url(
                cfg.REDIS_URL, socket_timeout=FALLBACK_REDIS_TIMEOUT,
                socket_connect_timeout=FALLBACK_REDIS_TIMEOUT)
        return client


def record_fallback(which: str, cfg: Settings) -> None:
    """Count one hit of the ``which`` fallback webhook (best effort)."""
    key = FALLBACK_KEY.format(which=which)
    try:
        pipe = (_fallback_client(cfg) or redis_conn.client).pipeline()
        pipe.incr(key)
        pipe.expire(key, int(FALLBACK_WINDOW.total_seconds()))
        pipe.execute()
    except Exception as exc:  # noqa: BLE001 - Redis down: the caller was answered anyway
        log.warning("fallback %s hit not recorded: %s", which, type(exc).__name__)


def record_fallback_after(response: Response, which: str, cfg: Settings) -> Response:
    """Count the hit once ``response`` is sent: the caller never waits for Redis."""
    response.call_on_close(lambda: record_fallback(which, cfg))
    return response


def fallback_hits() -> dict[str, int]:
    """Hits of each fallback webhook within FALLBACK_WINDOW of the last one."""
    values = redis_conn.client.mget([FALLBACK_KEY.format(which=w) for w in FALLBACKS])
    return {w: int(v) for w, v in zip(FALLBACKS, values) if v}
