"""The public pulse survey in the browser (issue 19, part 3): axe-core on the form, the
thank-you and the closed page (English and Spanish), answered by keyboard and mouse as a
person would. Its screenshot goes to test-output/ (docs/pulse-survey.png is a copy of one).
"""

from __future__ import annotations


import pytest
from sqlalchemy import select
from tests.servers import serving

from hotline.core.extensions import db
from hotline.models import PulseResponse
from hotline.pulse import survey
from tests.axe import assert_accessible, new_context
from tests.coordinators import COORD, PASSWORD, make_user
from tests.stack import OUTPUT

pytestmark = pytest.mark.browser
SCREENSHOT = OUTPUT / "pulse-survey.png"


@pytest.fixture
def served(app_settings, request):
    app_settings["SECURE_COOKIES"] = "0"  # plain http on loopback
    fresh_app = request.getfixturevalue("fresh_app")
    with serving(fresh_app) as url:
        yield fresh_app, url


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_survey_page_is_accessible_and_answered_anonymously(browser, served):
    from playwright.sync_api import expect
    app, url = served
    context = new_context(browser, viewport={"width": 760, "height": 900})
    page = context.new_page()
    page.goto(f"{url}/pulse?lang=es")
    expect(page.get_by_role("status")).to_contain_text("La encuesta no está abierta")
    assert_accessible(page, "the closed survey, in Spanish")
    with app.app_context():
        survey.open_window(db.session, "Spring 2026")
    page.goto(f"{url}/pulse")
    expect(page.get_by_role("heading", name="Staff pulse survey")).to_be_visible()
    assert_accessible(page, "the survey form")
    OUTPUT.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=True, type="png")
    page.get_by_role("group", name="Using your own definition of burnout").get_by_label(
        "2. Occasionally I am under stress").check()
    page.get_by_role("group", name="Do you know how to reach").get_by_label("Yes").check()
    page.get_by_role("group", name="Have you ever used").get_by_label("No").check()
    page.get_by_role("group", name="How likely").get_by_label("Likely", exact=True).check()
    page.get_by_role("group", name="Your role").get_by_label("Prefer not to say").check()
    page.get_by_role("button", name="Send my answers").click()
    expect(page.get_by_role("status")).to_have_text(
        "Thank you. Your answers were counted, anonymously.")
    assert_accessible(page, "the thank-you page")
    assert [c["name"] for c in context.cookies()] == ["hotline_session"]
    with app.app_context():
        [ballot] = db.session.scalars(select(PulseResponse)).all()
        assert (ballot.role, ballot.burnout, ballot.knows_line, ballot.used_line,
                ballot.likely) == ("prefer_not_to_say", 2, True, False, 4)
    context.close()
    assert SCREENSHOT.stat().st_size < 150_000


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_coordinators_close_a_window_and_read_its_results_accessibly(browser, served):
    from playwright.sync_api import expect
    app, url = served
    with app.app_context():
        make_user(COORD)
        window = survey.open_window(db.session, "Spring 2026")
        for role, n in (("nurse", 14), ("physician", 12), ("pharmacist", 2)):
            db.session.add_all(PulseResponse(window_id=window.id, role=role, burnout=3,
                                             knows_line=True, used_line=False, likely=4)
                               for _ in range(n))
        db.session.commit()
    context = new_context(browser, viewport={"width": 1024, "height": 900})
    page = context.new_page()
    page.goto(f"{url}/dashboard/login")
    page.get_by_label("Email").fill(COORD)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("link", name="Pulse survey").click()
    expect(page.get_by_role("status")).to_contain_text("Spring 2026 is open")
    assert_accessible(page, "the pulse survey's coordinator page, a window open")
    page.get_by_role("button", name="Close this window").click()
    expect(page.get_by_role("heading", name="Spring 2026 (")).to_be_visible()
    row = page.get_by_role("row", name="Pharmacist")
    expect(row).to_contain_text("fewer than 11 answers from this role")
    assert_accessible(page, "the pulse survey's results")
    context.close()
