"""The service-level simulation (benchmarks/service_level.py): a seeded day through the
whole hotline and the stand-in in virtual time, against the oracle router.

Small days (two hours of a weekday) keep these at seconds each.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from benchmarks import service_level as sl
from hotline.staffing import erlang

ROOT = Path(__file__).resolve().parent.parent


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
              sl.Variant("one at a time", sl.steps(first=sl.ONE_AT_A_TIME))]
    results, oracle = sl.play(day, chosen, folder)
    best = sl.summary(oracle, "voice")
    for result in results:
        mine = sl.summary(result, "voice")
        assert best["median"] <= mine["median"], result.name
        assert best["p95"] <= mine["p95"], result.name
        assert best["reached"] >= mine["reached"], result.name
        everyone = sl.summary(result)
        assert sl.summary(oracle)["reached"] >= everyone["reached"], result.name


def test_the_variants_set_the_first_step_as_the_shipped_file_does_but_what_they_change():
    shipped = yaml.safe_load((ROOT / "ivr_flows" / "escalation.yaml").read_text())["steps"]
    assert list(sl.steps()) == shipped  # "as configured" is the file, two at once
    assert sl.steps(first=sl.ONE_AT_A_TIME)[0]["at_once"] == 1
    assert sl.steps(ring=12)[0]["timeout_seconds"] == 12
    assert {"one at a time", "ring 12 s", "backup after 30 s"} <= {v.name for v in sl.variants()}


def test_the_roster_is_staffed_by_the_programs_erlang_c():
    day = small_day(1)
    for _name, peak, peers in day.staffing:
        assert peers == max(1, erlang.servers_needed(peak, day.mean_call, sl.SERVICE_LEVEL,
                                                     sl.SERVICE_SECONDS))
