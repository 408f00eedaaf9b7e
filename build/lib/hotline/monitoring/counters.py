"""Event counters shared by every process: incremented after the commit that made the
event, in one Redis hash per counter (so a rolled-back change counts nothing, and RQ's
forked work horses, other workers and other hosts all add to the same totals).

Counting must never break what it counts: a Redis error is logged and the count lost.
"""

from __future__ import annotations

import logging
import re

from redis.exceptions import RedisError
from sqlalchemy import event
from sqlalchemy.orm import Session

from hotline.core.extensions import redis_conn

log = logging.getLogger(__name__)

#: The counters there are, with the names of their labels (in this order).
COUNTERS: dict[str, tuple[str, ...]] = {
    "contacts": ("channel", "outcome"),
    "offers": ("result",),
    "auditor_runs": (),
    "auditor_repaired": ("kind",),
    "followups_sent": ("kind",),
}
KEY = "hotline:metrics:{}"
#: A label value is a lowercase word (dots and underscores allowed): never a number, a
#: phone number, a key, a token or an id, which all carry digits or capitals.
LABEL_VALUE = re.compile(r"[a-z][a-z_.]{0,39}")
_PENDING = "hotline.metrics.pending"


def check_label(value: str) -> str:
    """``value`` if it may be a label value; ValueError otherwise."""
    if not isinstance(value, str) or not LABEL_VALUE.fullmatch(value):
        raise ValueError(f"not a metric label value: {value!r}")
    return value


def _field(name: str, labels: dict[str, str]) -> str:
    names = COUNTERS[name]
    if set(labels) != set(names):
        raise ValueError(f"counter {name} takes labels {names}, got {sorted(labels)}")
    return ",".join(check_label(labels[n]) for n in names)


def count_on_commit(session: Session, name: str, by: int = 1, **labels: str) -> None:
    """Add ``by`` to counter ``name`` once ``session`` commits (nothing on a rollback)."""
    session.info.setdefault(_PENDING, []).append((name, _field(name, labels), by))


def count_now(name: str, by: int = 1, **labels: str) -> None:
    """Add ``by`` to counter ``name`` at once (for what no transaction carries)."""
    _flush([(name, _field(name, labels), by)])


def _flush(pending: list[tuple[str, str, int]]) -> None:
    try:
        pipe = redis_conn.client.pipeline(transaction=False)
        for name, field, by in pending:
            pipe.hincrby(KEY.format(name), field, by)
        pipe.execute()
    except (RedisError, OSError, RuntimeError):
        log.warning("metrics: %d counts lost (Redis unreachable)", len(pending))


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    pending = session.info.pop(_PENDING, None)
    if pending:
        _flush(pending)


@event.listens_for(Session, "after_soft_rollback")
def _after_rollback(session: Session, _previous) -> None:
    session.info.pop(_PENDING, None)


def totals(name: str) -> list[tuple[dict[str, str], int]]:
    """Counter ``name``'s totals: (labels, value) per combination seen."""
    names = COUNTERS[name]
    raw = redis_conn.client.hgetall(KEY.format(name))
    out = []
    for field, value in sorted(raw.items()):
        parts = field.decode().split(",") if names else []
        out.append((dict(zip(names, parts)), int(value)))
    return out
