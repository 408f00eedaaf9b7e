"""Browser tests of issue 16's supporter fields: the roster form sets a supporter's role,
units and training date and the roster table shows them; the web phone's live panel shows
a supporter paused automatically after missed offers.

The whole hotline runs as `make run` starts it (tests/stack.py); Playwright drives Debian's
chromium by roles, labels and visible words.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from hotline.models import AvailabilityOverride, Supporter
from hotline.roster import shifts
from hotline.roster.shifts import program_zone
from tests.axe import new_context
from tests.stack import OUTPUT
from tests.test_dashboard_roster_browser import page, roster_row, section  # noqa: F401

pytestmark = pytest.mark.browser

ALEX = "+16175550111"   # Alex Kim, of the demo roster


def test_the_roster_form_sets_role_units_and_training_and_the_table_shows_them(page):  # noqa: F811
    from playwright.sync_api import expect
    today = datetime.now(program_zone()).date()
    trained_on = today - timedelta(days=30)
    page.get_by_role("link", name="Roster & shifts").click()
    form = page.locator("form.grid")
    form.get_by_label("Name").fill("Noor Haddad")
    form.get_by_label("Phone").fill("617-555-0133")
    form.get_by_label("Role").select_option(label="nurse")
    form.get_by_label("intensive care", exact=True).check()
    form.get_by_label("surgery", exact=True).check()
    form.get_by_label("Trained on").fill(trained_on.isoformat())
    page.get_by_role("button", name="Add supporter").click()
    expect(page.get_by_role("heading", name="Noor Haddad", level=1)).to_be_visible()
    expect(page.get_by_text(f"trained on {trained_on.isoformat()}")).to_be_visible()

    page.get_by_role("link", name="← Roster").click()
    cells = roster_row(page, "Noor Haddad").get_by_role("cell")
    expect(cells.nth(3)).to_have_text("nurse")                          # role
    expect(cells.nth(4)).to_have_text("intensive care, surgery")        # units
    refresher = trained_on.replace(year=trained_on.year + 2)            # 24 months on
    expect(cells.last).to_contain_text(f"current (refresher {refresher.isoformat()})")

    # edited on their page: another role, one unit fewer, a later training
    roster_row(page, "Noor Haddad").get_by_role("link", name="Noor Haddad").click()
    details = section(page, "Details")
    details.get_by_label("Role").select_option(label="pharmacist")
    details.get_by_label("surgery", exact=True).uncheck()
    details.get_by_label("Trained on").fill(today.isoformat())
    details.get_by_label("Refresher due").fill("")    # empty: the default, 24 months on
    details.get_by_role("button", name="Save").click()
    expect(page.get_by_text(f"trained on {today.isoformat()}")).to_be_visible()
    page.get_by_role("link", name="← Roster").click()
    cells = roster_row(page, "Noor Haddad").get_by_role("cell")
    expect(cells.nth(3)).to_have_text("pharmacist")
    expect(cells.nth(4)).to_have_text("intensive care")
    expect(cells.last).to_contain_text(
        f"refresher {today.replace(year=today.year + 2).isoformat()}")
    page.screenshot(path=str(OUTPUT / "roster-role-units-training.png"), full_page=True)


def _pause(database: str, phone: str) -> None:
    """What ``hotline.roster.care.offer_missed`` leaves at the limit: the manual OFF (the
    roster's own hook writes it) marked as the automatic pause."""
    shifts.install()
    engine = create_engine(database)
    with Session(engine) as session:
        supporter = session.scalar(select(Supporter).where(Supporter.phone == phone))
        supporter.available = False
        session.flush()
        session.get(AvailabilityOverride, supporter.id).auto_paused = True
        session.commit()
    engine.dispose()


def test_the_web_phone_shows_a_paused_supporter(browser, stack, tmp_path):
    from playwright.sync_api import expect
    _pause(f"sqlite:///{tmp_path / 'stack.db'}", ALEX)
    context = new_context(browser, viewport={"width": 1500, "height": 1000})
    phone = context.new_page()
    phone.goto(f"{stack.url}/phone")
    row = phone.locator("#supporters tr").filter(has_text="Alex Kim")
    expect(row).to_contain_text("paused", timeout=10_000)
    expect(phone.locator("#supporters tr").filter(has_text="paused")).to_have_count(1)
    card = phone.locator(f'article.phone[data-number="{ALEX}"]')
    expect(card.locator(".paused-note")).to_be_visible()
    expect(card.locator(".paused-note")).to_contain_text("Paused automatically after missed "
                                                         "offers")
    expect(card.locator(".availability input")).not_to_be_checked()
    phone.screenshot(path=str(OUTPUT / "web-phone-paused.png"), full_page=True)
    context.close()
