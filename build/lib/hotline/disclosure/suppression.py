"""Small-cell suppression with complementary suppression.

The published numbers of a report are *cells* (named counts) tied by *lines*: linear
identities anyone can check, such as "the days of a week add up to the week" or "the
hours of all Mondays add up to the Mondays of the daily series". A line is a list of
(cell, +1 or -1) whose signed values add up to zero.

1. Primary: every cell below k, zero included, is hidden and shown as ``<k`` ("fewer
   than k, possibly none"). Were zeros shown, a reader would know each ``<k`` cell is at
   least 1, and a small total of small parts would pin the parts (a week of seven
   single-contact days is 7..10, so each day 1..4). Only the *small* cells, 1 to k-1,
   need protecting: narrowing a zero down reveals nobody.
2. Complementary, line by line: a line holding a small cell must not pin it down. A
   reader knows each ``<k`` cell lies in 0..k-1 and each other hidden cell is at least k.
   For every small cell of the line we work out the range these bounds and the line
   leave it, and hide more cells of the line (the smallest that suffices, leaf cells
   before totals) until that range still holds at least half of the values 1..k-1 (5 of
   10 for k = 11), never a single one.
3. Across lines: lines share cells, and a chain of lines can pin a cell that no single
   line does (a "bridge" between two groups of hidden cells). We find every ``<k`` cell
   whose value follows from the lines alone by exact elimination (modulo a large prime)
   on each connected group of hidden cells (``hotline.disclosure.elimination``), and hide
   one more cell of the combination of lines that pins it, until none does. (A
   complement that can be worked out is harmless: it is not small.) A complement that
   its own other lines pin gets a partner at once (in a two-way table, the fourth corner
   of a rectangle), or the line it was hidden for would take the next cell, and the next.
4. Exactly, all lines at once: ``hotline.disclosure.witness`` proves each <k cell keeps
   ``min_range(k)`` values by exhibiting feasible points (twin cells, moves along which
   every line stays true, or a small exact LP around the cell); a cell it cannot prove
   safe gets one more complement per round (the one that widens it most, or the cells
   of the cheapest move that would), until it is proven safe.

The tests check the result independently with linear programming: every small cell
keeps ``min_range(k)`` values consistent with everything published.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hotline.disclosure import elimination
from hotline.disclosure import witness
from hotline.disclosure.witness import min_range
from hotline.disclosure.elimination import Line, certificate

INF = float("inf")


@dataclass
class Suppressed:
    """Which cells are hidden: ``primary`` (below k, shown as <k) and ``complementary``
    (k or more, hidden so that totals cannot reveal a small cell)."""
    primary: set[str] = field(default_factory=set)
    complementary: set[str] = field(default_factory=set)
    #: Visible cells that must stay visible: published before, in a period nested in this
    #: one (``hotline.disclosure.joint``). Hiding one now would protect nothing.
    frozen: set[str] = field(default_factory=set)
    #: The small cells the exact check could not prove safe when ``suppress`` ended: none,
    #: unless frozen cells left it nothing to hide.
    exposed: list[str] = field(default_factory=list)

    @property
    def hidden(self) -> set[str]:
        return self.primary | self.complementary


def suppress(values: dict[str, int], lines: list[Line], k: int,
             cost: dict[str, int] | None = None, complementary: set[str] = frozenset(),
             frozen: set[str] = frozenset(), exact: bool = False) -> Suppressed:
    """Choose the hidden cells of a report (see the module docstring). ``complementary``
    are hidden from the start and ``frozen`` are never hidden: decisions already published
    for nested periods (``hotline.disclosure.joint``), which only cells of neither may
    add to. ``exact``: the exact check ends, for a cell no witness proves, with the
    linear programme over every line (``witness.Prover.exact``)."""
    cost = cost or {}
    result = Suppressed(primary={c for c, v in values.items() if v < k},
                        complementary=set(complementary) - {c for c, v in values.items()
                                                            if v < k},
                        frozen=set(frozen) - {c for c, v in values.items() if v < k})
    prover = witness.Prover(values, witness.Index(lines), result.primary, k, exact)
    for _ in range(len(values) + 1):  # each round hides at least one more cell
        if not (_protect_lines(values, lines, k, cost, result, prover)
                or _protect_exactly(values, lines, cost, result, prover)):
            break
    result.exposed = prover.exposed(result.hidden)  # proofs found above are kept: quick
    return result


def exposed(values: dict[str, int], lines: list[Line], result: Suppressed,
            k: int) -> list[str]:
    """The small cells the exact witness check cannot prove safe under ``result`` (none
    once ``suppress`` succeeded; with frozen cells it may have run out of cells to hide)."""
    return witness.exposed(values, lines, result.primary, result.hidden, k)


def bounds(cell: str, result: Suppressed, k: int) -> tuple[float, float]:
    """What a reader knows of a hidden cell from how it is shown: ``<k`` is 0..k-1."""
    return (0, k - 1) if cell in result.primary else (k, INF)


def small(cell: str, values: dict[str, int], result: Suppressed) -> bool:
    """Is ``cell`` one to protect: shown as ``<k`` and not zero?"""
    return values[cell] > 0 and cell in result.primary


def known_ranges(values: dict[str, int], lines: list[Line], result: Suppressed,
                 k: int) -> dict[str, tuple[float, float]]:
    """What a reader can work out of each hidden cell line by line: its bounds narrowed
    by a few passes of interval propagation (a chain of lines that pins a cell exactly is
    left to the exact check)."""
    ranges = {c: bounds(c, result, k) for c in result.hidden}
    mine = [ln for ln in lines if any(c in ranges for c, _ in ln)]
    for _ in range(_PASSES):
        narrowed = False
        for line in mine:
            for cell, (lo, hi) in line_ranges(line, values, ranges).items():
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
#: Cells tried (cheapest first) to free what pins a line; each try propagates every range.
_LOOSEN_TRIES = 12


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
    """Every small cell of the line keeps ``min_range(k)`` possible values of 1..k-1."""
    if not any(small(c, values, result) for c, _ in line):
        return True
    need = min_range(k)
    for cell, (lo, hi) in line_ranges(line, values, ranges).items():
        if small(cell, values, result) and min(hi, k - 1) - max(lo, 1) + 1 < need:
            return False
    return True


def _candidates(line: Line, values: dict[str, int], result: Suppressed,
                cost: dict[str, int]) -> list[str]:
    """Visible cells of a line (all k or more), cheapest to hide first."""
    cells = {c for c, _ in line if c not in result.hidden and c not in result.frozen}
    return sorted(cells, key=lambda c: (cost.get(c, 1), values[c], c))


def _protect_lines(values, lines, k, cost, result: Suppressed, prover) -> bool:
    """Hide complements until every line is safe on its own; True if anything changed."""
    changed = False
    ranges = known_ranges(values, lines, result, k)
    for line in lines:
        while not _line_safe(line, values, result, k, ranges):
            options = _candidates(line, values, result, cost)
            if not options and result.frozen:
                # A line of frozen cells (a month's, in a quarter's block): nothing of it
                # can be hidden now; the exact check frees what it must elsewhere.
                break
            safe = [c for c in options if _line_safe(
                line, values, result, k, dict(ranges, **{c: (k, INF)}))]
            # A cell the other lines pin down protects nothing on its own: prefer one they
            # leave free (each check is an elimination, so only until one is found); a
            # pinned one gets a partner below.
            chosen = next((c for c in safe if not pins(prover, result.hidden | {c}, c)),
                          safe[0] if safe else None)
            freed = False  # a cell hidden elsewhere may free cells this line leans on
            if chosen is None or cost.get(chosen, 1) >= _PRECIOUS:
                # A cheaper cell next door may free what pins this line (a subtotal).
                limit = cost.get(chosen, 1) if chosen else INF
                loose = _loosening(line, values, lines, k, cost, result, limit)
                chosen, freed = loose or chosen, loose is not None
            if chosen is None and options:
                chosen = max(options, key=lambda c: (values[c], -cost.get(c, 1)))
            if chosen is None:
                break
            result.complementary.add(chosen)
            ranges[chosen] = (k, INF)
            changed = True
            if pins(prover, result.hidden, chosen):
                # Pinned by its other lines it protects nothing: free it at once (in a
                # two-way table this completes a rectangle), or the line takes more cells.
                partner = _partner(chosen, line, values, lines, cost, result, prover)
                if partner is not None:
                    result.complementary.add(partner)
                    freed = True
            if freed:
                ranges = known_ranges(values, lines, result, k)
    return changed


def _partner(cell: str, line: Line, values, lines, cost, result: Suppressed,
             prover) -> str | None:
    """A visible cell whose hiding frees ``cell`` (just hidden for ``line``): first in the
    other lines of ``cell``, those where it is the only hidden cell first, then anywhere."""
    hidden = result.hidden
    own = sorted((ln for ln in lines if ln is not line and any(c == cell for c, _ in ln)),
                 key=lambda ln: sum(c in hidden for c, _ in ln))
    for other in own:
        for option in _candidates(other, values, result, cost)[:_TRIES]:
            if not pins(prover, hidden | {option}, cell):
                return option
    return _unpinning(cell, values, lines, cost, result, prover)


def _loosening(line: Line, values, lines, k, cost, result: Suppressed,
               limit: float = INF) -> str | None:
    """A cell, cheaper than ``limit``, in a line sharing a hidden cell with ``line``, whose
    hiding makes the line safe (it frees a subtotal the line leans on); None if none."""
    mine = {c for c, _ in line if c in result.hidden}
    near = [ln for ln in lines if ln is not line and any(c in mine for c, _ in ln)]
    options = sorted({c for ln in near for c in _candidates(ln, values, result, cost)
                      if cost.get(c, 1) < limit},
                     key=lambda c: (cost.get(c, 1), values[c], c))
    if result.frozen:
        # A joint block (``hotline.disclosure.joint``) is four reports' lines: propagate
        # over the lines near this one only. Wider ranges can only pick a cell that does
        # not suffice, which the exact check then finds.
        lines = _near(line, lines, result)
    for option in options[:_LOOSEN_TRIES]:
        result.complementary.add(option)
        try:
            if _line_safe(line, values, result, k, known_ranges(values, lines, result, k)):
                return option
        finally:
            result.complementary.discard(option)
    return None


def _near(line: Line, lines: list[Line], result: Suppressed, hops: int = 1) -> list[Line]:
    """The lines within ``hops`` shared hidden cells of ``line``."""
    cells = {c for c, _ in line if c in result.hidden} | {c for c, _ in line}
    near: list[Line] = []
    for _ in range(hops):
        near = [ln for ln in lines if any(c in cells for c, _ in ln)]
        cells |= {c for ln in near for c, _ in ln if c in result.hidden}
    return near


#: Cells tried when freeing a pinned cell (the nearest and cheapest first), and of those
#: the combination that pins it names (each try is an elimination).
_TRIES = 25
_PROOF_TRIES = 8


def _unpinning(cell: str, values, lines, cost, result: Suppressed, prover) -> str | None:
    """A visible cell whose hiding frees ``cell``: its own lines first, then the lines
    next to them, then any line with a hidden cell; cheapest first, a few of each."""
    near = {c for ln in lines if any(c == cell for c, _ in ln) for c, _ in ln}
    proof = sorted(certificate(lines, result.hidden, cell) - result.frozen,
                   key=lambda c: (cost.get(c, 1), c not in near, values[c], c))
    for option in proof[:_PROOF_TRIES]:
        if not pins(prover, result.hidden | {option}, cell):
            return option
    if proof:
        # No one cell frees it (several combinations pin it): hide the cheapest cell of the
        # one found; the next round finds another combination until none is left.
        return proof[0]
    own = [ln for ln in lines if any(c == cell for c, _ in ln)]
    mine = {c for ln in own for c, _ in ln if c in result.hidden}
    near = [ln for ln in lines if any(c in mine for c, _ in ln)]
    far = [ln for ln in lines if any(c in result.hidden for c, _ in ln)]
    tried: set[str] = set()
    for group in (own, near, far):
        options = sorted({c for ln in group for c in _candidates(ln, values, result, cost)}
                         - tried, key=lambda c: (cost.get(c, 1), values[c], c))
        for option in options[:_TRIES]:
            if not pins(prover, result.hidden | {option}, cell):
                return option
        tried.update(options)
    return None


#: Cells tried when widening a <k cell the exact check cannot prove safe.
_WIDEN_TRIES = 6


def _protect_exactly(values, lines, cost, result: Suppressed, prover: witness.Prover) -> bool:
    """Hide complements for each small cell the exact witness check cannot prove safe
    (``hotline.disclosure.witness``): one that frees it if the lines pin it, else one that
    widens it; True if anything changed."""
    changed = False
    k = prover.k
    for cell in prover.exposed(result.hidden):
        if not changed or _too_narrow(cell, prover, result) < min_range(k):
            if pins(prover, result.hidden, cell):
                chosen = _unpinning(cell, values, lines, cost, result, prover)
                chosen = [chosen] if chosen else []
            else:
                chosen = _widening(cell, values, prover, cost, result)
            if not chosen:
                continue
            result.complementary.update(chosen)
            changed = True
    return changed


def _too_narrow(cell, prover: witness.Prover, result: Suppressed, quick: bool = False) -> int:
    """How many values of 1..k-1 witnesses keep open for ``cell`` (only those found by
    lookup with ``quick``: trying many cells, a search for each would be slow)."""
    return witness.width(*prover.proven_range(cell, result.hidden, quick), prover.k)


def _widening(cell, values, prover: witness.Prover, cost, result: Suppressed) -> list[str]:
    """Cells to hide to widen ``cell``: the first visible cell (cheapest, smallest) whose
    hiding makes it safe, else the one that widens it most, else the visible cells of the
    cheapest move that widens it (``witness.Prover.cover``), else the cheapest next to it.
    Checking again each round finds more when that is not enough."""
    index, k = prover.index, prover.k
    near = witness.neighbourhood(cell, index, result.hidden)
    ids = sorted({i for c in near for i in index.by_cell.get(c, ())},
                 key=lambda i: (cell not in dict(index.lines[i]), len(index.lines[i])))
    options = []
    for i in ids:
        options += [c for c in _candidates(index.lines[i], values, result, {})
                    if c not in options]
    options.sort(key=lambda c: (cost.get(c, 1) >= _PRECIOUS, cost.get(c, 1), values[c], c))
    # The cheapest few of each cost (a subtotal often frees what no leaf cell can).
    tries = [c for n, c in enumerate(options)
             if sum(cost.get(o, 1) == cost.get(c, 1) for o in options[:n]) < _WIDEN_TRIES]
    best, best_width = None, _too_narrow(cell, prover, result)
    for option in tries:
        result.complementary.add(option)
        try:
            got = _too_narrow(cell, prover, result, quick=True)
        finally:
            result.complementary.discard(option)
        if got >= min_range(k):
            return [option]
        if got > best_width:
            best, best_width = option, got
    if best is None:
        # No one cell widens it: hide the cells of the cheapest move that does (a subtotal
        # and its partner, say), the grand total only as a last resort.
        usable = {c: 1 + (cost.get(c, 1) > 1) for c in values
                  if c not in result.hidden and c not in result.frozen
                  and cost.get(c, 1) < _PRECIOUS}
        cover = prover.cover(cell, result.hidden, usable)
        if cover:
            return cover
    return [best] if best else options[:1]




def pins(prover: witness.Prover, hidden, cell: str) -> bool:
    """Do the lines pin ``cell`` down? Two quick answers before an exact elimination
    (``elimination.pins``): a cell alone in a line is pinned; a cell that some move
    changes (``witness.moves``: every line stays true) is not."""
    index = prover.index
    for i in index.by_cell.get(cell, ()):
        if index.signs[cell][i] and not any(c in hidden for c, _ in index.lines[i] if c != cell):
            return True
    if next(witness.moves(cell, index, hidden), None) is not None:
        return False
    return elimination.pins(index.lines, hidden, cell)
