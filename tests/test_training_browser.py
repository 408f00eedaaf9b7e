"""Browser test of issue 16's training records, as a coordinator meets them: the roster
shows each supporter's training state and who comes due, a supporter added without a
training date shows "no record" (and the warning), and recording the date on their page
makes them current; "Available now" shows the state too.

The whole hotline runs as `make run` starts it (the demo roster, trained 1 to 23 months
ago: Chris Dale's refresher is due within 30 days); Playwright drives Debian's chromium.
"""

from __future__ import annotations

from datetime import datetime

import pytest

from redis import Redis

from hotline.roster.shifts import program_zone
from tests.axe import assert_accessible
from tests.stack import OUTPUT, Stack
from tests.test_dashboard_roster_browser import add_supporter, page, roster_row, section  # noqa: F401

pytestmark = pytest.mark.browser


@pytest.fixture
def stack(redis_server, tmp_path):
    """The stack as `make run` starts it, with production's default: training required."""
    Redis.from_url(redis_server.url).flushdb()
    running = Stack(redis_server.url, tmp_path, HOTLINE_REQUIRE_TRAINING="1")
    yield running
    running.stop()


def test_the_roster_shows_training_states_and_a_recorded_training_makes_one_current(page):  # noqa: F811
    from playwright.sync_api import expect
    page.get_by_role("link", name="Roster & shifts").click()
    expect(roster_row(page, "Chris Dale (peer)").get_by_role("cell").last).to_contain_text(
        "due soon")
    expect(roster_row(page, "Alex Kim (peer)").get_by_role("cell").last).to_contain_text(
        "current")
    expect(section(page, "Training refreshers in the next 60 days")).to_contain_text(
        "Chris Dale (peer)")
    expect(section(page, "Training refreshers in the next 60 days")).not_to_contain_text(
        "Alex Kim")

    add_supporter(page, "Fay Trainee", "617-555-0131")
    expect(page.get_by_text("Training: no record")).to_be_visible()
    page.get_by_role("link", name="← Roster").click()
    expect(roster_row(page, "Fay Trainee").get_by_role("cell").last).to_contain_text(
        "no record")
    expect(page.get_by_role("alert")).to_contain_text("1 supporter without a training record")
    assert_accessible(page, "roster with training states")
    page.screenshot(path=str(OUTPUT / "training-roster.png"), full_page=True)

    page.get_by_role("link", name="Fay Trainee").first.click()
    trained_on = datetime.now(program_zone()).date().isoformat()
    details = section(page, "Details")
    details.get_by_label("Trained on").fill(trained_on)
    details.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Training: current")).to_be_visible()
    page.get_by_role("link", name="← Roster").click()
    expect(roster_row(page, "Fay Trainee").get_by_role("cell").last).to_contain_text("current")
    expect(page.get_by_text("without a training record")).to_have_count(0)

    page.get_by_role("link", name="Available now").click()
    row = page.get_by_role("row").filter(has=page.get_by_role("rowheader",
                                                              name="Chris Dale (peer)"))
    expect(row).to_contain_text("due soon")
