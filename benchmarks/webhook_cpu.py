"""CPU per webhook, by route, in one process: the hotline against the floor, robust to load.

``benchmarks/webhooks.py`` measures throughput under gunicorn, which on a shared machine
moves with everything else running there. This measures what throughput follows from: the
CPU time (``time.process_time``, user + system) each request costs the web process, plus
what PostgreSQL and Redis spent per request, with no gunicorn, no network and no load
generator. It starts Redis and PostgreSQL (tests/servers.py), migrates and seeds as
``webhooks.py`` does, and plays the load generator's sequences (signed calls and text
conversations, fresh idempotency tokens, unique CallSids and numbers) through Flask's test
client against the hotline (HOTLINE_ENV=production) and then the floor (benchmarks/floor.py).

``--profile DIR`` writes a cProfile of each app's requests (CPU time, not wall time:
``thread_time``), and prints the top frames (cumulative) and the share of CPU by package.

Run: ``PYTHONPATH=$PWD .venv/bin/python benchmarks/webhook_cpu.py [--sequences 300]``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import re
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# Metrics as under gunicorn (config/gunicorn.conf.py): each value written to a file.
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="hotline-cpu-"))

from twilio.request_validator import RequestValidator  # noqa: E402

from benchmarks import floor as floor_app  # noqa: E402
from hotline import create_app  # noqa: E402
from benchmarks import loadgen  # noqa: E402
from benchmarks import webhooks  # noqa: E402
from tests.servers import PostgresServer, RedisServer, cpu_seconds  # noqa: E402

PUBLIC = "https://127.0.0.1:8443"
WAIT_POLLS = 4
INCOMING = "voice: incoming call"


class Player:
    """The load generator's sequences, through a Flask test client, CPU timed per route."""

    def __init__(self, app, block: int, profiler=None) -> None:
        self.client = app.test_client()
        self.validator = RequestValidator(webhooks.AUTH_TOKEN)
        args = argparse.Namespace(url="http://127.0.0.1:1", public=PUBLIC,
                                  token=webhooks.AUTH_TOKEN, block=block, seed=1, prefix="c")
        self.gen = loadgen.Generator(args)
        self.cpu: dict[str, list[float]] = defaultdict(list)
        self.profiler = profiler

    def post(self, route: str, path: str, params: dict) -> bytes:
        headers = {"X-Twilio-Signature": self.validator.compute_signature(PUBLIC + path, params),
                   "I-Twilio-Idempotency-Token": str(uuid.uuid4()),
                   "Content-Type": "application/x-www-form-urlencoded"}
        body = urlencode(params)
        if self.profiler is not None:
            self.profiler.enable()
        started = time.process_time()
        answer = self.client.post(path, data=body, headers=headers, base_url=PUBLIC)
        self.cpu[route].append(time.process_time() - started)
        if self.profiler is not None:
            self.profiler.disable()
        if answer.status_code != 200:
            raise RuntimeError(f"{route}: HTTP {answer.status_code}: {answer.data[:300]!r}")
        return answer.data

    def path(self, pattern: re.Pattern, body: bytes) -> str:
        found = pattern.search(body)
        if not found:
            raise RuntimeError(f"unexpected answer: {body[:300]!r}")
        return self.gen._path(found.group(1), PUBLIC)

    def call(self) -> None:
        gen = self.gen
        sid, caller = gen._sid("CA"), next(gen.numbers)
        base = gen._call_params(sid, caller, "ringing")
        action = self.path(loadgen.ACTION, self.post("voice: incoming call", "/twilio/voice",
                                                     base))
        live = dict(base, CallStatus="in-progress")
        body = self.post("voice: menu choice", action, dict(live, Digits="1", FinishedOnKey=""))
        enqueue = loadgen.ENQUEUE.search(body).group(1)
        exit_path = self.path(loadgen.ENQUEUE_ACTION, enqueue)
        wait_path = self.path(loadgen.WAIT_URL, enqueue)
        for poll in range(WAIT_POLLS):
            self.post("voice: wait URL poll", wait_path, dict(
                live, QueueSid="QU1", QueueTime=str(poll * loadgen.QUEUE_STEP_SECONDS),
                AvgQueueTime="12", CurrentQueueSize="1", QueuePosition="1"))
        self.post("voice: queue exit (hang-up)", exit_path, dict(
            live, CallStatus="completed", QueueResult="hangup", QueueSid="QU1",
            QueueTime="32"))
        self.post("voice: status callback", "/twilio/voice/status", dict(
            base, CallStatus="completed", CallDuration="52", Duration="1",
            CallbackSource="call-progress-events", SequenceNumber="0"))

    def texts(self) -> None:
        sender = next(self.gen.numbers)
        for route, body in (("sms: first text (intake)", "hi, it was a rough night"),
                            ("sms: menu reply", "2"), ("sms: text while waiting", "still there?")):
            self.post(route, "/twilio/sms", self.gen._sms_params(sender, body))

    def play(self, sequences: int, seed: int = 1) -> None:
        rng = random.Random(seed)
        for _ in range(sequences):
            self.call() if rng.random() < loadgen.VOICE_SHARE else self.texts()


def measure(apps: dict, sequences: int, roots: dict[str, int], profile: Path | None,
            chunk: int = 10) -> dict:
    """Each app plays the same sequences, in turns of ``chunk`` sequences, so whatever else
    the machine does falls on both alike; PostgreSQL's and Redis's CPU counted per turn."""
    players, others = {}, {}
    for n, (name, app) in enumerate(apps.items()):
        Player(app, 50 + n).play(20)  # warm-up: caches, pools, prepared statements
        players[name], others[name] = Player(app, 10 * (n + 1)), Counter()
    rngs = {name: random.Random(1) for name in apps}
    for _ in range(0, sequences, chunk):
        for name, player in players.items():
            before = {k: cpu_seconds([pid]) for k, pid in roots.items()}
            for _ in range(chunk):
                player.call() if rngs[name].random() < loadgen.VOICE_SHARE else player.texts()
            for k, pid in roots.items():
                others[name][k] += cpu_seconds([pid]) - before[k]
    results = {}
    for name, player in players.items():
        n = sum(len(v) for v in player.cpu.values())
        web = sum(sum(v) for v in player.cpu.values()) * 1000 / n
        other = {k: round(v * 1000 / n, 3) for k, v in others[name].items()}
        results[name] = {"requests": n, "web_ms": round(web, 3), "others_ms": other,
                         "total_ms": round(web + sum(other.values()), 3),
                         "routes_ms": {r: round(sum(v) * 1000 / len(v), 3)
                                       for r, v in sorted(player.cpu.items())}}
        if profile is not None:  # a second pass, profiled (the figures above are not)
            import cProfile  # only with --profile
            profiler = cProfile.Profile(time.thread_time)
            Player(apps[name], 100 + len(results), profiler).play(sequences)
            profiler.dump_stats(str(profile / f"{name}.pstats"))
    return results


def top_frames(path: Path, n: int, requests: int) -> list[str]:
    """The profile's top frames by cumulative CPU, and CPU by package (ms per request)."""
    import pstats  # only to print a profile
    stats = pstats.Stats(str(path))
    rows = sorted(((ct, nc, f, line, fn) for (f, line, fn), (_, nc, _, ct, _)
                   in stats.stats.items()), reverse=True)
    out = []
    for ct, nc, f, line, fn in rows[:n]:
        where = re.sub(r".*site-packages/", "", f).replace(str(ROOT) + "/", "")
        out.append(f"{ct * 1000 / requests:7.3f} ms {nc / requests:5.2f}/req  {where}:{line} {fn}")
    by = Counter()
    for (f, _line, _fn), (_, _, tt, _, _) in stats.stats.items():
        found = re.search(r"site-packages/([^/]+)", f)
        by[found.group(1) if found else ("hotline" if str(ROOT) in f else
                                          "python" if f[:1] not in "~<" else "builtins")] += tt
    total = sum(by.values())
    out.append("self CPU by package: " + ", ".join(
        f"{k} {v / total:.0%}" for k, v in by.most_common(8)))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sequences", type=int, default=300, help="call flows and texts")
    parser.add_argument("--profile", type=Path, help="write cProfile stats here")
    parser.add_argument("--frames", type=int, default=30, help="top frames printed")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()
    redis, pg = RedisServer(), PostgresServer()
    try:
        env = webhooks.hotline_env(pg.url, redis.url)
        webhooks.migrate_and_seed(dict(os.environ, **env), PUBLIC)
        os.environ.update(env, PUBLIC_BASE_URL=PUBLIC, HOTLINE_LOG_LEVEL="INFO")
        floor_app.create_table(pg.url)
        roots = {"postgres": webhooks.postmaster_pid(pg), "redis": redis.proc.pid}
        if args.profile:
            args.profile.mkdir(parents=True, exist_ok=True)
        hotline_app = create_app()
        for handler in logging.getLogger().handlers:  # written as under gunicorn, not shown
            if isinstance(handler, logging.StreamHandler):
                handler.setStream(open(os.devnull, "w"))
        results = measure({"hotline": hotline_app, "floor": floor_app.create_app()},
                          args.sequences, roots, args.profile)
    finally:
        pg.stop()
        redis.stop()
    hot, low = results["hotline"], results["floor"]
    print(f"CPU ms per request (web process in-process; + PostgreSQL and Redis), "
          f"{hot['requests']} requests each")
    print(f"  {'route':<30} {'hotline':>8} {'floor':>8}")
    for route, ms in hot["routes_ms"].items():
        print(f"  {route:<30} {ms:8.3f} {low['routes_ms'].get(route, float('nan')):8.3f}")
    for key in ("web_ms", "total_ms"):
        print(f"  {key:<30} {hot[key]:8.3f} {low[key]:8.3f}")
    print(f"  postgres, redis                {hot['others_ms']}  {low['others_ms']}")
    print(f"  floor / hotline (total CPU: the throughput ratio it predicts) "
          f"{low['total_ms'] / hot['total_ms']:.0%}; incoming call alone "
          f"{low['routes_ms'][INCOMING] / hot['routes_ms'][INCOMING]:.0%} (web only)")
    if args.profile:
        for name in ("hotline", "floor"):
            print(f"\ntop frames, {name} (cumulative CPU ms per request)")
            for line in top_frames(args.profile / f"{name}.pstats", args.frames,
                                   results[name]["requests"]):
                print("  " + line)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
