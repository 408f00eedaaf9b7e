"""Issue 19, part 2: the program's public page at /, its poster and wallet cards.

The promise on the page is read from the running settings (change one and the page
changes), the hours from the roster's weekly shifts, the words from ivr_flows/program.yaml
in every language; the QR codes decode back to the number and the page's address; the pages
set no cookie and load nothing from another origin. Before: nothing was at / (404).
"""

from __future__ import annotations

import re
import shutil
from datetime import date

import pytest
import yaml

from hotline import create_app
from hotline.core.errors import FlowError
from hotline.core.extensions import settings
from hotline.core.settings import ROOT
from hotline.dashboard.access import CSP
from hotline.roster import shifts
from tests.conftest import HOTLINE_NUMBER, PUBLIC_BASE_URL
from tests.qr_decode import decode, svg_matrix

PAGES = ("/", "/?lang=es", "/poster?size=a4", "/poster?size=letter", "/card?size=a4",
         "/card?size=letter&lang=es")


def _words(html: str) -> str:
    """The page's text, tags and runs of white space gone, entities read."""
    text = re.sub(r"<[^>]+>", " ", html).replace("&#39;", "'").replace("&amp;", "&")
    return re.sub(r"\s+", " ", text)


def _promise(client, query: str = "") -> dict[str, str]:
    page = client.get("/" + query).text
    return {key: _words(text).strip()
            for key, text in re.findall(r'<li data-promise="(\w+)">(.*?)</li>', page, re.S)}


@pytest.mark.parametrize("path", PAGES)
def test_the_public_pages_need_no_login_set_no_cookie_and_load_nothing_from_elsewhere(
        app, path):
    response = app.test_client().get(path)
    assert response.status_code == 200
    assert "Set-Cookie" not in response.headers
    assert response.headers["Content-Security-Policy"] == CSP
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    links = re.findall(r'(?:src|href)="([^"]*)"', response.text)
    assert links and all(link.startswith(("/", "tel:", "sms:")) for link in links), links
    assert "<script" not in response.text and "style=" not in response.text


def test_the_page_shows_the_number_the_hours_the_flow_and_the_crisis_line(app):
    page = app.test_client().get("/").text
    assert f'href="tel:{HOTLINE_NUMBER}"' in page and f'href="sms:{HOTLINE_NUMBER}"' in page
    assert 'href="tel:988">Call 988</a>' in page and 'href="sms:988">Text 988</a>' in page
    words = _words(page)
    assert "Call (617) 555-0100" in words and "Text (617) 555-0100" in words
    assert "<h1>Clinician Peer Support</h1>" in page  # sms.yaml's program name
    # The flow, from voice.yaml's menu keys, sms.yaml's replies and the settings.
    assert ("Press 1 to talk with a peer supporter now, 2 to ask for a call back, 3 for a "
            "peer in your own role or nobody from your unit, or 9 for the crisis line.") in words
    assert "If nobody is free within 3 minutes" in words
    assert "within 30 minutes when a supporter is on shift" in words
    assert "reply 1 for a call from a peer now, 2 to text with a peer, or 3" in words
    # It always answers, and says so: no shifts yet is said too.
    assert "The line answers every call and every text, day and night" in words
    assert "No peer supporter shifts are planned just now" in words
    assert "call or text 988 now, or 911 in an emergency" in words


def test_the_promise_is_the_running_settings(app):
    """Change a setting and the page says the new truth (the retention of events, k, the
    logs at Twilio, the blanking of texts, the training rule)."""
    client = app.test_client()
    app.extensions["hotline.settings"] = settings().replace(REQUIRE_TRAINING=True)
    before = _promise(client)
    assert list(before) == ["never_kept", "redacted", "logs_kept", "number_sealed",
                            "callback_number", "followups", "events", "statistics"]
    assert "for 400 days" in before["events"] and "below 11 is hidden" in before["statistics"]
    assert "waited 24 hours" in before["number_sealed"]  # retention.purge.CONSENT_WINDOW
    assert "after 7 days at most" in before["callback_number"]  # purge.CALLBACK_KEEP
    assert "renewed every 24 months" in client.get("/").text

    app.extensions["hotline.settings"] = settings().replace(
        RETENTION_DAYS=90, MIN_CELL=5, TWILIO_LOG_DAYS=30, REDACT_AT_TWILIO=False,
        REQUIRE_TRAINING=False, MAX_WAIT_SECONDS=100, CALLBACK_PROMISE_MINUTES=1)
    after = _promise(client)
    assert list(after) == ["never_kept", "logs_deleted", "number_sealed", "callback_number",
                           "followups", "events", "statistics"]
    assert "for 90 days" in after["events"] and "below 5 is hidden" in after["statistics"]
    assert "deleted after 30 days" in after["logs_deleted"]
    words = _words(client.get("/").text)
    assert "renewed every" not in words
    assert "within 2 minutes" in words and "within 1 minute when" in words
    es = _promise(client, "?lang=es")
    assert "durante 90 días" in es["events"] and "menor que 5" in es["statistics"]


def test_the_hours_are_the_weekly_shifts_of_active_supporters(app, session, make_supporter):
    ada, bo, cy = make_supporter("Ada"), make_supporter("Bo"), make_supporter("Cy")
    shifts.add_shift(session, ada, "Monday", "08:00", "16:00")
    shifts.add_shift(session, bo, "Monday", "14:00", "20:00")  # overlaps: one span
    shifts.add_shift(session, bo, "Sunday", "22:00", "06:00")  # past the week's end
    shifts.add_shift(session, cy, "Wednesday", "09:00", "17:00")
    cy.active = False  # off the roster: their shift is no promise
    session.commit()
    client = app.test_client()
    page = client.get("/").text
    days = dict(re.findall(r"<dt>(\w+)</dt>\s*<dd>(.*?)</dd>", page))
    assert days == {"Monday": "00:00–06:00, 08:00–20:00", "Sunday": "22:00–24:00"}
    assert f"on shift at these times ({shifts.program_zone().key})" in page
    es = dict(re.findall(r"<dt>(\w+)</dt>\s*<dd>(.*?)</dd>", client.get("/?lang=es").text))
    assert es == {"lunes": "00:00–06:00, 08:00–20:00", "domingo": "22:00–24:00"}
    # Training required: only a trained supporter's shifts are a promise (routing's rule).
    app.extensions["hotline.settings"] = settings().replace(REQUIRE_TRAINING=True)
    assert "No peer supporter shifts are planned just now" in client.get("/").text
    ada.trained_on, ada.refresher_due = date(2026, 1, 5), date(2099, 1, 5)
    session.commit()
    assert dict(re.findall(r"<dt>(\w+)</dt>\s*<dd>(.*?)</dd>", client.get("/").text)) == {
        "Monday": "08:00–16:00"}
    app.extensions["hotline.settings"] = settings().replace(REQUIRE_TRAINING=False)
    for weekday in range(7):
        shifts.add_shift(session, make_supporter(), weekday, "00:00", "23:59")
    shifts.add_shift(session, make_supporter("Di"), "Monday", "23:00", "01:00")
    assert "on shift around the clock" not in client.get("/").text  # 23:59-00:00 uncovered
    for weekday in range(7):
        shifts.add_shift(session, make_supporter(), weekday, "23:30", "00:30")
    assert "Peer supporters are on shift around the clock." in client.get("/").text


def test_the_page_speaks_spanish_by_lang_or_by_the_browsers_language(app):
    client = app.test_client()
    spanish = client.get("/?lang=es")
    assert '<html lang="es">' in spanish.text and "Qué pasa cuando llama o escribe" in spanish.text
    assert "Llame al (617) 555-0100" in _words(spanish.text)
    assert "Si nadie está libre en 3 minutos" in _words(spanish.text)
    by_browser = client.get("/", headers={"Accept-Language": "es-MX,es;q=0.9,en;q=0.5"})
    assert '<html lang="es">' in by_browser.text and "Accept-Language" in by_browser.headers["Vary"]
    assert '<html lang="en">' in client.get("/?lang=xx").text
    assert '<html lang="en">' in client.get("/?lang=en", headers={"Accept-Language": "es"}).text
    # The switch: each language by its own name, in its language, the current one marked.
    switch = re.findall(r'<a href="([^"]+)" lang="(\w+)" hreflang="\w+"( aria-current="page")?'
                        r'>([^<]+)</a>', spanish.text)
    assert switch == [("/?lang=en", "en", "", "English"),
                      ("/?lang=es", "es", ' aria-current="page"', "Español")]
    poster = client.get("/poster?size=a4&lang=es").text
    assert "¿Turno difícil? Hable con un colega." in poster
    assert 'href="/poster?lang=en&amp;size=a4"' in poster or \
        'href="/poster?size=a4&amp;lang=en"' in poster


@pytest.mark.parametrize("path, page_url", [
    ("/poster?size=a4", f"{PUBLIC_BASE_URL}/"),
    ("/poster?size=letter&lang=es", f"{PUBLIC_BASE_URL}/?lang=es"),
    ("/card?size=letter", f"{PUBLIC_BASE_URL}/"),
])
def test_the_qr_codes_decode_to_the_number_and_the_page(app, path, page_url):
    """zxing-cpp reads the SVG the app serves: a tel: URI of the number, and the page's
    public address (in the poster's language)."""
    html = app.test_client().get(path).text
    codes = re.findall(r"<svg role=\"img\".*?</svg>", html, re.S)
    assert len(codes) >= 2
    decoded = [decode(svg_matrix(svg)) for svg in codes]
    assert decoded[:2] == [[f"tel:{HOTLINE_NUMBER}"], [page_url]]
    assert all(found in ([f"tel:{HOTLINE_NUMBER}"], [page_url]) for found in decoded)
    assert "<title>QR code to call (617) 555-0100</title>" in html or \
        "<title>Código QR para llamar al (617) 555-0100</title>" in html


def test_the_poster_takes_a4_or_letter_only(app):
    client = app.test_client()
    assert "paper-a4.css" in client.get("/poster?size=a4").text
    assert "paper-letter.css" in client.get("/poster").text  # US-first: Letter by default
    assert client.get("/poster?size=b5").status_code == 404
    assert "size: A4" in client.get("/program/static/paper-a4.css").text
    assert "size: letter" in client.get("/program/static/paper-letter.css").text


def test_the_poster_carries_the_staff_survey_link_in_its_language(app):
    client = app.test_client()
    base = app.extensions["hotline.settings"].PUBLIC_BASE_URL.rstrip("/")
    assert f"{base}/pulse</span>" in client.get("/poster").text
    spanish = client.get("/poster?lang=es").text
    assert f"{base}/pulse?lang=es</span>" in spanish
    assert client.get("/pulse?lang=es").status_code == 200


def test_a_program_text_missing_in_one_language_stops_the_start(tmp_path):
    folder = tmp_path / "ivr_flows"
    shutil.copytree(ROOT / "ivr_flows", folder)
    path = folder / "program.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    del data["texts"]["es"]["crisis"]
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    with pytest.raises(FlowError, match=r"program.yaml: texts.es differs .*'crisis'"):
        create_app({"IVR_FLOWS_DIR": str(folder), "REDIS_URL": "redis://127.0.0.1:1/0"})
    data["texts"]["es"]["crisis"] = "Llame al {crisis} o al {hotline}."
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    with pytest.raises(FlowError, match=r"texts.es.crisis uses unknown placeholders"):
        create_app({"IVR_FLOWS_DIR": str(folder), "REDIS_URL": "redis://127.0.0.1:1/0"})
