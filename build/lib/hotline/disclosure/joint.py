"""What the dashboard publishes: suppression decided over every published period at once.

A reader holding every published table can add and subtract them. Periods are only
calendar months and quarters (``hotline.statistics.periods``): disjoint or nested. So the
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

Every decision is a function of its block's exact counts only, and a published month's
counts are kept as first published (``published_counts``: a late event for one of its
days changes the live counts, never the published ones; a quarter is the sum of its
months), so every request, in any process, shows the same hidden cells for it. Decisions
are cached by a keyed digest of those counts (HMAC with the app's
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
from collections import Counter, OrderedDict
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from flask import current_app, has_app_context
from redis.exceptions import RedisError
from sqlalchemy import select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from hotline.statistics import days
from hotline.statistics import queries as stats
from hotline.disclosure import report as reports
from hotline.statistics.periods import PeriodError, Span
from hotline.disclosure.suppression import Line, Suppressed, suppress
from hotline.models import StatsPublished, Supporter, insert_for, utcnow
from hotline.core.extensions import redis_conn

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
    assembled, raw, counts = {}, None, {}
    for member in _members(span):
        period = member.period(zone)
        # a month as first published; a quarter the sum of its months (its repeat callers
        # are not shown: ``report._breakdowns``)
        counts[member] = published_counts(session, member, zone, now) if not \
            member.children() else _sum([counts[c] for c in member.children()])
        assembled[member] = reports.assemble(counts[member], period, k)
        if member == span:
            raw = counts[member]
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


def published_counts(session: Session, month: Span, zone: ZoneInfo,
                     now: datetime | None = None) -> stats.Raw:
    """``month``'s exact counts as first published, kept (``StatsPublished``) so that a
    late event for one of its days (``stats_cache.forget_contact``) never publishes a
    second version: a reader holding both could difference them (a count shown <k, then
    k, was k-1). The first view stores them; a concurrent one keeps the stored copy."""
    found = _stored(session, month, zone)
    if found is None:
        raw = stats.collect(session, month.period(zone), now=now)
        try:
            session.execute(insert_for(session, StatsPublished).on_conflict_do_nothing(), [{
                "zone": zone.key, "period": month.id, "first": month.first,
                "counts": _dump(raw), "published_at": now or utcnow()}])
            session.commit()
        except SQLAlchemyError as exc:   # shown from the counts, stored at the next view
            session.rollback()
            log.warning("published statistics not kept: %s", exc.__class__.__name__)
            return raw
        found = _stored(session, month, zone)
    names = dict(session.execute(select(Supporter.id, Supporter.name)).all())
    for row in found.supporters:
        row["name"] = names.get(row["id"], "")
    found.supporters.sort(key=lambda r: r["name"])
    return found


def _stored(session: Session, month: Span, zone: ZoneInfo) -> stats.Raw | None:
    where = (StatsPublished.zone == zone.key, StatsPublished.period == month.id)
    text = session.scalar(select(StatsPublished.counts).where(*where))
    if text is None:
        return None
    found = json.loads(text)
    if "care" not in found:
        # Published before the care rules were counted (issue 16): their counts are added
        # once, and kept with the rest. Care events come only while a contact is open, so
        # a settled month's count now is the count it had when first published.
        found["care"] = stats.care_counts(session, month.period(zone))
        session.execute(update(StatsPublished).where(*where).values(
            counts=json.dumps(found, separators=(",", ":"), sort_keys=True)))
        session.commit()
    if stats.OUTREACH_SENT not in found["followups"]:
        # Published before outreach sent and reached were counted (issue 17), or with no
        # text sent (a zero is not kept): both counted once and kept with the rest, zeros
        # too (a settled month's sends and done callbacks no longer change).
        found["followups"].update(dict(stats.outreach_counts(session, month.period(zone))))
        session.execute(update(StatsPublished).where(*where).values(
            counts=json.dumps(found, separators=(",", ":"), sort_keys=True)))
        session.commit()
    return _load(found)


def _dump(raw: stats.Raw) -> str:
    return json.dumps({
        "contacts": raw.contacts, "escalated": raw.escalated, "repeat": raw.repeat,
        "by_hour": [[d.isoformat(), h, n] for (d, h), n in sorted(raw.by_hour.items())],
        "by_channel": raw.by_channel, "outcomes": raw.outcomes, "callbacks": raw.callbacks,
        "followups": raw.followups, "care": raw.care,
        "wait_seconds": {str(s): n for s, n in raw.waits.items()},
        "scores": {kind: {str(v): n for v, n in c.items()} for kind, c in raw.scores.items()},
        "supporters": [{c: v for c, v in row.items() if c != "name"}
                       for row in raw.supporters]}, separators=(",", ":"), sort_keys=True)


def _load(found: str | dict) -> stats.Raw:
    """The stored counts (``_dump``'s text, or it decoded; ``_stored`` adds ``care`` to a
    row published without it)."""
    if isinstance(found, str):
        found = json.loads(found)
    return stats.Raw(
        contacts=found["contacts"], escalated=found["escalated"], repeat=found["repeat"],
        by_hour=Counter({(date.fromisoformat(d), h): n for d, h, n in found["by_hour"]}),
        by_channel=Counter(found["by_channel"]), outcomes=Counter(found["outcomes"]),
        callbacks=Counter(found["callbacks"]), followups=Counter(found["followups"]),
        care=Counter(found.get("care", {})), waits=_waits(found),
        scores={kind: Counter({int(v): n for v, n in c.items()})
                for kind, c in found["scores"].items()},
        supporters=found["supporters"])


def _waits(found: dict) -> Counter:
    """Seconds to a human; a month published when they were whole minutes ("waits") reads
    as the start of each minute, so its wait buckets keep the counts it was published with."""
    if "wait_seconds" in found:
        return Counter({int(s): n for s, n in found["wait_seconds"].items()})
    return Counter({int(m) * 60: n for m, n in found["waits"].items()})


def _sum(parts: list[stats.Raw]) -> stats.Raw:
    """The counts of consecutive periods added up (every count is additive but repeat
    callers, which a quarter does not show); supporter rows by id."""
    out, load = stats.Raw(scores={kind: Counter() for kind in stats.SCORE_KINDS}), {}
    for raw in parts:
        out.contacts += raw.contacts
        out.escalated += raw.escalated
        out.repeat += raw.repeat
        for name in ("by_hour", "by_channel", "outcomes", "callbacks", "followups", "care",
                     "waits"):
            getattr(out, name).update(getattr(raw, name))
        for kind, c in raw.scores.items():
            out.scores.setdefault(kind, Counter()).update(c)
        for row in raw.supporters:
            mine = load.setdefault(row["id"], dict(row, **{c: 0 for c in _LOAD}))
            for c in _LOAD:
                mine[c] += row[c]
    out.supporters = sorted(load.values(), key=lambda r: r["name"])
    return out


_LOAD = ("offers", "accepted", "declined", "missed", "other", "minutes")


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


def warm_all(session: Session, zone: ZoneInfo, now: datetime | None = None) -> int:
    """The nightly warm-up: the statistics cache of every published period
    (``days.fill``), then their suppression, decided once for every web process (a
    quarter's takes seconds). Returns the days stored."""
    now = now or utcnow()
    stored, published = days.fill(session, zone, now)
    warm(session, zone, current_app.extensions["hotline.settings"].MIN_CELL, now, published)
    return stored


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
