"""What the benchmarks share: logging, process helpers, percentiles, the web phone's API,
and the result file every part writes for ``benchmarks/bench.py``.

Nothing here starts anything at import; each benchmark starts its own servers
(``tests/servers.py``) and processes, and stops them at the end.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Callable
from http.cookiejar import CookieJar
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.servers import process_table, stop_processes  # noqa: E402


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


# --- processes ------------------------------------------------------------------------

def children(pid: int) -> list[int]:
    """The direct children of ``pid``."""
    return [child for child, (parent, *_) in process_table().items() if parent == pid]


def rss_kb(pids: list[int]) -> int:
    """Resident memory of ``pids`` added up, in KiB."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


def wait_healthy(url: str, procs: list[subprocess.Popen], seconds: float = 40) -> None:
    """Poll ``url``/healthz until it answers; RuntimeError if a process died or time ran out."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            urllib.request.urlopen(f"{url}/healthz", timeout=1).read()
            return
        except OSError:
            if any(p.poll() is not None for p in procs) or time.monotonic() > deadline:
                raise RuntimeError(f"{url} did not start") from None
            time.sleep(0.2)


#: TERM every process we started, then KILL what is still there after ``seconds``.
stop_all = stop_processes


# --- sampling ------------------------------------------------------------------------

class Sampler(threading.Thread):
    """Peak RSS and CPU time of each part of a stack, every second; ``pids()`` names the
    processes of each part (they may come and go)."""

    def __init__(self, pids: Callable[[], dict[str, list[int]]]) -> None:
        super().__init__(daemon=True)
        self.pids, self.halt, self.peak = pids, threading.Event(), Counter()
        self.cpu_first: dict[int, float] = {}
        self.cpu_last: dict[int, tuple[str, float]] = {}
        self.started = time.monotonic()
        self.elapsed = 0.0

    def run(self) -> None:
        while not self.halt.is_set():
            self.sample()
            self.halt.wait(1)

    def sample(self) -> None:
        table, tick = process_table(), os.sysconf("SC_CLK_TCK")
        for name, pids in self.pids().items():
            self.peak[name] = max(self.peak[name], rss_kb(pids))
            for pid in pids:
                if pid in table:
                    used = table[pid][1] / tick
                    self.cpu_first.setdefault(pid, used)
                    self.cpu_last[pid] = (name, used)

    def stop(self) -> None:
        self.halt.set()
        self.join(timeout=5)
        self.sample()
        self.elapsed = time.monotonic() - self.started

    def peaks(self, *names: str) -> dict[str, float]:
        """Peak RSS in MiB of the parts ``names``."""
        return {name: self.peak[name] / 1024 for name in names}

    def cpu(self) -> dict[str, float]:
        """CPU seconds each part used while sampled, most first."""
        used = Counter()
        for pid, (name, last) in self.cpu_last.items():
            used[name] += last - self.cpu_first[pid]
        return dict(used.most_common())


# --- figures --------------------------------------------------------------------------

def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) by the nearest-rank rule; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(q * len(ordered) + 0.999999) - 1))]


def percentiles(values: list[float]) -> str:
    """'p50 / p99 (n=N)' in milliseconds, for seconds in ``values`` (the soak's format)."""
    if not values:
        return "n/a"
    ordered = sorted(values)
    p = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000
    return f"{p(0.5):.0f} / {p(0.99):.0f} (n={len(ordered)})"


def row(figure: str, value: str, target: str = "", passed: bool | None = None) -> dict:
    """One line of the results table."""
    return {"figure": figure, "value": value, "target": target, "pass": passed}


def write_json(path: str | Path, name: str, title: str, rows: list[dict],
               notes: list[str]) -> None:
    """The part's results as ``benchmarks/bench.py`` merges them."""
    Path(path).write_text(json.dumps({"name": name, "title": title, "rows": rows,
                                      "notes": notes}, indent=2) + "\n")


def print_table(title: str, rows: list[dict], notes: list[str]) -> None:
    """A readable summary on stdout."""
    marks = {True: "PASS", False: "FAIL", None: ""}
    width = max(len(r["figure"]) for r in rows)
    print(f"\n{title}\n")
    for r in rows:
        target = f"  (target {r['target']})" if r["target"] else ""
        print(f"  {r['figure']:<{width}}  {r['value']}{target}  {marks[r['pass']]}")
    print()
    for note in notes:
        print(f"  - {note}")
    print(flush=True)


# --- the web phone's JSON API (the stand-in) ------------------------------------------

class Api:
    """The web phone's JSON API: what a person at ``/phone`` clicks, for a driver."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.latencies: list[float] = []
        self.errors = Counter()
        # The page's session cookie and CSRF token, as a browser holds them: every POST
        # carries the token (the web phone refuses posts from other sites).
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))
        with self.opener.open(base + "/phone", timeout=30) as r:
            page = r.read().decode()
        self.csrf = re.search(r'<meta name="csrf-token" content="([^"]+)"', page).group(1)

    def get(self, path: str) -> dict:
        with self.opener.open(self.base + path, timeout=30) as r:
            return json.loads(r.read())

    def post(self, path: str, **form: str) -> dict:
        data = urllib.parse.urlencode(form).encode()
        request = urllib.request.Request(self.base + path, data=data,
                                         headers={"X-CSRF-Token": self.csrf})
        started = time.monotonic()
        try:
            with self.opener.open(request, timeout=30) as r:
                result = json.loads(r.read())
        except urllib.error.HTTPError as exc:  # 400: refused (the leg ended meanwhile...)
            result = json.loads(exc.read() or b"{}")
        self.latencies.append(time.monotonic() - started)
        if not result.get("ok"):
            self.errors[path.rsplit("/", 1)[-1]] += 1
        return result

    def dial(self, number: str) -> dict:
        return self.post(f"/phone/api/phones/{urllib.parse.quote(number)}/dial")

    def sms(self, number: str, body: str) -> dict:
        return self.post(f"/phone/api/phones/{urllib.parse.quote(number)}/sms", body=body)

    def leg(self, sid: str, action: str, **form: str) -> dict:
        return self.post(f"/phone/api/legs/{sid}/{action}", **form)
