"""Browser tests of the program's public face (issue 19, part 2): the public page in both
languages, the poster and the wallet cards pass axe-core; the poster and the cards print
(Chromium's own print to PDF) to exactly one page of A4 or Letter; the QR codes as the
browser draws them decode back to the number and the page. Screenshots: test-output/
public-page.png and poster.png (copied to docs/).

The app is served by werkzeug in a thread on SQLite (the pages' database work is the
roster's shifts, tested on both databases in test_program.py).
"""

from __future__ import annotations

import re

import pytest
from tests.servers import serving

from hotline.core.extensions import db
from hotline.roster import shifts
from tests.axe import assert_accessible, new_context, watch
from tests.conftest import HOTLINE_NUMBER, PUBLIC_BASE_URL
from tests.qr_decode import decode, png_grey
from tests.stack import OUTPUT

pytestmark = [pytest.mark.browser,
              pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)]

#: Points per page of each paper (PDF user space: 1/72 inch).
PAPER = {"a4": (595.28, 841.89), "letter": (612.0, 792.0)}


@pytest.fixture
def site(fresh_app, make_supporter):
    """The app on a thread with a few weekly shifts, and its base URL."""
    with fresh_app.app_context():
        for weekday in range(5):
            shifts.add_shift(db.session, make_supporter(), weekday, "07:00", "23:00")
        shifts.add_shift(db.session, make_supporter(), "Saturday", "10:00", "18:00")
    with serving(fresh_app) as url:
        yield url


@pytest.fixture
def page(browser):
    context = new_context(browser, viewport={"width": 900, "height": 900})
    page = context.new_page()
    yield page
    context.close()


def pdf_pages(pdf: bytes) -> list[tuple[float, float]]:
    """Each page's width and height in points, from its /MediaBox."""
    boxes = re.findall(rb"/MediaBox\s*\[\s*([-\d.]+)\s+([-\d.]+)\s+([-\d.]+)\s+([-\d.]+)\s*\]",
                       pdf)
    pages = len(re.findall(rb"/Type\s*/Page(?![s\w])", pdf))
    assert pdf.startswith(b"%PDF-") and len(boxes) == pages, (len(boxes), pages)
    return [(float(x1) - float(x0), float(y1) - float(y0)) for x0, y0, x1, y1 in boxes]


def test_the_public_page_is_accessible_in_english_and_spanish(site, page):
    from playwright.sync_api import expect  # only the browser tests need it
    stray = watch(page, site)
    response = page.goto(site + "/")
    assert "set-cookie" not in response.headers
    expect(page.get_by_role("heading", level=1)).to_have_text("Clinician Peer Support")
    expect(page.get_by_role("link", name="Call (617) 555-0100")).to_have_attribute(
        "href", f"tel:{HOTLINE_NUMBER}")
    expect(page.locator("dl.shifts")).to_contain_text("Saturday")
    assert_accessible(page, "the public page")
    page.screenshot(path=str(OUTPUT / "public-page.png"), full_page=True)
    page.get_by_role("navigation").get_by_role("link", name="Español").click()
    expect(page.get_by_role("heading", name="Qué pasa cuando llama o escribe")).to_be_visible()
    expect(page.locator("html")).to_have_attribute("lang", "es")
    assert_accessible(page, "the public page in Spanish")
    assert page.context.cookies() == [] and stray == []


@pytest.mark.parametrize("what", ["poster", "card"])
@pytest.mark.parametrize("size", ["a4", "letter"])
def test_the_poster_and_the_cards_print_to_one_page_of_their_paper(site, page, what, size):
    stray = watch(page, site)
    page.goto(f"{site}/{what}?size={size}")
    assert stray == []  # no font, script or image from anywhere else
    assert_accessible(page, f"the {what} ({size})")
    pdf = page.pdf(prefer_css_page_size=True, print_background=True)
    [(width, height)] = pdf_pages(pdf)
    assert (width, height) == pytest.approx(PAPER[size], abs=1.5)
    if size == "a4":
        page.locator(".sheet").screenshot(path=str(OUTPUT / f"{what}.png"))


@pytest.mark.parametrize("path, page_url", [
    ("/poster?size=letter", f"{PUBLIC_BASE_URL}/"),
    ("/card?size=a4&lang=es", f"{PUBLIC_BASE_URL}/?lang=es"),
])
def test_the_qr_codes_the_browser_draws_decode_to_the_number_and_the_page(site, page, path,
                                                                          page_url):
    page.goto(site + path)
    codes = page.locator("svg.qr")
    decoded = [decode(png_grey(codes.nth(i).screenshot())) for i in range(2)]
    assert decoded == [[f"tel:{HOTLINE_NUMBER}"], [page_url]]
