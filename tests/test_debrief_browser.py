"""Browser test of issue 17's team debriefs, as a coordinator meets the scheduling form:
choose the date, start, length and a facilitating supporter, get the meeting code and the
invitation to forward (shown once: gone on the next visit), and see the debrief listed.

The whole hotline runs as `make run` starts it (the demo roster); Playwright drives
Debian's chromium by roles and labels.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest

from hotline.roster.shifts import program_zone
from tests.axe import assert_accessible
from tests.stack import OUTPUT
from tests.test_dashboard_roster_browser import page, section  # noqa: F401

pytestmark = pytest.mark.browser


def test_scheduling_a_debrief_shows_its_code_and_invitation_once(page):  # noqa: F811
    from playwright.sync_api import expect
    page.get_by_role("link", name="Debriefs").click()
    expect(page.get_by_role("heading", name="Team debriefs", level=1)).to_be_visible()
    tomorrow = (datetime.now(program_zone()) + timedelta(days=1)).date().isoformat()
    form = section(page, "Schedule a debrief")
    form.get_by_label("Date").fill(tomorrow)
    form.get_by_label("Start").fill("14:30")
    form.get_by_label("Minutes").fill("90")
    form.get_by_label("Facilitator", exact=True).select_option(label="Alex Kim (peer)")
    form.get_by_label("Second facilitator (optional)").select_option(label="Chris Dale (peer)")
    form.get_by_role("button", name="Schedule debrief").click()

    status = page.get_by_role("status").filter(has_text="Meeting code")
    expect(status).to_contain_text("This is the only time the code is shown")
    code = status.locator("strong.code").inner_text().replace(" ", "")
    assert len(code) == 6 and code.isdigit()
    invitation = page.get_by_label("Invitation to forward")
    expect(invitation).to_have_value(
        re.compile(rf"enter the meeting code {' '.join(code)}\."))
    expect(section(page, "Scheduled")).to_contain_text(f"{tomorrow} 14:30")
    expect(section(page, "Scheduled")).to_contain_text("Alex Kim (peer), Chris Dale (peer)")
    assert_accessible(page, "debrief scheduled")
    page.screenshot(path=str(OUTPUT / "debrief-scheduled.png"), full_page=True)

    page.get_by_role("link", name="Debriefs").click()  # the next visit: no code any more
    expect(section(page, "Scheduled")).to_contain_text(f"{tomorrow} 14:30")
    expect(page.get_by_role("status").filter(has_text="Meeting code")).to_have_count(0)
    expect(page.get_by_label("Invitation to forward")).to_have_count(0)
