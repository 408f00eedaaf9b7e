"""Browser test: a coordinator logs in, reads the charts, adds a supporter and a shift.

The whole hotline runs as `make run` starts it (demo seed included: a demo coordinator and
weeks of synthetic history); Playwright drives Debian's chromium. Screenshots go to
test-output/.
"""

from __future__ import annotations

import pytest

from hotline.dashboard.demo import DEMO_EMAIL, DEMO_PASSWORD
from tests.axe import Audit, new_context, watch
from tests.stack import OUTPUT

pytestmark = pytest.mark.browser


@pytest.fixture
def page(browser, stack):
    context = new_context(browser, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors = watch(page, stack.url)
    page.goto(f"{stack.url}/dashboard/")
    yield page
    assert errors == [], f"failed requests or requests off the server: {errors}"
    context.close()


def test_a_coordinator_logs_in_reads_the_charts_adds_a_supporter_and_a_shift(page):
    from playwright.sync_api import expect
    OUTPUT.mkdir(exist_ok=True)
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    page.get_by_label("Email").fill(DEMO_EMAIL)
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Statistics")).to_be_visible()
    expect(page.locator("svg.chart").first).to_be_visible()
    assert page.locator("svg.chart").count() >= 10
    expect(page.locator(".kpi").first).not_to_contain_text("—")
    page.screenshot(path=str(OUTPUT / "dashboard-statistics.png"), full_page=False)
    heat = page.locator("#hour_of_week")
    heat.locator("summary").click()
    expect(heat.locator("td.suppressed").first).to_contain_text("<11")
    heat.scroll_into_view_if_needed()
    page.screenshot(path=str(OUTPUT / "dashboard-suppressed-cells.png"), full_page=False)

    page.get_by_role("link", name="Roster & shifts").click()
    page.get_by_label("Name").fill("Robin Ortiz")
    page.get_by_label("Phone").fill("617 555 0177")
    page.get_by_role("button", name="Add supporter").click()
    expect(page.get_by_role("heading", name="Robin Ortiz")).to_be_visible()
    page.get_by_label("Day").select_option("Tuesday")
    page.get_by_label("Start").fill("19:00")
    page.get_by_label("End").fill("07:00")
    page.get_by_role("button", name="Add shift").click()
    expect(page.locator("ul.shifts")).to_contain_text("Tuesday 19:00–07:00 (Wednesday)")
    page.screenshot(path=str(OUTPUT / "dashboard-supporter-shift.png"), full_page=True)
    page.get_by_role("link", name="Available now").click()
    expect(page.locator("table")).to_contain_text("Robin Ortiz")

    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    page.goto(page.url.split("/dashboard")[0] + "/dashboard/roster")
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()


def test_on_a_phone_a_refused_form_focuses_its_first_error_in_view(browser, stack):
    """Issue 14 item 8: after a refused submit focus and scroll went to the top, so on a
    390x844 phone the error sat about 1,400 px below what was visible."""
    from playwright.sync_api import expect
    context = new_context(browser, viewport={"width": 390, "height": 844})
    page = context.new_page()
    page.goto(f"{stack.url}/dashboard/")
    page.get_by_label("Email").fill(DEMO_EMAIL)
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.goto(f"{stack.url}/dashboard/roster")
    form = page.locator("form.grid")
    form.get_by_label("Name").fill("")
    page.get_by_role("button", name="Add supporter").click()
    expect(page.get_by_role("alert").first).to_contain_text("Name")
    name = form.get_by_label("Name")
    expect(name).to_be_focused()
    expect(name).to_have_attribute("aria-invalid", "true")
    assert name.evaluate("e => { const r = e.getBoundingClientRect();"
                         " return r.top >= 0 && r.bottom <= innerHeight; }")
    error = page.locator("#supporter-name-error")
    assert error.evaluate("e => e.getBoundingClientRect().top < innerHeight")
    page.screenshot(path=str(OUTPUT / "dashboard-phone-form-error.png"), full_page=False)
    context.close()


def log_in(page, base):
    page.goto(f"{base}/dashboard/login")
    page.get_by_label("Email").fill(DEMO_EMAIL)
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("heading", name="Statistics").wait_for()


def test_every_page_passes_axe_core(page, stack):
    """Issue 14: axe-core (from npm) on every page, failing on serious or critical
    violations: the public pages, then every coordinator page, with folded parts open."""
    base = stack.url
    audit = Audit(page)
    audit.check("the login page")
    page.goto(f"{base}/dashboard/invite")
    audit.check("the invitation page")
    log_in(page, base)
    for details in page.locator("details").all():
        details.locator("summary").click()
    audit.check("statistics, every table unfolded")
    page.goto(f"{base}/dashboard/roster")
    audit.check("the roster")
    page.locator("table a[href*='/dashboard/roster/']").first.click()
    page.get_by_role("button", name="Add shift").wait_for()
    audit.check("a supporter's page")
    page.goto(page.url.split("#")[0] + "/deactivate")
    audit.check("taking a supporter off the roster")
    page.goto(f"{base}/dashboard/now")
    audit.check("Available now")
    page.goto(f"{base}/dashboard/users")
    audit.check("accounts")
    audit.assert_clean()


# The smallest chart text a person can read on a phone, in CSS px as drawn on the screen.
MIN_CHART_TEXT = 11
_SMALLEST_TEXT = """() => Math.min(...[...document.querySelectorAll("svg.chart text")].map(t =>
    parseFloat(getComputedStyle(t).fontSize) * t.getScreenCTM().a))"""


def test_on_a_phone_no_coordinator_page_scrolls_sideways(browser, stack):
    """Issue 14: at 390x844 the charts' text shrank to about 6 px, and Roster and Available
    now widened the page to 574 and 504 px. Wide tables and charts may scroll inside their
    own box; the page itself may not."""
    context = new_context(browser, viewport={"width": 390, "height": 844})
    page = context.new_page()
    log_in(page, stack.url)
    wide = {}
    smallest = page.evaluate(_SMALLEST_TEXT)
    pages = [("statistics", "/dashboard/"), ("roster", "/dashboard/roster"),
             ("a supporter", None), ("Available now", "/dashboard/now")]
    for name, path in pages:
        if path is None:
            page.goto(f"{stack.url}/dashboard/roster")
            page.locator("table a[href*='/dashboard/roster/']").first.click()
            page.get_by_role("button", name="Add shift").wait_for()
        else:
            page.goto(stack.url + path)
        width = page.evaluate("document.documentElement.scrollWidth")
        if width > 390:
            wide[name] = width
        page.screenshot(path=str(OUTPUT / f"dashboard-phone-{name.replace(' ', '-')}.png"))
    context.close()
    assert wide == {} and smallest >= MIN_CHART_TEXT, (
        f"pages wider than the 390 px screen: {wide}; chart text drawn at {smallest:.1f} px")
