"""Coverage and staffing (issue 19, part 1): Erlang C against published values, the
coverage of each hour of the week on synthetic histories (published months only, hidden
cells never planned from their exact count), the page and its CSV, and the coverage-gap
alert."""

from __future__ import annotations

import csv
import io
import math
import random
import re
from datetime import UTC, date, datetime, time, timedelta
from fractions import Fraction

import pytest
from lxml import html
from sqlalchemy import select

from hotline.alerts import conditions, notify
from hotline.core.extensions import settings
from hotline.dashboard import demo
from hotline.disclosure import joint
from hotline.models import Supporter
from hotline.roster import shifts
from hotline.staffing import coverage, erlang
from hotline.statistics import periods

# --- Erlang C against published values -------------------------------------------------


def test_erlang_b_matches_the_published_erlang_b_table():
    """Erlang B tables (e.g. the table in Cooper, "Introduction to Queueing Theory", or any
    traffic table): 10 erlangs on 10 lines block 21.46%; 10 lines carry 4.46 erlangs at a
    grade of service of 1%."""
    assert erlang.erlang_b(10, 10) == pytest.approx(0.2146, abs=5e-5)
    assert erlang.erlang_b(10, 4.46) == pytest.approx(0.010, abs=5e-4)


def test_erlang_c_matches_the_published_call_centre_example():
    """Call Centre Helper's worked example ("Erlang C Formula – Made Simple With an Easy
    Worked Example"): 100 calls in 30 minutes, 180 s average handling time, so 10 erlangs;
    with 11 agents a call waits with probability 68.21%, and 80% of calls answered within
    20 s needs 14 agents (13 fall just short)."""
    rate, handling = 200, 180     # calls an hour, seconds
    assert erlang.erlang_c(11, 10) == pytest.approx(0.6821, abs=5e-5)
    assert erlang.service_level(13, rate, handling, 20) < 0.8
    assert erlang.service_level(14, rate, handling, 20) >= 0.8
    assert erlang.servers_needed(rate, handling, 0.8, 20) == 14


def test_erlang_c_matches_the_textbook_m_m_2_queue():
    """M/M/2 at one erlang (Kleinrock, Queueing Systems vol. 1, the M/M/m queue): a caller
    waits with probability exactly 1/3 and waits 1/3 of a handling time on average."""
    assert erlang.erlang_c(2, 1.0) == pytest.approx(1 / 3, rel=1e-12)
    assert erlang.mean_wait(2, 1.0, 3600) == pytest.approx(1200, rel=1e-9)
    assert erlang.erlang_c(1, 0.5) == pytest.approx(0.5)   # M/M/1: the utilisation


def _textbook_c(servers: int, load: Fraction) -> Fraction:
    """Erlang C summed as printed, in exact fractions (an independent check)."""
    top = load ** servers / math.factorial(servers) * servers / (servers - load)
    return top / (sum(load ** n / math.factorial(n) for n in range(servers)) + top)


@pytest.mark.parametrize("servers, load", [(3, "2.5"), (11, "10"), (30, "24.75"),
                                           (120, "101.3")])
def test_erlang_c_equals_the_formula_as_printed(servers, load):
    exact = _textbook_c(servers, Fraction(load))
    assert erlang.erlang_c(servers, float(load)) == pytest.approx(float(exact), rel=1e-9)


def test_erlang_c_is_stable_for_large_loads():
    """Thousands of erlangs: no overflow of a**c / c!, the same value as the sum taken in
    logarithms, and the advice found in one pass."""
    load, servers = 5000.0, 5120
    logs = [n * math.log(load) - math.lgamma(n + 1) for n in range(servers)]
    top = servers * math.log(load) - math.lgamma(servers + 1) + math.log(
        servers / (servers - load))
    peak = max(logs + [top])
    expected = math.exp(top - peak) / (sum(math.exp(v - peak) for v in logs)
                                       + math.exp(top - peak))
    assert erlang.erlang_c(servers, load) == pytest.approx(expected, rel=1e-6)
    assert 0 < erlang.erlang_c(servers, load) < 1
    needed = erlang.servers_needed(5000 * 3600 / 360, 360, 0.9, 20)
    assert erlang.service_level(needed, 50000, 360, 20) >= 0.9
    assert erlang.service_level(needed - 1, 50000, 360, 20) < 0.9
    assert erlang.erlang_c(10, 10) == 1.0 and erlang.service_level(10, 100, 360, 20) == 0.0
    assert erlang.servers_needed(0, 360, 0.9, 20) == 0


# --- synthetic histories ---------------------------------------------------------------

#: "Now" for the coverage tests: May and June 2026 are published (settled) by then.
NOW = datetime(2026, 7, 27, 12, 30, tzinfo=UTC)   # Monday 08:30 in New York
MAY, JUNE = periods.month(2026, 5), periods.month(2026, 6)


def _supporter(session, name: str, phone: str, trained: bool = True) -> Supporter:
    person = Supporter(name=name, phone=phone, tier=1, available=False, languages="en",
                       trained_on=date(2026, 1, 1) if trained else None,
                       refresher_due=date(2028, 1, 1) if trained else None)
    session.add(person)
    session.commit()
    return person


def _history(session, per_hour: dict[tuple[int, int], int], first: date, last: date,
             only_dates: set[date] | None = None) -> int:
    """Contacts starting in local (weekday, hour) -> how many on each such day, with
    offers, outcomes and durations as the demo makes them (seeded)."""
    zone = shifts.program_zone()
    people = list(session.scalars(select(Supporter)))
    maker = demo._Maker(session, random.Random(19), people)
    day = first
    while day <= last:
        for (weekday, hour), count in per_hour.items():
            if day.weekday() == weekday and (only_dates is None or day in only_dates):
                for n in range(count):
                    start = datetime.combine(day, time(hour, 5 * n % 60), tzinfo=zone)
                    maker.contact(start.astimezone(UTC))
        maker.end_day()
        day += timedelta(days=1)
    return maker.flush()


@pytest.fixture
def monday_mornings(app, session, clock):
    """Twelve contacts every Monday 09:00-10:00 in May and June 2026 (9 Mondays: each
    Monday at least k, so the statistics page shows the hour); one trained supporter on
    shift Monday 08:00-12:00."""
    clock.set(NOW)
    alex = _supporter(session, "Alex", "+16175550111")
    shifts.add_shift(session, alex, 0, "08:00", "12:00")
    _history(session, {(0, 9): 12}, MAY.first, JUNE.last)
    return alex


def _publish(session):
    zone = shifts.program_zone()
    for span in (MAY, JUNE):
        joint.publish(session, span, zone, settings().MIN_CELL, NOW)


def test_demand_only_on_monday_mornings_advises_there_and_marks_gaps_elsewhere(
        monday_mornings, session):
    _publish(session)
    plan = coverage.build(session, NOW, settings())
    assert [m.id for m in plan.months] == ["2026-06", "2026-05"]
    assert plan.handling_observed   # 108 contacts, most reached a peer
    monday9 = plan.hours[9]
    assert (monday9.weekday, monday9.hour) == (0, 9)
    assert monday9.shown == 108 and monday9.rate == 12.0 and monday9.basis == coverage.OBSERVED
    # Erlang C from 12 an hour and the observed handling time, raised for missed offers
    expected = coverage.needed(12.0, plan.handling_seconds, plan.miss_share, settings())
    assert monday9.advice == monday9.advice_high == expected >= 2
    assert monday9.coverage == 1 and monday9.under and not monday9.nobody
    assert monday9.status == "under the advice"
    # the other hours: nothing to show (<11), the line's promise of one supporter
    monday10 = plan.hours[10]
    assert monday10.shown == "<11" and monday10.rate is None and monday10.basis == "at most"
    assert monday10.advice == 1 and monday10.advice_high >= 1
    assert monday10.coverage == 1 and not monday10.under and monday10.status == "covered"
    night = plan.hours[24 + 3]   # Tuesday 03:00
    assert night.coverage == 0 and night.nobody and night.under
    assert night.status == "nobody on shift"
    assert len(plan.gaps) == 168 - 3   # all but Monday 08:00, 10:00 and 11:00


def test_a_small_hour_is_hidden_and_planned_from_its_published_bounds(monday_mornings,
                                                                       session):
    """One contact on one Wednesday at 14:00: shown as <11 like on the statistics page;
    its advice is the same as an hour with none (it rests on the bounds 0..10, never on
    the exact count), and the same range as every other <11 hour."""
    assert _history(session, {(2, 14): 1}, date(2026, 6, 10), date(2026, 6, 10)) == 1
    _publish(session)
    plan = coverage.build(session, NOW, settings())
    wednesday = plan.hours[2 * 24 + 14]
    empty = plan.hours[2 * 24 + 15]
    assert wednesday.shown == empty.shown == "<11"
    assert (wednesday.advice, wednesday.advice_high) == (empty.advice, empty.advice_high)
    assert wednesday.rate is None


def test_training_and_program_hours(monday_mornings, session):
    """An untrained supporter on shift does not count while training is required; hours
    outside HOTLINE_PROGRAM_HOURS are closed, never a gap."""
    _publish(session)
    bea = _supporter(session, "Bea", "+16175550112", trained=False)
    shifts.add_shift(session, bea, 1, "09:00", "17:00")
    cfg = settings().replace(PROGRAM_HOURS="08:00-20:00", REQUIRE_TRAINING=True)
    plan = coverage.build(session, NOW, cfg)
    assert plan.hours[24 + 10].coverage == 0          # Bea, untrained
    night = plan.hours[24 + 3]
    assert not night.open and night.status == "closed" and not night.under
    assert night.advice == 0
    assert len(plan.gaps) == 7 * 12 - 3
    waived = coverage.build(session, NOW, cfg.replace(REQUIRE_TRAINING=False))
    assert waived.hours[24 + 10].coverage == 1


def test_the_page_and_its_csv_show_the_same_hours(monday_mornings, coordinator, session):
    """The coordinator page (which publishes the newest months itself) and the CSV: the
    same 168 rows, cell for cell; the count of a small hour is never shown."""
    page = coordinator.get("/dashboard/coverage")
    assert page.status_code == 200
    assert 'href="/dashboard/coverage"' in page.text   # in the nav
    tree = html.fromstring(page.text)
    table = [[cell.text_content().strip() for cell in row.xpath("./th|./td")]
             for row in tree.xpath('//table[@id="coverage-hours"]/tbody/tr')]
    response = coordinator.get("/dashboard/coverage.csv")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    lines = list(csv.reader(io.StringIO(response.text)))
    assert lines[0][:3] == ["weekday", "hour", "contacts in the window"]
    assert lines[1:] == table and len(table) == 168
    assert table[9][:5] == ["Monday", "09:00", "108", "12.0", "1"]
    assert table[9][6] == "under the advice"
    assert table[2 * 24 + 14][2] == "<11" and table[24 + 3][6] == "nobody on shift"
    assert re.fullmatch(r"1–\d+", table[24 + 3][5])   # a hidden hour: a range
    assert "June 2026 and May 2026" in page.text
    grid = tree.xpath('//table[contains(@class, "coverage")]//td')
    assert len(grid) == 168 and "▲" in grid[9].text_content()
    assert "✕" in grid[24 + 3].text_content()


def test_the_page_needs_a_login(app):
    response = app.test_client().get("/dashboard/coverage.csv")
    assert response.status_code in (302, 401)


def test_the_coverage_gap_alert_fires_on_a_gap_and_is_quiet_without_one(
        app, monday_mornings, session):
    """Monday 08:30 with 12 hours ahead: 09:00 is under the advice (one supporter for twelve
    contacts an hour), 12:00 to 19:00 nobody is on shift: an alert. With enough supporters on
    shift all day it resolves; with no published month it says nothing."""
    cfg = settings().replace(COVERAGE_ALERT_HOURS=12)
    assert conditions.coverage_gap(session, NOW, cfg) is None   # nothing published yet
    _publish(session)
    found = conditions.coverage_gap(session, NOW, cfg)
    assert found == {"count": 12 - 3, "when": "Mon 09:00 EDT", "window": "12 hours"}
    app.extensions["hotline.settings"] = cfg
    assert notify.check(NOW, only=("coverage_gap",)) == {"coverage_gap": "alert"}
    advice = coverage.build(session, NOW, cfg).hours[9].advice
    for n in range(advice):
        helper = _supporter(session, f"Helper {n}", f"+161755502{n:02d}")
        shifts.add_shift(session, helper, 0, "06:00", "22:00")
    assert conditions.coverage_gap(session, NOW, cfg) is None
    assert notify.check(NOW, only=("coverage_gap",)) == {"coverage_gap": "resolved"}
    assert conditions.coverage_gap(session, NOW, cfg.replace(COVERAGE_ALERT_HOURS=0)) is None
