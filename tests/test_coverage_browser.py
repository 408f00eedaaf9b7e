"""Browser test: the coverage page on `make run`'s demo data, reached from the dashboard's
navigation, passes axe-core with every part unfolded. Its screenshot goes to test-output/
(docs/coverage.png is a copy of one)."""

from __future__ import annotations

import pytest

from tests.axe import Audit, new_context, watch
from tests.stack import OUTPUT
from tests.test_dashboard_browser import log_in

pytestmark = pytest.mark.browser


def test_the_coverage_page_is_in_the_nav_and_passes_axe(browser, stack):
    from playwright.sync_api import expect
    context = new_context(browser, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors = watch(page, stack.url)
    log_in(page, stack.url)
    page.get_by_role("link", name="Coverage").click()
    expect(page.get_by_role("heading", name="Coverage and staffing")).to_be_visible()
    grid = page.locator("table.coverage")
    expect(grid.locator("tbody tr")).to_have_count(7)
    # the demo's weekend evenings have nobody on shift: marked in words, not colour alone
    expect(grid.locator("td.nobody-on-shift").first).to_contain_text("nobody on shift")
    page.locator("#grid-title").scroll_into_view_if_needed()
    OUTPUT.mkdir(exist_ok=True)
    page.screenshot(path=str(OUTPUT / "coverage.png"), full_page=False)
    for details in page.locator("details").all():
        details.locator("summary").click()
    audit = Audit(page)
    audit.check("coverage, every table unfolded")
    audit.assert_clean()
    assert errors == [], f"failed requests or requests off the server: {errors}"
    context.close()
