"""Twilio's retried webhook deliveries (same ``I-Twilio-Idempotency-Token``) have one effect.

The first answer of a voice webhook is kept in Redis for a few minutes under the token, and
a repeat gets that same answer without running the view again. Only voice TwiML is kept
(prompts and URLs: no caller number, nothing anyone said); text webhooks are deduplicated
by their MessageSid in the database instead. If Redis is down, the view simply runs.
"""

from __future__ import annotations

import logging

from flask import Blueprint, Response, request
from redis.exceptions import RedisError

from hotline.core.extensions import redis_conn

log = logging.getLogger(__name__)

HEADER = "I-Twilio-Idempotency-Token"
#: How long a first answer is kept for repeats (Twilio retries within seconds).
KEEP_SECONDS = 600
MAX_TOKEN = 128


def _key() -> str | None:
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
