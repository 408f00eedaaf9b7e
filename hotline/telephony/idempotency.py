"""Twilio's retried webhook deliveries (same ``I-Twilio-Idempotency-Token``) have one effect.

The first answer of a voice webhook is kept in Redis for a few minutes under the token, and
a repeat gets that same answer without running the view again. Only voice TwiML is kept
(prompts and URLs: no caller number, nothing anyone said); text webhooks are deduplicated
by their MessageSid in the database instead, and so is any voice view marked
``deduplicated_by`` (the incoming call, by its CallSid): the database already gives its
repeat one effect and the same answer, so its answers are not kept (two Redis round trips
saved on each delivery). If Redis is down, the view simply runs.
"""

from __future__ import annotations

import logging

from typing import Callable

from flask import Blueprint, Response, current_app, request
from redis.exceptions import RedisError

from hotline.core.extensions import redis_conn

log = logging.getLogger(__name__)

HEADER = "I-Twilio-Idempotency-Token"
#: How long a first answer is kept for repeats (Twilio retries within seconds).
KEEP_SECONDS = 600
MAX_TOKEN = 128


def deduplicated_by(key: str) -> Callable[[Callable], Callable]:
    """Mark a view whose repeated delivery the database turns away by ``key`` (a unique
    column the view INSERTs into first): a repeat, one after the other or at the same
    time, writes nothing and answers what the first did, so ``once`` keeps no answer of
    it. The view's tests must show both (tests/test_lean_webhooks.py does for
    ``voice.incoming``). Put it above ``safe_view``, under the route."""

    def mark(view: Callable) -> Callable:
        view.deduplicated_by = key
        return view
    return mark


def _key() -> str | None:
    if getattr(current_app.view_functions.get(request.endpoint), "deduplicated_by", None):
        return None  # the database has the view's repeats: nothing to keep or replay
    token = request.headers.get(HEADER, "")
    return f"hotline:idem:{token}" if 0 < len(token) <= MAX_TOKEN else None


def replay() -> Response | None:
    """``before_request``: answer a repeated delivery with the first answer."""
    key = _key()
    if key is None:
        return None
    try:
        kept = redis_conn.client.get(key)
    except RedisError:
        return None
    if kept is None:
        return None
    log.info("repeated delivery to %s answered from the first", request.endpoint)
    return Response(kept, mimetype="text/xml")


def keep(response: Response) -> Response:
    """``after_request``: keep a successful first answer for its repeats."""
    key = _key()
    if key and response.status_code == 200 and response.mimetype == "text/xml":
        try:
            redis_conn.client.set(key, response.get_data(), ex=KEEP_SECONDS, nx=True)
        except RedisError:
            pass
    return response


def once(blueprint: Blueprint) -> Blueprint:
    """Give ``blueprint`` one effect per idempotency token (after the signature check)."""
    blueprint.before_request(replay)
    blueprint.after_request(keep)
    return blueprint
