"""gunicorn settings for the hotline's web process (see docs/operations.md and docs/architecture.md: the production topology)."""

import glob
import multiprocessing
import os
import tempfile

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:" + os.environ.get("PORT", "5000"))
# A webhook is a few milliseconds of Python between short PostgreSQL and Redis round trips.
# Python runs one thread at a time per process, so one process per core uses the CPU; its
# threads overlap the round trips. More processes than cores only cost CPU (about 9% more
# per request at 5 x 4 than at 2 x 8 on 2 cores: make bench, webhooks) and connections.
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count()))
threads = int(os.environ.get("GUNICORN_THREADS", "8"))
worker_class = "gthread"
timeout = 30          # Twilio gives a webhook 15 s; anything slower is a bug
graceful_timeout = 20
accesslog = "-"
# The request line without its query string (values may be numbers), token-like path
# segments masked; every gunicorn handler redacts numbers (hotline/privacy/access_log.py).
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms'
logger_class = "hotline.privacy.access_log.RedactingLogger"

# /metrics (HOTLINE_METRICS_TOKEN): prometheus_client's multiprocess mode, so a scrape that
# lands on any worker counts every worker. It needs a folder shared by the workers, known
# before they import prometheus_client (this file runs in the arbiter, before any fork).
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="hotline-metrics-")


def on_starting(server):
    """Values of a previous run are not this run's: start from an empty folder."""
    for path in glob.glob(os.path.join(os.environ["PROMETHEUS_MULTIPROC_DIR"], "*.db")):
        os.remove(path)


def child_exit(server, worker):
    """A worker that ended: its live gauges go; its counters and histograms stay counted."""
    from prometheus_client import multiprocess
    multiprocess.mark_process_dead(worker.pid)


def post_worker_init(worker):
    """Once the app is loaded in a worker: take what start-up made (modules, the app, the
    ORM's mappers) out of the garbage collector's reach. Each full collection otherwise
    walked some 150,000 objects, a ~50 ms pause of every thread about once per hundred
    requests; now it walks only what requests made (``gc.freeze``)."""
    import gc
    gc.collect()
    gc.freeze()
