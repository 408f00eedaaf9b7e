"""Issue 14 item 10: this month so far, without publishing a number that changes daily.

Issue 13 decided that only settled whole months and quarters are published (a period whose
numbers move every day can be differenced to isolate a day or one reply). The statistics
page's "This month so far (in progress)" panel therefore shows no contact-derived number:
when the unpublished months will be published, and the program's own roster figures.
"""

from __future__ import annotations

import html
import re
from datetime import UTC, date, datetime, time, timedelta

from hotline.roster import shifts
from hotline.statistics import days as stats_cache
from hotline.dashboard import in_progress
from hotline.statistics import periods
from hotline.models import MINUTES_PER_WEEK, utcnow
from hotline.roster.supporters import deactivate
from tests.test_stats import Seeder


def panel(client, query: str = "") -> str:
    page = client.get(f"/dashboard/{query}").text
    found = re.search(r'<section class="panel in-progress".*?</section>', page, re.DOTALL)
    assert found, "no in-progress panel on the statistics page"
    return found.group(0)


def text(fragment: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", fragment)).split())


def test_the_panel_gives_roster_figures_and_no_number_that_a_contact_changes(
        app, session, coordinator, make_supporter):  # noqa: F811
    ada, bo = make_supporter("Ada"), make_supporter("Bo")
    make_supporter("Cy")                                   # on the roster, no shift
    gone = make_supporter("Dee")
    shifts.add_shift(session, ada, "Monday", "22:00", "02:00")   # Mon 22 - Tue 02: 4 h
    shifts.add_shift(session, ada, "Sunday", "23:00", "01:00")   # wraps into Monday: 2 h
    shifts.add_shift(session, bo, "Monday", "23:00", "01:00")    # inside Ada's: no more
    shifts.add_shift(session, gone, "Friday", "08:00", "16:00")
    deactivate(session, gone)                                    # off the roster: not counted

    before = panel(coordinator)
    words = text(before)
    assert "This month so far (in progress)" in words
    assert "Supporters on the roster 3" in words
    assert "Supporters with at least one weekly shift 2" in words
    assert "Hours of the week covered by shifts 6 of 168" in words
    now, zone = utcnow(), shifts.program_zone()
    month = periods.containing(now.astimezone(zone).date(), "month")
    settle = stats_cache.cache_window(zone, now).settle
    on = (datetime.combine(month.last + timedelta(days=1), time(), zone) + settle).date()
    assert f"{month.label} (this month): statistics published on {on:%a %d %b %Y}" in words

    seeder = Seeder(session, ada)                          # contacts today, of every kind
    seeder.contact(now - timedelta(minutes=30))
    seeder.contact(now - timedelta(minutes=20), outcome="callback_requested", caller="k2")
    seeder.contact(now - timedelta(minutes=10), outcome="abandoned", caller="k3")
    assert panel(coordinator) == before


def test_covered_minutes_count_overlaps_once_and_wrap_sunday_into_monday():
    day = 24 * 60
    assert in_progress.covered_minutes([]) == 0
    assert in_progress.covered_minutes([(0, 60), (30, 90), (120, 180)]) == 150
    sunday_night = (6 * day + 23 * 60, 6 * day + 23 * 60 + 4 * 60)   # ends Monday 03:00
    assert in_progress.covered_minutes([sunday_night, (0, 60)]) == 4 * 60
    assert in_progress.covered_minutes([(d * day, (d + 1) * day) for d in range(7)]
                                       + [sunday_night]) == MINUTES_PER_WEEK


def test_a_month_is_published_on_the_day_the_panel_and_the_message_say(app):
    """``published_on`` is the moment ``periods.published`` turns true, not a guess."""
    zone = shifts.program_zone()
    march = periods.month(2025, 3)

    def limits(now):
        return periods.bounds(now, zone, stats_cache.cache_window(zone, now))
    settle = stats_cache.cache_window(zone, datetime(2025, 4, 2, tzinfo=UTC)).settle
    moment = (datetime.combine(date(2025, 4, 1), time(), zone) + settle).astimezone(UTC)
    early, then = limits(moment - timedelta(minutes=1)), limits(moment)
    assert not periods.published(march, early) and periods.published(march, then)
    assert periods.published_on(march, early) == moment.astimezone(zone).date()
    try:
        periods.choose({"period": "2025-03"}, early)
    except periods.PeriodError as exc:
        assert f"published on {moment.astimezone(zone):%a %d %b %Y}" in str(exc)
    else:
        raise AssertionError("an unsettled month was published")
    assert periods.choose({"period": "2025-03"}, then) == march


def test_asking_for_this_month_or_this_week_by_url_says_why_accurately(
        app, coordinator):  # noqa: F811
    """The old message, "the period must start before it ends, and end no later than ...",
    was wrong in its first half."""
    now, zone = utcnow(), shifts.program_zone()
    today = now.astimezone(zone).date()
    month = periods.containing(today, "month")
    response = coordinator.get(f"/dashboard/?period={month.id}")
    assert response.status_code == 400
    alert = text(re.search(r'<p class="error" role="alert">.*?</p>', response.text, re.DOTALL)[0])
    on = periods.published_on(month, periods.bounds(now, zone,
                                                    stats_cache.cache_window(zone, now)))
    assert alert.startswith(f"{month.label} is not published yet: its numbers still change; "
                            f"it is published on {on:%a %d %b %Y}")
    monday = today - timedelta(days=today.weekday())
    response = coordinator.get(f"/dashboard/?from={monday}&to={monday + timedelta(days=6)}")
    assert response.status_code == 400
    assert f"{monday} to {monday + timedelta(days=6)} is not a published period" in text(
        response.text)
    for answer in (response.text, coordinator.get(f"/dashboard/?period={month.id}").text):
        assert "must start before it ends" not in answer
        assert "This month so far" in text(answer)
