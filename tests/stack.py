"""The whole hotline as separate processes, as `make run` starts it, for browser tests.

gunicorn serves the app with the stand-in (one process, threads), `hotline worker` runs
the jobs, against the session's Redis server and a fresh SQLite file, on a free port.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from hotline.devrun import DEMO_ENV
from tests.servers import free_port, stop_processes

ROOT = Path(__file__).resolve().parent.parent
#: Screenshots of the browser tests.
OUTPUT = ROOT / "test-output"
#: Debian's chromium, which Playwright drives (no browser download).
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


class Stack:
    """Start with ``Stack(redis_url, folder)``; ``stop()`` ends every process."""

    def __init__(self, redis_url: str, folder: Path, **extra: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(folder / "stack.log", "w")
        env = dict(os.environ, **DEMO_ENV, **extra)
        env.update(PUBLIC_BASE_URL=self.url, TWILIO_API_BASE_URL=self.url, REDIS_URL=redis_url,
                   DATABASE_URL=f"sqlite:///{folder / 'stack.db'}", HOTLINE_SIMULATOR="0")
        cli = [sys.executable, "-m", "hotline.cli"]
        for args in (["db", "upgrade"], ["demo", "seed"]):
            subprocess.run(cli + args, env=env, check=True, stdout=self.log, stderr=self.log,
                           cwd=ROOT)
        self.procs = [
            subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", "config/gunicorn.conf.py",
                              "--workers", "1", "--threads", "16", "--bind",
                              f"127.0.0.1:{self.port}", "hotline:create_app()"],
                             env=dict(env, HOTLINE_SIMULATOR="1"), stdout=self.log,
                             stderr=self.log, cwd=ROOT),
            subprocess.Popen(cli + ["worker"], env=env, stdout=self.log, stderr=self.log,
                             cwd=ROOT),
        ]
        self._wait()

    def _wait(self, seconds: float = 30) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"{self.url}/healthz", timeout=1).read()
                return
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"the hotline did not start; see {self.log.name}")

    def stop(self) -> None:
        stop_processes(self.procs, 15)
        self.log.close()
