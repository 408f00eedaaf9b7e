"""Follow-ups at scale: schedule 100,000 follow-ups in RQ, then send thousands of them on time.

Starts its own redis-server and PostgreSQL (a temporary SQLite file when PostgreSQL's
binaries are missing) and a minimal local Twilio stand-in that accepts ``Messages.json``
and notes when each text arrived.

1. Rows: 50,000 consented contacts and their 100,000 follow-ups, bulk inserted (setup).
2. Scheduling: ``followups.restore``, which a worker runs at start to schedule every
   pending follow-up Redis does not hold, writes all 100,000 jobs; timed, with Redis's
   ``used_memory`` before and after (per job) and the key count. The consent path
   (``consent.agree``, one contact at a time, as the webhooks do) is timed on a sample.
3. Lateness: ``--workers`` real ``hotline worker`` processes (RQ workers, one of them
   running RQ's scheduler) while ``--due`` follow-ups, moved with the app's
   ``followups.enqueue_many`` to due times spread over ``--spread`` seconds, come due among
   the ~100,000 still scheduled for later. Lateness = arrival at the stand-in - ``due_at``.
4. Rate: then ``--burst`` follow-ups all due in the same second: texts sent per second.
   Checked: every due follow-up sent once, none twice, nothing sent that was not due.

    .venv/bin/python benchmarks/followups.py [--json OUT] [--workers N] [--fork] [--profile P]

``BENCH_DEBUG=1`` also logs the worst lateness of each second's texts.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.common import log, percentile, print_table, row, rss_kb  # noqa: E402
from tests.servers import PostgresServer, RedisServer, cpu_seconds  # noqa: E402

TOTAL = 100_000
#: Contacts whose follow-ups go through the consent path one at a time (timed sample).
CONSENT_SAMPLE = 300
LATENESS_TARGET = 2.0
#: Seconds kept at the end of the budget for stopping the workers and servers.
STOP_SECONDS = 10
HOTLINE_NUMBER = "+15005550006"
ACCOUNT_SID = "AC" + "0" * 32
#: Fictional clinician numbers: +1 212 2xx xxxx, one per contact.
FIRST_NUMBER = 12122000000


# --- the Twilio stand-in --------------------------------------------------------------------

class StandIn(ThreadingHTTPServer):
    """Accepts ``Messages.json`` like Twilio and notes when each text arrived, and to whom."""

    daemon_threads = True
    request_queue_size = 128

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), StandInHandler)
        self.lock = threading.Lock()
        self.received: dict[str, list[float]] = defaultdict(list)
        self.sids: dict[str, list[str]] = defaultdict(list)
        self.count = 0
        self.url = f"http://127.0.0.1:{self.server_port}"

    def take(self, to: str) -> str:
        with self.lock:
            self.count += 1
            sid = f"SM{self.count:032x}"
            self.received[to].append(time.time())
            self.sids[to].append(sid)
        return sid


class StandInHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    #: One write per response, no Nagle: a kept-alive connection does not wait for ACKs.
    wbufsize = 64 * 1024
    disable_nagle_algorithm = True
    server: StandIn

    def log_message(self, *args) -> None:  # quiet
        pass

    def _reply(self, status: int, payload: dict) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        form = urllib.parse.parse_qs(self.rfile.read(length).decode())
        if not self.path.endswith("/Messages.json"):
            return self._reply(404, {"code": 20404, "message": "not found", "status": 404})
        to, from_ = form["To"][0], form["From"][0]
        sid = self.server.take(to)
        self._reply(201, message(sid, to, from_))

    def do_GET(self) -> None:
        """The Messages list (``find_sent`` after a crash): what this stand-in took."""
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
        to = query.get("To", [""])[0]
        with self.server.lock:
            sids = list(self.server.sids.get(to, []))
        self._reply(200, {"messages": [message(sid, to, HOTLINE_NUMBER) for sid in sids],
                          "next_page_uri": None, "page": 0, "page_size": 50,
                          "uri": self.path, "first_page_uri": self.path,
                          "previous_page_uri": None, "start": 0, "end": len(sids)})


def message(sid: str, to: str, from_: str) -> dict:
    now = time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime())
    return {"sid": sid, "account_sid": ACCOUNT_SID, "to": to, "from": from_, "body": "",
            "status": "queued", "direction": "outbound-api", "num_segments": "1",
            "num_media": "0", "date_created": now, "date_updated": now, "date_sent": None,
            "price": None, "price_unit": "USD", "error_code": None, "error_message": None,
            "messaging_service_sid": None, "api_version": "2010-04-01",
            "uri": f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/{sid}.json"}


# --- setup ----------------------------------------------------------------------------------

def number(i: int) -> str:
    return f"+{FIRST_NUMBER + i}"


def insert_rows(session, cfg, contacts: int, asked: int) -> None:
    """``contacts`` ended, consented contacts, each with its two follow-ups far ahead; then
    ``asked`` more contacts waiting for consent (for the consent path). Setup only."""
    from sqlalchemy import insert

    from hotline.privacy import primitives as privacy
    from hotline.models import Contact, FollowUp
    now = datetime.now(UTC)
    rows, follow = [], []
    for i in range(contacts + asked):
        e164 = number(i)
        rows.append({"id": i + 1, "channel": "sms", "caller_key": privacy.caller_key(e164, cfg),
                     "state": "ended", "outcome": "connected", "created_at": now,
                     "ended_at": now, "consent": "yes" if i < contacts else "asked",
                     "sealed_number": None if i < contacts else privacy.seal(e164, cfg),
                     "language": "en"})
        if i < contacts:
            sealed = privacy.seal(e164, cfg)
            for sequence, days in ((1, 1), (2, 7)):
                follow.append({"contact_id": i + 1, "caller_key": rows[-1]["caller_key"],
                               "sealed_number": sealed, "sequence": sequence,
                               "kind": "survey" if sequence == 1 else "checkin",
                               "channel": "sms", "language": "en", "state": "scheduled",
                               "due_at": (now + timedelta(days=days)).replace(microsecond=0),
                               "created_at": now})
    for start in range(0, len(rows), 10_000):
        session.execute(insert(Contact), rows[start:start + 10_000])
    for start in range(0, len(follow), 10_000):
        session.execute(insert(FollowUp), follow[start:start + 10_000])
    session.commit()
    if session.bind.dialect.name == "postgresql":
        from sqlalchemy import text
        session.execute(text("SELECT setval('contacts_id_seq', (SELECT max(id) FROM contacts))"))
        session.execute(text("ANALYZE"))
        session.commit()


def redis_memory(connection) -> int:
    return int(connection.info("memory")["used_memory"])


# --- the phases -----------------------------------------------------------------------------

def schedule_all(session, connection) -> dict:
    """Every follow-up in the database becomes a scheduled RQ job; then the same call with
    nothing missing (what each worker start costs)."""
    from hotline.followups import schedule as followups
    from hotline.core.extensions import jobs
    before_mem, before_keys = redis_memory(connection), connection.dbsize()
    started = time.perf_counter()
    count = followups.restore(session)
    seconds = time.perf_counter() - started
    mem = redis_memory(connection) - before_mem
    keys = connection.dbsize() - before_keys
    zcard = connection.zcard(jobs.queue.scheduled_job_registry.key)
    again = time.perf_counter()
    followups.restore(session)
    check_seconds = time.perf_counter() - again
    return {"count": count, "seconds": seconds, "memory": mem, "keys": keys, "zcard": zcard,
            "check_seconds": check_seconds}


def consent_path(session, first: int, count: int) -> dict:
    """The webhooks' path: ``consent.agree`` for one contact at a time (two follow-ups each)."""
    from hotline.followups import consent
    from hotline.models import Contact
    started = time.perf_counter()
    for contact_id in range(first, first + count):
        consent.agree(session, session.get(Contact, contact_id))
    seconds = time.perf_counter() - started
    return {"followups": 2 * count, "seconds": seconds}


def start_workers(env: dict, count: int, folder: str, fork: bool = False,
                  profile: str | None = None) -> list[subprocess.Popen]:
    procs = []
    for i in range(count):
        argv = [sys.executable, "-m", "hotline.cli", "worker"] + (["--fork"] if fork else [])
        if profile:  # py-spy's flame graph of each worker (and its forks), for --profile
            argv = [str(Path(sys.executable).parent / "py-spy"), "record", "--subprocesses",
                    "-f", "speedscope", "-o", f"{profile}-{i}.json", "--"] + argv
        with open(os.path.join(folder, f"worker{i}.log"), "w") as out:
            procs.append(subprocess.Popen(argv, env=env, cwd=ROOT, stdout=out,
                                          stderr=subprocess.STDOUT, start_new_session=True))
    return procs


def wait_for_workers(connection, queue_name: str, count: int, procs, seconds=60) -> float:
    from rq import Worker
    started = time.monotonic()
    deadline = started + seconds
    while time.monotonic() < deadline:
        if any(p.poll() is not None for p in procs):
            raise RuntimeError("a worker exited; see its log")
        if (len(Worker.all(connection=connection)) >= count
                and connection.exists(f"rq:scheduler-lock:{queue_name}")):
            return time.monotonic() - started
        time.sleep(0.1)
    raise RuntimeError("the workers did not start")


def stop_workers(procs) -> None:
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)  # a warm shutdown (and py-spy writes)
    for proc in procs:
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def rss_mib(pids: list[int]) -> float:
    """Resident memory of ``pids`` (not their children), in MiB."""
    return rss_kb(pids) / 1024


def move_due(session, contact_ids: list[int], times: list[datetime]) -> dict[str, datetime]:
    """Make the first follow-up of each contact due at the matching time (whole seconds, as
    ``schedule`` makes them) and reschedule them with the app's batched function, as the
    worker start does. Returns clinician number -> due time."""
    from sqlalchemy import bindparam, select, update

    from hotline.followups import schedule as followups
    from hotline.models import FollowUp
    rows = session.scalars(select(FollowUp).where(FollowUp.contact_id.in_(contact_ids),
                                                  FollowUp.sequence == 1)
                           .order_by(FollowUp.contact_id)).all()
    when = dict(zip(contact_ids, times))
    for followup in rows:
        followup.due_at = when[followup.contact_id]
    table = FollowUp.__table__
    session.connection().execute(
        update(table).where(table.c.id == bindparam("fid")).values(due_at=bindparam("due")),
        [{"fid": followup.id, "due": followup.due_at} for followup in rows])
    session.commit()
    followups.enqueue_many(rows)
    return {number(row.contact_id - 1): row.due_at for row in rows}


def arrivals(stand_in: StandIn, due: dict[str, datetime], deadline: float) -> dict[str, float]:
    """Wait until every due text arrived (or the deadline); number -> first arrival."""
    while True:
        with stand_in.lock:
            got = {to: stand_in.received[to][0] for to in due if stand_in.received.get(to)}
        if len(got) == len(due) or time.time() > deadline:
            return got
        time.sleep(0.25)


def spread_phase(session, stand_in, contacts: list[int], spread: float, lead: float,
                 deadline: Callable[[float], float]) -> dict:
    """Texts due over ``spread`` seconds (the same number each second) among everything
    else still scheduled: lateness = arrival at the stand-in - due_at."""
    t0 = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=lead)
    times = [t0 + timedelta(seconds=int(spread * k / len(contacts)))
             for k in range(len(contacts))]
    due = move_due(session, contacts, times)
    log(f"scheduled {(t0 - datetime.now(UTC)).total_seconds():.1f} s before the first is due")
    got = arrivals(stand_in, due, deadline(max(times).timestamp()))
    if os.environ.get("BENCH_DEBUG"):  # the worst lateness of each second's texts
        worst: dict[int, float] = {}
        for to, t in got.items():
            k = int(due[to].timestamp() - t0.timestamp())
            worst[k] = max(worst.get(k, 0.0), t - due[to].timestamp())
        log("worst lateness by second: " + " ".join(f"{v:.1f}" for _, v in sorted(worst.items())))
    return {"due": due, "late": [got[to] - due[to].timestamp() for to in got]}


def burst_phase(session, stand_in, contacts: list[int], lead: float,
                deadline: Callable[[float], float]) -> dict:
    """Texts all due in the same second: how fast the worker drains them (texts/s)."""
    at = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=lead)
    due = move_due(session, contacts, [at] * len(contacts))
    got = arrivals(stand_in, due, deadline(at.timestamp()))
    times = sorted(got.values())
    rate = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 else float("nan")
    return {"due": due, "rate": rate, "drain": times[-1] - at.timestamp() if times else None}


def exactly_once(stand_in: StandIn, due: dict[str, datetime]) -> dict:
    """Every due text arrived once; nothing else arrived (the other ~97,000 stay scheduled)."""
    time.sleep(1.0)  # a duplicate would come right after
    with stand_in.lock:
        received = {to: len(times) for to, times in stand_in.received.items()}
    return {"lost": [to for to in due if to not in received],
            "twice": [to for to, count in received.items() if count > 1],
            "unexpected": [to for to in received if to not in due]}


# --- main -----------------------------------------------------------------------------------

@contextlib.contextmanager
def servers(folder: str):
    """A redis-server, PostgreSQL (else SQLite) and the stand-in; all stopped at the end."""
    with contextlib.ExitStack() as stack:
        redis = RedisServer()
        stack.callback(redis.stop)
        try:
            postgres = PostgresServer()
            stack.callback(postgres.stop)
            db_url, db_name = postgres.url, "PostgreSQL"
        except (RuntimeError, OSError, subprocess.CalledProcessError) as exc:
            log(f"PostgreSQL unavailable ({exc}); using SQLite")
            db_url, db_name = f"sqlite:///{folder}/bench.db", "SQLite"
        stand_in = StandIn()
        threading.Thread(target=stand_in.serve_forever, daemon=True).start()
        stack.callback(stand_in.shutdown)
        yield redis.url, db_url, db_name, stand_in


def run(args) -> dict:
    folder = tempfile.mkdtemp(prefix="hotline-bench-followups-")
    try:
        with servers(folder) as (redis_url, db_url, db_name, stand_in):
            overrides = {"ENV": "test", "DATABASE_URL": db_url, "REDIS_URL": redis_url,
                         "TWILIO_API_BASE_URL": stand_in.url, "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
                         "HOTLINE_NUMBER": HOTLINE_NUMBER, "SEND_FROM_HOUR": 0,
                         "SEND_UNTIL_HOUR": 24, "LOG_LEVEL": "WARNING"}
            out = {"load": [os.getloadavg()[0]], "db": db_name, "workers": args.workers,
                   "spread": args.spread, "fork": args.fork}
            measure(args, overrides, stand_in, folder, out)
            return out
    finally:
        if args.keep:
            log(f"kept {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)


def measure(args, overrides: dict, stand_in: StandIn, folder: str, out: dict) -> None:
    """Every phase, in an app on the benchmark's servers; the figures go into ``out``."""
    from hotline import create_app, migrate
    from hotline.core.extensions import db, jobs, settings
    from hotline.core.settings import Settings
    env_of = {f.name: f.metadata["env"] for f in dataclasses.fields(Settings)}
    env = dict(os.environ, **{env_of[name]: str(value) for name, value in overrides.items()})
    ends = args.started + args.budget - STOP_SECONDS

    def deadline(last_due: float) -> float:
        """Wait ``--grace`` past the last due time, never past the script's own budget."""
        return min(last_due + args.grace, ends)

    procs: list[subprocess.Popen] = []
    with create_app(overrides).app_context():
        migrate.upgrade()
        session, connection = db.session, jobs.queue.connection
        contacts = TOTAL // 2
        started = time.perf_counter()
        insert_rows(session, settings(), contacts, CONSENT_SAMPLE)
        log(f"setup: {contacts + CONSENT_SAMPLE:,} contacts and {TOTAL:,} follow-ups inserted "
            f"in {time.perf_counter() - started:.1f} s ({out['db']})")
        out["sched"] = sched = schedule_all(session, connection)
        log(f"scheduled {sched['count']:,} follow-ups ({sched['zcard']:,} in RQ's registry) in "
            f"{sched['seconds']:.1f} s; Redis +{sched['memory'] / 2**20:.1f} MiB, "
            f"+{sched['keys']:,} keys; with nothing missing {sched['check_seconds']:.1f} s")
        out["agreed"] = agreed = consent_path(session, contacts + 1, CONSENT_SAMPLE)
        log(f"consent path: {agreed['followups']} follow-ups in {agreed['seconds']:.1f} s")
        try:
            procs = start_workers(env, args.workers, folder, args.fork, args.profile)
            ready = wait_for_workers(connection, jobs.queue.name, args.workers, procs)
            log(f"{args.workers} worker(s) ready in {ready:.1f} s")
            picked = list(range(1, contacts + 1, max(1, contacts // (args.due + args.burst))))
            spread_ids, burst_ids = picked[:args.due], picked[args.due:args.due + args.burst]
            log(f"{len(spread_ids):,} follow-ups due over {args.spread:.0f} s, "
                f"{connection.zcard(jobs.queue.scheduled_job_registry.key):,} scheduled in all")
            cpu_before = cpu_seconds([p.pid for p in procs])
            out["rss"] = [rss_mib([p.pid for p in procs])]
            out["spread_phase"] = spread_phase(session, stand_in, spread_ids, args.spread,
                                               args.lead, deadline)
            log(f"then {len(burst_ids):,} due in the same second")
            out["burst_phase"] = burst_phase(session, stand_in, burst_ids, 2, deadline)
            out["check"] = exactly_once(stand_in, {**out["spread_phase"]["due"],
                                                   **out["burst_phase"]["due"]})
            out["worker_cpu"] = cpu_seconds([p.pid for p in procs]) - cpu_before
            out["rss"].append(rss_mib([p.pid for p in procs]))
            out["load"].append(os.getloadavg()[0])
        finally:
            stop_workers(procs)


def report(out: dict) -> dict:
    sched, agreed, check = out["sched"], out["agreed"], out["check"]
    spread, burst = out["spread_phase"], out["burst_phase"]
    late = spread["late"]
    p50, p99, worst = (percentile(late, q) for q in (0.5, 0.99, 1.0))
    due = len(spread["due"]) + len(burst["due"])
    ok_once = not check["lost"] and not check["twice"] and not check["unexpected"]
    workers = f"{out['workers']} `hotline worker`" + (" --fork" if out["fork"] else "")
    sent = due - len(check["lost"])
    rows = [
        row(f"time to schedule {sched['count']:,} follow-ups (followups.restore)",
            f"{sched['seconds']:.1f} s ({sched['count'] / sched['seconds']:,.0f}/s)"),
        row("scheduling at consent (consent.agree, one contact at a time)",
            f"{agreed['followups'] / agreed['seconds']:,.0f} follow-ups/s"),
        row("Redis memory per scheduled job",
            f"{sched['memory'] / sched['count']:.0f} bytes ({sched['memory'] / 2**20:.1f} MiB"
            f" and {sched['keys']:,} keys for {sched['count']:,})"),
        row(f"delivery lateness p50 / p99 / max ({len(spread['due']):,} due over "
            f"{out['spread']:.0f} s among ~100,000 scheduled; {workers})",
            f"{p50:.2f} / {p99:.2f} / {worst:.2f} s", f"p99 < {LATENESS_TARGET:.0f} s",
            bool(late) and len(late) == len(spread["due"]) and p99 < LATENESS_TARGET),
        row(f"sending rate, {len(burst['due']):,} due in the same second ({workers})",
            f"{burst['rate']:.0f} texts/s (all sent {burst['drain']:.1f} s after due)"
            if burst["drain"] is not None else "nothing sent"),
        row("worker CPU per text sent (the worker processes and their scheduler)",
            f"{out['worker_cpu'] / max(1, sent) * 1000:.1f} ms"),
        row("each due follow-up sent exactly once",
            f"{sent:,} of {due:,} sent; missing {len(check['lost'])}, twice "
            f"{len(check['twice'])}, sent but not due {len(check['unexpected'])}",
            "all, once", ok_once),
    ]
    notes = [
        (f"Follow-ups: {out['db']}, a real redis-server, {workers} process (RQ worker with its "
         "scheduler) and a local HTTP stand-in for Twilio that answers at once."),
        ("Scheduling: followups.restore (what a worker runs at start) writes RQ's job hash and "
         "registry entry for 1,000 jobs per MULTI/EXEC; limited by redis-py packing commands "
         "in pure Python and by RQ building each job. A worker start with nothing missing "
         f"checks the {sched['count']:,} in {sched['check_seconds']:.1f} s."),
        ("Lateness = arrival at the stand-in - due_at. RQ's scheduler polls once a second "
         "(whole-second scores), then the texts of one second wait for each other: about "
         "1 s + (texts due per second / sending rate)."),
        (f"Worker memory (RSS): {out['rss'][0]:.0f} MiB before the texts, "
         f"{out['rss'][1]:.0f} MiB after {due - len(check['lost']):,} of them."),
        (f"Machine: {os.cpu_count()} CPUs, load average {out['load'][0]:.1f} at the start "
         f"and {out['load'][1]:.1f} at the end (other work on the machine slows every figure)."),
        ("Against Twilio each send also waits for Twilio's answer (tens of ms, not <1 ms as "
         "here), and a sender number's own rate limit queues texts at Twilio."),
    ]
    return {"name": "followups", "title": "Follow-ups at scale", "rows": rows, "notes": notes}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="write the results as JSON here")
    parser.add_argument("--due", type=int, default=2000, help="follow-ups due in the spread")
    parser.add_argument("--spread", type=float, default=40, help="seconds they are due over")
    parser.add_argument("--burst", type=int, default=600, help="then due in one second")
    parser.add_argument("--lead", type=float, default=5, help="seconds before the first is due")
    parser.add_argument("--grace", type=float, default=30, help="wait past the last due time")
    parser.add_argument("--budget", type=float, default=135,
                        help="seconds from start by which waiting for texts stops")
    parser.add_argument("--workers", type=int, default=1, help="`hotline worker` processes")
    parser.add_argument("--fork", action="store_true", help="workers fork a horse per job")
    parser.add_argument("--profile", help="record the workers with py-spy to PROFILE-N.json")
    parser.add_argument("--keep", action="store_true", help="keep the worker logs")
    args = parser.parse_args()
    args.started = time.time()
    started = time.monotonic()
    out = report(run(args))
    print_table(f"{out['title']} ({time.monotonic() - started:.0f} s)", out["rows"],
                out["notes"])
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
