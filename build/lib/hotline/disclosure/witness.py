"""The final, exact check: every small cell keeps enough values an attacker cannot rule out.

A small cell is one from 1 to k-1 (all cells below k, zeros included, are shown as
``<k``; narrowing a zero down reveals nobody). An attacker knows every visible cell,
every published line, that each ``<k`` cell lies in 0..k-1 and that each other hidden
cell is at least k. The values of a hidden cell that
this allows form an interval (the system is linear), found exactly by linear programming
over all lines at once. We prove a cell safe by *witnesses*: points that satisfy all of
that, so nobody can rule out the value the cell takes in them. Four kinds, cheapest first:

* twins: a hidden cell with the same lines and signs as ``x`` can trade units with it;
* near twins: a hidden cell ``y`` alike but for one line (``x`` in ``p``, ``y`` in ``q``)
  trades with ``x`` while other such pairs across ``p`` and ``q`` take the difference back
  (rectangles in a two-way table; two days of a week and the same weekdays of other
  weeks in the day series), found by lookup, with no search;
* moves: an integer vector ``d`` over hidden cells that every line sums to zero (in a
  two-way table, a rectangle of four hidden cells; in the time series, two days of one
  week and an hour of each of their weekdays). Moving every cell of it by ``t * d``
  keeps every line true, so each ``t`` the bounds allow gives a witness. A short search
  builds ``d`` from ``x`` by cancelling, line by line, what it has unbalanced;
* a small LP over the hidden cells near ``x`` (the rest held at their true values, which
  satisfy every line), solved by ``hotline.disclosure.simplex``.

Holding cells fixed only removes witnesses, never adds any, so a cell proven safe is
safe against an attacker using every line at once (an LP attacker; see ``min_range``).
A proof rests only on the cells it moves being hidden, so it stays valid while more cells
are hidden: ``Prover`` keeps each proof with the cells it rests on and reuses it.
A cell not proven safe gets more complements (``hotline.disclosure.suppression``).
"""

from __future__ import annotations

import heapq
import math
from collections import defaultdict

from hotline.disclosure.simplex import INF, value_range

#: Hidden cells around a <k cell that its witness LP may move (the nearest first).
NEIGHBOURHOOD = 20
#: Moves searched per cell: states expanded, and cells a move may hold.
MOVE_STATES = 60
MOVE_CELLS = 8
#: Moves applied one after another to push a cell one way.
AUGMENTS = 6
#: Feasible points a prover keeps from its programmes (each a few thousand numbers).
KEPT_POINTS = 64
#: Rounds of ``Prover._spread`` (the cells still unproven pushed together), while each
#: proves a quarter of what is left.
SPREADS = 4
#: States searched for a move through visible cells (``Prover.cover``: only for a cell
#: nothing else widens, where a longer search saves rounds of hiding cells that do not help).
COVER_STATES = 400


class Index:
    """Lines by cell, and each cell's signature (its lines and signs), for one report."""

    def __init__(self, lines):
        self.lines = lines
        self.by_cell: dict[str, list[int]] = defaultdict(list)
        self.signs: dict[str, dict[int, int]] = defaultdict(dict)
        for i, line in enumerate(lines):
            for c, s in line:
                if i not in self.signs[c]:
                    self.by_cell[c].append(i)
                self.signs[c][i] = self.signs[c].get(i, 0) + s
        self.signature = {c: tuple(sorted(signs.items())) for c, signs in self.signs.items()}
        self.by_signature: dict[tuple, list[str]] = defaultdict(list)
        #: near twins: each cell's signature less one line, (cell, line) -> that rest, and
        #: rest -> [(cell, line, sign)]
        self.rest: dict[tuple[str, int], tuple] = {}
        self.by_rest: dict[tuple, list[tuple[str, int, int]]] = defaultdict(list)
        for c, sig in self.signature.items():
            self.by_signature[sig].append(c)
            for n, (i, s) in enumerate(sig):
                if abs(s) == 1:
                    self.rest[c, i] = rest = sig[:n] + sig[n + 1:]
                    self.by_rest[rest].append((c, i, s))


def min_range(k: int) -> int:
    """How many of the values 1..k-1 a small cell must keep open: half (at least 2).
    All of 1..k-1 would often cost the grand total in a quiet week; one value is exposure."""
    return max(2, (k - 1) // 2)


def cell_bounds(cell, primary, k) -> tuple[float, float]:
    """What a reader knows of a hidden cell: ``<k`` is 0..k-1, ``hidden`` k or more."""
    return (0, k - 1) if cell in primary else (k, INF)


def width(low: float, high: float, k: int) -> int:
    """How many of 1..k-1 lie in [low, high] (with the audit's tolerance)."""
    return max(0, min(math.floor(high + 1e-6), k - 1) - max(math.ceil(low - 1e-6), 1) + 1)


def _need(k: int) -> int:
    return min_range(k)


class Prover:
    """Witness proofs for one report; each kept with the hidden cells it rests on."""

    def __init__(self, values, index: Index, primary, k: int, exact: bool = False) -> None:
        self.values, self.index, self.primary, self.k = values, index, primary, k
        #: Last resort for a cell no witness above proves: the LP over every line at once
        #: (``_global``; for the joint blocks of ``hotline.disclosure.joint``, whose
        #: thousand cells tied across months defeat the local searches).
        self.exact = exact
        self._systems: dict[frozenset, dict] = {}
        #: Feasible points the programmes found: (hidden set they rest on, {cell: value}
        #: where it differs from the true value}), the newest ``KEPT_POINTS``.
        self._points: list[tuple[frozenset, dict]] = []
        self.small = {c for c in primary if values[c] > 0}
        #: cell -> {cells the proof rests on: (low, high)}
        self.proofs: dict[str, dict[frozenset, tuple[float, float]]] = defaultdict(dict)
        self._views: dict[frozenset, View] = {}

    def view(self, hidden) -> View:
        """The lines' hidden cells for ``hidden`` (kept for the last few hidden sets)."""
        key = frozenset(hidden)
        found = self._views.get(key)
        if found is None:
            if len(self._views) > 8:
                self._views.clear()
            found = self._views[key] = View(self.index, key)
        return found

    def _known(self, cell, hidden) -> tuple[float, float]:
        low = high = self.values[cell]
        for rests_on, (lo, hi) in self.proofs.get(cell, {}).items():
            if (lo < low or hi > high) and rests_on <= hidden:
                low, high = min(low, lo), max(high, hi)
        return low, high

    def _add(self, cell, low, high, rests_on: frozenset) -> None:
        if low < self.values[cell] or high > self.values[cell]:
            mine = self.proofs[cell]
            lo, hi = mine.get(rests_on, (low, high))
            mine[rests_on] = (min(lo, low), max(hi, high))

    def proven_range(self, cell, hidden, quick: bool = False,
                     solve: bool = True) -> tuple[float, float]:
        """An interval of values of ``cell`` that witnesses prove nobody can rule out
        (with ``quick``, only those found by lookup: twins and near twins; without
        ``solve``, no programme of the cell's own)."""
        need, k = _need(self.k), self.k
        low, high = self._known(cell, hidden)
        if width(low, high, k) >= need:
            return low, high
        # exact: the whole block's programme replaces the small one around the cell (its
        # kept points prove most cells before any search)
        finders = (self._twins, self._near_twins, self._moves, self._lp) if not self.exact \
            else (self._twins, self._near_twins, self._seen, self._global)
        if not solve:
            finders = finders[:-1]
        for finder in finders[:2] if quick else finders:
            finder(cell, hidden)
            low, high = self._known(cell, hidden)
            if width(low, high, k) >= need:
                break
        return low, high

    def exposed(self, hidden) -> list[str]:
        """The small cells not proven to keep ``min_range(k)`` values, smallest first."""
        need = _need(self.k)
        cells = sorted(self.small)
        if self.exact:
            # Every cell the searches leave unproven pushed down at once, then up, over
            # its group: two programmes give points that prove most of them together.
            for round_ in range(SPREADS):
                left = [c for c in cells if width(*self.proven_range(c, hidden, solve=False),
                                                  self.k) < need]
                stalled = round_ and len(left) > 0.75 * len(cells)
                cells = left
                if not cells or stalled:
                    break
                self._spread(cells, hidden)
        return sorted((c for c in cells
                       if width(*self.proven_range(c, hidden), self.k) < need),
                      key=lambda c: (self.values[c], c))

    def _spread(self, cells, hidden) -> None:
        """Points of the whole-group programmes with ``cells`` pushed down, then up."""
        key = frozenset(hidden)
        groups: dict[int, tuple[dict, list]] = {}
        for cell in cells:
            system = self._systems.get(key, {}).get(cell)
            if system is None:
                self._global(cell, hidden, solve=False)   # builds the cell's group
                system = self._systems[key][cell]
            groups.setdefault(id(system), (system, []))[1].append(cell)
        for system, mine in groups.values():
            objective = [0.0] * len(system["cells"])
            for cell in mine:
                objective[system["column"][cell]] = 1.0
            for sign in (1.0, -1.0):
                self._optimum(system, key, objective, sign)

    def _optimum(self, system: dict, key: frozenset, objective: list[float],
                 sign: float) -> float | None:
        """min (sign 1) or max (sign -1) of ``objective`` over ``system`` (INF when
        unbounded above, None if no answer); the optimal point is kept as a witness."""
        # scipy is heavy (~0.3 s to import): loaded only by the exact check of a period
        from scipy.optimize import linprog
        found = linprog([sign * c for c in objective], A_eq=system["a"], b_eq=system["b"],
                        bounds=system["bounds"], method="highs")
        if found.status == 3:      # unbounded: above, since every cell is at least 0
            return INF
        if found.status != 0:
            return None
        system["points"].append(found.x)
        values = self.values
        self._points.append((key, {c: v for c, v in zip(system["cells"], found.x)
                                   if abs(v - values[c]) > 1e-9}))
        del self._points[:-KEPT_POINTS]
        return sign * found.fun

    # -- the three kinds of witness -------------------------------------------------

    def _twins(self, cell, hidden) -> None:
        """Trading units with hidden cells that sit in exactly the same lines, same signs."""
        values, primary, k = self.values, self.primary, self.k
        twins = [c for c in self.index.by_signature.get(self.index.signature.get(cell), ())
                 if c != cell and c in hidden]
        if not twins:
            return
        x = values[cell]
        lo, hi = cell_bounds(cell, primary, k)
        give = sum(values[o] - cell_bounds(o, primary, k)[0] for o in twins)
        take = sum(cell_bounds(o, primary, k)[1] - values[o] for o in twins)
        self._add(cell, x - min(x - lo, take), x + min(hi - x, give), frozenset(twins))

    def _room(self, c, a) -> float:
        """How far cell ``c`` can move from its value in direction ``a`` (+1 or -1)."""
        lo, hi = cell_bounds(c, self.primary, self.k)
        return hi - self.values[c] if a > 0 else self.values[c] - lo

    def _near_twins(self, cell, hidden) -> None:
        """Trading units with a near twin: a hidden cell ``y`` in the same lines with the same
        signs but one, ``q`` where ``cell`` has ``p``. Moving ``cell`` by ``t`` and ``y`` by
        ``-t`` leaves ``p`` and ``q`` off by ``t``, which other near-twin pairs across the
        same two lines (each in the same other lines) take back, each as far as its room
        allows: in a two-way table, rectangles sharing a corner pair; in the day series,
        two days of one week and the same two weekdays of other weeks."""
        values, need, k, index = self.values, _need(self.k), self.k, self.index
        v, view = values[cell], self.view(hidden)
        low, high = self._known(cell, hidden)
        for sign in (1, -1) if 2 * v < k else (-1, 1):
            goal = (min(k - 1, max(high, v + need - 1)) if sign > 0
                    else max(1, min(low, min(high, k - 1) - need + 1)))
            best, used = 0.0, None
            mine = self._room(cell, sign)
            for i, s in index.signature.get(cell, ()):
                if (cell, i) not in index.rest:
                    continue
                for y, q, sy in index.by_rest[index.rest[cell, i]]:
                    if y == cell or q == i or y not in hidden:
                        continue
                    t = min(mine, self._room(y, -sign), abs(goal - v))
                    if t <= best:
                        continue
                    got, pairs = self._take_back(i, q, s * sign, sy * sign, t, {cell, y}, view)
                    if got > best:
                        best, used = got, pairs | {cell, y}
                    if best >= abs(goal - v):
                        break
                if best >= abs(goal - v):
                    break
            if used:
                self._add(cell, min(v, v + sign * best), max(v, v + sign * best),
                          frozenset(used))
            low, high = self._known(cell, hidden)

    def _take_back(self, p, q, on_p, on_q, t, taken, view) -> tuple[float, set]:
        """Up to ``t`` moved by disjoint hidden pairs (z in line ``p``, u in ``q``, alike in
        every other line) that change ``p`` by ``-on_p`` and ``q`` by ``+on_q`` per unit;
        what they take and the cells they use."""
        got, used = 0.0, set()
        partners, rest, signs = view.by_rest(q), self.index.rest, self.index.signs
        for z, _ in view.members(p):
            if z in taken or z in used or (z, p) not in rest:
                continue
            az = -on_p * signs[z][p]         # z's move per unit: cancels on_p on line p
            for u, su in partners.get(rest[z, p], ()):
                au = on_q * su               # u's: gives back on_q on line q
                if au != -az or u in taken or u in used:
                    continue                 # (z and u must cancel in their other lines)
                room = min(self._room(z, az), self._room(u, au))
                if room > 0:
                    step = min(room, t - got)
                    got += step
                    used.update((z, u))
                    break
            if got >= t:
                break
        return got, used

    def _balanced(self, move: dict[str, int]) -> bool:
        """Does every line still add up once ``move`` is applied? (A check of the search.)"""
        touched = {i for c in move for i in self.index.by_cell.get(c, ())}
        return all(sum(s * move.get(c, 0) for c, s in self.index.lines[i]) == 0
                   for i in touched)

    def _moves(self, cell, hidden) -> None:
        """Push ``cell`` up, then down, along moves found one after another from the point
        reached (each within every moved cell's bounds, as augmenting paths in a flow),
        only as far as ``min_range`` needs; the two points reached are witnesses for every
        small cell they moved."""
        values, primary, k, need = self.values, self.primary, self.k, _need(self.k)
        v = values[cell]
        low, high = self._known(cell, hidden)
        ends, rests_on = [], set()
        for sign in (1, -1):
            if sign > 0:
                goal = min(k - 1, max(high, v + need - 1))
            else:
                goal = max(1, min(low, min(high, k - 1) - need + 1))
            point: dict[str, float] = {}
            for _ in range(AUGMENTS):
                if (point.get(cell, v) - goal) * sign >= 0:
                    break

                def room(c, a, point=point):
                    lo, hi = cell_bounds(c, primary, k)
                    at = point.get(c, values[c])
                    return hi - at if a > 0 else at - lo
                move = next(moves(cell, self.index, hidden, sign, room,
                                  view=self.view(hidden)), None)
                if move is None or not self._balanced(move):
                    break
                step = min([room(c, a) / abs(a) for c, a in move.items()]
                           + [abs(goal - point.get(cell, v))])
                for c, a in move.items():
                    point[c] = point.get(c, values[c]) + a * step
                rests_on.update(move)
            ends.append(point)
            high = max(high, point.get(cell, v)) if sign > 0 else high
        rests = frozenset(rests_on)
        for c in rests & self.small:
            seen = [values[c]] + [point[c] for point in ends if c in point]
            self._add(c, min(seen), max(seen), rests)

    def cover(self, cell, hidden, usable: dict[str, float]) -> list[str]:
        """Visible cells (from ``usable``, cell -> penalty) whose hiding lets ``cell`` move
        far enough: the cheapest move through hidden and usable cells found that does,
        else the one that moves it most; [] if none moves it at all."""
        values, primary, k, need = self.values, self.primary, self.k, _need(self.k)
        movable = set(hidden) | set(usable)

        def bounds(c):
            return cell_bounds(c, primary, k) if c in hidden else (k, INF)

        def room(c, a):
            lo, hi = bounds(c)
            return hi - values[c] if a > 0 else values[c] - lo
        low, high = self._known(cell, hidden)
        best, best_width = [], width(low, high, k)
        for sign in (1, -1):
            for move in moves(cell, self.index, movable, sign, room,
                              lambda c: usable.get(c, 0), states=COVER_STATES):
                t_lo, t_hi = -INF, INF
                for c, a in move.items():
                    lo, hi = bounds(c)
                    ends = ((lo - values[c]) / a, (hi - values[c]) / a)
                    t_lo, t_hi = max(t_lo, min(ends)), min(t_hi, max(ends))
                ends = (values[cell] + move[cell] * t_lo, values[cell] + move[cell] * t_hi)
                got = width(min(low, *ends), max(high, *ends), k)
                if got > best_width:
                    best, best_width = [c for c in move if c not in hidden], got
                    if got >= need:
                        return best
        return best

    def _lp(self, cell, hidden) -> None:
        """Exact LP range of ``cell`` with the hidden cells far from it held at their values."""
        index, values, primary, k = self.index, self.values, self.primary, self.k
        free = neighbourhood(cell, index, hidden)
        col = {c: j for j, c in enumerate(free)}
        rows = []
        for i in sorted({i for c in free for i in index.by_cell.get(c, ())}):
            rows.append(restricted_row(index.lines[i], col, values))
        bounds = [cell_bounds(c, primary, k) for c in free]
        found = value_range(len(free), rows, [b[0] for b in bounds],
                            [b[1] for b in bounds], 0)
        if found is not None:
            self._add(cell, found[0], found[1], frozenset(free))

    def _seen(self, cell, hidden) -> None:
        """``_global`` with the points already found only (no programme solved)."""
        self._global(cell, hidden, solve=False)

    def _global(self, cell, hidden, solve: bool = True) -> None:
        """The exact range of ``cell`` given every line at once: a linear programme over
        its connected group of hidden cells (HiGHS, through scipy). A range found with
        these cells hidden holds while more are hidden (that only frees more values).
        Each optimum is a feasible point, a witness for every cell of the group: they are
        kept, and a cell they already spread wide enough needs no programme of its own."""
        key = frozenset(hidden)
        systems = self._systems.get(key)
        if systems is None:
            if len(self._systems) > 2:
                self._systems.clear()
            systems = self._systems[key] = {}
        system = systems.get(cell)
        if system is None:
            system = self._system(cell, key)
            for c in system["cells"]:
                systems[c] = system
        j = system["column"][cell]
        seen = [point[j] for point in system["points"]] + [self.values[cell]]
        if width(min(seen), max(seen), self.k) >= _need(self.k) or not solve:
            self._add(cell, min(seen), max(seen), key)
            return
        objective = [0.0] * len(system["cells"])
        objective[j] = 1.0
        ends = [self._optimum(system, key, objective, sign) for sign in (1.0, -1.0)]
        if None not in ends:
            self._add(cell, ends[0], ends[1], key)

    def _system(self, cell, hidden: frozenset) -> dict:
        """The lines over ``cell``'s connected group of hidden cells, as a sparse LP. It
        starts with the points found with fewer cells hidden (still feasible: every newly
        hidden cell at its true value) and two of its own."""
        # scipy is heavy (~0.3 s to import): loaded only by the exact check of a period
        from scipy.sparse import csr_matrix
        index, values = self.index, self.values
        group, todo, rows = {cell}, [cell], set()
        while todo:
            for i in index.by_cell.get(todo.pop(), ()):
                if i in rows:
                    continue
                rows.add(i)
                for c, _ in index.lines[i]:
                    if c in hidden and c not in group:
                        group.add(c)
                        todo.append(c)
        cells = sorted(group)
        column = {c: j for j, c in enumerate(cells)}
        data, cols, ptr, b = [], [], [0], []
        for i in sorted(rows):
            row, rhs = restricted_row(index.lines[i], column, values)
            row = {j: a for j, a in row.items() if a}
            if row:
                cols += list(row)
                data += list(row.values())
                ptr.append(len(cols))
                b.append(rhs)
        bounds = [cell_bounds(c, self.primary, self.k) for c in cells]
        system = {"cells": cells, "column": column, "points": [],
                  "a": csr_matrix((data, cols, ptr), shape=(len(b), len(cells))) if b else None,
                  "b": b or None,
                  "bounds": [(lo, None if hi == INF else hi) for lo, hi in bounds]}
        for was, point in self._points:
            if was <= hidden and any(c in point for c in cells):
                system["points"].append([point.get(c, values[c]) for c in cells])
        # Two points of its own: every small cell of the group pushed down at once, then
        # up at once (most cells then need no programme of their own).
        spread = [1.0 if c in self.small else 0.0 for c in cells]
        for sign in (1.0, -1.0):
            self._optimum(system, hidden, spread, sign)
        return system


class View:
    """The hidden cells of each line, for one hidden set (worked out when first asked)."""

    def __init__(self, index: Index, hidden) -> None:
        self.index, self.hidden = index, hidden
        self._members: dict[int, list[tuple[str, int]]] = {}
        self._rests: dict[int, dict] = {}

    def by_rest(self, i: int) -> dict[tuple, list[tuple[str, int]]]:
        """The hidden cells of line ``i`` by their lines but ``i`` (with the sign on ``i``)."""
        found = self._rests.get(i)
        if found is None:
            found = self._rests[i] = defaultdict(list)
            for c, _ in self.members(i):
                if (c, i) in self.index.rest:
                    found[self.index.rest[c, i]].append((c, self.index.signs[c][i]))
        return found

    def members(self, i: int) -> list[tuple[str, int]]:
        found = self._members.get(i)
        if found is None:
            hidden = self.hidden
            found = self._members[i] = [(c, s) for c, s in self.index.lines[i] if c in hidden]
        return found


def moves(cell, index: Index, hidden, sign: int = 1, room=None, penalty=None,
          view: View | None = None, states: int = MOVE_STATES):
    """Integer vectors over hidden cells, ``cell`` at ``sign``, that balance every line and
    move only cells with ``room(cell, factor) > 0``: a best-first search that cancels the
    most constrained unbalanced line first, and finishes at once when one hidden cell's
    lines are exactly what is left unbalanced. ``penalty(cell)`` (0 by default) makes a
    move through that cell come later; ``view`` (of ``hidden``) saves working out again
    which cells of a line are hidden."""
    room = room or (lambda c, a: 1)
    penalty = penalty or (lambda c: 0)
    view = view or View(index, hidden)
    members = view.members

    def closing(move, residual):
        """A hidden cell (and its factor) that balances ``residual`` on its own."""
        for a in (1, -1):
            sig = tuple(sorted((i, -r * a) for i, r in residual.items()))
            for c in index.by_signature.get(sig, ()):
                if c in hidden and c not in move and room(c, a) > 0:
                    return c, a
        return None

    if room(cell, sign) <= 0:
        return
    start = {cell: sign}
    residual = {i: s * sign for i, s in index.signs[cell].items() if s}
    # A state is (move, residual); a pushed one is its parent plus one cell, made when
    # popped (most pushed states never are).
    heap = [(len(residual), 0, 0, start, residual, None, 0)]
    tie = 1
    for _ in range(states):
        if not heap:
            return
        _score, _n, paid, move, residual, added, a = heapq.heappop(heap)
        if added is not None:
            move, residual = {**move, added: a}, dict(residual)
            for i, si in index.signs[added].items():
                r = residual.get(i, 0) + si * a
                if r:
                    residual[i] = r
                else:
                    residual.pop(i, None)
        if not residual:
            yield move
            continue
        if all(abs(r) == 1 for r in residual.values()):
            done = closing(move, residual)
            if done is not None:
                yield {**move, done[0]: done[1]}
                continue
        if len(move) >= MOVE_CELLS:
            continue
        line = min(residual, key=lambda i: (len(members(i)), i))
        need = residual[line]
        if abs(need) != 1:
            continue
        for c, s in members(line):
            if c in move:
                continue
            a = -need * s
            if room(c, a) <= 0:
                continue
            left = len(residual)
            for i, si in index.signs[c].items():
                was = residual.get(i, 0)
                left += (was + si * a != 0) - (was != 0)
            cost = paid + penalty(c)
            heapq.heappush(heap, (left + len(move) + cost, tie, cost, move, residual, c, a))
            tie += 1


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


def proven_range(cell, values, index: Index, hidden, primary, k) -> tuple[float, float]:
    """An interval of values of ``cell`` that witnesses prove nobody can rule out."""
    return Prover(values, index, primary, k).proven_range(cell, hidden)


def exposed(values, lines, primary, hidden, k, index: Index | None = None) -> list[str]:
    """The small cells not proven to keep ``min_range(k)`` values, smallest first."""
    return Prover(values, index or Index(lines), primary, k).exposed(hidden)


def restricted_row(line, column: dict, values: dict) -> tuple[dict[int, float], float]:
    """A line's coefficients on the cells of ``column`` (cell -> LP column); every other
    cell is held at its value, moved to the right-hand side."""
    coef: dict[int, float] = {}
    rhs = 0.0
    for c, s in line:
        if c in column:
            coef[column[c]] = coef.get(column[c], 0.0) + s
        else:
            rhs -= s * values[c]
    return coef, rhs
