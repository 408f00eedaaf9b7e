"""Issue 17: the outreach statistics (sent, accepted, reached a peer), published by settled
month and quarter like the rest (issue 13: never by week, which could be differenced
against its month), suppressed, and counted the same live and by day.

"Sent" comes from the daily tally ``outreach_days`` (the outreach rows are deleted after
the quiet period); "reached" is an accepted outreach whose callback request is done.
"""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest
from sqlalchemy import select

from hotline.core.extensions import db
from hotline.disclosure import joint
from hotline.disclosure import report as reports
from hotline.models import CallbackRequest, OutreachDay, StatsPublished, utcnow
from hotline.roster import shifts
from hotline.statistics import days as stats_cache
from hotline.statistics import queries as stats
from tests.test_care_stats import NOW, _local, _row
from tests.test_outreach import COLLEAGUE, offer_texts, refer_by_text
from hotline.simulator import Answer
from tests.scenario import TextingPhone
from tests.test_stats import Seeder


@pytest.fixture
def daylong(hotline):
    """Texts may go at any hour (as in tests/test_outreach.py)."""
    hotline.app.extensions["hotline.settings"] = hotline.app.extensions[
        "hotline.settings"].replace(SEND_FROM_HOUR=0, SEND_UNTIL_HOUR=24)
    return hotline


def _outreach_cells(report) -> dict:
    return {key: report.values[key] for key in
            ("outreach:sent", "outreach:yes", "outreach:reached", "outreach:unreached")}


def test_a_yes_routed_to_a_connected_callback_counts_sent_accepted_and_reached(daylong):
    hotline = daylong
    hotline.supporter("Ada", hangup_after_bridge=30)
    hotline.sim.add_phone(TextingPhone(COLLEAGUE, replies=[("Reply YES for a call", "YES")],
                                       ring=Answer(2), hangup_after_bridge=30))
    refer_by_text(hotline)
    hotline.run(900)
    assert len(offer_texts(hotline, COLLEAGUE)) == 1
    with hotline.app.app_context():
        session = db.session
        assert session.scalars(select(CallbackRequest.state)).one() == "done"
        zone = shifts.program_zone()
        today = utcnow().astimezone(zone).date()
        [tally] = session.scalars(select(OutreachDay)).all()
        assert (tally.day, tally.sent) == (today, 1)   # the day and a count: nothing else
        month = stats.Period(today.replace(day=1), today, zone)
        live = stats.collect(session, month, cache=False)
        session.rollback()
        by_day = stats_cache.count_days(session, month)
        merged, _load = stats_cache._merge(by_day)
        assert merged.followups == live.followups
        assert sum(d.followups[stats.OUTREACH_SENT] for d in by_day.values()) == 1
        report = reports.build(live, month, k=11)
    assert _outreach_cells(report) == {"outreach:sent": 1, "outreach:yes": 1,
                                       "outreach:reached": 1, "outreach:unreached": 0}
    assert [("outreach:yes", 1), ("outreach:reached", -1), ("outreach:unreached", -1)] \
        in report.lines
    assert not any(key == "outreach:sent" for line in report.lines for key, _ in line)
    assert report.shown("outreach:sent") == report.shown("outreach:reached") == "<11"


def _seed(session, make_supporter, zone) -> None:
    """March 2025: 20 contacts; 4 opened by an outreach YES, of which 3 callbacks were done
    (reached) and 1 failed; 12 texts sent over three days (one of them in February)."""
    s = Seeder(session, make_supporter(name="Ada Peer"))
    for i in range(16):
        s.contact(_local(zone, date(2025, 3, 1 + i), 10), caller=f"mar{i}")
    for i in range(4):
        at = _local(zone, date(2025, 3, 20 + i), 11)
        contact = s.contact(at, outcome="callback_requested", caller=f"out{i}",
                            extra=("outreach_accepted",))
        session.add(CallbackRequest(contact_id=contact.id, requested_at=at,
                                    state="failed" if i == 3 else "done",
                                    promised_by=at + timedelta(minutes=30),
                                    completed_at=None if i == 3 else at + timedelta(minutes=9)))
    session.add_all([OutreachDay(day=date(2025, 2, 28), sent=2),
                     OutreachDay(day=date(2025, 3, 19), sent=7),
                     OutreachDay(day=date(2025, 3, 22), sent=5)])
    session.commit()


def test_outreach_counts_in_its_months_published_report(session, make_supporter,
                                                         coordinator, clock):
    zone = shifts.program_zone()
    _seed(session, make_supporter, zone)
    clock.set(NOW)
    march = stats.Period(date(2025, 3, 1), date(2025, 3, 31), zone)
    live = stats.collect(session, march, cache=False, now=NOW)
    session.rollback()
    cached = stats.collect(session, march, now=NOW)
    assert live == cached                                    # the live and per-day paths
    assert stats.collect(session, march, now=NOW) == live    # read back from the cache
    assert live.followups[stats.OUTREACH_SENT] == 12
    assert live.followups[stats.OUTREACH_REACHED] == 3
    exact = reports.build(live, march, k=11)
    assert _outreach_cells(exact) == {"outreach:sent": 12, "outreach:yes": 4,
                                      "outreach:reached": 3, "outreach:unreached": 1}

    data = coordinator.get("/api/stats", query_string={"period": "2025-03"}).json
    assert data["period"]["id"] == "2025-03"
    assert _row(data, "outreach_sent", "texts sent") in (12, "hidden")
    assert _row(data, "outreach_reached", "reached a peer") == "<11"
    assert _row(data, "outreach_reached", "not reached") == "<11"
    feb = coordinator.get("/api/stats", query_string={"period": "2025-02"}).json
    assert _row(feb, "outreach_sent", "texts sent") == "<11"
    assert not any(t["id"].startswith("outreach") and "week" in t["title"]
                   for t in data["tables"])
    csv = coordinator.get("/dashboard/stats.csv", query_string={"period": "2025-03"}).text
    assert "Outreach texts sent" in csv and "Outreach accepted: reached a peer" in csv
    page = coordinator.get("/dashboard/", query_string={"period": "2025-03"}).text
    assert "Outreach texts sent" in page


def test_a_month_published_before_the_outreach_counts_gets_them_once(
        session, make_supporter, coordinator, clock):
    """A month kept as first published (``StatsPublished``) without the outreach counts
    has them added once, from the tally and the callbacks (settled: they no longer move)."""
    zone = shifts.program_zone()
    _seed(session, make_supporter, zone)
    clock.set(NOW)
    coordinator.get("/api/stats", query_string={"period": "2025-03"})
    row = session.scalars(select(StatsPublished).where(StatsPublished.period == "2025-03")).one()
    found = json.loads(row.counts)
    for kind in (stats.OUTREACH_SENT, stats.OUTREACH_REACHED):
        del found["followups"][kind]
    row.counts = json.dumps(found)
    session.commit()
    joint.clear_cache(shared=True)
    data = coordinator.get("/api/stats", query_string={"period": "2025-03"}).json
    assert _row(data, "outreach_reached", "reached a peer") == "<11"
    session.expire_all()
    again = json.loads(session.scalars(select(StatsPublished.counts).where(
        StatsPublished.period == "2025-03")).one())
    assert again["followups"][stats.OUTREACH_SENT] == 12
    assert again["followups"][stats.OUTREACH_REACHED] == 3


def test_the_purge_deletes_the_outreach_tally_with_the_events(app, session):
    """The tally is counts by day, kept as long as the events are."""
    from datetime import UTC, date, datetime, timedelta

    from hotline.core.extensions import settings
    from hotline.models import OutreachDay
    from hotline.retention import purge
    now = datetime(2026, 7, 1, 12, tzinfo=UTC)
    window = settings().RETENTION_DAYS
    old, kept = date(2026, 7, 1) - timedelta(days=window + 3), date(2026, 6, 1)
    session.add_all([OutreachDay(day=old, sent=2), OutreachDay(day=kept, sent=1)])
    session.commit()
    assert purge.purge(session, now, settings())["outreach_days"] == 1
    assert [d.day for d in session.query(OutreachDay).all()] == [kept]
