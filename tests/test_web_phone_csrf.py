"""The web phone (/phone, simulator mode): no state change without the page's CSRF token."""

from __future__ import annotations

import re

import pytest

from hotline.models import Supporter

SUPPORTER = "+16175550111"


@pytest.fixture
def phone_app(app_settings, request):
    """The app with the stand-in and the web phone, on a loopback base where nothing listens."""
    app_settings.update(SIMULATOR=True, PUBLIC_BASE_URL="http://127.0.0.1:9")
    app = request.getfixturevalue("app")
    yield app
    app.extensions["hotline.simulator.runner"].stop()


def page_token(client) -> str:
    page = client.get("/phone")
    return re.search(r'<meta name="csrf-token" content="([^"]+)"', page.text).group(1)


def test_every_web_phone_post_needs_the_pages_token(phone_app, session):
    """A cross-site POST (no token, a forged one, another session's) changes nothing; the
    page's own token works (before: every POST was accepted from anywhere)."""
    session.add(Supporter(name="Alex", phone=SUPPORTER, tier=1, available=True))
    session.commit()
    sim = phone_app.extensions["hotline.simulator"]
    client = phone_app.test_client()
    token = page_token(client)
    other_session = page_token(phone_app.test_client())
    posts = [re.sub(r"<[^>]+>", "x", rule.rule) for rule in phone_app.url_map.iter_rules()
             if rule.endpoint.startswith("phone.") and "POST" in rule.methods]
    assert len(posts) == 4
    cross_site = [{"Origin": "https://evil.example"}, {"X-CSRF-Token": "forged"},
                  {"X-CSRF-Token": other_session}]
    for path in posts:
        for headers in cross_site:
            refused = client.post(path, headers=headers, data={"on": "0", "body": "hi"})
            assert refused.status_code == 400 and refused.json["ok"] is False, (path, headers)
    refused = client.post(f"/phone/api/phones/{SUPPORTER}/availability",
                          data={"on": "0", "csrf_token": "forged"})
    assert refused.status_code == 400
    assert sim.legs == {} and sim.messages == []
    session.expire_all()
    assert session.query(Supporter).one().available is True

    allowed = client.post(f"/phone/api/phones/{SUPPORTER}/availability",
                          headers={"X-CSRF-Token": token}, data={"on": "0"})
    assert allowed.status_code == 200 and allowed.json == {"ok": True,
                                                           "result": {"available": False}}
    session.expire_all()
    assert session.query(Supporter).one().available is False
