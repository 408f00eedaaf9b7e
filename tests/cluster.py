"""The hotline scaled out, for tests: several web processes and workers behind a balancer.

``Cluster`` starts, as separate OS processes, N gunicorn arbiters (each its own port) and M
``hotline worker`` processes, all on one Redis and one database; ``RoundRobinProxy`` is
the load balancer in front of the web processes (each request to the next one in turn,
path, query and headers unchanged, so Twilio's signatures over PUBLIC_BASE_URL still
hold); ``fresh_database`` makes and drops a PostgreSQL database of its own.
"""

from __future__ import annotations

import http.client
import itertools
import os
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.servers import free_port, stop_processes

ROOT = Path(__file__).resolve().parent.parent
#: Environment variables a test cluster sets itself; inherited values are dropped.
OWN_PREFIXES = ("HOTLINE_", "TWILIO_", "DATABASE_URL", "REDIS_URL", "PUBLIC_BASE_URL",
                "SECRET_KEY", "CRISIS_LINE_NUMBER", "BACKUP_NUMBERS", "WEB_CONCURRENCY",
                "GUNICORN_", "PORT")
#: Headers a proxy must not forward (hop-by-hop, RFC 9110 section 7.6.1).
HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te",
              "trailer", "upgrade", "content-length"}


def _no_control_socket() -> tuple[str, ...]:
    """gunicorn 25.1+ opens a control socket at one path per user: arbiters would share it."""
    try:
        from gunicorn.config import ControlSocketDisable  # noqa: F401
    except ImportError:
        return ()
    return ("--no-control-socket",)


NO_CONTROL_SOCKET = _no_control_socket()


def wait_until(condition: Callable[[], object], seconds: float, what: str,
               every: float = 0.1) -> object:
    """Poll ``condition`` until it returns something true; fail naming ``what`` at the deadline."""
    deadline = time.monotonic() + seconds
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {seconds:.0f} s waiting for {what}")
        time.sleep(every)


class RoundRobinProxy:
    """A threaded HTTP reverse proxy sending each request to the next backend in turn.

    Its ``url`` is known at once (the backends may be started knowing it); ``balance``
    names the backends. It forwards the method, the path with its query, the headers
    (``Host`` included) and the body unchanged, and adds ``X-Forwarded-For``/``-Proto`` as
    a load balancer would. ``responses[i]`` counts the answers backend ``i`` gave, by
    status; a backend that cannot be reached counts as a 502.
    """

    def __init__(self) -> None:
        self.backends: list = []
        self.responses: list[Counter] = []
        self._turn = itertools.cycle([0])
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self._thread = threading.Thread(target=self.server.serve_forever,
                                        kwargs={"poll_interval": 0.1}, daemon=True,
                                        name="round-robin-proxy")
        self._thread.start()

    def balance(self, backends: list[str]) -> None:
        """Spread requests over ``backends`` (base URLs) from now on, in turn."""
        with self._lock:
            self.backends = [urlsplit(url) for url in backends]
            self.responses = [Counter() for _ in backends]
            self._turn = itertools.cycle(range(len(backends)))

    def next_backend(self) -> int:
        with self._lock:
            return next(self._turn)

    def served(self, index: int) -> int:
        """How many requests backend ``index`` answered with a 2xx."""
        return sum(n for status, n in self.responses[index].items() if 200 <= status < 300)

    def errors(self) -> dict[int, dict[int, int]]:
        """Answers other than 2xx, by backend and status."""
        return {i: {s: n for s, n in counts.items() if not 200 <= s < 300}
                for i, counts in enumerate(self.responses)
                if any(not 200 <= s < 300 for s in counts)}

    def forward(self, method: str, path: str, headers: dict[str, str], body: bytes
                ) -> tuple[int, list[tuple[str, str]], bytes, int]:
        index = self.next_backend()
        if index >= len(self.backends):
            return 503, [("Content-Type", "text/plain")], b"no backend yet", index
        target = self.backends[index]
        try:
            conn = http.client.HTTPConnection(target.hostname, target.port, timeout=30)
            try:
                conn.request(method, path, body=body, headers=headers)
                response = conn.getresponse()
                data = response.read()
                status, out = response.status, response.getheaders()
            finally:
                conn.close()
        except OSError as exc:
            status, out, data = 502, [("Content-Type", "text/plain")], repr(exc).encode()
        with self._lock:
            self.responses[index][status] += 1
        return status, out, data, index

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def _relay(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() not in HOP_BY_HOP}
                headers["X-Forwarded-For"] = self.client_address[0]
                headers["X-Forwarded-Proto"] = "http"
                if body:
                    headers["Content-Length"] = str(len(body))
                status, out, data, _ = proxy.forward(self.command, self.path, headers, body)
                self.send_response(status)
                for name, value in out:
                    if name.lower() not in HOP_BY_HOP:
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = _relay

            def log_message(self, format: str, *args) -> None:
                pass

        return Handler

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def clean_environ(**settings: str) -> dict[str, str]:
    """This process's environment without any hotline setting, plus ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(OWN_PREFIXES)}
    env.update(settings)
    return env


class Cluster:
    """``web`` gunicorn arbiters and ``workers`` RQ workers, as separate processes.

    Each web process is ``gunicorn -c config/gunicorn.conf.py --workers 1`` (or
    ``web_workers``) on its own free port, or the given ``ports`` (``web_urls``); each
    worker is ``python -m hotline.cli worker`` (scheduler on). Logs go to ``folder``.
    ``stop()`` ends them all (TERM, then KILL).
    """

    def __init__(self, env: dict[str, str], folder: Path, web: int = 2, workers: int = 2,
                 threads: int = 8, web_workers: int = 1,
                 ports: list[int] | None = None) -> None:
        self.folder = folder
        self.procs: list[subprocess.Popen] = []
        self.logs: list[Path] = []
        self.web_urls: list[str] = []
        self.web: list[subprocess.Popen] = []
        self.workers: list[subprocess.Popen] = []
        try:
            for i in range(web):
                port = ports[i] if ports else free_port()
                self.web_urls.append(f"http://127.0.0.1:{port}")
                self.web.append(self._start(f"web-{i}", [
                    sys.executable, "-m", "gunicorn", "-c", "config/gunicorn.conf.py",
                    "--workers", str(web_workers), "--threads", str(threads),
                    "--bind", f"127.0.0.1:{port}",
                    *NO_CONTROL_SOCKET, "hotline:create_app()"], env))
            for i in range(workers):
                self.workers.append(self._start(
                    f"worker-{i}", [sys.executable, "-m", "hotline.cli", "worker"], env))
        except BaseException:
            self.stop()
            raise

    def _start(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen:
        path = self.folder / f"{name}.log"
        self.logs.append(path)
        with open(path, "wb") as log:
            proc = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=log,
                                    stderr=subprocess.STDOUT)
        self.procs.append(proc)
        return proc

    def wait_ready(self, redis, seconds: float = 45) -> None:
        """Every web process answers /healthz and every worker is registered with RQ."""
        from rq import Worker

        def up(url: str) -> bool:
            try:
                with urllib.request.urlopen(f"{url}/healthz", timeout=2) as response:
                    return response.status == 200
            except OSError:
                return False

        def ready() -> bool:
            self.check_alive()
            pids = {w.pid for w in Worker.all(connection=redis)}
            return all(p.pid in pids for p in self.workers) and all(map(up, self.web_urls))

        wait_until(ready, seconds, "the web processes and workers to start", every=0.2)

    def check_alive(self) -> None:
        dead = [(log.name, p.returncode) for p, log in zip(self.procs, self.logs)
                if p.poll() is not None]
        if dead:
            raise AssertionError(f"processes exited early: {dead}\n{self.tails()}")

    def tails(self, lines: int = 12) -> str:
        """The last lines of every log (RQ's chatter about each job left out), for a failure."""
        out = []
        for path in self.logs:
            text = [line for line in path.read_text(errors="replace").splitlines()
                    if " rq.worker: " not in line][-lines:]
            out.append(f"--- {path.name}\n" + "\n".join(text))
        return "\n".join(out)

    def stop(self) -> None:
        stop_processes(self.procs)


@contextmanager
def fresh_database(server_url: str, name: str) -> Iterator[str]:
    """A new, migrated PostgreSQL database ``name`` next to ``server_url``'s; dropped after."""
    import psycopg

    from hotline import migrate
    parts = urlsplit(server_url)
    admin = f"host={parts.hostname} port={parts.port} user={parts.username} dbname=postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    url = server_url.rsplit("/", 1)[0] + f"/{name}"
    try:
        migrate.upgrade("head", url=url)
        yield url
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def fresh_redis(server_url: str, db: int) -> Iterator[tuple[str, object]]:
    """Redis database ``db`` of ``server_url``'s server, empty before and after: its URL and
    a client."""
    from redis import Redis

    url = server_url.rsplit("/", 1)[0] + f"/{db}"
    client = Redis.from_url(url)
    client.flushdb()
    try:
        yield url, client
    finally:
        client.flushdb()
        client.close()


def cluster_fixtures(database_name: str, redis_db: int):
    """The ``database`` and ``redis`` fixtures of a test module that runs real processes:
    its own fresh PostgreSQL database and Redis database, so modules never share state.
    Use as ``database, redis = cluster_fixtures("hotline_x", 9)`` at module level."""

    @pytest.fixture
    def database(postgres_server):
        with fresh_database(postgres_server.url, database_name) as url:
            yield url

    @pytest.fixture
    def redis(redis_server):
        with fresh_redis(redis_server.url, redis_db) as made:
            yield made

    return database, redis
