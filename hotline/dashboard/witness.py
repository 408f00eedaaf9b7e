"""The final, exact check: every ``<k`` cell keeps enough values an attacker cannot rule out.

An attacker knows every visible cell, every published line, that each ``<k`` cell lies in
1..k-1 and that each other hidden cell is at least k. The values of a hidden cell that
this allows form an interval (the system is linear), found exactly by linear programming
over all lines at once. We prove a cell safe by *witnesses*: points that satisfy all of
that, so nobody can rule out the value the cell takes in them. Two kinds:

* twins: a hidden cell with the same lines and signs as ``x`` can trade units with it;
* a small LP over the hidden cells near ``x`` (the rest held at their true values, which
  satisfy every line), solved by ``hotline.dashboard.simplex``.

Holding cells fixed only removes witnesses, never adds any, so a cell proven safe is
safe against an attacker using every line at once (an LP attacker; see ``min_range``).
A cell not proven safe gets more complements (``hotline.dashboard.suppression``).
"""

from __future__ import annotations

import math
from collections import defaultdict

from hotline.dashboard.simplex import INF, value_range

#: Hidden cells around a <k cell that its witness LP may move (the nearest first).
NEIGHBOURHOOD = 20


class Index:
    """Lines by cell, and each cell's signature (its lines and signs), for one report."""

    def __init__(self, lines):
        self.lines = lines
        self.by_cell: dict[str, list[int]] = defaultdict(list)
        for i, line in enumerate(lines):
            for c, _ in line:
                self.by_cell[c].append(i)
        self.signature = {c: tuple(sorted((i, s) for i in ids for cc, s in lines[i] if cc == c))
                          for c, ids in self.by_cell.items()}


def cell_bounds(cell, primary, k) -> tuple[float, float]:
    return (1, k - 1) if cell in primary else (k, INF)


def width(low: float, high: float, k: int) -> int:
    """How many of 1..k-1 lie in [low, high] (with the audit's tolerance)."""
    return max(0, min(math.floor(high + 1e-6), k - 1) - max(math.ceil(low - 1e-6), 1) + 1)


def proven_range(cell, values, index: Index, hidden, primary, k) -> tuple[float, float]:
    """An interval of values of ``cell`` that witnesses prove nobody can rule out."""
    low, high = _twin_range(cell, values, index, hidden, primary, k)
    if width(low, high, k) >= _need(k):
        return low, high
    return _lp_range(cell, values, index, hidden, primary, k) or (values[cell],) * 2


def _need(k: int) -> int:
    from hotline.dashboard.suppression import min_range
    return min_range(k)


def _twin_range(cell, values, index, hidden, primary, k):
    """Trading units with hidden cells that sit in exactly the same lines, same signs."""
    x = values[cell]
    lo, hi = cell_bounds(cell, primary, k)
    give = take = 0.0
    sig = index.signature.get(cell)
    for line in index.by_cell.get(cell, ())[:1]:
        for other, _ in index.lines[line]:
            if other != cell and other in hidden and index.signature.get(other) == sig:
                o_lo, o_hi = cell_bounds(other, primary, k)
                give += values[other] - o_lo
                take += o_hi - values[other]
    return x - min(x - lo, take), x + min(hi - x, give)


def neighbourhood(cell, index: Index, hidden) -> list[str]:
    """Hidden cells near ``cell`` by breadth-first search, small lines first."""
    seen, order, frontier = {cell}, [cell], [cell]
    while frontier and len(order) < NEIGHBOURHOOD:
        nxt = []
        ids = sorted({i for c in frontier for i in index.by_cell.get(c, ())},
                     key=lambda i: len(index.lines[i]))
        for i in ids:
            for c, _ in index.lines[i]:
                if c in hidden and c not in seen and len(order) < NEIGHBOURHOOD:
                    seen.add(c)
                    order.append(c)
                    nxt.append(c)
        frontier = nxt
    return order


def _lp_range(cell, values, index: Index, hidden, primary, k):
    """Exact LP range of ``cell`` with the hidden cells far from it held at their values."""
    free = neighbourhood(cell, index, hidden)
    col = {c: j for j, c in enumerate(free)}
    rows = []
    for i in sorted({i for c in free for i in index.by_cell.get(c, ())}):
        coef, rhs = {}, 0.0
        for c, s in index.lines[i]:
            if c in col:
                coef[col[c]] = coef.get(col[c], 0.0) + s
            else:
                rhs -= s * values[c]
        rows.append((coef, rhs))
    bounds = [cell_bounds(c, primary, k) for c in free]
    return value_range(len(free), rows, [b[0] for b in bounds], [b[1] for b in bounds], 0)


def exposed(values, lines, primary, hidden, k, index: Index | None = None) -> list[str]:
    """The <k cells not proven to keep ``min_range(k)`` values, smallest first."""
    index = index or Index(lines)
    return sorted((c for c in primary
                   if width(*proven_range(c, values, index, hidden, primary, k), k) < _need(k)),
                  key=lambda c: (values[c], c))
