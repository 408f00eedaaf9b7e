"""A tiny dense two-phase simplex (Bland's rule), enough for the witness check.

``value_range`` answers: over every point that satisfies some linear equalities and
per-variable bounds, what are the smallest and largest values of one variable? It is
textbook linear programming with no dependency (the systems it gets are a few dozen
variables): variables are shifted to start at zero, finite upper bounds become rows with
a slack, phase 1 finds a basic feasible point with one artificial per row, phase 2
optimises. Bland's rule (lowest index enters and leaves) rules out cycling.
"""

from __future__ import annotations

INF = float("inf")
EPS = 1e-9

Row = tuple[dict[int, float], float]     # ({variable: coefficient}, right-hand side)


def value_range(n: int, rows: list[Row], lo: list[float], hi: list[float],
                target: int) -> tuple[float, float] | None:
    """(min, max) of variable ``target`` subject to ``rows`` (sum coef * v = rhs) and
    ``lo[j] <= v[j] <= hi[j]`` (``hi`` may be infinite); None when infeasible."""
    table, basis, width = _standard_form(n, rows, lo, hi)
    if not _phase_one(table, basis, width):
        return None
    low = _optimise(_copy(table), list(basis), width, target, -1.0)
    high = _optimise(table, basis, width, target, 1.0)
    return lo[target] + low, lo[target] + high


def _standard_form(n, rows, lo, hi):
    """Tableau rows [y (n) | slacks | artificials | rhs] with y = v - lo >= 0."""
    bounded = [j for j in range(n) if hi[j] < INF]
    eq = [({j: a for j, a in coef.items() if a}, rhs - sum(a * lo[j] for j, a in coef.items()))
          for coef, rhs in rows]
    eq += [({j: 1.0, n + s: 1.0}, hi[j] - lo[j]) for s, j in enumerate(bounded)]
    width = n + len(bounded)
    m = len(eq)
    table, basis = [], []
    for i, (coef, rhs) in enumerate(eq):
        sign = -1.0 if rhs < 0 else 1.0
        row = [0.0] * (width + m + 1)
        for j, a in coef.items():
            row[j] = sign * a
        row[width + i] = 1.0
        row[-1] = sign * rhs
        table.append(row)
        basis.append(width + i)
    return table, basis, width


def _phase_one(table, basis, width) -> bool:
    """Drive the artificials to zero; False if that is impossible (infeasible)."""
    cost = [0.0] * (len(table[0]) - 1)
    for j in range(width, len(cost)):
        cost[j] = -1.0
    value = _simplex(table, basis, cost, len(cost))
    if value < -1e-7:
        return False
    for i, b in enumerate(basis):           # pivot leftover (zero) artificials out
        if b >= width:
            j = next((j for j in range(width) if abs(table[i][j]) > EPS), None)
            if j is not None:
                _pivot(table, basis, i, j)
    return True


def _optimise(table, basis, width, target: int, sense: float) -> float:
    """max sense * y[target] over the feasible tableau (artificials may not enter)."""
    cost = [0.0] * width
    cost[target] = sense
    return sense * _simplex(table, basis, cost, width)


def _simplex(table, basis, cost: list[float], enter_limit: int) -> float:
    """Maximise cost . y in place; columns >= enter_limit never enter. Returns the optimum
    (infinite when unbounded)."""
    obj = [-c for c in cost] + [0.0] * (len(table[0]) - len(cost))
    for i, b in enumerate(basis):
        if b < len(cost) and cost[b]:
            obj = [o + cost[b] * t for o, t in zip(obj, table[i])]
    while True:
        col = next((j for j in range(enter_limit) if obj[j] < -EPS), None)
        if col is None:
            return obj[-1]
        row = _ratio_row(table, basis, col)
        if row is None:
            return INF
        _pivot(table, basis, row, col)
        f = obj[col]
        obj = [o - f * t for o, t in zip(obj, table[row])]


def _ratio_row(table, basis, col: int) -> int | None:
    best, row = INF, None
    for i, r in enumerate(table):
        if r[col] > EPS:
            ratio = r[-1] / r[col]
            if ratio < best - EPS or (abs(ratio - best) <= EPS and basis[i] < basis[row]):
                best, row = ratio, i
    return row


def _pivot(table, basis, row: int, col: int) -> None:
    p = table[row][col]
    pivot = table[row] = [t / p for t in table[row]]
    for i, r in enumerate(table):
        if i != row and abs(r[col]) > EPS:
            f = r[col]
            table[i] = [a - f * b for a, b in zip(r, pivot)]
    basis[row] = col


def _copy(table):
    return [list(r) for r in table]
