"""``hotline doctor``: everything a working install needs, one check at a time.

Each check returns a Result (ok, warning or failure) whose message says, on a problem, what
to do. A check that raises is a failure; the next check still runs. The exit code is what a
monitor reads: 0 all ok, 1 a warning, 2 a failure.
"""

from __future__ import annotations

import logging
import time
import urllib.error
import urllib.request
from dataclasses import fields
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from enum import IntEnum
from urllib.parse import urlencode

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import Flask
from rq import Worker
from sqlalchemy import func, select
from twilio.request_validator import RequestValidator

from hotline import migrate
from hotline.core import phones
from hotline.core.errors import HotlineError, InvalidPhoneNumber
from hotline.core.extensions import QUEUE_NAME, db, jobs, settings
from hotline.core.settings import Settings
from hotline.core.settings import check as check_settings
from hotline.core.urls import public_url
from hotline.models import Supporter, utcnow
from hotline.operations import number as twilio_number
from hotline.roster import shifts, training
from hotline.telephony import api as twilio_api

#: A worker that has not beaten for this long is taken for dead (RQ beats every ~10 s
#: while busy or idle; its own key expires after worker_ttl + 60 s).
HEARTBEAT_STALE = timedelta(minutes=2)
#: RQ's scheduler lock for the hotline's queue: present while a worker runs the scheduler.
SCHEDULER_LOCK = f"rq:scheduler-lock:{QUEUE_NAME}"
#: Hours ahead in which nobody on shift is a warning.
HOURS_AHEAD = 24
#: Seconds the public URL has to answer.
SELF_REQUEST_TIMEOUT = 10


class Level(IntEnum):
    """A check's outcome; its value is the exit code it forces at least."""
    OK = 0
    WARNING = 1
    FAILURE = 2


@dataclass(frozen=True)
class Result:
    """One line of the doctor's report."""
    name: str
    level: Level
    message: str

    def __str__(self) -> str:
        return f"{self.level.name:<7} {self.name}: {self.message}"


def ok(name: str, message: str) -> Result:
    return Result(name, Level.OK, message)


def warning(name: str, message: str) -> Result:
    return Result(name, Level.WARNING, message)


def failure(name: str, message: str) -> Result:
    return Result(name, Level.FAILURE, message)


def check_configuration(cfg: Settings) -> Result:
    """The settings pass the same checks as at start, production's included."""
    try:
        # Loaded at start already (explicitly or not): re-run the value checks.
        check_settings(cfg, {f.name for f in fields(Settings)})
    except HotlineError as exc:
        return failure("settings", f"{exc}; fix the environment and restart")
    return ok("settings", f"valid ({cfg.ENV})")


def check_database(cfg: Settings) -> Result:
    """Reachable, and at the head migration."""
    quiet = logging.getLogger("alembic")  # its INFO lines would break one line per check
    level, quiet.level = quiet.level, logging.WARNING
    try:
        with db.engine.connect() as conn:
            current = set(MigrationContext.configure(conn).get_current_heads())
    except Exception as exc:  # any driver error: the database cannot be reached
        return failure("database", f"unreachable ({type(exc).__name__}); check DATABASE_URL "
                                   "and that the database server runs")
    finally:
        quiet.level = level
    heads = set(ScriptDirectory.from_config(migrate.config()).get_heads())
    if current != heads:
        return failure("database", f"at migration {', '.join(sorted(current)) or 'none'}, not "
                                   f"{', '.join(sorted(heads))}: run `hotline db upgrade`")
    return ok("database", f"reachable, at head migration {', '.join(sorted(heads))}")


def check_redis(cfg: Settings) -> Result:
    try:
        jobs.queue.connection.ping()
    except Exception as exc:  # connection refused, timeout, authentication
        return failure("redis", f"unreachable ({type(exc).__name__}); check REDIS_URL and "
                                "that Redis runs")
    return ok("redis", "reachable")


def check_worker(cfg: Settings) -> Result:
    """A worker beat within HEARTBEAT_STALE, and one holds the scheduler lock."""
    try:
        connection = jobs.queue.connection
        beats = [w.last_heartbeat for w in Worker.all(queue=jobs.queue)
                 if w.last_heartbeat is not None]
        scheduler = connection.exists(SCHEDULER_LOCK)
    except Exception as exc:  # Redis down: reported by the Redis check too
        return failure("worker", f"cannot be seen ({type(exc).__name__}): fix Redis first")
    now = datetime.now(timezone.utc)
    fresh = [b for b in beats if now - _aware(b) <= HEARTBEAT_STALE]
    if not fresh:
        return failure("worker", "no worker heartbeat in the last 2 minutes: calls are not "
                                 "routed; start `hotline worker` (or restart its service)")
    if not scheduler:
        return warning("worker", f"{len(fresh)} alive, but none holds the scheduler lock "
                                 f"({SCHEDULER_LOCK}): follow-ups and the auditor wait; "
                                 "restart `hotline worker`")
    return ok("worker", f"{len(fresh)} alive, scheduler lock held")


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def check_twilio_account(cfg: Settings) -> Result:
    try:
        status = twilio_api.account_status(cfg)
    except HotlineError as exc:
        return failure("twilio account", f"refused or unreachable ({exc}); check "
                                         "TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN")
    if status != "active":
        return failure("twilio account", f"the account is {status}: see Twilio's console")
    return ok("twilio account", "credentials accepted, account active")


def check_webhooks(cfg: Settings) -> Result:
    """The number's webhooks equal what ``hotline twilio configure`` would set."""
    try:
        todo = twilio_number.plan(cfg)
    except HotlineError as exc:
        return failure("number webhooks", str(exc))
    if todo.changes:
        fields = ", ".join(c.field for c in todo.changes)
        return warning("number webhooks", f"not what this install needs ({fields}): run "
                                          "`hotline twilio configure`")
    return ok("number webhooks", f"{cfg.HOTLINE_NUMBER} points at {cfg.PUBLIC_BASE_URL}")


def check_numbers(cfg: Settings) -> Result:
    """The crisis line is dialable (a short code like 988, or a valid number), and each backup
    number is a valid phone number."""
    bad = []
    crisis = cfg.CRISIS_LINE_NUMBER.strip()
    if not (crisis.isdigit() and 3 <= len(crisis) <= 6):
        try:
            phones.normalize(crisis)
        except InvalidPhoneNumber:
            bad.append(f"CRISIS_LINE_NUMBER {crisis!r}")
    for number in cfg.BACKUP_NUMBERS:
        if phones.try_normalize(number) != number:
            bad.append(f"BACKUP_NUMBERS entry {number!r}")
    if bad:
        return failure("crisis and backup numbers", f"not valid: {', '.join(bad)}; write "
                       "each in E.164 (+1 617 555 0100 as +16175550100), the crisis line "
                       "may be a short code like 988")
    if not cfg.BACKUP_NUMBERS:
        return warning("crisis and backup numbers", "no BACKUP_NUMBERS: a failing app sends "
                                                    "callers straight to the crisis line")
    return ok("crisis and backup numbers",
              f"crisis line {crisis}, {len(cfg.BACKUP_NUMBERS)} backup number(s)")


def check_coverage(cfg: Settings, now: datetime | None = None) -> Result:
    """Someone active, on shift (or switched on) and trained, now and in each of the next
    HOURS_AHEAD hours."""
    now = now or utcnow()
    uncovered = []
    for hour in range(HOURS_AHEAD + 1):
        moment = now + timedelta(hours=hour)
        count = db.session.scalar(select(func.count(Supporter.id)).where(
            Supporter.active.is_(True), shifts.eligible(moment),
            training.current(moment)))
        if not count:
            uncovered.append(moment)
    if not uncovered:
        return ok("coverage", f"trained supporters on shift now and in each of the next "
                              f"{HOURS_AHEAD} hours")
    first = shifts.local_time(uncovered[0])
    when = "now" if uncovered[0] == now else f"from {first}"
    return warning("coverage", f"nobody trained on shift {when} ({len(uncovered)} of the next "
                               f"{HOURS_AHEAD + 1} hours uncovered): add shifts on the roster "
                               "page or `hotline supporters on PHONE`; callers meanwhile get "
                               "the backup numbers and the crisis line")


def check_public_url(cfg: Settings) -> Result:
    """A request signed as Twilio signs it, sent to PUBLIC_BASE_URL, is accepted: the URL
    reaches this app and the signature check agrees with the auth token. It posts to the
    status callback a non-final status of an unknown CallSid: nothing changes."""
    url = public_url("voice.call_status")
    params = {"CallSid": "CA" + "0" * 32, "CallStatus": "ringing",
              "AccountSid": cfg.TWILIO_ACCOUNT_SID}
    signature = RequestValidator(cfg.TWILIO_AUTH_TOKEN).compute_signature(url, params)
    started = time.monotonic()
    request = urllib.request.Request(url, data=urlencode(params).encode(), method="POST",
                                     headers={"X-Twilio-Signature": signature})
    try:
        with urllib.request.urlopen(request, timeout=SELF_REQUEST_TIMEOUT):
            pass
    except urllib.error.HTTPError as exc:
        if exc.code == 403:
            return failure("public url", "answers but refuses Twilio's signature: "
                                         "PUBLIC_BASE_URL must be exactly the URL Twilio "
                                         "requests, and TWILIO_AUTH_TOKEN the account's")
        return failure("public url", f"answers {exc.code}: see the web logs")
    except (urllib.error.URLError, OSError) as exc:
        return failure("public url", f"{cfg.PUBLIC_BASE_URL} does not answer "
                                     f"({type(exc).__name__}): check DNS, TLS and the proxy")
    took = time.monotonic() - started
    return ok("public url", f"{url} accepted a signed request ({took:.2f} s)")


CHECKS: tuple[Callable[[Settings], Result], ...] = (
    check_configuration, check_database, check_redis, check_worker, check_twilio_account,
    check_webhooks, check_numbers, check_coverage, check_public_url)


def run(app: Flask) -> list[Result]:
    """Every check, in order, in ``app``'s context."""
    results = []
    with app.app_context():
        cfg = settings()
        for check in CHECKS:
            name = check.__name__.removeprefix("check_").replace("_", " ")
            try:
                results.append(check(cfg))
            except Exception as exc:  # a check that breaks must not hide the others
                db.session.rollback()
                results.append(failure(name, f"could not be checked ({type(exc).__name__}: "
                                             f"{exc})"))
    return results


def exit_code(results: list[Result]) -> int:
    """0 all ok, 1 a warning, 2 a failure."""
    return max((r.level for r in results), default=Level.OK).value
