"""Browser tests of issue 14's roster, shift and statistics items, as a coordinator meets them.

The whole hotline runs as `make run` starts it (demo roster, all five switched ON, demo
shifts and weeks of history); Playwright drives Debian's chromium by roles, labels and
visible words, clicking and typing. Screenshots go to test-output/.
"""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime, time, timedelta

import pytest

from hotline.statistics import periods
from hotline.roster.shifts import WEEKDAYS, program_zone
from tests.axe import assert_accessible, new_context, watch
from tests.stack import Stack
from tests.test_dashboard_browser import log_in
from tests.stack import OUTPUT

pytestmark = pytest.mark.browser

# The stack runs on the default time zone (America/New_York), never UTC: a time shown in
# UTC would not match.
ZONE = program_zone()


@pytest.fixture
def page(browser, stack):  # noqa: F811
    """A logged-in coordinator at 1280x900; fails on a server error or an off-site request."""
    context = new_context(browser, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors = watch(page, stack.url)
    log_in(page, stack.url)
    page.base = stack.url
    yield page
    assert errors == [], f"failed requests or requests off the server: {errors}"
    context.close()


def add_supporter(page, name: str, phone: str, languages: tuple[str, ...] = ("en",)) -> None:
    """Through the roster page's form, as a coordinator does; ends on their page."""
    from playwright.sync_api import expect
    page.get_by_role("link", name="Roster & shifts").click()
    form = page.locator("form.grid")
    form.get_by_label("Name").fill(name)
    form.get_by_label("Phone").fill(phone)
    for code in ("en", "es"):
        form.get_by_label(code, exact=True).set_checked(code in languages)
    page.get_by_role("button", name="Add supporter").click()
    expect(page.get_by_role("heading", name=name, level=1)).to_be_visible()


def add_shift(page, day: str, start: str, end: str) -> None:
    page.get_by_role("combobox", name="Day").select_option(day)
    page.get_by_role("textbox", name="Start").fill(start)
    page.get_by_role("textbox", name="End").fill(end)
    page.get_by_role("button", name="Add shift").click()


def section(page, heading: str):
    """The part of the page under a heading."""
    return page.locator("section").filter(has=page.get_by_role("heading", name=heading,
                                                                  exact=True))


def roster_row(page, name: str):
    return page.get_by_role("group", name="Roster table").get_by_role("row").filter(
        has=page.get_by_role("rowheader", name=name))


# ---- item 4 ----------------------------------------------------------------------------

def test_taking_a_supporter_off_asks_first_lists_them_and_restore_brings_them_back(page):
    """Issue 14 item 4: "Take off the roster" acted at once under Save, and re-adding the
    number failed with "already exists" for a person shown on no page."""
    from playwright.sync_api import expect
    add_supporter(page, "Robin Ortiz", "617 555 0177")
    add_shift(page, "Tuesday", "19:00", "07:00")
    taken_off = section(page, "Taken off the roster")

    page.get_by_role("link", name="Take off the roster…").click()
    expect(page.get_by_role("heading", name="Take Robin Ortiz off the roster?")).to_be_visible()
    expect(page.get_by_role("main")).to_contain_text("Tuesday 19:00–07:00 (Wednesday)")
    page.get_by_role("link", name="Cancel, keep them").click()      # asking did nothing
    page.get_by_role("link", name="← Roster").click()
    expect(roster_row(page, "Robin Ortiz")).to_have_count(1)

    roster_row(page, "Robin Ortiz").get_by_role("link", name="Robin Ortiz").click()
    page.get_by_role("link", name="Take off the roster…").click()
    page.get_by_role("button", name="Yes, take Robin Ortiz off the roster").click()
    expect(page.get_by_role("heading", name="Roster & shifts")).to_be_visible()
    expect(page.get_by_role("status")).to_contain_text("Robin Ortiz is off the roster")
    expect(roster_row(page, "Robin Ortiz")).to_have_count(0)
    expect(taken_off).to_contain_text("Robin Ortiz")
    page.screenshot(path=str(OUTPUT / "dashboard-taken-off.png"), full_page=True)

    # The same number again: no dead end, an offer to restore.
    form = page.locator("form.grid")
    form.get_by_label("Name").fill("Robin O.")
    form.get_by_label("Phone").fill("+1 617 555 0177")
    page.get_by_role("button", name="Add supporter").click()
    phone = form.get_by_label("Phone")
    expect(phone).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#" + phone.get_attribute("aria-describedby"))).to_contain_text(
        "Robin Ortiz was taken off the roster with this number: restore them instead")
    expect(page.get_by_role("alert").first).to_contain_text("restore them instead")
    page.get_by_role("button", name="Restore Robin Ortiz").first.click()
    expect(page.get_by_role("heading", name="Robin Ortiz", level=1)).to_be_visible()
    expect(page.get_by_role("status")).to_contain_text("Robin Ortiz is back on the roster")
    expect(page.locator("p.status")).to_contain_text("Not offered contacts now")

    # And from the list of those taken off.
    page.get_by_role("link", name="Take off the roster…").click()
    page.get_by_role("button", name="Yes, take Robin Ortiz off the roster").click()
    taken_off.get_by_role("button", name="Restore Robin Ortiz").click()
    expect(page.get_by_role("heading", name="Robin Ortiz", level=1)).to_be_visible()
    page.get_by_role("link", name="← Roster").click()
    expect(roster_row(page, "Robin Ortiz")).to_have_count(1)
    expect(taken_off).to_contain_text("Nobody.")


# ---- item 5 ----------------------------------------------------------------------------

def test_a_shift_across_midnight_ends_in_the_program_time_zone_with_the_zone_named(page):
    """Issue 14 item 5: "Friday 23:00–01:00 (Saturday)" showed "on shift until Sat 06:00",
    in UTC. A shift on now that ends the day after it starts."""
    from playwright.sync_api import expect
    now = datetime.now(ZONE).replace(second=0, microsecond=0, tzinfo=None)  # wall clock
    if now.hour >= 12:          # from an hour ago to 06:00 tomorrow
        start = now - timedelta(hours=1)
        end = datetime.combine(now.date() + timedelta(days=1), datetime.min.time()) \
            + timedelta(hours=6)
    else:                       # from 18:00 yesterday to an hour from now
        start = datetime.combine(now.date() - timedelta(days=1), datetime.min.time()) \
            + timedelta(hours=18)
        end = now + timedelta(hours=1)
    assert start <= now < end and end.date() == start.date() + timedelta(days=1)
    until = f"on shift until {end:%a %H:%M} {end.replace(tzinfo=ZONE):%Z}"
    add_supporter(page, "Noor Haddad", "617 555 0178")
    add_shift(page, WEEKDAYS[start.weekday()], f"{start:%H:%M}", f"{end:%H:%M}")
    expect(page.locator("ul.shifts")).to_contain_text(
        f"{WEEKDAYS[start.weekday()]} {start:%H:%M}–{end:%H:%M} ({WEEKDAYS[end.weekday()]})")
    expect(page.get_by_role("heading", name="Weekly shifts")).to_contain_text(ZONE.key)
    expect(page.locator("p.status")).to_contain_text(f"Offered contacts now — {until}")

    page.get_by_role("link", name="Available now").click()
    expect(page.get_by_text(f"Shift times in {ZONE.key}")).to_be_visible()
    row = page.get_by_role("row").filter(has=page.get_by_role("rowheader", name="Noor Haddad"))
    expect(row.get_by_role("cell").nth(2)).to_have_text(until)
    page.screenshot(path=str(OUTPUT / "dashboard-shift-until.png"), full_page=True)


# ---- item 6 ----------------------------------------------------------------------------

def test_a_refused_shift_keeps_the_languages_and_details_save(page):
    """Issue 14 item 6: a rejected shift unticked the languages in Details, so the next
    Save failed with "choose at least one language"."""
    from playwright.sync_api import expect
    add_supporter(page, "Sam Reyes", "617 555 0179", languages=("en", "es"))
    add_shift(page, "Monday", "25:00", "09:00")
    expect(page.get_by_role("alert").first).to_contain_text("Start")
    details = section(page, "Details").locator("form")
    expect(details.get_by_label("en", exact=True)).to_be_checked()
    expect(details.get_by_label("es", exact=True)).to_be_checked()
    details.get_by_label("Name").fill("Sam Reyes-Ortiz")
    details.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_have_text("Saved.")
    expect(page.get_by_role("heading", name="Sam Reyes-Ortiz", level=1)).to_be_visible()
    details = section(page, "Details").locator("form")
    expect(details.get_by_label("es", exact=True)).to_be_checked()
    expect(page.get_by_text("choose at least one language")).to_have_count(0)


# ---- item 7 ----------------------------------------------------------------------------

def test_common_time_forms_are_accepted_and_empty_or_zero_length_shifts_refused(page):
    """Issue 14 item 7: "8am" and "9" were refused while "8:00" was accepted, and
    09:00–09:00 silently became a 24-hour shift."""
    from playwright.sync_api import expect
    add_supporter(page, "Kai Lennox", "617 555 0180")
    listed = page.locator("ul.shifts")
    for day, start, end, shown in (("Monday", "8am", "4pm", "Monday 08:00–16:00"),
                                   ("Tuesday", "9", "17", "Tuesday 09:00–17:00"),
                                   ("Wednesday", "8:00", "12:30", "Wednesday 08:00–12:30")):
        add_shift(page, day, start, end)
        expect(page.get_by_role("status")).to_have_text("Shift added.")
        expect(listed).to_contain_text(shown)

    add_shift(page, "Thursday", "", "")
    alert = page.get_by_role("alert").first
    expect(alert).to_contain_text("This form has 2 errors")
    for label, words in (("Start", "start is required"), ("End", "end is required")):
        field = page.get_by_role("textbox", name=label)
        expect(field).to_have_attribute("aria-invalid", "true")
        expect(page.locator("#" + field.get_attribute("aria-describedby"))).to_contain_text(words)
    expect(page.get_by_role("textbox", name="Start")).to_be_focused()

    add_shift(page, "Thursday", "09:00", "09:00")
    expect(page.get_by_role("alert").first).to_contain_text("starts and ends at the same time")
    end = page.get_by_role("textbox", name="End")
    expect(end).to_have_attribute("aria-invalid", "true")
    expect(end).to_be_focused()
    expect(page.locator("#" + end.get_attribute("aria-describedby"))).to_contain_text(
        "starts and ends at the same time")
    expect(page.get_by_role("textbox", name="Start")).not_to_have_attribute("aria-invalid", "true")
    expect(listed.locator("li")).to_have_count(3)
    expect(listed).not_to_contain_text("Thursday")
    page.screenshot(path=str(OUTPUT / "dashboard-shift-errors.png"), full_page=True)


# ---- item 9 ----------------------------------------------------------------------------

def test_available_now_warns_when_nobody_is_and_the_roster_says_switched_off_until(page):
    """Issue 14 item 9: "Available now" gave no warning when nobody was available, and the
    roster's manual column never said "switched OFF until ..."."""
    from playwright.sync_api import expect
    page.get_by_role("link", name="Available now").click()
    expect(page.get_by_role("alert")).to_have_count(0)          # the demo roster is ON
    table = page.get_by_role("table")
    while table.get_by_role("button", name="Switch OFF").count():
        table.get_by_role("button", name="Switch OFF").first.click()
        page.get_by_role("heading", name="Who is available now").wait_for()
    expect(page.get_by_role("alert")).to_contain_text("Nobody is available now.")
    page.screenshot(path=str(OUTPUT / "dashboard-nobody-available.png"), full_page=True)

    page.get_by_role("link", name="Roster & shifts").click()
    manual = page.get_by_role("group", name="Roster table").get_by_role(
        "columnheader").all_text_contents()
    column = [h.strip() for h in manual].index("manual") - 1    # the row header comes first
    cell = roster_row(page, "Chris Dale (peer)").get_by_role("cell").nth(column)
    expect(cell).to_have_text("switched OFF (until switched ON)")

    page.get_by_role("link", name="Available now").click()     # one back ON: no warning
    row = page.get_by_role("row").filter(
        has=page.get_by_role("rowheader", name="Chris Dale (peer)"))
    row.get_by_role("button", name="Switch ON").click()
    expect(page.get_by_role("alert")).to_have_count(0)
    page.get_by_role("link", name="Roster & shifts").click()
    expect(roster_row(page, "Chris Dale (peer)").get_by_role("cell").nth(column)).to_have_text(
        "switched ON (until switched OFF)")


# ---- items 10 and 11: statistics --------------------------------------------------------

def figure(panel, term: str) -> str:
    """The value under a term of the panel's description list."""
    return panel.locator("dt", has_text=term).locator("xpath=following-sibling::dd").inner_text()


def test_this_month_so_far_is_marked_in_progress_with_roster_figures_only(page):
    """Issue 14 item 10, within issue 13's rule (only settled whole months and quarters
    are published): the current month is shown as in progress, with when it is published
    and the program's roster figures, no contact number."""
    from playwright.sync_api import expect
    today = datetime.now(ZONE).date()
    month = periods.containing(today, "month")
    panel = page.get_by_role("region", name="This month so far (in progress)")
    expect(panel).to_be_visible()
    expect(panel).to_contain_text(f"{month.label} (this month): statistics published on ")
    expect(panel).to_contain_text(f"No contact numbers are shown for {month.label}")
    expect(panel.locator(".kpi, table, svg")).to_have_count(0)
    before = {term: figure(panel, term) for term in (
        "Supporters on the roster", "Supporters with at least one weekly shift",
        "Hours of the week covered by shifts")}
    assert before["Supporters on the roster"] == "5", before
    assert re.fullmatch(r"\d+ of 168", before["Hours of the week covered by shifts"]), before
    assert_accessible(page, "statistics with the in-progress panel")
    page.screenshot(path=str(OUTPUT / "dashboard-in-progress.png"), full_page=False)

    add_supporter(page, "Ira Bloom", "617 555 0181")
    add_shift(page, "Saturday", "20:00", "23:00")       # the demo shifts leave it uncovered
    expect(page.get_by_role("status")).to_have_text("Shift added.")
    page.get_by_role("link", name="Statistics").click()
    hours = int(before["Hours of the week covered by shifts"].split()[0])
    expect(panel.locator("dd")).to_have_text(
        ["6", str(int(before["Supporters with at least one weekly shift"]) + 1),
         f"{hours + 3} of 168"])

    # Asking for this month or this week by URL says why, accurately, and when.
    page.goto(f"{page.base}/dashboard/?period={month.id}")
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text(f"{month.label} is not published yet: its numbers still "
                                  "change; it is published on ")
    expect(panel).to_be_visible()
    monday = today - timedelta(days=today.weekday())
    sunday = monday + timedelta(days=6)
    page.goto(f"{page.base}/dashboard/?from={monday}&to={sunday}")
    expect(alert).to_contain_text(f"{monday} to {sunday} is not a published period: "
                                  "statistics are published only for a whole calendar month")
    expect(page.get_by_text("must start before it ends")).to_have_count(0)


@pytest.fixture
def stack_with_waits(redis_server, tmp_path):
    """The hotline as ``stack`` starts it, on a database that already holds a month of
    contacts with waits to the second (so the demo adds no history of its own). Written
    before the processes start: the worker's warm-up publishes settled months at once,
    and a published month's counts are frozen (issue 13), so rows added later never show."""
    import subprocess
    import sys

    import redis
    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session

    from hotline.devrun import DEMO_ENV
    from hotline.models import Supporter
    from tests.stack import ROOT as STACK_ROOT
    from tests.test_stats import Seeder
    redis.Redis.from_url(redis_server.url).flushdb()
    database = f"sqlite:///{tmp_path / 'stack.db'}"
    env = dict(os.environ, **DEMO_ENV, REDIS_URL=redis_server.url, DATABASE_URL=database,
               PUBLIC_BASE_URL="http://127.0.0.1:1", TWILIO_API_BASE_URL="http://127.0.0.1:1",
               HOTLINE_SIMULATOR="0")
    subprocess.run([sys.executable, "-m", "hotline.cli", "db", "upgrade"], env=env,
                   check=True, cwd=STACK_ROOT, capture_output=True)
    span = periods.containing(datetime.now(ZONE).date() - timedelta(days=90), "month")
    engine = create_engine(database)
    with Session(engine) as session:
        ada = Supporter(name="Ada Peer", phone="+16175550111", tier=1, languages="en")
        session.add(ada)
        session.commit()
        seeder = Seeder(session, ada)
        # Enough in every bucket, of both kinds of human, that the medians are published.
        waits = [30] * 12 + [65] * 30 + [200] * 12 + [400] * 12 + [700] * 12
        for i, seconds in enumerate(waits):
            day = span.first + timedelta(days=i % 20)
            at = datetime.combine(day, time(9 + i % 8, i % 60), tzinfo=ZONE).astimezone(UTC)
            seeder.contact(at, wait=seconds / 60, caller=f"w{i}",
                           outcome="connected_backup" if seconds >= 400 else "connected")
    engine.dispose()
    running = Stack(redis_server.url, tmp_path)
    running.month = span
    yield running
    running.stop()


def test_time_to_a_human_is_shown_with_seconds(browser, stack_with_waits):  # noqa: F811
    """Issue 14 item 11: time to a human was shown in whole minutes (the demo's own
    history has whole-minute waits, hence a month of waits to the second)."""
    from playwright.sync_api import expect
    span = stack_with_waits.month
    context = new_context(browser, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    log_in(page, stack_with_waits.url)
    page.get_by_label("Period").select_option(label=span.label)
    page.get_by_role("button", name="Show").click()
    expect(page.get_by_text(f"{span.label}: ")).to_be_visible()
    for label, shown in (("median time to a human", "1 min 05 s"),
                         ("90th percentile, time to a human", "11 min 40 s")):
        card = page.locator(".kpi").filter(has=page.get_by_text(label, exact=True))
        expect(card.locator(".value")).to_have_text(shown)
    page.screenshot(path=str(OUTPUT / "dashboard-seconds.png"), full_page=False)
    context.close()
