"""``/readyz`` and ``/metrics``, and the request hooks: a request id for every request,
the latency of every Twilio webhook by route, the fallback hits."""

from __future__ import annotations

import hmac
import json
import logging
import time

from flask import Blueprint, Flask, Response, g, request

from hotline.core.settings import Settings
from hotline.monitoring import health, logs, metrics

log = logging.getLogger(__name__)
bp = Blueprint("monitoring", __name__)

#: Webhooks are the routes under this prefix (the dashboard and the stand-in are not).
WEBHOOK_PREFIX = "/twilio/"


@bp.get("/readyz")
def readyz() -> Response:
    """200 when the database and Redis answer, else 503 naming which did not."""
    checks = health.checks()
    ready = all(checks.values())
    body = json.dumps({"ready": ready, **checks}) + "\n"
    return Response(body, status=200 if ready else 503, mimetype="application/json")


def _metrics_view(token: str):
    expected = f"Bearer {token}".encode()

    def view() -> Response:
        given = request.headers.get("Authorization", "").encode()
        if not hmac.compare_digest(given, expected):
            return Response("a bearer token is required\n", status=401, mimetype="text/plain",
                            headers={"WWW-Authenticate": "Bearer"})
        return Response(metrics.render(), mimetype=metrics.CONTENT_TYPE)

    return view


def _start() -> None:
    logs.new_request_id()
    g.hotline_started = time.perf_counter()


def _finish(response: Response) -> Response:
    started = getattr(g, "hotline_started", None)
    endpoint = request.endpoint
    if started is not None and endpoint and request.path.startswith(WEBHOOK_PREFIX):
        try:
            metrics.observe_webhook(endpoint, time.perf_counter() - started)
            if "fallback" in endpoint.split(".")[0] and endpoint.endswith(".incoming"):
                metrics.fallback_hit(endpoint)
        except ValueError:  # an endpoint name unfit for a label: never fail the caller
            log.error("metrics: endpoint %s is not a label value", endpoint)
    response.headers.setdefault("X-Request-Id", logs.request_id())
    return response


def init_app(app: Flask, cfg: Settings) -> None:
    """The endpoints, and the hooks on every request. ``/metrics`` exists only with
    HOTLINE_METRICS_TOKEN set: otherwise it is a 404 like any unknown path."""
    app.register_blueprint(bp)
    if cfg.METRICS_TOKEN:
        app.add_url_rule("/metrics", "metrics", _metrics_view(cfg.METRICS_TOKEN))
    app.before_request(_start)
    app.after_request(_finish)


