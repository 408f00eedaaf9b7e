"""Watching the hotline run: ``/readyz``, ``/metrics`` and structured logs.

- ``health``: is this process able to serve (the database and Redis answer)?
- ``counters``: what happened, counted once per committed change across every web and
  worker process (kept in Redis, so a forked RQ work horse or another host counts too);
- ``metrics``: the Prometheus metrics: those counters, in-process webhook latencies and
  fallback hits (prometheus_client, multiprocess under gunicorn), and gauges computed from
  the database and RQ at each scrape;
- ``logs``: the per-request id and ``HOTLINE_LOG_FORMAT=json``;
- ``views``: the endpoints and the request hooks that time webhooks.

No metric label ever carries a number, a key or an id: label values are words from a
closed vocabulary (``counters.check_label``).
"""
