"""Suppression: no cell from 1 to k-1 is shown, and no hidden cell can be worked out.

``audit`` is independent of the algorithm: for every hidden cell it asks a linear
programme (scipy's HiGHS) for the smallest and largest value consistent with every
visible cell, every published line and what the display tells (``<k`` cells lie in
1..k-1, other hidden cells are at least k). A cell is exposed when they meet.
"""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from hotline.dashboard.suppression import Suppressed, determined, line_range, min_range, suppress

K = 11


def audit(values, lines, result: Suppressed, k: int = K) -> dict[str, tuple[float, float]]:
    """For each hidden cell, the (min, max) an attacker can prove with an LP."""
    from scipy.optimize import linprog
    hidden = sorted(result.hidden)
    if not hidden:
        return {}
    index = {c: i for i, c in enumerate(hidden)}
    a_eq, b_eq = [], []
    for line in lines:
        row = [0.0] * len(hidden)
        rhs = 0.0
        for cell, sign in line:
            if cell in index:
                row[index[cell]] += sign
            else:
                rhs -= sign * values[cell]
        if any(row):
            a_eq.append(row)
            b_eq.append(rhs)
    bounds = [(1, k - 1) if c in result.primary else (k, None) for c in hidden]
    ranges = {}
    for cell, i in index.items():
        objective = [0.0] * len(hidden)
        objective[i] = 1.0
        low = linprog(objective, A_eq=a_eq or None, b_eq=b_eq or None, bounds=bounds)
        objective[i] = -1.0
        high = linprog(objective, A_eq=a_eq or None, b_eq=b_eq or None, bounds=bounds)
        assert low.status == 0, f"the published numbers are inconsistent: {low.message}"
        ranges[cell] = (low.fun, math.inf if high.status == 3 else -high.fun)
    return ranges


def assert_protected(values, lines, result, k: int = K) -> None:
    """No cell in 1..k-1 is visible; every <k cell keeps at least ``min_range(k)`` of the
    values 1..k-1 that no attacker (an LP over every line at once) can rule out."""
    for cell, value in values.items():
        if 1 <= value < k:
            assert cell in result.primary, f"{cell}={value} is shown"
    for cell, (low, high) in audit(values, lines, result, k).items():
        if cell not in result.primary:
            continue  # a complement is not small: working it out reveals nothing small
        left = min(math.floor(high + 1e-6), k - 1) - max(math.ceil(low - 1e-6), 1) + 1
        assert left >= min_range(k), \
            f"{cell}={values[cell]} is narrowed down: it lies in [{low}, {high}]"


def one_way(parts: dict[str, int], total: str = "total"):
    values = dict(parts, **{total: sum(parts.values())})
    return values, [[(total, 1)] + [(p, -1) for p in parts]]


def test_a_single_small_cell_gets_a_complement_large_enough_to_hide_its_range():
    values, lines = one_way({"a": 3, "b": 12, "c": 25, "d": 40})
    result = suppress(values, lines, K)
    assert result.primary == {"a"}
    # b=12 would leave a <= 3 + 12 - 11 = 4: c is the smallest complement that hides it all.
    assert result.complementary == {"c"}
    lo, hi = line_range(lines[0], "a", values, {"a": (1, K - 1), "c": (K, float("inf"))})
    assert lo <= 1 and hi >= K - 1
    assert_protected(values, lines, result)


def test_without_the_complement_the_small_cell_is_the_total_less_the_rest():
    values, lines = one_way({"a": 3, "b": 12, "c": 25})
    exposed = Suppressed(primary={"a"})
    assert audit(values, lines, exposed)["a"] == pytest.approx((3, 3))
    assert "a" in determined(lines, exposed.hidden)


def test_zeros_are_shown_and_never_serve_as_complements():
    values, lines = one_way({"a": 0, "b": 4, "c": 0, "d": 30})
    result = suppress(values, lines, K)
    assert result.primary == {"b"} and result.complementary == {"d"}


def test_several_small_cells_protect_each_other_when_their_sum_allows_it():
    values, lines = one_way({"a": 5, "b": 6, "c": 40})
    result = suppress(values, lines, K)
    assert result.primary == {"a", "b"}
    assert_protected(values, lines, result)


def test_a_small_total_is_hidden_with_its_parts():
    values, lines = one_way({"a": 3, "b": 0, "c": 4})
    result = suppress(values, lines, K)
    assert result.primary == {"a", "c", "total"}
    assert_protected(values, lines, result)


def test_a_bridge_between_two_tables_is_found_and_broken():
    # Two 2x2 tables whose hidden cells form two cycles joined by one shared line.
    values = {"r1": 20, "r2": 30, "c1": 22, "c2": 28, "x11": 5, "x12": 15, "x21": 17, "x22": 13}
    lines = [[("r1", 1), ("x11", -1), ("x12", -1)], [("r2", 1), ("x21", -1), ("x22", -1)],
             [("c1", 1), ("x11", -1), ("x21", -1)], [("c2", 1), ("x12", -1), ("x22", -1)]]
    result = suppress(values, lines, K)
    assert "x11" in result.primary
    assert_protected(values, lines, result)


def test_a_cross_table_chain_that_pins_a_cell_is_detected():
    lines = [[("t", 1), ("a", -1), ("b", -1)], [("u", 1), ("b", -1)]]
    assert determined(lines, {"a", "b"}) == {"a", "b"}
    assert determined(lines, {"a", "b", "u"}) == set()


@hsettings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.integers(0, 40), min_size=2, max_size=6), min_size=2, max_size=5))
def test_random_two_way_tables_with_margins_are_protected(grid):
    width = min(len(row) for row in grid)
    grid = [row[:width] for row in grid]
    values, lines = {}, []
    for i, row in enumerate(grid):
        for j, v in enumerate(row):
            values[f"x{i}.{j}"] = v
        values[f"r{i}"] = sum(row)
        lines.append([(f"r{i}", 1)] + [(f"x{i}.{j}", -1) for j in range(width)])
    for j in range(width):
        values[f"c{j}"] = sum(row[j] for row in grid)
        lines.append([(f"c{j}", 1)] + [(f"x{i}.{j}", -1) for i in range(len(grid))])
    values["n"] = sum(map(sum, grid))
    lines.append([("n", 1)] + [(f"r{i}", -1) for i in range(len(grid))])
    lines.append([("n", 1)] + [(f"c{j}", -1) for j in range(width)])
    result = suppress(values, lines, K, {"n": 100})
    for cell in result.primary:
        assert cell not in determined(lines, result.hidden)
    assert_protected(values, lines, result)


def test_a_year_of_sparse_days_weeks_months_and_hours_is_protected():
    """The shape of a real report: days, weeks, months and hour-of-week rows, all linked."""
    rng = random.Random(6)
    days = [rng.choice([0, 0, 1, 2, 3, 5, 8, 13, 21]) for _ in range(7 * 20)]
    values = {f"d{i}": v for i, v in enumerate(days)}
    values["n"] = sum(days)
    lines = [[("n", 1)] + [(f"d{i}", -1) for i in range(len(days))]]
    for w in range(20):
        values[f"w{w}"] = sum(days[w * 7:(w + 1) * 7])
        lines.append([(f"w{w}", 1)] + [(f"d{i}", -1) for i in range(w * 7, w * 7 + 7)])
    for m in range(5):
        span = range(m * 28, (m + 1) * 28)
        values[f"m{m}"] = sum(days[i] for i in span)
        lines.append([(f"m{m}", 1)] + [(f"d{i}", -1) for i in span])
    for wd in range(7):
        same = [i for i in range(len(days)) if i % 7 == wd]
        spread = [0] * 6
        for i in same:
            for _ in range(days[i]):
                spread[rng.randrange(6)] += 1
        for h, v in enumerate(spread):
            values[f"h{wd}.{h}"] = v
        lines.append([(f"h{wd}.{h}", 1) for h in range(6)] + [(f"d{i}", -1) for i in same])
    result = suppress(values, lines, K, {"n": 100})
    assert_protected(values, lines, result)
