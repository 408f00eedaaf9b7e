"""Small-cell suppression with complementary suppression.

The published numbers of a report are *cells* (named counts) tied by *lines*: linear
identities anyone can check, such as "the days of a week add up to the week" or "the
hours of all Mondays add up to the Mondays of the daily series". A line is a list of
(cell, +1 or -1) whose signed values add up to zero.

1. Primary: a cell from 1 to k-1 is hidden and shown as ``<k``; zeros are shown.
2. Complementary, line by line: a line holding a hidden cell must not pin it down. A
   reader knows each ``<k`` cell lies in 1..k-1 and each other hidden cell is at least k
   (zeros are never hidden). For every ``<k`` cell of the line we work out the range these
   bounds and the line leave it, and hide more cells of the line (the smallest that
   suffices, leaf cells before totals) until that range still holds at least half of the
   values 1..k-1 (5 of 10 for k = 11), never a single one.
3. Across lines: lines share cells, and a chain of lines can pin a cell that no single
   line does (a "bridge" between two groups of hidden cells). We find every ``<k`` cell
   whose value follows from the lines alone by exact elimination (modulo a large prime)
   on each connected group of hidden cells, and hide one more cell next to it, until
   none does. (A complement that can be worked out is harmless: it is not small.)
4. Exactly, all lines at once: ``hotline.dashboard.witness`` proves each <k cell keeps
   ``min_range(k)`` values by exhibiting feasible points (twin cells, or a small exact LP
   around the cell); a cell it cannot prove safe gets one more complement per round
   (the one that widens it most), so pairs or more are added when one is not enough.

The tests check the result independently with linear programming: for every ``<k``
cell, the smallest and largest value consistent with everything published differ.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from hotline.dashboard import witness

Line = list[tuple[str, int]]
#: A Mersenne prime: elimination modulo it has the rank of elimination over the rationals
#: for these small +-1 systems (a minor divisible by it is out of reach).
_PRIME = (1 << 61) - 1
INF = float("inf")


@dataclass
class Suppressed:
    """Which cells are hidden: ``primary`` (shown as <k) and ``complementary``."""
    primary: set[str] = field(default_factory=set)
    complementary: set[str] = field(default_factory=set)

    @property
    def hidden(self) -> set[str]:
        return self.primary | self.complementary


def suppress(values: dict[str, int], lines: list[Line], k: int,
             cost: dict[str, int] | None = None) -> Suppressed:
    """Choose the hidden cells of a report (see the module docstring)."""
    cost = cost or {}
    index = witness.Index(lines)
    result = Suppressed(primary={c for c, v in values.items() if 1 <= v < k})
    for _ in range(len(values) + 1):  # each round hides at least one more cell
        if not (_protect_lines(values, lines, k, cost, result)
                or _break_bridges(values, lines, cost, result)
                or _protect_exactly(values, lines, k, cost, result, index)):
            break
    return result


def bounds(cell: str, result: Suppressed, k: int) -> tuple[float, float]:
    """What a reader knows of a hidden cell from how it is shown."""
    return (1, k - 1) if cell in result.primary else (k, INF)


def known_ranges(values: dict[str, int], lines: list[Line], result: Suppressed,
                 k: int) -> dict[str, tuple[float, float]]:
    """What a reader can work out of each hidden cell: exact values the lines pin down,
    then ranges narrowed line by line (a few passes of interval propagation)."""
    pinned = determined(lines, result.hidden)
    ranges = {c: (values[c], values[c]) if c in pinned else bounds(c, result, k)
              for c in result.hidden}
    mine = [ln for ln in lines if any(c in ranges for c, _ in ln)]
    for _ in range(_PASSES):
        narrowed = False
        for line in mine:
            for cell, (lo, hi) in line_ranges(line, values, ranges).items():
                if cell not in pinned:
                    new = (max(lo, ranges[cell][0]), min(hi, ranges[cell][1]))
                    if new != ranges[cell]:
                        ranges[cell], narrowed = new, True
        if not narrowed:
            break
    return ranges


#: Cells this costly (the grand total) are hidden only when no cell next door will do.
_PRECIOUS = 100
#: Passes of interval propagation: enough for chains of a few lines, cheap on big reports.
_PASSES = 4


def line_range(line: Line, cell: str, values: dict[str, int],
               ranges: dict[str, tuple[float, float]]) -> tuple[float, float]:
    """The values ``cell`` can take given the line's visible cells and the ranges of its
    other hidden cells (the cell's own range is not applied)."""
    return line_ranges(line, values, ranges)[cell]


def line_ranges(line: Line, values: dict[str, int],
                ranges: dict[str, tuple[float, float]]) -> dict[str, tuple[float, float]]:
    """``line_range`` for every hidden cell of the line at once (one pass over it)."""
    known = low = high = 0.0
    inf_low = inf_high = 0  # infinite contributions, counted apart (inf - inf is undefined)
    terms = {}
    for c, sign in line:
        if c not in ranges:
            known += sign * values[c]
            continue
        lo, hi = ranges[c]
        t_lo, t_hi = (sign * lo, sign * hi) if sign > 0 else (sign * hi, sign * lo)
        terms[c] = (sign, t_lo, t_hi)
        if t_lo == -INF:
            inf_low += 1
        else:
            low += t_lo
        if t_hi == INF:
            inf_high += 1
        else:
            high += t_hi
    out = {}
    for c, (sign, t_lo, t_hi) in terms.items():
        # the others' sum lies in [o_lo, o_hi]; sign * x = -known - others
        o_lo = -INF if inf_low - (t_lo == -INF) else low - (0 if t_lo == -INF else t_lo)
        o_hi = INF if inf_high - (t_hi == INF) else high - (0 if t_hi == INF else t_hi)
        ends = sorted(sign * v for v in (-known - o_hi, -known - o_lo))
        out[c] = (ends[0], ends[1])
    return out


def _line_safe(line: Line, values, result: Suppressed, k: int, ranges) -> bool:
    """Every <k cell of the line keeps ``min_range(k)`` possible values."""
    if not any(c in result.primary for c, _ in line):
        return True
    need = min_range(k)
    for cell, (lo, hi) in line_ranges(line, values, ranges).items():
        if cell in result.primary and min(hi, k - 1) - max(lo, 1) + 1 < need:
            return False
    return True


def min_range(k: int) -> int:
    """How many values a <k cell must keep open in every line: half of 1..k-1 (at least 2).
    All of 1..k-1 would often cost the grand total in a quiet week; one value is exposure."""
    return max(2, (k - 1) // 2)


def _candidates(line: Line, values: dict[str, int], result: Suppressed,
                cost: dict[str, int]) -> list[str]:
    """Visible non-zero cells of a line, cheapest to hide first."""
    cells = {c for c, _ in line if c not in result.hidden and values[c] > 0}
    return sorted(cells, key=lambda c: (cost.get(c, 1), values[c], c))


def _protect_lines(values, lines, k, cost, result: Suppressed) -> bool:
    """Hide complements until every line is safe on its own; True if anything changed."""
    changed = False
    ranges = known_ranges(values, lines, result, k)
    for line in lines:
        if not any(c in result.primary for c, _ in line):
            continue
        while not _line_safe(line, values, result, k, ranges):
            options = _candidates(line, values, result, cost)
            # A cell the other lines pin down protects nothing: skip it when hidden.
            options = [c for c in options if not _pins(lines, result.hidden | {c}, c)] \
                or options
            chosen = next((c for c in options if _line_safe(
                line, values, result, k, dict(ranges, **{c: (k, INF)}))), None)
            if chosen is None or cost.get(chosen, 1) >= _PRECIOUS:
                # A cheaper cell next door may free what pins this line (a subtotal).
                limit = cost.get(chosen, 1) if chosen else INF
                chosen = _loosening(line, values, lines, k, cost, result, limit) or chosen
            if chosen is None and options:
                chosen = max(options, key=lambda c: (values[c], -cost.get(c, 1)))
            if chosen is None:
                break
            result.complementary.add(chosen)
            ranges[chosen] = (k, INF)  # the next round recomputes every range afresh
            changed = True
    return changed


def _loosening(line: Line, values, lines, k, cost, result: Suppressed,
               limit: float = INF) -> str | None:
    """A cell, cheaper than ``limit``, in a line sharing a hidden cell with ``line``, whose
    hiding makes the line safe (it frees a subtotal the line leans on); None if none."""
    mine = {c for c, _ in line if c in result.hidden}
    near = [ln for ln in lines if ln is not line and any(c in mine for c, _ in ln)]
    options = sorted({c for ln in near for c in _candidates(ln, values, result, cost)
                      if cost.get(c, 1) < limit},
                     key=lambda c: (cost.get(c, 1), values[c], c))
    for option in options:
        result.complementary.add(option)
        try:
            if _line_safe(line, values, result, k, known_ranges(values, lines, result, k)):
                return option
        finally:
            result.complementary.discard(option)
    return None


def _break_bridges(values, lines, cost, result: Suppressed) -> bool:
    """Hide one more cell near each <k cell the lines pin down; True if any."""
    pinned = determined(lines, result.hidden) & result.primary
    for cell in sorted(pinned):
        if not _pins(lines, result.hidden, cell):
            continue  # an earlier fix in this round already freed it
        chosen = _unpinning(cell, values, lines, cost, result)
        if chosen is None:
            continue
        result.complementary.add(chosen)
        return True
    return False


#: Cells tried when freeing a pinned cell (the nearest and cheapest first).
_TRIES = 25


def _unpinning(cell: str, values, lines, cost, result: Suppressed) -> str | None:
    """A visible cell whose hiding frees ``cell``: its own lines first, then the lines
    next to them, then any line with a hidden cell; cheapest first, a few of each."""
    own = [ln for ln in lines if any(c == cell for c, _ in ln)]
    mine = {c for ln in own for c, _ in ln if c in result.hidden}
    near = [ln for ln in lines if any(c in mine for c, _ in ln)]
    far = [ln for ln in lines if any(c in result.hidden for c, _ in ln)]
    tried: set[str] = set()
    for group in (own, near, far):
        options = sorted({c for ln in group for c in _candidates(ln, values, result, cost)}
                         - tried, key=lambda c: (cost.get(c, 1), values[c], c))
        for option in options[:_TRIES]:
            if not _pins(lines, result.hidden | {option}, cell):
                return option
        tried.update(options)
    return None


def _pins(lines: list[Line], hidden: set[str], cell: str) -> bool:
    """Do the lines pin ``cell`` (only its group of hidden cells is eliminated)?"""
    rows = [{c: s for c, s in line if c in hidden} for line in lines]
    for group in _groups([r for r in rows if r]):
        if any(cell in row for row in group):
            return cell in _pinned(group)
    return False


def determined(lines: list[Line], hidden: set[str]) -> set[str]:
    """Hidden cells whose value follows from the lines (visible cells known) exactly."""
    rows = [{c: s for c, s in line if c in hidden} for line in lines]
    rows = [r for r in rows if r]
    pinned: set[str] = set()
    for group in _groups(rows):
        pinned |= _pinned(group)
    return pinned


def _groups(rows: list[dict[str, int]]) -> list[list[dict[str, int]]]:
    """Rows split into groups that share no hidden cell (union-find on cells)."""
    parent: dict[str, str] = {}

    def root(c: str) -> str:
        while parent.setdefault(c, c) != c:
            parent[c] = parent[parent[c]]
            c = parent[c]
        return c
    for row in rows:
        first, *rest = row
        for c in rest:
            parent[root(c)] = root(first)
    groups: dict[str, list] = defaultdict(list)
    for row in rows:
        groups[root(next(iter(row)))].append(row)
    return list(groups.values())


def _pinned(rows: list[dict[str, int]]) -> set[str]:
    """Gauss-Jordan elimination modulo a prime; a pivot row with a single entry pins it."""
    rows = [{c: s % _PRIME for c, s in r.items()} for r in rows]
    pivots: dict[str, dict[str, int]] = {}
    for row in rows:
        for col, prow in pivots.items():
            if col in row:
                _eliminate(row, prow, col)
        if not row:
            continue
        col = min(row)
        inv = pow(row[col], _PRIME - 2, _PRIME)
        row = {c: v * inv % _PRIME for c, v in row.items()}
        for other in pivots.values():
            if col in other:
                _eliminate(other, row, col)
        pivots[col] = row
    return {col for col, row in pivots.items() if len(row) == 1}


def _eliminate(row: dict[str, int], pivot: dict[str, int], col: int | str) -> None:
    factor = row[col]
    for c, v in pivot.items():
        value = (row.get(c, 0) - factor * v) % _PRIME
        if value:
            row[c] = value
        else:
            row.pop(c, None)


#: Cells tried when widening a <k cell the exact check cannot prove safe.
_WIDEN_TRIES = 6


def _protect_exactly(values, lines, k, cost, result: Suppressed, index) -> bool:
    """Hide complements for each <k cell the exact witness check cannot prove safe
    (``hotline.dashboard.witness``); True if anything changed."""
    changed = False
    for cell in witness.exposed(values, lines, result.primary, result.hidden, k, index):
        if not changed or _too_narrow(cell, values, index, result, k) < min_range(k):
            chosen = _widening(cell, values, index, cost, result, k)
            if chosen is None:
                continue
            result.complementary.add(chosen)
            changed = True
    return changed


def _too_narrow(cell, values, index, result: Suppressed, k) -> int:
    """How many values of 1..k-1 witnesses keep open for ``cell``."""
    return witness.width(*witness.proven_range(cell, values, index, result.hidden,
                                               result.primary, k), k)


def _widening(cell, values, index, cost, result: Suppressed, k) -> str | None:
    """The visible cell whose hiding widens ``cell`` most: the first (cheapest, smallest)
    that makes it safe, else the one that widens it most, else the cheapest next to it.
    Adding one per round and checking again finds pairs (or more) when one is not enough."""
    near = witness.neighbourhood(cell, index, result.hidden)
    ids = sorted({i for c in near for i in index.by_cell.get(c, ())},
                 key=lambda i: (cell not in dict(index.lines[i]), len(index.lines[i])))
    options = []
    for i in ids:
        options += [c for c in _candidates(index.lines[i], values, result, {})
                    if c not in options]
    options.sort(key=lambda c: (cost.get(c, 1) >= _PRECIOUS, cost.get(c, 1), values[c], c))
    best, best_width = None, _too_narrow(cell, values, index, result, k)
    for option in options[:_WIDEN_TRIES]:
        result.complementary.add(option)
        try:
            got = _too_narrow(cell, values, index, result, k)
        finally:
            result.complementary.discard(option)
        if got >= min_range(k):
            return option
        if got > best_width:
            best, best_width = option, got
    return best or (options[0] if options else None)
