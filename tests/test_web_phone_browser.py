"""Browser tests: a visitor plays clinician and supporters on the web phone (make run's page).

The whole hotline runs as processes (gunicorn with the stand-in, an RQ worker, Redis,
SQLite) and Playwright drives Debian's chromium. Screenshots go to test-output/.
"""

from __future__ import annotations


import pytest

from tests.axe import assert_accessible, new_context
from tests.stack import OUTPUT

pytestmark = pytest.mark.browser

RIVERA = "+16175550142"
ALEX, BEA = "+16175550111", "+16175550112"


@pytest.fixture
def page(browser, stack):
    context = new_context(browser, viewport={"width": 1500, "height": 1000})
    page = context.new_page()
    page.goto(f"{stack.url}/phone")
    yield page
    context.close()


def phone(page, number):
    return page.locator(f'article.phone[data-number="{number}"]')


def press(card, key):
    card.locator(f'.keypad button[data-key="{key}"]').click()


def dial_and_press_1(page):
    from playwright.sync_api import expect
    rivera = phone(page, RIVERA)
    rivera.get_by_role("button", name="Call hotline").click()
    expect(rivera.locator(".status")).to_contain_text("In call", timeout=10_000)
    expect(rivera.locator(".screen")).to_contain_text("press 1", timeout=10_000)
    press(rivera, "1")
    return rivera


def answer_and_accept(card):
    from playwright.sync_api import expect
    expect(card.locator(".status")).to_contain_text("Ringing", timeout=20_000)
    card.get_by_role("button", name="Answer").click()
    expect(card.locator(".screen")).to_contain_text("Press 1 to accept", timeout=10_000)
    press(card, "1")


def test_clinician_dials_presses_1_and_a_supporter_accepts(page):
    from playwright.sync_api import expect
    assert_accessible(page, "the web phone, idle")
    rivera = dial_and_press_1(page)
    alex = phone(page, ALEX)
    answer_and_accept(alex)
    expect(rivera.locator(".screen")).to_contain_text("connected with a peer supporter",
                                                      timeout=15_000)
    expect(alex.locator(".screen")).to_contain_text("Connecting you now", timeout=10_000)
    expect(page.locator("#offers")).to_contain_text("accepted", timeout=5_000)
    expect(page.locator("#contacts")).to_contain_text("connected", timeout=5_000)
    expect(page.locator("#queues")).to_contain_text("bridge", timeout=5_000)
    assert ALEX not in rivera.locator(".screen").inner_text()
    assert_accessible(page, "the web phone during a bridged call")
    # Issue 14: words typed during a bridged call were dropped; they reach the other end.
    rivera.locator("form.say input").fill("It was a hard night")
    rivera.locator("form.say button").click()
    expect(alex.locator(".screen")).to_contain_text("they said: It was a hard night",
                                                    timeout=10_000)
    expect(rivera.locator(".screen")).to_contain_text("you said: It was a hard night")
    OUTPUT.mkdir(exist_ok=True)
    page.screenshot(path=str(OUTPUT / "web-phone-connected.png"), full_page=True)
    alex.get_by_role("button", name="Hang up").click()
    # after the check-in question (no key pressed) the clinician hears goodbye
    expect(rivera.locator(".status")).to_contain_text("Idle", timeout=40_000)


def test_two_supporters_ring_together_and_the_other_phone_stops_at_an_accept(page):
    from playwright.sync_api import expect
    rivera = dial_and_press_1(page)
    alex, bea = phone(page, ALEX), phone(page, BEA)
    # Two peers ring at once (HOTLINE_RING_AT_ONCE, 2 by default): the first to accept wins.
    expect(alex.locator(".status")).to_contain_text("Ringing", timeout=20_000)
    expect(bea.locator(".status")).to_contain_text("Ringing", timeout=5_000)
    assert_accessible(page, "the web phone while a supporter's phone rings")
    answer_and_accept(bea)
    expect(rivera.locator(".screen")).to_contain_text("connected with a peer supporter",
                                                      timeout=15_000)
    expect(page.locator("#offers")).to_contain_text("canceled", timeout=5_000)
    expect(alex.locator(".status")).to_contain_text("Idle")
    OUTPUT.mkdir(exist_ok=True)
    page.screenshot(path=str(OUTPUT / "web-phone-next-supporter.png"), full_page=True)


def send_text(card, body):
    card.locator("form.sms input").fill(body)
    card.locator("form.sms button").click()


def start_text_conversation(page, first_text=None):
    """Rivera asks to text with a peer (after ``first_text``, if any); Alex replies YES."""
    from playwright.sync_api import expect
    rivera, alex = phone(page, RIVERA), phone(page, ALEX)
    for card in (rivera, alex):
        card.locator("details.texts summary").click()
    if first_text:
        send_text(rivera, first_text)
        expect(rivera.locator(".messages")).to_contain_text("Reply 1 for a call", timeout=15_000)
    send_text(rivera, "2")
    expect(alex.locator(".messages")).to_contain_text("Reply YES", timeout=20_000)
    send_text(alex, "YES")
    expect(rivera.locator(".messages")).to_contain_text("texting with a peer supporter",
                                                        timeout=15_000)
    return rivera, alex


def test_texting_as_a_clinician_and_as_a_supporter(page):
    from playwright.sync_api import expect
    rivera, alex = start_text_conversation(page, first_text="hello")
    send_text(rivera, "It was a hard night on the ward")
    expect(alex.locator(".messages")).to_contain_text("hard night on the ward", timeout=15_000)
    send_text(alex, "I'm here with you.")
    expect(rivera.locator(".messages")).to_contain_text("I'm here with you.", timeout=15_000)
    assert ALEX not in rivera.locator(".messages").inner_text()
    assert_accessible(page, "the web phone with texts unfolded")
    OUTPUT.mkdir(exist_ok=True)
    page.screenshot(path=str(OUTPUT / "web-phone-texting.png"), full_page=True)


def test_a_follow_up_arrives_on_the_clinicians_phone(page):
    """Demo timings: the first check-in text comes ~17 s after the clinician says yes."""
    from playwright.sync_api import expect
    rivera, alex = start_text_conversation(page)
    send_text(alex, "BYE")
    expect(rivera.locator(".messages")).to_contain_text("check-in text", timeout=15_000)
    send_text(rivera, "YES")
    expect(rivera.locator(".messages")).to_contain_text("We will check in by text",
                                                        timeout=15_000)
    expect(rivera.locator(".messages")).to_contain_text("How helpful was it", timeout=60_000)
    OUTPUT.mkdir(exist_ok=True)
    page.screenshot(path=str(OUTPUT / "web-phone-follow-up.png"), full_page=True)


def test_the_phone_keeps_focus_speaks_plainly_and_signs_folded_texts(page):
    """Issue 14, web phone: focus went to the page body after "Call hotline"; the status
    said "gathering" and "in queue"; texts arriving while "Texts" was folded gave no sign;
    the transcripts of two calls ran on with no separator."""
    from playwright.sync_api import expect
    rivera, alex = phone(page, RIVERA), phone(page, ALEX)
    rivera.locator("details.texts summary").click()
    send_text(rivera, "2")
    expect(alex.locator("details.texts summary")).to_contain_text("new", timeout=20_000)
    assert_accessible(page, "the web phone with unread texts")
    alex.locator("details.texts summary").click()
    expect(alex.locator(".messages")).to_contain_text("Reply YES")
    expect(alex.locator("details.texts summary")).to_have_text("Texts")

    rivera.get_by_role("button", name="Call hotline").click()
    expect(rivera.locator(".status")).to_contain_text("waiting for your answer", timeout=10_000)
    expect(rivera.get_by_role("button", name="Hang up")).to_be_focused()
    press(rivera, "1")
    expect(rivera.locator(".status")).to_contain_text("on hold for a supporter", timeout=10_000)
    for word in ("gathering", "in queue"):
        assert word not in rivera.locator(".status").inner_text()
    rivera.get_by_role("button", name="Hang up").click()
    expect(rivera.locator(".status")).to_contain_text("Idle", timeout=10_000)
    expect(rivera.get_by_role("button", name="Call hotline")).to_be_focused()
    # A second call: its transcript is set off from the first one's.
    rivera.get_by_role("button", name="Call hotline").click()
    expect(rivera.locator(".screen li.call-break")).to_have_count(1, timeout=10_000)
    expect(rivera.locator(".screen li.call-break + li")).to_contain_text("You have reached")


def test_a_match_request_shows_in_the_live_panel_until_the_outcome(page):
    """Issue 16: the caller presses 3 (a match), 3 (both), 2 (nurse), 2 (intensive care):
    the live panel shows the request while the contact is open (the unit never named:
    it is sealed), Bea (the demo's intensive-care nurse) is never rung, and the request is
    gone once a peer has taken the call."""
    from playwright.sync_api import expect
    rivera = phone(page, RIVERA)
    rivera.get_by_role("button", name="Call hotline").click()
    for heard, key in (("press 3", "3"), ("For both, press 3", "3"),
                       ("Which is your role?", "2"), ("Which is your unit?", "2")):
        expect(rivera.locator(".screen")).to_contain_text(heard, timeout=15_000)
        press(rivera, key)
    expect(page.locator("#contacts")).to_contain_text("match: nurse first, not their unit",
                                                      timeout=10_000)
    assert "intensive" not in page.locator("#contacts").inner_text()
    alex = phone(page, ALEX)
    answer_and_accept(alex)
    expect(rivera.locator(".screen")).to_contain_text("connected with a peer supporter",
                                                      timeout=15_000)
    expect(page.locator("#contacts")).to_contain_text("connected", timeout=5_000)
    expect(page.locator("#contacts")).not_to_contain_text("match:", timeout=5_000)
    assert "Bea" not in page.locator("#offers").inner_text()
    assert_accessible(page, "the web phone with a match request")
    alex.get_by_role("button", name="Hang up").click()
    expect(rivera.locator(".status")).to_contain_text("Idle", timeout=40_000)
