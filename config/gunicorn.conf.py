"""gunicorn settings for the hotline's web process (see README: scaling)."""

import multiprocessing
import os

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:" + os.environ.get("PORT", "5000"))
# Webhooks are short and I/O-bound: a few threads per process, processes per core.
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count() * 2 + 1))
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
worker_class = "gthread"
timeout = 30          # Twilio gives a webhook 15 s; anything slower is a bug
graceful_timeout = 20
accesslog = "-"
# Access log lines carry paths with ids only, never query values with numbers.
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms'
