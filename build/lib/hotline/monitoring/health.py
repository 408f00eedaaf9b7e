"""Readiness: can this process reach the database and Redis right now (briefly)?"""

from __future__ import annotations

import logging

from redis import ConnectionPool, Redis
from sqlalchemy import text

from hotline.core.extensions import db, redis_conn

log = logging.getLogger(__name__)

#: How long a readiness check waits for Redis: a load balancer's probe times out in seconds.
REDIS_TIMEOUT_SECONDS = 2.0
#: The database's statement bound for the check (PostgreSQL; SQLite is a local file).
DATABASE_TIMEOUT_MS = 2000


def database_ok() -> bool:
    try:
        with db.engine.connect() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(text(f"SET LOCAL statement_timeout = {DATABASE_TIMEOUT_MS}"))
            conn.execute(text("SELECT 1"))
        return True
    except Exception:  # noqa: BLE001 - any failure means not ready
        log.warning("readyz: the database cannot be reached")
        return False


def redis_ok() -> bool:
    try:
        client = redis_conn.client
        pool = client.connection_pool
        # A client of its own with short timeouts: the shared one may wait much longer.
        probe = Redis(connection_pool=ConnectionPool(
            connection_class=pool.connection_class,
            **{**pool.connection_kwargs, "socket_timeout": REDIS_TIMEOUT_SECONDS,
               "socket_connect_timeout": REDIS_TIMEOUT_SECONDS}))
        try:
            return bool(probe.ping())
        finally:
            probe.connection_pool.disconnect()
    except Exception:  # noqa: BLE001 - any failure means not ready
        log.warning("readyz: Redis cannot be reached")
        return False


def checks() -> dict[str, bool]:
    """Each dependency and whether it answered."""
    return {"database": database_ok(), "redis": redis_ok()}
