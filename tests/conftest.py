"""Fixtures: real Redis and PostgreSQL servers, the app on each database, signed requests.

Every test that takes ``app`` runs twice: on SQLite and on PostgreSQL (a real server
started for the session). Jobs run with RQ's SimpleWorker in burst mode.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone
from urllib.parse import urlencode

import pytest
from lxml import etree
from redis import Redis
from rq import SimpleWorker
from sqlalchemy import text
from twilio.request_validator import RequestValidator

from hotline.core import clock as hotline_clock
from hotline import create_app, migrate
from hotline.core.extensions import db, jobs
from hotline.models import Base, Supporter
from tests.coordinators import login, make_user
from tests.servers import PostgresServer, RedisServer
from tests.stack import CHROMIUM, Stack
from tests.twilio_files import assert_valid_twiml

PUBLIC_BASE_URL = "https://hotline.example.org"
AUTH_TOKEN = "test-auth-token-0123456789"
ACCOUNT_SID = "AC" + "1" * 32
HOTLINE_NUMBER = "+16175550100"
BACKUP_NUMBERS = "+16175550198,+16175550199"
#: The suite's supporters have no training record: most tests are about something else, so
#: the training rule is off unless a test turns it on (tests/test_training.py does, as
#: production's default has it). In the environment, so processes the tests start (a
#: worker, the stack's gunicorn) run with the same rule.
os.environ.setdefault("HOTLINE_REQUIRE_TRAINING", "0")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A skipped test is a failed one: every test here must run on any machine that ran
    `make tools`, so a skip could only hide a missing tool or file (xfail is unaffected)."""
    outcome = yield
    report = outcome.get_result()
    if report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.longrepr = f"skipped, which counts as a failure here: {reason}"


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(items):
    """Mark what `make test-fast` leaves out (`make test` runs everything): ``postgresql``
    on every test that runs on the PostgreSQL server, ``scenario`` on every story played
    through the stand-in (the ``hotline`` fixture; seconds each)."""
    for item in items:
        callspec = getattr(item, "callspec", None)
        fixtures = getattr(item, "fixturenames", ())
        if (callspec and callspec.params.get("database_url") == "postgresql"
                or "postgres_server" in fixtures):
            item.add_marker(pytest.mark.postgresql)
        if "hotline" in fixtures:
            item.add_marker(pytest.mark.scenario)


@pytest.fixture(scope="session")
def redis_server():
    server = RedisServer()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def postgres_server():
    server = PostgresServer()  # not installed is a failure: `make tools` installs it
    yield server
    server.stop()


_migrated: set[str] = set()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path_factory):
    """A migrated, empty database of each kind."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.getbasetemp() / 'hotline-test.db'}"
    else:
        url = request.getfixturevalue("postgres_server").url
    if url not in _migrated:
        migrate.upgrade("head", url=url)
        _migrated.add(url)
    return url


def _empty_tables() -> None:
    with db.engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(table.delete())
        if conn.dialect.name == "postgresql":
            for table in Base.metadata.sorted_tables:
                if "id" in table.c and table.c.id.autoincrement is not False:  # random ids
                    conn.execute(text(f"ALTER SEQUENCE {table.name}_id_seq RESTART WITH 1"))


def settings_for(database_url: str, redis_url: str, **extra) -> dict:
    values = dict(ENV="test", DATABASE_URL=database_url, REDIS_URL=redis_url,
                  PUBLIC_BASE_URL=PUBLIC_BASE_URL, TWILIO_AUTH_TOKEN=AUTH_TOKEN,
                  TWILIO_ACCOUNT_SID=ACCOUNT_SID, HOTLINE_NUMBER=HOTLINE_NUMBER,
                  BACKUP_NUMBERS=BACKUP_NUMBERS, CRISIS_LINE_NUMBER="988",
                  TWILIO_API_BASE_URL="http://127.0.0.1:9")  # nothing listens: no stray calls
    values.update(extra)
    return values


@pytest.fixture
def app_settings(database_url, redis_server):
    """Setting overrides for the app; tests may update the dict before using ``app``."""
    return settings_for(database_url, redis_server.url)


@pytest.fixture
def one_at_a_time(app_settings):
    """The app rings one tier-1 peer at a time (``HOTLINE_RING_AT_ONCE=1``; two by default):
    for stories told phone by phone. Use with ``@pytest.mark.usefixtures``, before ``app``."""
    app_settings.update(RING_AT_ONCE=1)


@pytest.fixture
def fresh_app(app_settings):
    """The app on an empty database and Redis, with no app context held open."""
    application = create_app(app_settings)
    with application.app_context():
        _empty_tables()
        jobs.queue.connection.flushdb()
    yield application
    db.session.remove()
    db.engine.dispose()


@pytest.fixture
def app(fresh_app):
    """The app with an app context pushed for the test body."""
    with fresh_app.app_context():
        yield fresh_app
        db.session.remove()


@pytest.fixture
def session(app):
    return db.session


def run_jobs(application) -> None:
    """Run every queued job in this process (RQ's SimpleWorker, burst), in its own context."""
    if not jobs.queue.count:
        return
    with application.app_context():
        SimpleWorker([jobs.queue], connection=jobs.queue.connection).work(
            burst=True, with_scheduler=False)
        db.session.remove()


@pytest.fixture
def worker(fresh_app):
    return lambda: run_jobs(fresh_app)


class TwilioClient:
    """Posts to the app as Twilio does: full public URL, form params, signed."""

    def __init__(self, client, token: str = AUTH_TOKEN) -> None:
        self.client = client
        self.validator = RequestValidator(token)

    def post(self, path: str, params: dict | None = None, query: dict | None = None,
             signature: str | None = None, validate: bool = True):
        params = {k: str(v) for k, v in (params or {}).items()}
        path = path + ("?" + urlencode(query) if query else "")
        url = PUBLIC_BASE_URL + path
        sig = self.validator.compute_signature(url, params) if signature is None else signature
        response = self.client.post(path, data=params, headers={"X-Twilio-Signature": sig})
        if validate and response.status_code == 200 and response.mimetype == "text/xml":
            assert_valid_twiml(response.data)
        return response

    def post_url(self, url: str, params: dict | None = None):
        """Post to an absolute URL the app handed out (as Twilio would)."""
        assert url.startswith(PUBLIC_BASE_URL), url
        path = url[len(PUBLIC_BASE_URL):]
        params = {k: str(v) for k, v in (params or {}).items()}
        sig = self.validator.compute_signature(url, params)
        response = self.client.post(path, data=params, headers={"X-Twilio-Signature": sig})
        if response.status_code == 200 and response.mimetype == "text/xml":
            assert_valid_twiml(response.data)
        return response


@pytest.fixture
def twilio(app):
    return TwilioClient(app.test_client())


def twiml(response) -> etree._Element:
    """The parsed TwiML of a response."""
    assert response.status_code == 200, response.data
    return etree.fromstring(response.data)


@pytest.fixture
def make_supporter(session):
    counter = iter(range(10, 99))

    def make(name: str | None = None, tier: int = 1, available: bool = True,
             languages: str = "en", phone: str | None = None) -> Supporter:
        n = next(counter)
        supporter = Supporter(name=name or f"Supporter {n}", phone=phone or f"+1617555{n:04d}",
                              tier=tier, available=available, languages=languages)
        session.add(supporter)
        session.commit()
        return supporter
    return make


@pytest.fixture
def hotline(fresh_app):
    """The whole hotline through the stand-in, with phones (tests/scenario.py)."""
    from tests.scenario import Hotline  # here, not on top: tests.scenario imports this module
    world = Hotline(fresh_app)
    yield world
    world.server.shutdown()


@pytest.fixture
def own_redis():
    """A Redis server of the test's own, to stop and start (the session's stays up)."""
    server = RedisServer()
    yield server
    server.stop()


@pytest.fixture
def app_on_own_redis(database_url, own_redis, fresh_app):
    return create_app(settings_for(database_url, own_redis.url))


@pytest.fixture
def stand_in(app):
    """The stand-in's REST API over real HTTP, for the app's Twilio client (no phones)."""
    from datetime import datetime, timezone

    from hotline.core.extensions import settings
    from hotline.simulator import TwilioSim, serve_in_thread
    sim = TwilioSim(transport=None, account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN,
                    voice_url=f"{PUBLIC_BASE_URL}/twilio/voice",
                    numbers=(HOTLINE_NUMBER,), epoch=datetime.now(timezone.utc))
    base_url, server = serve_in_thread(sim)
    app.extensions["hotline.settings"] = settings().replace(TWILIO_API_BASE_URL=base_url)
    yield sim
    server.shutdown()


class Clock:
    """The app's "now" (``hotline.core.clock``), stopped where the test puts it."""

    @property
    def now(self) -> datetime:
        return hotline_clock.frozen

    def set(self, moment: datetime) -> None:
        hotline_clock.frozen = moment

    def advance(self, **delta: float) -> None:
        """Move on by ``timedelta(**delta)``, e.g. ``clock.advance(seconds=30)``."""
        hotline_clock.frozen += timedelta(**delta)


@pytest.fixture
def clock(monkeypatch):
    """Time stands still at 2026-07-01 15:00 UTC until the test sets or advances it; every
    module's ``utcnow()`` (and the login limits' seconds) reads it. Undone after the test."""
    monkeypatch.setattr(hotline_clock, "frozen", datetime(2026, 7, 1, 15, tzinfo=timezone.utc))
    return Clock()


@pytest.fixture
def daytime(clock):
    """"Now" is 15:00 UTC, daytime in New York and Berlin (follow-ups may be sent)."""
    clock.set(datetime(2026, 7, 1, 15, tzinfo=timezone.utc))
    return clock.now


@pytest.fixture
def coordinator(app):
    """A test client logged in to the dashboard as a coordinator."""
    make_user("coord@example.org")
    client = app.test_client()
    assert login(client, "coord@example.org").status_code == 302
    return client


@pytest.fixture(scope="module")
def browser():
    """Debian's chromium under Playwright (browser tests)."""
    if not os.path.exists(CHROMIUM):
        raise RuntimeError("chromium is not installed: run `make tools`")
    from playwright.sync_api import sync_playwright  # only the browser tests need it
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                             args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.fixture
def stack(redis_server, tmp_path):
    """The whole hotline as `make run` starts it, as processes (tests/stack.py)."""
    Redis.from_url(redis_server.url).flushdb()
    running = Stack(redis_server.url, tmp_path)
    yield running
    running.stop()
