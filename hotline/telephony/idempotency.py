"""Twilio's retried webhook deliveries (same ``I-Twilio-Idempotency-Token``) have one effect.

The first answer of a voice webhook is kept in Redis for a few minutes under the token, and
a repeat gets that same answer without running the view again. Only voice TwiML is kept
(prompts and URLs: no caller number, nothing anyone said); text webhooks are deduplicated
by their MessageSid in the database instead, and so is any voice view marked
``deduplicated_by``: the incoming call by its unique CallSid, the call's status callback,
the queue's wait poll and its exit on a hang-up by the conditional UPDATEs that are their
only changes. The database already gives their repeats one effect and a right answer
(``deduplicated_by`` says which), so their answers are not kept (two Redis round trips
saved on each delivery). If Redis is down, the view simply runs."""

from __future__ import annotations

import logging

from typing import Callable, Mapping

from flask import Blueprint, Response, current_app, request
from redis.exceptions import RedisError

from hotline.core.extensions import redis_conn

log = logging.getLogger(__name__)

HEADER = "I-Twilio-Idempotency-Token"
#: How long a first answer is kept for repeats (Twilio retries within seconds).
KEEP_SECONDS = 600
MAX_TOKEN = 128


#: What a repeat of a view marked ``deduplicated_by`` answers: the first's answer, byte
#: for byte (the view answers a repeat from what the first wrote, or always the same)...
SAME_ANSWER = "the first's answer"
#: ...or the answer the view gives now to the same request: built from the contact's
#: state as the first left it (or as it moved on since, as the next poll would see it).
CURRENT_ANSWER = "the answer now"


def deduplicated_by(guard: str, answer: str = SAME_ANSWER,
                    when: Callable[[Mapping[str, str]], bool] | None = None,
                    ) -> Callable[[Callable], Callable]:
    """Mark a view whose repeated delivery the database itself turns away; ``guard`` says
    how: a unique column the view INSERTs into first (a repeat writes nothing), or the
    conditions of the conditional UPDATEs through which alone the view changes anything
    (a repeat's UPDATE matches nothing, so it writes no second event, enqueues no second
    job, counts nothing twice). A repeat, one after the other or at the same time, thus
    has no effect of its own, and it answers ``answer`` (``SAME_ANSWER`` or
    ``CURRENT_ANSWER``); ``once`` keeps no answer of it. The view's tests must show
    both, and that they fail without the guard (tests/test_lean_webhooks.py). Put it
    above ``safe_view``, under the route.

    ``when``: only the deliveries whose form it holds for (one branch of the view, such
    as the queue exit of a hang-up) are the database's; the view's other branches keep
    their first answer in Redis as any other view's."""
    if answer not in (SAME_ANSWER, CURRENT_ANSWER):
        raise ValueError(f"not a documented answer of a repeat: {answer!r}")

    def mark(view: Callable) -> Callable:
        view.deduplicated_by, view.repeat_answer = guard, answer
        view.deduplicated_when = when
        return view
    return mark


def _database_has_repeats() -> bool:
    view = current_app.view_functions.get(request.endpoint)
    if not getattr(view, "deduplicated_by", None):
        return False
    when = view.deduplicated_when
    return when is None or when(request.form)


def _key() -> str | None:
    if _database_has_repeats():
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
