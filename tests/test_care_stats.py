"""Issue 16 part 3: how often each rule of caring for supporters took a supporter out of an
offer is in the published statistics (settled months and quarters, suppressed jointly),
counted by the same queries live and by day; "Available now" shows no rolling count.

A rolling window of the last days changes every day: two views a day apart, differenced,
would give one day's events, which issue 13's settled periods exist to prevent.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select

from hotline.disclosure import report as reports
from hotline.models import StatsDay, StatsPublished
from hotline.roster.shifts import program_zone
from hotline.statistics import queries as stats
from tests.test_stats import Seeder

#: Seen from here, March 2025 is settled and published.
NOW = datetime(2025, 4, 20, 12, 0, tzinfo=UTC)


def _local(zone: ZoneInfo, day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=zone).astimezone(UTC)


def _seed(session, make_supporter, zone: ZoneInfo) -> None:
    """February: 5 contacts, none held back. March: 20 contacts; 3 where the cool-down held
    a supporter back (one noted twice: it counts once), 12 where the cap did, 1 where a
    missed offer paused a supporter: the last contact of March, late on the 31st local time
    (already April in UTC)."""
    s = Seeder(session, make_supporter(name="Ada Peer"))
    for i in range(5):
        s.contact(_local(zone, date(2025, 2, 3 + i), 10), caller=f"feb{i}")
    for i in range(19):
        extra = ()
        if i < 3:
            extra += ("care_cooldown",) * (2 if i == 0 else 1)
        if i >= 7:
            extra += ("care_cap",)
        s.contact(_local(zone, date(2025, 3, 1 + i), 9 + i % 8), caller=f"mar{i}", extra=extra)
    s.contact(_local(zone, date(2025, 3, 31), 23, 30), caller="last", extra=("care_paused",))


def _row(data: dict, table: str, label: str):
    found = next(t for t in data["tables"] if t["id"] == table)
    return next(r["values"][0] for r in found["rows"] if r["label"] == label)


def test_each_rule_counts_in_its_months_published_report(session, make_supporter,
                                                          coordinator, clock):
    zone = program_zone()
    _seed(session, make_supporter, zone)
    clock.set(NOW)
    march = stats.Period(date(2025, 3, 1), date(2025, 3, 31), zone)
    february = stats.Period(date(2025, 2, 1), date(2025, 2, 28), zone)

    # the live path (the whole period) and the per-day path (cached days) agree
    live = stats.collect(session, march, cache=False, now=NOW)
    session.rollback()
    cached = stats.collect(session, march, now=NOW)
    assert live.care == cached.care == {"care_cooldown": 3, "care_cap": 12, "care_paused": 1}
    assert stats.collect(session, march, now=NOW) == live    # read back from the cache
    stored = [json.loads(c) for c in session.scalars(select(StatsDay.counts))]
    assert sum(d["care"].get("care_cap", 0) for d in stored) == 12
    assert stats.collect(session, february, now=NOW).care == {}

    # the exact cells, and the lines tying each split to the month's contacts
    exact = reports.build(live, march, k=11)
    for kind, yes in (("care_cooldown", 3), ("care_cap", 12), ("care_paused", 1)):
        assert exact.values[f"{kind}:yes"] == yes
        assert exact.values[f"{kind}:no"] == 20 - yes
        assert [("contacts", 1), (f"{kind}:yes", -1), (f"{kind}:no", -1)] in exact.lines

    # published: small counts suppressed like every other cell
    data = coordinator.get("/api/stats", query_string={"period": "2025-03"}).json
    assert data["period"]["id"] == "2025-03"
    cooldown, cap, paused = (label for _kind, _title, label in reports.CARE_TABLES)
    assert _row(data, "care_cooldown", cooldown) == "<11"
    assert _row(data, "care_paused", paused) == "<11"
    assert _row(data, "care_cap", cap) in (12, "hidden")
    assert _row(data, "care_cap", "not") in ("<11", "hidden")
    assert _row(coordinator.get("/api/stats", query_string={"period": "2025-02"}).json,
                "care_cap", cap) == "<11"
    # the CSV export and the statistics page carry the tables too
    csv = coordinator.get("/dashboard/stats.csv", query_string={"period": "2025-03"}).text
    assert "Today's cap held a supporter back" in csv
    page = coordinator.get("/dashboard/", query_string={"period": "2025-03"}).text
    assert "A supporter was paused after missed offers" in page


def test_a_week_is_not_a_period_the_rules_can_be_read_over(session, make_supporter,
                                                         coordinator, clock):
    """Only the settled periods are published: a rolling week of the care counts is not
    among them, and a month still under way is not either."""
    zone = program_zone()
    _seed(session, make_supporter, zone)
    clock.set(NOW)
    listed = {p["id"] for p in coordinator.get("/api/stats/periods").json["periods"]}
    assert "2025-03" in listed and "2025-04" not in listed
    week = {"from": (NOW.date() - timedelta(days=7)).isoformat(), "to": NOW.date().isoformat()}
    assert coordinator.get("/api/stats", query_string=week).status_code != 200


def test_a_month_published_before_the_care_rules_were_counted_gets_them_once(
        session, make_supporter, coordinator, clock):
    """A month kept as first published (``StatsPublished``) without the care counts: they
    are counted once and kept with it, never shown as zeros."""
    from hotline.disclosure import joint
    zone = program_zone()
    _seed(session, make_supporter, zone)
    clock.set(NOW)
    first = coordinator.get("/api/stats", query_string={"period": "2025-03"}).json
    row = session.scalar(select(StatsPublished).where(StatsPublished.period == "2025-03"))
    kept = json.loads(row.counts)
    assert kept["care"] == {"care_cooldown": 3, "care_cap": 12, "care_paused": 1}
    row.counts = json.dumps({k: v for k, v in kept.items() if k != "care"})
    session.commit()
    joint.clear_cache()
    again = coordinator.get("/api/stats", query_string={"period": "2025-03"}).json
    assert again["tables"] == first["tables"]
    session.expire_all()
    assert json.loads(session.scalar(select(StatsPublished.counts).where(
        StatsPublished.period == "2025-03"))) == kept
