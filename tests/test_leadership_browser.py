"""Browser test: the leadership report printed to PDF by chromium (issue 19, part 4).

The app is served in this process (werkzeug, a thread) over a year of synthetic history,
so four quarters are published; Playwright drives Debian's chromium. The PDF's pages and
its text layer (pypdf) are checked, the page passes axe-core, and a screenshot of the
print-emulated page goes to test-output/ (docs/leadership-report.png is a copy).
"""

from __future__ import annotations

import io
import unicodedata

import pytest
from tests.servers import serving

from hotline.disclosure import joint
from hotline.pulse import survey
from hotline.roster.shifts import program_zone
from tests.axe import assert_accessible, new_context, watch
from tests.coordinators import PASSWORD, make_user
from tests.stack import OUTPUT
from tests.test_leadership import NOW, QUARTERS, ROWS, expected, seed
from tests.test_pulse_results import ballots

pytestmark = pytest.mark.browser
#: A4 (297 x 210 mm) and Letter (11 x 8.5 in) landscape, in whole PDF points (1/72 in).
A4_LANDSCAPE, LETTER_LANDSCAPE = (842, 595), (792, 612)


@pytest.fixture
def served(app_settings, request, clock):
    """The app over HTTP on loopback, with history, program inputs and a pulse window."""
    app_settings["SECURE_COOKIES"] = "0"  # plain http on loopback: the browser sends them
    fresh_app = request.getfixturevalue("fresh_app")
    with fresh_app.app_context():
        from hotline.core.extensions import db
        from hotline.leadership import inputs
        make_user("coord@example.org")
        seed(db.session, 0.3)
        clock.set(NOW.replace(month=1, day=5))
        window = survey.open_window(db.session, "Winter 2026")
        ballots(db.session, window, "nurse", 18, 3, True, False, 4)
        ballots(db.session, window, "physician", 12, 1, True, True, 5)
        clock.advance(days=2)
        survey.close_window(db.session, window.id)
        clock.set(NOW)
        for quarter, staff, turnover, trained in (("2025-Q3", 1240, 8.5, 12),
                                                  ("2025-Q4", 1262, 6.0, 15)):
            inputs.save(db.session, inputs.Inputs(quarter, staff, turnover, trained), "coord")
        # The nightly warm-up's work: the pages read the cached days, not a year counted live
        # (on a loaded machine that first count can pass PostgreSQL's statement timeout).
        joint.warm_all(db.session, program_zone(), NOW)
        db.session.remove()
    with serving(fresh_app) as url:
        yield url


def test_the_report_prints_to_three_landscape_pages_with_every_figure(browser, served):
    from playwright.sync_api import expect
    from pypdf import PdfReader
    OUTPUT.mkdir(exist_ok=True)
    context = new_context(browser, viewport={"width": 1123, "height": 794})
    page = context.new_page()
    errors = watch(page, served)
    page.goto(f"{served}/dashboard/login")
    page.get_by_label("Email").fill("coord@example.org")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("link", name="Leadership report").click()
    expect(page.get_by_role("heading", name="Peer support: quarterly report")).to_be_visible()
    assert_accessible(page, "the leadership report")
    # the inputs form: a refused figure is named next to its field, then saved
    page.get_by_role("link", name="Enter program inputs").click()
    page.locator("select#inputs-quarter").select_option("2025-Q2")
    page.get_by_label("Staff headcount").fill("1,220")
    page.get_by_label("Turnover rate (%)").fill("120")
    page.get_by_role("button", name="Save inputs").click()
    expect(page.get_by_role("alert")).to_contain_text("cannot be more than 100%")
    expect(page.get_by_label("Turnover rate (%)")).to_be_focused()
    assert_accessible(page, "the program inputs form, refused")
    page.get_by_label("Turnover rate (%)").fill("7.5")
    page.get_by_role("button", name="Save inputs").click()
    expect(page.get_by_role("status")).to_contain_text("Program inputs for 2025-Q2 saved.")
    api = {q: page.request.get(f"{served}/api/stats?period={q}").json() for q in QUARTERS}

    page.emulate_media(media="print")
    expect(page.locator("header.top")).to_be_hidden()  # no navigation on paper
    page.screenshot(path=str(OUTPUT / "leadership-report.png"), full_page=False)
    def printed(paper: str) -> PdfReader:
        return PdfReader(io.BytesIO(page.pdf(format=paper, prefer_css_page_size=True)))

    def sizes(pdf: PdfReader) -> set[tuple[int, int]]:
        return {(int(float(p.mediabox.width)), int(float(p.mediabox.height)))
                for p in pdf.pages}
    # @page { size: landscape }: four quarters across, on whatever paper the printer has
    assert sizes(printed("Letter")) == {LETTER_LANDSCAPE}
    pdf = printed("A4")
    assert sizes(pdf) == {A4_LANDSCAPE}
    # Three pages, each starting where the style sheet breaks them (and no table split):
    # the usage; the follow-up scores; the program inputs and the staff survey.
    assert len(pdf.pages) == 3, [p.extract_text()[:80] for p in pdf.pages]
    # NFKC: the PDF's text has the font's ligatures ("ﬀ" in "staff")
    usage, scores, program = (" ".join(unicodedata.normalize("NFKC", p.extract_text()).split())
                              for p in pdf.pages)
    assert "Contacts and reaching a human" in usage and "Callbacks" in usage
    assert scores.startswith("How helpful was it?") and "Mini-Z" in scores
    assert program.startswith("Program inputs") and "Staff pulse survey" in program
    for quarter, data in api.items():
        label = f"Q{quarter[-1]} {quarter[:4]}"
        assert all(label in text for text in (usage, scores, program))
        for row, (kind, read) in ROWS.items():
            figure = expected(kind, read(data))
            assert figure in (scores if row.startswith("score_") else usage), \
                (quarter, row, figure)
    text = " ".join((usage, scores, program))
    assert "1,220 1,240 1,262" in program and "7.5% 8.5% 6%" in program
    assert "not entered 12 15" in program
    # the survey window: 30 answers; 18 burned out (3+), all aware, 12 used it, all likely
    assert "Winter 2026 05 Jan to 07 Jan 2026 (Q1 2026) 30 60% 100% 40% 100%" in program
    assert "hidden so that a count below 11 cannot be worked out from the totals" in text
    assert "Q1 2026: not yet published; published on" in text
    context.close()
    assert errors == [], f"failed requests or requests off the server: {errors}"
