"""What the dashboard publishes: suppression decided over every published period at once.

A reader holding every published table can add and subtract them. Periods are only
calendar months and quarters (``hotline.dashboard.periods``): disjoint or nested. So the
tables of two different quarters never share a count, and within a quarter the only
identities across tables are those of the hierarchy: a quarter's count is the sum of its
months' counts (cell by cell: each outcome, hour of the week, channel, week, supporter
column...; repeat callers are not additive and have none).

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
cells for it; decisions are cached in the process by a digest of those counts. A month's
decision does not depend on whether its quarter is published yet: publishing the quarter
later changes nothing already shown.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from hotline import stats
from hotline.dashboard import report as reports
from hotline.dashboard.periods import PeriodError, Span
from hotline.dashboard.suppression import Line, Suppressed, suppress

#: Cells of a period with no sum across periods (a caller seen in two months is a repeat
#: caller in their quarter, in neither month).
NOT_ADDITIVE = ("repeat:",)
#: Decisions kept per process (a quarter's block and its months' are 4).
CACHE_SIZE = 512

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
    if cached is not None:
        chosen, safe = cached
        hidden = Suppressed(primary={c for c, v in values.items() if v < k},
                            complementary=set(chosen))
        return Block(values, lines, hidden, safe)
    # exact: a block is withheld only when the LP over all of it, not a quick search, says so
    hidden = suppress(values, lines, k, cost, complementary, frozen, exact=True)
    safe = all(c.safe for c in children) and not hidden.exposed
    with _lock:
        _cache[key] = (frozenset(hidden.complementary), safe)
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return Block(values, lines, hidden, safe)


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
    """What a decision depends on: the period, k and every count of its block."""
    text = json.dumps([span.id, k, sorted(values.items())], separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def clear_cache() -> None:
    with _lock:
        _cache.clear()
