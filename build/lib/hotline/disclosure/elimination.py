"""Exact elimination over the published lines: which hidden cells they pin down.

Elimination runs modulo a large prime on each connected group of hidden cells (cells
sharing no line with the rest are eliminated apart): for these small +-1 systems it has
the rank of elimination over the rationals. A hidden cell is pinned (its value follows
from the visible cells) when the reduced rows hold it alone.
"""

from __future__ import annotations

from collections import defaultdict

Line = list[tuple[str, int]]
#: A Mersenne prime: elimination modulo it has the rank of elimination over the rationals
#: for these small +-1 systems (a minor divisible by it is out of reach).
_PRIME = (1 << 61) - 1


def pins(lines: list[Line], hidden: set[str], cell: str) -> bool:
    """Do the lines pin ``cell`` (only its group of hidden cells is eliminated)?"""
    rows = [{c: s for c, s in line if c in hidden} for line in lines]
    for group in _groups([r for r in rows if r]):
        if any(cell in row for row in group):
            return cell in _pinned(group)
    return False


def certificate(lines: list[Line], hidden: set[str], cell: str) -> set[str]:
    """The visible cells of the combination of lines that pins ``cell`` (empty if nothing
    pins it): ``cell`` = a sum of visible cells, and hiding one of those may free it."""
    rows = [({c: s for c, s in line if c in hidden}, {i: 1}) for i, line in enumerate(lines)]
    rows = [r for r in rows if r[0]]
    group = next((g for g in _groups([r for r, _ in rows]) if any(cell in r for r in g)), [])
    mine = {id(r) for r in group}
    pivots: dict[str, tuple[dict[str, int], dict[int, int]]] = {}
    for row, mix in rows:
        if id(row) not in mine:
            continue
        row = {c: s % _PRIME for c, s in row.items()}
        for col, (prow, pmix) in pivots.items():
            if col in row:
                _combine(mix, pmix, row[col])
                _eliminate(row, prow, col)
        if not row:
            continue
        col = min(row)
        inv = pow(row[col], _PRIME - 2, _PRIME)
        row = {c: v * inv % _PRIME for c, v in row.items()}
        mix = {i: v * inv % _PRIME for i, v in mix.items()}
        for other, omix in pivots.values():
            if col in other:
                _combine(omix, mix, other[col])
                _eliminate(other, row, col)
        pivots[col] = (row, mix)
    found = pivots.get(cell)
    if found is None or len(found[0]) != 1:
        return set()
    net: dict[str, int] = defaultdict(int)
    for i, weight in found[1].items():
        for c, sign in lines[i]:
            if c not in hidden:
                net[c] = (net[c] + weight * sign) % _PRIME
    return {c for c, v in net.items() if v}


def _combine(mix: dict[int, int], other: dict[int, int], factor: int) -> None:
    """mix -= factor * other (modulo the prime), as ``_eliminate`` does to the row."""
    for i, v in other.items():
        value = (mix.get(i, 0) - factor * v) % _PRIME
        if value:
            mix[i] = value
        else:
            mix.pop(i, None)


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
    """Gauss-Jordan elimination modulo a prime; a pivot row with a single entry pins it.
    Short rows first, each pivoting on its cell in fewest rows (less fill-in)."""
    rows = sorted(({c: s % _PRIME for c, s in r.items()} for r in rows), key=len)
    count = _counts(rows)
    pivots: dict[str, dict[str, int]] = {}
    for row in rows:
        for col in [c for c in row if c in pivots]:
            if col in row:
                _eliminate(row, pivots[col], col)
        if not row:
            continue
        col = min(row, key=lambda c: (count[c], c))
        inv = pow(row[col], _PRIME - 2, _PRIME)
        row = {c: v * inv % _PRIME for c, v in row.items()}
        for other in pivots.values():
            if col in other:
                _eliminate(other, row, col)
        pivots[col] = row
    return {col for col, row in pivots.items() if len(row) == 1}


def _counts(rows) -> dict[str, int]:
    """How many rows hold each cell."""
    count: dict[str, int] = defaultdict(int)
    for row in rows:
        for c in row:
            count[c] += 1
    return count


def _eliminate(row: dict[str, int], pivot: dict[str, int], col: int | str) -> None:
    factor = row[col]
    for c, v in pivot.items():
        value = (row.get(c, 0) - factor * v) % _PRIME
        if value:
            row[c] = value
        else:
            row.pop(c, None)
