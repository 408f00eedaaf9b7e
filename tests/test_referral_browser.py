"""Browser test of the referral page (issue 17): a referrer account logs in, lands on the
only page it may open, refers a colleague by number alone and is told "we will reach out";
the worker then sends the one text. The whole hotline runs as `make run` starts it.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.axe import assert_accessible, new_context
from tests.stack import OUTPUT, ROOT

pytestmark = pytest.mark.browser

EMAIL, PASSWORD = "referrer@example.org", "a long referrer password"


def add_referrer(stack) -> None:
    env = dict(os.environ, DATABASE_URL=f"sqlite:///{_db(stack)}")
    subprocess.run([sys.executable, "-m", "hotline.cli", "users", "add", "--email", EMAIL,
                    "--role", "referrer"], input=f"{PASSWORD}\n{PASSWORD}\n", text=True,
                   env=env, check=True, capture_output=True, cwd=ROOT)


def _db(stack) -> Path:
    return Path(stack.log.name).parent / "stack.db"


def outreach_rows(stack) -> list[tuple]:
    with sqlite3.connect(_db(stack)) as conn:
        return conn.execute("SELECT state, sent_at IS NOT NULL FROM outreach").fetchall()


def test_a_referrer_refers_a_colleague_by_number_alone(browser, stack):
    from playwright.sync_api import expect
    add_referrer(stack)
    context = new_context(browser, viewport={"width": 1024, "height": 800})
    page = context.new_page()
    page.goto(f"{stack.url}/dashboard/")
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Ask a peer to reach out to a colleague")
           ).to_be_visible()
    expect(page.get_by_text("We never record what happened.")).to_be_visible()
    assert page.locator("nav a").all_inner_texts() == ["Refer a colleague"]
    form = page.locator("main form")
    assert form.locator("input:not([type=hidden]), select, textarea").count() == 2
    assert_accessible(page, "the referral page")
    page.get_by_label("Your colleague's mobile number").fill("617 555 0388")
    page.get_by_label("Language of the text (optional)").select_option("es")
    page.get_by_role("button", name="Ask a peer to reach out").click()
    expect(page.get_by_role("status")).to_have_text("Thank you. We will reach out.")
    OUTPUT.mkdir(exist_ok=True)
    page.screenshot(path=str(OUTPUT / "referral-sent.png"))
    assert_accessible(page, "the referral page, sent")
    page.goto(f"{stack.url}/dashboard/roster")  # anything else leads back here
    expect(page.get_by_role("heading", name="Ask a peer to reach out to a colleague")
           ).to_be_visible()
    deadline = time.monotonic() + 20
    while outreach_rows(stack) != [("pending", 1)] and time.monotonic() < deadline:
        time.sleep(0.2)
    assert outreach_rows(stack) == [("pending", 1)]  # the worker sent the one text
    context.close()
