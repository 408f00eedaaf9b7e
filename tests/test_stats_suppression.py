"""Suppression: no cell below k is shown, and no small cell can be narrowed down.

Every cell below k, zero included, is shown as ``<k`` ("fewer than k, possibly none");
the small ones, 1 to k-1, must each keep ``min_range(k)`` of the values 1..k-1 open.
``audit`` is independent of the algorithm: for every hidden cell it asks a linear
programme (scipy's HiGHS) for the smallest and largest value consistent with every
visible cell, every published line and what the display tells (``<k`` cells lie in
0..k-1, other hidden cells are at least k).
"""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from hotline.disclosure.elimination import determined
from hotline.disclosure.suppression import Suppressed, line_range, min_range, suppress

K = 11


def audit(values, lines, result: Suppressed, k: int = K,
          cells=None) -> dict[str, tuple[float, float]]:
    """For each hidden cell (of ``cells``, all by default), the (min, max) an attacker
    can prove with an LP."""
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
    bounds = [(0, k - 1) if c in result.primary else (k, None) for c in hidden]
    ranges = {}
    for cell, i in index.items():
        if cells is not None and cell not in cells:
            continue
        objective = [0.0] * len(hidden)
        objective[i] = 1.0
        low = linprog(objective, A_eq=a_eq or None, b_eq=b_eq or None, bounds=bounds)
        objective[i] = -1.0
        high = linprog(objective, A_eq=a_eq or None, b_eq=b_eq or None, bounds=bounds)
        assert low.status == 0, f"the published numbers are inconsistent: {low.message}"
        ranges[cell] = (low.fun, math.inf if high.status == 3 else -high.fun)
    return ranges


def assert_protected(values, lines, result, k: int = K) -> None:
    """No cell below k is visible (zeros included); every cell from 1 to k-1 keeps at least
    ``min_range(k)`` of the values 1..k-1 that no attacker (an LP over every line at once,
    knowing only 0..k-1 of a ``<k`` cell) can rule out. Complements and zeros are not
    checked: working them out reveals nobody."""
    for cell, value in values.items():
        if value < k:
            assert cell in result.primary, f"{cell}={value} is shown"
    small = {c for c, v in values.items() if 1 <= v < k}
    for cell, (low, high) in audit(values, lines, result, k, small).items():
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


def test_zeros_are_shown_as_small_and_never_serve_as_complements():
    values, lines = one_way({"a": 0, "b": 4, "c": 0, "d": 30})
    result = suppress(values, lines, K)
    # b = 34 - 30 - a - c: with a and c in 0..10 b would still lie in 0..4, so d is hidden.
    assert result.primary == {"a", "b", "c"} and result.complementary == {"d"}
    assert_protected(values, lines, result)


def test_a_small_total_of_small_parts_does_not_pin_them():
    """Seven days of one contact each: a week of 7. Were the days known to be at least 1,
    the week would lie in 7..10 and each day in 1..4; as 0..10 each keeps 0..10."""
    values, lines = one_way({f"day{i}": 1 for i in range(7)}, "week")
    result = suppress(values, lines, K)
    assert result.primary == set(values) and not result.complementary
    assert audit(values, lines, result)["day0"] == pytest.approx((0, K - 1))
    assert_protected(values, lines, result)


def test_several_small_cells_protect_each_other_when_their_sum_allows_it():
    values, lines = one_way({"a": 5, "b": 6, "c": 40})
    result = suppress(values, lines, K)
    assert result.primary == {"a", "b"}
    assert_protected(values, lines, result)


def test_a_small_total_is_hidden_with_its_parts():
    values, lines = one_way({"a": 3, "b": 0, "c": 4})
    result = suppress(values, lines, K)
    assert result.primary == {"a", "b", "c", "total"}
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
        if values[cell]:  # a zero worked out reveals nobody
            assert cell not in determined(lines, result.hidden)
    assert_protected(values, lines, result)


def calendar(days: list[int], rng: random.Random, hours: int = 6):
    """Cells and lines shaped like a report: days, weeks (7 days), months (28 days), a
    grand total split two ways (a channel mix), and an hour-of-week table whose row for
    each weekday adds up to that weekday's days (each contact put in a random hour)."""
    values = {f"d{i}": v for i, v in enumerate(days)}
    values["n"] = sum(days)
    lines = [[("n", 1)] + [(f"d{i}", -1) for i in range(len(days))]]
    for unit, size in (("w", 7), ("m", 28)):
        for u in range(-(-len(days) // size)):
            span = range(u * size, min((u + 1) * size, len(days)))
            values[f"{unit}{u}"] = sum(days[i] for i in span)
            lines.append([(f"{unit}{u}", 1)] + [(f"d{i}", -1) for i in span])
    voice = sum(rng.random() < 0.8 for _ in range(values["n"]))
    values.update(voice=voice, sms=values["n"] - voice)
    lines.append([("n", 1), ("voice", -1), ("sms", -1)])
    for wd in range(7):
        same = [i for i in range(len(days)) if i % 7 == wd]
        spread = [0] * hours
        for i in same:
            for _ in range(days[i]):
                spread[rng.randrange(hours)] += 1
        for h, v in enumerate(spread):
            values[f"h{wd}.{h}"] = v
        lines.append([(f"h{wd}.{h}", 1) for h in range(hours)] + [(f"d{i}", -1) for i in same])
    return values, lines


def test_a_year_of_sparse_days_weeks_months_and_hours_is_protected():
    """The shape of a real report: days, weeks, months and hour-of-week rows, all linked."""
    rng = random.Random(6)
    days = [rng.choice([0, 0, 1, 2, 3, 5, 8, 13, 21]) for _ in range(7 * 20)]
    values, lines = calendar(days, rng)
    result = suppress(values, lines, K, {"n": 100})
    assert_protected(values, lines, result)


#: Contacts a day in a quiet program: mostly none or a few, now and then a busy day.
SPARSE_DAY = st.sampled_from([0, 0, 0, 1, 1, 1, 2, 3, 5, 8, 13])


@hsettings(max_examples=40, deadline=None)
@given(st.integers(1, 6).flatmap(lambda weeks: st.lists(SPARSE_DAY, min_size=7 * weeks,
                                                        max_size=7 * weeks)),
       st.integers(2, 24), st.randoms(use_true_random=False))
def test_every_small_cell_of_a_report_shaped_table_keeps_its_range(days, hours, rng):
    """Whatever the days hold (a week of single contacts, a weekday whose contacts all
    fall in different hours, a total of a few small parts), every cell from 1 to k-1 keeps
    ``min_range(k)`` values against an LP using every line."""
    values, lines = calendar(days, rng, hours)
    result = suppress(values, lines, K, {"n": 100, **{c: 10 for c in values if c[0] in "wm"}})
    assert_protected(values, lines, result)


_PATTERN_SCRIPT = """
import json, random, sys
sys.path.insert(0, {root!r})
from tests.test_stats_suppression import calendar
from hotline.disclosure.suppression import suppress
rng = random.Random(11)
days = [rng.choice([0, 0, 1, 2, 3, 5, 8, 13, 21]) for _ in range(7 * 13)]
values, lines = calendar(days, rng)
result = suppress(values, lines, 11, {{"n": 100}})
print(json.dumps([sorted(result.primary), sorted(result.complementary)]))
"""


def test_every_web_process_hides_the_same_cells():
    """Two gunicorn processes answer the same dashboard: were their hidden cells to differ
    (set order depends on each process's string hash seed), a coordinator reloading the
    page could see a cell one process hides and another one shows. The choice must depend
    on the numbers only."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path
    root = str(Path(__file__).resolve().parent.parent)
    script = _PATTERN_SCRIPT.format(root=root)
    patterns = []
    for seed in ("1", "2", "3"):
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                              env=dict(os.environ, PYTHONHASHSEED=seed), timeout=120)
        assert done.returncode == 0, done.stderr[-2000:]
        patterns.append(json.loads(done.stdout))
    assert patterns[0][1], "the data should need complements"
    assert patterns[0] == patterns[1] == patterns[2]


def test_cells_published_before_stay_as_they_were_and_the_rest_is_hidden_instead():
    """A quarter decided after its months: the months' shown cells are frozen (hiding one
    now protects nothing), their hidden ones stay hidden; only the quarter's cells may be
    hidden, here the quarter total that would give away the small month (20 - 15 = 5)."""
    values = {"m1": 15, "m2": 5, "q": 20}
    lines = [[("q", 1), ("m1", -1), ("m2", -1)]]
    free = suppress(values, lines, K)
    frozen = suppress(values, lines, K, frozen={"m1"})
    assert "m1" not in frozen.hidden and frozen.hidden == {"m2", "q"} and not frozen.exposed
    assert_protected(values, lines, frozen)
    stuck = suppress(values, lines, K, frozen={"m1", "q"})
    assert stuck.hidden == {"m2"} and stuck.exposed == ["m2"]
    assert free.hidden >= {"m2"} and not free.exposed
