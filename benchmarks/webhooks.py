"""Webhook throughput and latency: the hotline under gunicorn against the stack's ceiling.

Starts a Redis server and PostgreSQL (SQLite when PostgreSQL is not installed, or with
``--sqlite``), migrates and seeds a roster of 20 supporters with the ``hotline`` CLI, then
starts three gunicorn servers with the same explicit settings (``config/gunicorn.conf.py``
plus ``--workers``/``--threads``): the hotline (``HOTLINE_ENV=production``, so every
request's Twilio signature is checked for real against PUBLIC_BASE_URL), the ceiling
(``benchmarks/ceiling.py``: bare Flask, constant TwiML) and the floor
(``benchmarks/floor.py``: only what every correct webhook must do). ``benchmarks/loadgen.py``,
a separate process, drives each with 32 keep-alive connections playing signed call flows
and texts. The targets are measured in alternating rounds (ceiling, floor, hotline, then
hotline, floor, ceiling, ...) so background load on the machine falls on all alike; a
throughput ratio is the median of the rounds' ratios (``paired_share``).

No RQ worker runs: the jobs the webhooks enqueue (routing, cancellations, redactions) just
wait in Redis, which is all a webhook does with them. Afterwards the database is checked
against what the generator did (one contact per call and per text conversation, every
queued caller abandoned), one answer per route is validated against Twilio's TwiML schema,
and non-2xx answers are counted.

Prints a table; ``--json OUT`` writes the benchmark contract's rows; ``--profile DIR``
samples the hotline's gunicorn workers with py-spy during the hotline's rounds.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import floor as floor_app  # noqa: E402
from benchmarks.common import percentile, print_table, row, wait_healthy  # noqa: E402
from tests.servers import (PostgresServer, RedisServer, cpu_seconds, descendants,  # noqa: E402
                           free_port, pg_binary)

#: Concurrent keep-alive connections, as the issue's latency target states.
CONNECTIONS = 32
#: gunicorn on 2 cores: one process per core (the GIL makes a process the unit of CPU),
#: threads to overlap each request's database and Redis round trips. See the notes.
WORKERS = 2
THREADS = 8
#: The paced run offers this share of the hotline's measured saturation throughput.
PACED_SHARE = 0.75
#: Targets from the issues: throughput against the ceiling (issue 5), against the floor
#: on all routes and on the incoming-call webhook alone (issue 20), p99 at PACED_SHARE.
MIN_CEILING_SHARE = 0.70
MIN_FLOOR_SHARE = 0.70
MIN_INCOMING_FLOOR_SHARE = 0.80
MAX_P99_MS = 50.0
SUPPORTERS = 20
#: The production settings file; both servers use it (BENCH_GUNICORN_CONFIG to experiment).
GUNICORN_CONFIG = os.environ.get("BENCH_GUNICORN_CONFIG", "config/gunicorn.conf.py")
AUTH_TOKEN = secrets.token_hex(16)


def log(message: str) -> None:
    print(f"[webhooks {time.strftime('%H:%M:%S')}] {message}", flush=True)


# --- the servers ------------------------------------------------------------------------

class Gunicorn:
    """One gunicorn master on a free port with the shared settings."""

    def __init__(self, name: str, target: str, env: dict, workers: int, threads: int,
                 folder: Path, port: int | None = None) -> None:
        self.name, self.port = name, port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        # What the app signs with: production accepts only https (TLS would end at a proxy).
        self.public = f"https://127.0.0.1:{self.port}"
        self.log_path = folder / f"{name}.log"
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", GUNICORN_CONFIG,
             "--workers", str(workers), "--threads", str(threads),
             "--bind", f"127.0.0.1:{self.port}", target],
            env=dict(env, PUBLIC_BASE_URL=self.public), cwd=ROOT, stdout=self._log,
            stderr=subprocess.STDOUT)

    def wait_ready(self, seconds: float = 40) -> None:
        try:
            wait_healthy(self.url, [self.proc], seconds)
        except RuntimeError:
            raise RuntimeError(f"{self.name} did not start; see {self.log_path}:\n"
                               + self.log_path.read_text()[-2000:]) from None

    def workers(self) -> list[int]:
        """gunicorn's worker processes (the arbiter's children)."""
        return descendants(self.proc.pid)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


def hotline_env(db_url: str, redis_url: str) -> dict:
    """A production configuration: secrets set, signatures checked."""
    from cryptography.fernet import Fernet
    return {"HOTLINE_ENV": "production", "TWILIO_ACCOUNT_SID": "AC" + secrets.token_hex(16),
            "TWILIO_AUTH_TOKEN": AUTH_TOKEN, "HOTLINE_NUMBER": "+16175551000",
            "SECRET_KEY": secrets.token_hex(32), "DATABASE_URL": db_url,
            "HOTLINE_SEAL_KEY": Fernet.generate_key().decode(),
            "HOTLINE_CALLER_KEY_SECRET": "v1:" + secrets.token_hex(32),
            "REDIS_URL": redis_url, "HOTLINE_LOG_LEVEL": "INFO",
            "BACKUP_NUMBERS": "+16175551098",
            # nothing listens here: no job runs anyway, but never reach the real Twilio
            "TWILIO_API_BASE_URL": "https://127.0.0.1:9"}


def migrate_and_seed(env: dict, public_url: str) -> None:
    """``hotline db upgrade`` and a roster (``hotline supporters add/on``), via the CLI."""
    saved = dict(os.environ)
    os.environ.update(env, PUBLIC_BASE_URL=public_url, HOTLINE_LOG_LEVEL="WARNING")
    try:
        from hotline import create_app
        app = create_app()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    runner = app.test_cli_runner()
    commands = [["db", "upgrade"]]
    for n in range(SUPPORTERS):
        phone = f"+1617555{130 + n:04d}"
        tier = "2" if n % 5 == 4 else "1"
        langs = ["--language", "en"] + (["--language", "es"] if n % 3 == 0 else [])
        commands += [["supporters", "add", "--name", f"Peer {n + 1}", "--phone", phone,
                      "--tier", tier, *langs], ["supporters", "on", phone]]
    for args in commands:
        result = runner.invoke(args=args)
        if result.exit_code != 0:
            raise RuntimeError(f"hotline {' '.join(args)} failed: {result.output}")
    from hotline.core.extensions import db
    db.session.remove()
    db.engine.dispose()


# --- CPU accounting -------------------------------------------------------------------------

def cpu_snapshot(roots: dict[str, int]) -> dict[str, float]:
    """CPU seconds used so far by each named root process and the processes below it."""
    return {name: cpu_seconds([root]) for name, root in roots.items()}


def postmaster_pid(pg) -> int | None:
    try:
        return int(Path(pg.data, "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, AttributeError):
        return None


# --- running the generator ----------------------------------------------------------------

def vacuum(pg) -> None:
    """VACUUM ANALYZE every table before a measured run. The runs before it wrote tens of
    thousands of rows; PostgreSQL's autovacuum of them would otherwise start inside a
    measurement whenever its launcher wakes (once a minute), on the same two cores: a
    pause of a few hundred ms that a paced run's p99 shows and a closed-loop round hides."""
    if pg is None:  # SQLite (--sqlite): no autovacuum
        return
    subprocess.run([pg_binary("psql") or "psql", "-h", "127.0.0.1", "-p", str(pg.port),
                    "-U", "postgres", "-d", "hotline_test", "-q", "-c", "VACUUM ANALYZE"],
                   check=True, capture_output=True, timeout=120)


def drive(server: Gunicorn, seconds: float, warmup: float, prefix: str, folder: Path,
          connections: int, profile: Path | None = None,
          cpu_roots: dict[str, int] | None = None, rate: float = 0.0, block: int = 0,
          only: str | None = None, pg=None) -> dict:
    vacuum(pg)
    out = folder / f"load-{prefix}.json"
    spies = []
    if profile is not None:
        spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        for pid in server.workers():
            spies.append(subprocess.Popen(
                [spy, "record", "--pid", str(pid), "--duration", str(int(seconds + warmup)),
                 "--rate", "200", "--format", "raw", "--gil",
                 "-o", str(profile / f"{prefix}-{pid}.txt")],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    before = cpu_snapshot(cpu_roots or {})
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "loadgen.py"), "--url", server.url,
                    "--public", server.public, "--token", AUTH_TOKEN, "--connections",
                    str(connections), "--warmup", str(warmup), "--duration", str(seconds),
                    "--prefix", prefix, "--out", str(out), "--rate", str(rate),
                    "--block", str(block), *(["--only", only] if only else [])],
                   check=True, cwd=ROOT, timeout=seconds + warmup + 60)
    after = cpu_snapshot(cpu_roots or {})
    for spy in spies:
        spy.wait(timeout=30)
    run = json.loads(out.read_text())
    run["server_cpu_seconds"] = {k: after[k] - before[k] for k in after}
    return run


def merge(runs: list[dict]) -> dict:
    merged = {"duration": 0.0, "generator_cpu_seconds": 0.0, "server_cpu_seconds": Counter(),
              "requests": 0, "wall": 0.0, "latencies_ms": defaultdict(list),
              "statuses": defaultdict(Counter), "errors": Counter(), "samples": {},
              "sequences": Counter(), "connects": 0}
    for run in runs:
        merged["duration"] += run["duration"]
        merged["generator_cpu_seconds"] += run["generator_cpu_seconds"]
        merged["connects"] += run["connects"]
        merged["server_cpu_seconds"].update(run.get("server_cpu_seconds", {}))
        merged["requests"] += run["answered"]
        merged["wall"] += run["wall"]
        for route, values in run["latencies_ms"].items():
            merged["latencies_ms"][route] += values
        for route, counts in run["statuses"].items():
            merged["statuses"][route].update(counts)
        merged["errors"].update(run["errors"])
        merged["sequences"].update(run["sequences"])
        for route, body in run["samples"].items():
            merged["samples"].setdefault(route, body)
    return merged


def cpu_per_request(merged: dict) -> dict[str, float]:
    """CPU milliseconds per answered request (warm-up included), by process group."""
    n = max(1, merged["requests"])
    used = dict(merged["server_cpu_seconds"], generator=merged["generator_cpu_seconds"])
    return {k: round(v * 1000 / n, 2) for k, v in used.items()}


def round_rps(run: dict) -> float:
    """One round's throughput: answers per measured second."""
    return sum(len(v) for v in run["latencies_ms"].values()) / run["duration"]


def paired_share(numerator: list[float], denominator: list[float]) -> float:
    """The median, over rounds, of one server's throughput over another's in the same
    round. The two ran back to back (the order alternates), so what else the machine was
    doing then weighs on both; a round disturbed for one of them (a pause of a third of
    its throughput is seen on this shared machine) moves one ratio, not the figure. The
    pooled ratio (all answers over all seconds) is reported beside it."""
    ratios = [a / b for a, b in zip(numerator, denominator) if b]
    return statistics.median(ratios) if ratios else 0.0


def summary(merged: dict) -> dict:
    """Per route and overall: rps, p50, p99 (ms), non-2xx answers."""
    routes = {}
    everything: list[float] = []
    for route in sorted(merged["latencies_ms"]):
        values = merged["latencies_ms"][route]
        everything += values
        bad = sum(n for status, n in merged["statuses"][route].items()
                  if not status.startswith("2"))
        routes[route] = {"rps": len(values) / merged["duration"], "n": len(values),
                         "p50": percentile(values, 0.50), "p99": percentile(values, 0.99),
                         "non_2xx": bad}
    total = {"rps": len(everything) / merged["duration"], "n": len(everything),
             "p50": percentile(everything, 0.50), "p99": percentile(everything, 0.99),
             "mean": statistics.fmean(everything) if everything else float("nan"),
             "non_2xx": sum(r["non_2xx"] for r in routes.values())}
    return {"routes": routes, "total": total}


# --- checks -------------------------------------------------------------------------------

def twiml_problems(samples: dict) -> list[str]:
    """Each route's sample answer against the TwiML schemas the tests use (and no recording)."""
    from tests.twilio_files import assert_valid_twiml
    problems = []
    for route, body in sorted(samples.items()):
        try:
            assert_valid_twiml(body)
        except (AssertionError, SyntaxError, ValueError) as exc:  # XMLSyntaxError included
            problems.append(f"{route}: {exc}")
    return problems


def database_effects(db_url: str, merged_runs: list[dict]) -> dict:
    """What the hotline recorded, against what the generator completed."""
    from sqlalchemy import create_engine, text
    engine = create_engine(db_url)
    with engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT channel, state, outcome, count(*) FROM contacts GROUP BY 1, 2, 3")).all()
        events = conn.execute(text("SELECT count(*) FROM contact_events")).scalar()
    engine.dispose()
    by = {f"{c}:{s}:{o}": n for c, s, o, n in rows}
    calls = sum(r["sequences"].get("call", 0) for r in merged_runs)
    texts = sum(r["sequences"].get("texts", 0) for r in merged_runs)
    abandoned = by.get("voice:ended:abandoned", 0)
    sms = sum(n for key, n in by.items() if key.startswith("sms:"))
    return {"contacts": by, "events": events, "completed calls": calls,
            "completed text conversations": texts,
            # every completed call hung up in the queue; every conversation opened a contact
            "ok": abandoned >= calls and sms >= texts,
            "summary": f"{abandoned} abandoned calls for {calls} completed call flows, "
                       f"{sms} text contacts for {texts} completed conversations"}


# --- the run ------------------------------------------------------------------------------

def fmt(ms: float) -> str:
    return f"{ms:.1f} ms"


def speed(t: dict) -> str:
    """Throughput and latency of a ``summary`` entry."""
    return f"{t['rps']:.0f} req/s, p50 {fmt(t['p50'])}, p99 {fmt(t['p99'])}"


def saturate(args, app: Gunicorn, ceiling: Gunicorn, floor: Gunicorn, redis, pg,
             folder: Path) -> dict:
    """Closed-loop rounds, alternating the three servers; CPU counted per process group."""
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    runs: dict[str, list[dict]] = {"hotline": [], "ceiling": [], "floor": []}
    for r in range(args.rounds):
        order = (ceiling, floor, app) if r % 2 == 0 else (app, floor, ceiling)
        for server in order:
            roots = {"web": server.proc.pid, "redis": redis.proc.pid}
            if pg is not None:
                roots["postgres"] = postmaster_pid(pg)
            run = drive(server, args.seconds, args.warmup, f"{server.name[0]}{r}", folder,
                        args.connections, args.profile if server is app else None, roots,
                        block=r + 1 if server is app else 0, pg=pg)
            total = sum(len(v) for v in run["latencies_ms"].values())
            log(f"round {r + 1} {server.name}: {total / run['duration']:.0f} req/s, "
                f"errors {sum(run['errors'].values())}")
            runs[server.name].append(run)
    return runs


def incoming_alone(args, app: Gunicorn, floor: Gunicorn, redis, pg, folder: Path,
                   block: int) -> dict:
    """The incoming-call webhook alone (a new caller each request), floor then hotline, for
    half a round each: the route every call starts with, against the floor's same route."""
    out = {}
    for n, server in enumerate((floor, app)):
        roots = {"web": server.proc.pid, "redis": redis.proc.pid}
        if pg is not None:
            roots["postgres"] = postmaster_pid(pg)
        run = drive(server, max(2.0, args.seconds / 2), args.warmup, f"i{server.name[0]}",
                    folder, args.connections, cpu_roots=roots, block=block + n,
                    only="incoming", pg=pg)
        out[server.name] = run
        log(f"incoming call alone, {server.name}: "
            f"{run['answered'] / run['wall']:.0f} req/s, errors {sum(run['errors'].values())}")
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", type=Path, help="write the contract's rows here")
    parser.add_argument("--seconds", type=float, default=float(
        os.environ.get("BENCH_WEBHOOK_SECONDS", "10")), help="measured seconds per round")
    # Three: a round's throughput moves by 10-15% on a shared machine; the targets are read
    # from the median of the rounds' paired ratios (``paired_share``).
    parser.add_argument("--rounds", type=int, default=3, help="rounds per target")
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--workers", type=int, default=WORKERS)
    parser.add_argument("--threads", type=int, default=THREADS)
    parser.add_argument("--connections", type=int, default=CONNECTIONS)
    parser.add_argument("--sqlite", action="store_true", help="SQLite instead of PostgreSQL")
    parser.add_argument("--profile", type=Path, help="py-spy raw stacks of the hotline here")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args()
    started = time.monotonic()
    folder = Path(tempfile.mkdtemp(prefix="hotline-bench-webhooks-"))
    redis = RedisServer()
    pg = None
    servers: list[Gunicorn] = []
    try:
        if not args.sqlite:
            try:
                pg = PostgresServer()
            except Exception as exc:  # noqa: BLE001 - no PostgreSQL here: SQLite instead
                log(f"PostgreSQL unavailable ({exc}); using SQLite")
        db_url = pg.url if pg else f"sqlite:///{folder / 'hotline.db'}"
        database = "PostgreSQL" if pg else "SQLite"
        env = dict(os.environ, **hotline_env(db_url, redis.url))
        app_port = free_port()
        migrate_and_seed(env, f"https://127.0.0.1:{app_port}")
        app = Gunicorn("hotline", "hotline:create_app()", env, args.workers, args.threads,
                       folder, port=app_port)
        ceiling = Gunicorn("ceiling", "benchmarks.ceiling:create_app()", env, args.workers,
                           args.threads, folder)
        floor_app.create_table(db_url)
        floor = Gunicorn("floor", "benchmarks.floor:create_app()", env, args.workers,
                         args.threads, folder)
        servers = [app, ceiling, floor]
        for server in servers:
            server.wait_ready()
        log(f"ready after {time.monotonic() - started:.1f} s ({database}, "
            f"{args.workers} workers x {args.threads} threads); "
            f"{args.rounds} rounds x {args.seconds:.0f} s per target")
        runs = saturate(args, app, ceiling, floor, redis, pg, folder)
        merged = {name: merge(rs) for name, rs in runs.items()}
        results = {name: summary(m) for name, m in merged.items()}
        rounds = {name: [round_rps(run) for run in rs] for name, rs in runs.items()}
        rate = round(PACED_SHARE * results["hotline"]["total"]["rps"])
        paced = drive(app, args.seconds, args.warmup, "p0", folder, args.connections,
                      rate=rate, block=args.rounds + 1, pg=pg)
        results["paced"] = dict(summary(merge([paced])), rate=rate)
        log(f"paced hotline at {rate} req/s offered: p99 "
            f"{results['paced']['total']['p99']:.1f} ms")
        merged["paced"] = merge([paced])
        alone = incoming_alone(args, app, floor, redis, pg, folder, args.rounds + 2)
        for name, run in alone.items():
            merged[f"incoming {name}"] = merge([run])
            results[f"incoming {name}"] = summary(merged[f"incoming {name}"])
        checks = {"twiml": twiml_problems(merged["hotline"]["samples"]),
                  "effects": database_effects(db_url, runs["hotline"] + [paced]),
                  "errors": {n: dict(m["errors"]) for n, m in merged.items()},
                  "incoming_cpu_ms_per_request": {
                      n: cpu_per_request(merged[f"incoming {n}"]) for n in ("hotline", "floor")},
                  "generator_cpu_share": {
                      n: merged[n]["generator_cpu_seconds"] / merged[n]["wall"]
                      for n in ("hotline", "ceiling", "floor")},
                  "cpu_ms_per_request": {n: cpu_per_request(merged[n])
                                         for n in ("hotline", "ceiling", "floor")}}
        report = build_report(results, checks, args, database, time.monotonic() - started,
                              rounds)
        print_report(report, results, checks)
        if args.json:
            args.json.write_text(json.dumps(report, indent=2))
        return 0
    finally:
        for server in servers:
            server.stop()
        if pg is not None:
            pg.stop()
        redis.stop()
        if args.keep:
            log(f"kept {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)


def build_report(results: dict, checks: dict, args, database: str, wall: float,
                 rounds: dict[str, list[float]]) -> dict:
    app, top = results["hotline"]["total"], results["ceiling"]["total"]
    low = results["floor"]["total"]
    share = paired_share(rounds["hotline"], rounds["ceiling"])
    floor_share = paired_share(rounds["floor"], rounds["ceiling"])
    low_share = paired_share(rounds["hotline"], rounds["floor"])
    pooled = {"ceiling": app["rps"] / top["rps"] if top["rps"] else 0.0,
              "floor": app["rps"] / low["rps"] if low["rps"] else 0.0}
    per_round = ", ".join(f"{h:.0f}/{f:.0f}" for h, f in zip(rounds["hotline"],
                                                             rounds["floor"]))
    alone_app = results["incoming hotline"]["total"]
    alone_low = results["incoming floor"]["total"]
    alone_share = alone_app["rps"] / alone_low["rps"] if alone_low["rps"] else 0.0
    setting = (f"{args.workers} gunicorn workers x {args.threads} threads (gthread), "
               f"{args.connections} connections")
    under = f"p99 < {MAX_P99_MS:.0f} ms"
    paced = results["paced"]
    rows = [
        row(f"ceiling: bare Flask, constant TwiML ({setting})", speed(top)),
        row("hotline: all webhook routes", speed(app), under, app["p99"] < MAX_P99_MS),
        row("hotline throughput / ceiling (median of the rounds' ratios)",
            f"{share:.0%} (pooled {pooled['ceiling']:.0%})", f">= {MIN_CEILING_SHARE:.0%}",
            share >= MIN_CEILING_SHARE),
        row("floor: only what every correct webhook must do (signature, idempotency in Redis, "
            "one INSERT and commit; constant TwiML)", speed(low)),
        row("  floor / ceiling: the most any correct webhook reaches here", f"{floor_share:.0%}"),
        row("hotline throughput / floor, all webhook routes (median of the rounds' ratios)",
            f"{low_share:.0%} (pooled {pooled['floor']:.0%}; hotline/floor req/s by round: "
            f"{per_round})", f">= {MIN_FLOOR_SHARE:.0%}", low_share >= MIN_FLOOR_SHARE),
        row("incoming-call webhook alone: hotline / floor",
            f"{alone_share:.0%} ({speed(alone_app)} against {alone_low['rps']:.0f} req/s)",
            f">= {MIN_INCOMING_FLOOR_SHARE:.0%}", alone_share >= MIN_INCOMING_FLOOR_SHARE),
        row(f"hotline paced at {PACED_SHARE:.0%} of its throughput ({paced['rate']} req/s "
            "offered)", speed(paced["total"]), under, paced["total"]["p99"] < MAX_P99_MS),
    ]
    for route, r in results["hotline"]["routes"].items():
        ceil = results["ceiling"]["routes"].get(route)
        rows.append(row(f"hotline {route}",
                        speed(r) + (f" (ceiling p99 {fmt(ceil['p99'])})" if ceil else ""),
                        under, r["p99"] < MAX_P99_MS))
    errors = sum(sum(e.values()) for e in checks["errors"].values())
    non_2xx = sum(results[name]["total"]["non_2xx"] for name in results)
    effects = checks["effects"]
    problems = [p for p in checks["twiml"] if not p.startswith("(")]
    rows += [
        row("non-2xx answers / broken sequences (all runs)", f"{non_2xx} / {errors}", "0 / 0",
            non_2xx + errors == 0),
        row("each call flow and text conversation had its effect in the database",
            effects["summary"], "one contact each", effects["ok"]),
        row("sample answer of each route is valid TwiML (twiml.xsd)",
            "yes" if not problems else "; ".join(problems)[:200], "yes", not problems),
    ]
    gen = checks["generator_cpu_share"]
    cpu = checks["cpu_ms_per_request"]
    app_cpu, top_cpu = sum(cpu["hotline"].values()), sum(cpu["ceiling"].values())
    low_cpu = sum(cpu["floor"].values())
    notes = [
        (f"{database}, Redis, gunicorn {setting}; servers, databases and the load generator "
         f"share this machine's {os.cpu_count()} cores. {args.rounds} rounds of "
         f"{args.seconds:.0f} s per target after {args.warmup:.0f} s of warm-up, alternating "
         f"the three servers so background load falls on all alike. Whole script {wall:.0f} s."),
        ("Load: a separate process (benchmarks/loadgen.py, asyncio, keep-alive HTTP/1.1) sends "
         "requests signed with twilio's RequestValidator against PUBLIC_BASE_URL, with Twilio's "
         "parameters and a fresh I-Twilio-Idempotency-Token each; 2 in 3 sequences are calls "
         "(incoming, menu choice, 3-5 wait-URL polls, queue exit on hang-up, status callback), "
         "1 in 3 text conversations (intake, reply 2, a text while waiting); CallSid, "
         "MessageSid and From are unique. The same generator drives both servers."),
        ("The hotline runs with HOTLINE_ENV=production: signature checks, idempotency (Redis "
         "GET and SET; in the database for the incoming call, the status callback, the wait "
         "poll, the queue exit of a hang-up and texts), keyed caller hashes, sealed numbers, "
         "database writes and RQ enqueues are "
         "real; no RQ worker runs, so the enqueued jobs only wait in Redis. The ceiling has the "
         "same routes and answers constant TwiML: no signature, database or Redis."),
        (f"What limits throughput is CPU per request: hotline {app_cpu:.2f} ms "
         f"({cpu['hotline']}) against the ceiling's {top_cpu:.2f} ms ({cpu['ceiling']}). "
         f"The generator used {gen['ceiling']:.0%} of a core against the ceiling and "
         f"{gen['hotline']:.0%} against the hotline. A py-spy profile (--profile DIR) puts most "
         "of the hotline's Python time in SQLAlchemy and psycopg (1 to 4 statements per "
         "webhook, a data-modifying WITH or a transaction), then Werkzeug/Flask, gunicorn, "
         "redis-py and RQ; "
         "the hotline's own code is a few percent. 70% of a constant-answer Flask app would "
         "leave about 1 ms of CPU for everything a webhook does."),
        (f"The floor (benchmarks/floor.py) does only what no correct webhook may skip: "
         f"{low_cpu:.2f} ms of CPU per request ({cpu['floor']}), so {floor_share:.0%} of the "
         "ceiling is the most any webhook that checks the signature, deduplicates Twilio's "
         "retries and records its step before answering can reach on this stack; the "
         f"{MIN_CEILING_SHARE:.0%} target lies above it. The hotline reaches {low_share:.0%} "
         "of the floor; the rest is its own work (the contact's state, events, caller key, "
         "the routing job's enqueue, TwiML built per answer)."),
        (f"The incoming-call webhook alone (--only incoming: every request a new caller, "
         f"{max(2.0, args.seconds / 2):.0f} s each, floor then hotline): CPU per request "
         f"hotline {sum(checks['incoming_cpu_ms_per_request']['hotline'].values()):.2f} ms "
         f"({checks['incoming_cpu_ms_per_request']['hotline']}) against the floor's "
         f"{sum(checks['incoming_cpu_ms_per_request']['floor'].values()):.2f} ms. Throughput "
         "ratios follow CPU per request, which the machine's other load does not change; "
         "benchmarks/webhook_cpu.py measures it per route in one process, without gunicorn "
         "or the network."),
        ("Closed loop at saturation: each connection sends its next request as soon as the "
         "previous answer arrives, so the mean latency is connections / throughput (Little's "
         f"law): a p99 under {MAX_P99_MS:.0f} ms at {args.connections} connections needs well "
         f"over {args.connections * 1000 / MAX_P99_MS:.0f} req/s. The paced run offers "
         f"{PACED_SHARE:.0%} of the measured throughput on the same {args.connections} "
         "connections, latency counted from when each request was due."),
        (f"Workers: {args.workers} processes (one per core: Python runs one thread at a time in "
         f"a process) x {args.threads} threads (to overlap each request's PostgreSQL and Redis "
         "round trips); config/gunicorn.conf.py's defaults on this machine."),
        (f"Database effects: {effects['summary']}; contacts by channel:state:outcome "
         f"{effects['contacts']}, {effects['events']} events."),
    ]
    return {"name": "webhooks", "title": f"Webhook throughput and latency ({database}, "
            f"{args.connections} connections, {os.cpu_count()} cores)", "rows": rows,
            "notes": notes}


def print_report(report: dict, results: dict, checks: dict) -> None:
    print_table(report["title"], report["rows"], report["notes"])
    print("  per route, ceiling:")
    for route, r in results["ceiling"]["routes"].items():
        print(f"    {route:<32} {r['rps']:7.0f} req/s  p50 {r['p50']:6.1f}  p99 {r['p99']:6.1f}")
    if any(checks["errors"].values()):
        print(f"\n  errors: {checks['errors']}")

if __name__ == "__main__":
    sys.exit(main())
