"""The service-level simulation (benchmarks/service_level.py): a seeded day through the
whole hotline and the stand-in in virtual time, against the oracle router.

Small days (two hours of a weekday) keep these at seconds each.
"""

from __future__ import annotations

import pytest

from benchmarks import service_level as sl


def small_day(seed: int):
    return sl.make_day(seed, 1.0, hours=range(8, 10))


def figures(result):
    return {channel: sl.summary(result, channel) for channel in ("voice", "text", "callback")}


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("service-level")


def test_the_same_seed_gives_the_same_numbers(folder):
    day = small_day(3)
    first, oracle_first = sl.play(day, [sl.configured()], folder)
    again, oracle_again = sl.play(small_day(3), [sl.configured()], folder)
    assert len(day.arrivals) >= 5
    assert first[0].waits == again[0].waits and first[0].waits["voice"]
    assert figures(first[0]) == figures(again[0])
    assert first[0].ringing_minutes == again[0].ringing_minutes
    assert figures(oracle_first) == figures(oracle_again)
    assert sl.FAILED_JOBS == []


def test_another_seed_gives_another_day():
    assert [a.at for a in small_day(3).arrivals] != [a.at for a in small_day(4).arrivals]


def test_draws_belong_to_the_supporter_and_the_contact_not_to_the_order_of_asking():
    people = sl.People()
    later = [sl.draw(1, "+1", (5, "call"), 0, people) for _ in range(2)]
    assert later[0] == later[1] == sl.draw(1, "+1", (5, "call"), 0, people)
    assert sl.draw(1, "+1", (5, "call"), 1, people) != later[0] or \
        sl.draw(1, "+2", (5, "call"), 0, people) != later[0]


@pytest.mark.parametrize("seed", [1, 2])
def test_the_oracle_is_never_worse_than_a_policy(folder, seed):
    day = small_day(seed)
    chosen = [sl.configured(), sl.Variant("ring 12 s", sl.steps(ring=12)),
              sl.Variant("two at once", sl.steps(first=sl.TWO_AT_ONCE))]
    results, oracle = sl.play(day, chosen, folder)
    best = sl.summary(oracle, "voice")
    for result in results:
        mine = sl.summary(result, "voice")
        assert best["median"] <= mine["median"], result.name
        assert best["p95"] <= mine["p95"], result.name
        assert best["reached"] >= mine["reached"], result.name
        everyone = sl.summary(result)
        assert sl.summary(oracle)["reached"] >= everyone["reached"], result.name


def test_the_two_at_once_variant_is_the_policy_s_own_mechanism():
    assert sl.ring_two_supported()
    assert "two tier-1 at once" in [v.name for v in sl.variants()]


def test_erlang_c_staffing():
    # 10 calls an hour of 3 minutes: 0.5 erlang; one agent answers 90% in 20 s? No: two.
    assert sl.agents_needed(10, 180) == 2
    assert sl.erlang_c(1, 0.5) == pytest.approx(0.5)
    assert sl.agents_needed(100, 180) > sl.agents_needed(50, 180)
