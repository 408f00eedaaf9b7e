"""What the dashboard publishes: suppression decided over every published period at once.

A reader holding every published table can add and subtract them. Periods are only
calendar months and quarters (``hotline.dashboard.periods``): disjoint or nested. So the
tables of two different quarters never share a count, and within a quarter the only
identities across tables are those of the hierarchy: a quarter's count is the sum of its
months' counts (cell by cell: each outcome, hour of the week, channel, week, supporter
column...). Repeat callers are not additive (a quarter's are at least its months' sum,
an inequality this check does not model): they are published for months only
(``report._breakdowns``).

The decision for a period is its *block*: its own cells and lines, every nested period's
cells and lines, and the lines of the hierarchy joining them:

* a month is decided on its own (``suppression.suppress``): months never overlap. Its
  exact check, like a quarter's, ends with the linear programme over the whole block
  (HiGHS) for a cell no quick witness proves;
* a quarter starts from its months' decisions, which are already published and never
  change: their hidden cells stay hidden, their shown cells are *frozen* (hiding one
  later would protect nothing). Only the quarter's own cells may be hidden, until the
  exact check proves every small cell of the block (its months' too) keeps half its range
  given all of the block's published numbers at once.

The code is written for any depth (a level above quarters would start from their
blocks), but only these two levels are published.

A block the exact check cannot prove safe with only its own cells to hide (nothing seen
on the demo data, but nothing rules it out) is *withheld*: that quarter is not published
at all, its months are.

Every decision is a function of its block's exact counts only, and a published period is
settled (its counts are final), so every request, in any process, shows the same hidden
cells for it. Decisions are cached by a keyed digest of those counts (HMAC with the app's
secret key: the digest of a few small counts could otherwise be inverted by trying them),
in the process and in Redis, where every process finds what one has decided and the
nightly statistics warm-up (``warm``) decides every published period ahead of the first
view. A cached decision is only ever the decision itself: same counts, same cells. A
month's decision does not depend on whether its quarter is published yet: publishing the
quarter later changes nothing already shown.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from flask import current_app, has_app_context
from redis.exceptions import RedisError
from sqlalchemy.orm import Session

from hotline import stats
from hotline.dashboard import report as reports
from hotline.dashboard.periods import PeriodError, Span
from hotline.dashboard.suppression import Line, Suppressed, suppress

#: Cells of a period with no sum across periods (a caller seen in two months is a repeat
#: caller in their quarter, in neither month); a quarter has none (months only show them).
NOT_ADDITIVE = ("repeat:",)
#: Decisions kept per process (a quarter's block and its months' are 4).
CACHE_SIZE = 512
#: Decisions shared through Redis: cell names and a flag, never a count.
SHARED_PREFIX = "hotline:stats:decision:"
#: Longer than any period stays published unchanged is not needed: a re-decided block
#: costs only time.
SHARED_TTL = 40 * 24 * 3600

log = logging.getLogger(__name__)

_cache: OrderedDict[str, tuple[frozenset, bool]] = OrderedDict()
_lock = threading.Lock()


class Withheld(PeriodError):
    """The period cannot be published without narrowing a small count down."""


@dataclass
class Block:
    """A period's decision with everything nested in it, cells named ``<period id>/<cell>``."""
    values: dict[str, int]
    lines: list[Line]
    hidden: Suppressed
    safe: bool


def publish(session: Session, span: Span, zone: ZoneInfo, k: int,
            now: datetime | None = None) -> reports.Report:
    """The report of ``span`` with its cells hidden as decided for its block (Withheld if
    the block cannot be proven safe)."""
    assembled, raw = {}, None
    for member in _members(span):
        period = member.period(zone)
        counts = stats.collect(session, period, now=now)
        assembled[member] = reports.assemble(counts, period, k)
        if member == span:
            raw = counts
    block = decide(span, assembled, k)
    if not block.safe:
        raise Withheld(f"{span.label} cannot be published without revealing a count below "
                       f"{k} given its months: see its months instead")
    report = assembled[span]
    prefix = f"{span.id}/"
    report.hidden = Suppressed(
        primary={c[len(prefix):] for c in block.hidden.primary if c.startswith(prefix)},
        complementary={c[len(prefix):] for c in block.hidden.complementary
                       if c.startswith(prefix)})
    reports.finish(report, raw)
    return report


def _members(span: Span) -> list[Span]:
    """``span`` and every period nested in it, innermost first."""
    return [m for c in span.children() for m in _members(c)] + [span]


def decide(span: Span, assembled: dict[Span, reports.Report], k: int) -> Block:
    """The block of ``span`` (``assembled``: the unsuppressed report of it and of every
    period nested in it)."""
    children = [decide(c, assembled, k) for c in span.children()]
    own = assembled[span]
    prefix = f"{span.id}/"
    values = {prefix + c: v for c, v in own.values.items()}
    lines = [[(prefix + c, s) for c, s in line] for line in own.lines]
    cost = {prefix + c: v for c, v in own.cost.items()}
    complementary, frozen = set(), set()
    for child in children:
        values.update(child.values)
        lines += child.lines
        complementary |= child.hidden.complementary
        frozen |= set(child.values) - child.hidden.hidden
    lines += _hierarchy_lines(span, assembled)
    key = _digest(span, k, values)
    with _lock:
        cached = _cache.get(key)
        if cached is not None:
            _cache.move_to_end(key)
    if cached is None:
        cached = _shared_get(key)
    if cached is not None:
        chosen, safe = cached
        hidden = Suppressed(primary={c for c, v in values.items() if v < k},
                            complementary=set(chosen))
        return Block(values, lines, hidden, safe)
    # exact: a block is withheld only when the LP over all of it, not a quick search, says so
    hidden = suppress(values, lines, k, cost, complementary, frozen, exact=True)
    safe = all(c.safe for c in children) and not hidden.exposed
    _remember(key, (frozenset(hidden.complementary), safe))
    _shared_set(key, hidden.complementary, safe)
    return Block(values, lines, hidden, safe)


def _remember(key: str, decision: tuple[frozenset, bool]) -> None:
    with _lock:
        _cache[key] = decision
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)


def _redis():
    if not has_app_context():
        return None
    from hotline.extensions import redis_conn
    return redis_conn.client


def _shared_get(key: str) -> tuple[frozenset, bool] | None:
    """A decision another process made (None without Redis: then it is made here)."""
    client = _redis()
    if client is None:
        return None
    try:
        raw = client.get(SHARED_PREFIX + key)
    except RedisError as exc:
        log.warning("statistics decision not read from Redis: %s", exc.__class__.__name__)
        return None
    if raw is None:
        return None
    found = json.loads(raw)
    decision = (frozenset(found["hidden"]), bool(found["safe"]))
    _remember(key, decision)
    return decision


def _shared_set(key: str, complementary: set[str], safe: bool) -> None:
    client = _redis()
    if client is None:
        return
    try:
        client.set(SHARED_PREFIX + key, json.dumps({"hidden": sorted(complementary),
                                                    "safe": safe}), ex=SHARED_TTL)
    except RedisError as exc:
        log.warning("statistics decision not shared: %s", exc.__class__.__name__)


def warm(session: Session, zone: ZoneInfo, k: int, now: datetime, spans) -> int:
    """Decide every period of ``spans`` now (the nightly warm-up), so that no coordinator
    waits for a first decision; returns how many are published (not withheld)."""
    done = 0
    for span in spans:
        try:
            publish(session, span, zone, k, now)
            done += 1
        except PeriodError:
            continue
    return done


def _hierarchy_lines(span: Span, assembled: dict[Span, reports.Report]) -> list[Line]:
    """``span``'s cells as sums of the same cells of its months (one line each)."""
    months = span.months()
    if months == [span]:
        return []
    out = []
    for cell, value in assembled[span].values.items():
        if cell.startswith(NOT_ADDITIVE):
            continue
        parts = [f"{m.id}/{cell}" for m in months if cell in assembled[m].values]
        if parts or not value:
            out.append([(f"{span.id}/{cell}", 1)] + [(p, -1) for p in parts])
    return out


def _digest(span: Span, k: int, values: dict[str, int]) -> str:
    """What a decision depends on: the period, k and every count of its block, keyed with
    the app's secret (outside an app, a plain digest: it stays in the process)."""
    text = json.dumps([span.id, k, sorted(values.items())], separators=(",", ":")).encode()
    secret = current_app.secret_key if has_app_context() else None
    if not secret:
        return hashlib.sha256(text).hexdigest()
    secret = secret.encode() if isinstance(secret, str) else secret
    return hmac.new(secret, text, hashlib.sha256).hexdigest()


def clear_cache(shared: bool = False) -> None:
    """Forget this process's decisions (and, with ``shared``, those in Redis)."""
    with _lock:
        _cache.clear()
    client = _redis() if shared else None
    if client is not None:
        for key in client.scan_iter(SHARED_PREFIX + "*"):
            client.delete(key)
