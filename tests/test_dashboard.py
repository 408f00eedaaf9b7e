"""Dashboard access: login, logout, roles, CSRF, rate limits, headers, every route guarded."""

from __future__ import annotations

import re

import pytest

from hotline.dashboard import accounts
from hotline.dashboard import access
from hotline.core.extensions import db
from tests.coordinators import PASSWORD, csrf, login, make_user


def test_every_dashboard_route_needs_a_login_except_login_invite_and_static(app):
    client = app.test_client()
    guarded = 0
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith("dashboard"):
            continue
        access_kind = access.access_of(app, rule.endpoint)
        if rule.endpoint in ("dashboard.login", "dashboard.invite", "dashboard.static"):
            assert access_kind == "public"
            continue
        assert access_kind in ("login", "admin", "referral"), rule
        path = re.sub(r"<(int:)?[^>]+>", "1", rule.rule)
        response = client.get(path) if "GET" in rule.methods else None
        if response is not None:
            assert response.status_code in (302, 401), (rule, response.status_code)
        guarded += 1
    assert guarded >= 20


def test_login_and_logout_end_the_server_session(app, coordinator):
    assert coordinator.get("/dashboard/").status_code == 200
    cookie = coordinator.get_cookie("hotline_session")
    assert cookie.http_only and cookie.same_site == "Lax"
    token = csrf(coordinator, "/dashboard/roster")
    assert coordinator.post("/dashboard/logout", data={"csrf_token": token}).status_code == 302
    assert coordinator.get("/dashboard/").status_code == 302
    replay = app.test_client()  # a copied cookie stops working after logout
    replay.set_cookie("hotline_session", cookie.value)
    assert replay.get("/api/stats").status_code == 401


def test_wrong_password_and_rate_limit(app):
    make_user("coord@example.org")
    client = app.test_client()
    for _ in range(accounts.MAX_FAILURES_PER_ACCOUNT):
        assert login(client, "coord@example.org", "wrong password!!").status_code == 401
    assert login(client, "coord@example.org").status_code == 429


def test_passwords_are_argon2_hashes(app):
    user = make_user("coord@example.org")
    assert user.password_hash.startswith("$argon2id$") and PASSWORD not in user.password_hash


def test_forms_and_api_writes_need_the_csrf_token(app, coordinator):
    assert coordinator.post("/dashboard/roster", data={"name": "X"}).status_code == 400
    assert coordinator.post("/api/supporters", json={"name": "X"}).status_code == 400
    token = coordinator.get("/api/me").json["csrf_token"]
    response = coordinator.post("/api/supporters", headers={"X-CSRF-Token": token},
                                json={"name": "Rae Lin", "phone": "+1 617 555 0150",
                                      "tier": 1, "languages": ["en"]})
    assert response.status_code == 201 and response.json["phone"] == "+16175550150"


def test_login_form_itself_needs_the_token(app):
    make_user("coord@example.org")
    client = app.test_client()
    response = client.post("/dashboard/login", data={"email": "coord@example.org",
                                                     "password": PASSWORD})
    assert response.status_code == 400


def test_coordinators_cannot_manage_accounts_admins_can(app, coordinator):
    assert coordinator.get("/dashboard/users").status_code == 403
    assert coordinator.get("/api/users").status_code == 403
    make_user("admin@example.org", "admin")
    admin = app.test_client()
    login(admin, "admin@example.org")
    token = admin.get("/api/me").json["csrf_token"]
    response = admin.post("/api/users", headers={"X-CSRF-Token": token},
                          json={"email": "new@example.org", "role": "coordinator"})
    assert response.status_code == 201
    link = response.json["invite_url"]
    invited = app.test_client()
    path, secret = link.split("example.org", 1)[1].split("#")
    token = csrf(invited, path)
    bad = invited.post(path, data={"csrf_token": token, "token": secret, "password": "short",
                                   "confirm": "short"})
    assert bad.status_code == 400 and "12 characters" in bad.text
    ok = invited.post(path, data={"csrf_token": token, "token": secret, "password": PASSWORD,
                                  "confirm": PASSWORD})
    assert ok.status_code == 302 and invited.get("/dashboard/").status_code == 200
    again = app.test_client()  # used once
    assert again.post(path, data={"csrf_token": csrf(again, path), "token": secret,
                                  "password": PASSWORD, "confirm": PASSWORD}).status_code == 404


def test_security_headers_allow_no_third_party_origin(app, coordinator):
    response = coordinator.get("/dashboard/")
    csp = response.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "http" not in csp
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "https://" not in response.text and "http://" not in response.text.replace(
        "http://www.w3.org/2000/svg", "")


def test_roster_validation_messages_and_shifts(app, coordinator):
    token = csrf(coordinator, "/dashboard/roster")
    bad = coordinator.post("/dashboard/roster", data={"csrf_token": token, "name": "Q",
                                                      "phone": "12", "tier": "1",
                                                      "languages": "en"})
    assert bad.status_code == 400 and "not a" in bad.text and "phone number" in bad.text
    ok = coordinator.post("/dashboard/roster", data={"csrf_token": token, "name": "Quinn",
                                                     "phone": "+16175550160", "tier": "2",
                                                     "languages": ["en", "es"]})
    assert ok.status_code == 302
    page = ok.headers["Location"]
    shift = coordinator.post(page + "/shifts", data={"csrf_token": token, "weekday": "0",
                                                     "start": "25:00", "end": "08:00"})
    assert shift.status_code == 400 and "a time like" in shift.text
    assert coordinator.post(page + "/shifts", data={"csrf_token": token, "weekday": "6",
                                                    "start": "22:00", "end": "06:00"}
                            ).status_code == 302
    overlap = coordinator.post(page + "/shifts", data={"csrf_token": token, "weekday": "0",
                                                       "start": "05:00", "end": "09:00"})
    assert overlap.status_code == 400 and "overlaps the shift Sunday 22:00" in overlap.text


def test_the_stats_api_never_shows_a_small_count_or_a_caller(app, coordinator, session):
    from hotline.dashboard.demo import seed_history
    from hotline.models import Contact, Supporter
    from hotline.roster.shifts import program_zone
    session.add(Supporter(name="P", phone="+16175550170", tier=1))
    session.commit()
    # the default period is the newest settled month: eleven weeks always cover it
    seed_history(session, program_zone(), weeks=11, scale=0.3)
    data = coordinator.get("/api/stats").json
    text = str(data) + coordinator.get("/dashboard/stats.csv").text
    assert not any(c.caller_key in text for c in session.query(Contact))
    seen = set()
    for table in data["tables"]:
        for row in table["rows"]:
            for value in row["values"]:
                # zeros too: "<11" means fewer than 11, possibly none
                assert not (isinstance(value, int) and value < data["k"]), (table, row)
                seen.add(value if isinstance(value, str) else "n")
    assert "<11" in seen and "n" in seen
    assert data["legend"]["<11"] == "fewer than 11, possibly none"
    assert "fewer than 11, possibly none" in coordinator.get("/dashboard/").text


def test_the_csv_export_neutralises_formulas_in_supporter_names(app, coordinator, session):
    """A supporter named =HYPERLINK(...) (or starting with + - @ tab CR) reaches the CSV as
    text: a leading single quote, per OWASP (before: the formula as-is)."""
    import csv
    import io

    from hotline.dashboard.demo import seed_history
    from hotline.models import Supporter
    from hotline.roster.shifts import program_zone
    names = ['=HYPERLINK("http://x","y")', "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(A1:A9)",
             "\tTabbed", "\rReturned"]
    for i, name in enumerate(names):
        session.add(Supporter(name=name, phone=f"+161755502{i:02d}", tier=1))
    session.commit()
    seed_history(session, program_zone(), weeks=11, scale=0.3)  # a settled month
    response = coordinator.get("/dashboard/stats.csv")
    assert response.status_code == 200
    cells = [cell for line in csv.reader(io.StringIO(response.text)) for cell in line]
    assert "'" + names[0] in cells
    assert {"'" + name for name in names} <= set(cells)
    assert not [cell for cell in cells if cell[:1] in ("=", "+", "-", "@", "\t", "\r")]


@pytest.mark.parametrize("hops, forwarded, seen", [
    (1, "203.0.113.9", "203.0.113.9"),                   # right: the client
    (0, None, "10.0.0.2"),                               # no balancer: the peer
    (0, "203.0.113.9", "10.0.0.2 via 203.0.113.9"),      # hops unset behind a balancer
    (2, "203.0.113.9", "10.0.0.2 via 203.0.113.9"),      # fewer entries than hops
])
def test_the_client_address_behind_a_load_balancer(app_settings, hops, forwarded, seen):
    """The login limit per address sees the client when HOTLINE_PROXY_HOPS is right, and
    never the balancer's address alone when it looks wrong."""
    from hotline import create_app
    app = create_app(dict(app_settings, PROXY_HOPS=hops))
    app.add_url_rule("/whoami", "whoami", lambda: access.client_address())
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    response = app.test_client().get("/whoami", environ_base={"REMOTE_ADDR": "10.0.0.2"},
                                     headers=headers)
    assert response.get_data(as_text=True) == seen


def _add_quinn(coordinator, token) -> str:
    ok = coordinator.post("/dashboard/roster", data={"csrf_token": token, "name": "Quinn",
                                                     "phone": "+16175550160", "tier": "1",
                                                     "languages": ["en", "es"]})
    assert ok.status_code == 302
    return ok.headers["Location"]


def test_taking_off_the_roster_asks_first_lists_them_and_can_be_undone(app, coordinator):
    """Issue 14 item 4: the button acted at once, and re-adding the number was a dead end
    ("already exists", on no page)."""
    from hotline.models import Supporter
    token = csrf(coordinator, "/dashboard/roster")
    page = _add_quinn(coordinator, token)
    supporter_id = int(page.rsplit("/", 1)[1])
    # One click (the old form posted at once) only leads to the confirmation page.
    first = coordinator.post(page + "/deactivate", data={"csrf_token": token})
    assert first.status_code == 303 and first.headers["Location"].endswith("/deactivate")
    assert db.session.get(Supporter, supporter_id).active
    confirm = coordinator.get(first.headers["Location"])
    assert "Take Quinn off the roster?" in confirm.text and 'name="confirm"' in confirm.text
    done = coordinator.post(page + "/deactivate", data={"csrf_token": token, "confirm": "yes"})
    assert done.status_code == 302
    db.session.expire_all()
    assert not db.session.get(Supporter, supporter_id).active
    removed = coordinator.get("/dashboard/roster").text.split('id="removed"')[1]
    assert "Quinn" in removed and f"/dashboard/roster/{supporter_id}/restore" in removed
    # Adding the same number again offers to restore them instead of a dead end.
    again = coordinator.post("/dashboard/roster", data={"csrf_token": token, "name": "Quinn B",
                                                        "phone": "617 555 0160", "tier": "1",
                                                        "languages": "en"})
    assert again.status_code == 400 and "taken off the roster" in again.text
    assert "Restore Quinn" in again.text
    api = coordinator.post("/api/supporters", headers={"X-CSRF-Token": token},
                           json={"name": "Quinn B", "phone": "+16175550160", "tier": 1,
                                 "languages": ["en"]})
    assert api.status_code == 400 and api.json["field"] == "phone"
    assert api.json["restore"] == f"/api/supporters/{supporter_id}/restore"
    restored = coordinator.post(f"/dashboard/roster/{supporter_id}/restore",
                                data={"csrf_token": token})
    assert restored.status_code == 302
    db.session.expire_all()
    quinn = db.session.get(Supporter, supporter_id)
    assert quinn.active and not quinn.available
    assert "Quinn" not in coordinator.get("/dashboard/roster").text.split('id="removed"')[1]


def test_the_cli_restores_a_supporter_taken_off(app, session):
    from hotline.roster import supporters as roster
    runner = app.test_cli_runner()
    roster.add(session, "Rae", "+16175550161")
    removed = runner.invoke(args=["supporters", "remove", "+16175550161"])
    assert "hotline supporters restore +16175550161" in removed.output
    readd = runner.invoke(args=["supporters", "add", "--name", "Rae", "--phone",
                                "+16175550161"])
    assert readd.exit_code != 0 and "supporters restore" in readd.output
    back = runner.invoke(args=["supporters", "restore", "617 555 0161"])
    assert back.exit_code == 0, back.output
    session.expire_all()
    assert roster.find(session, "+16175550161").active
    assert runner.invoke(args=["supporters", "restore", "+16175550161"]).exit_code != 0


def test_a_refused_shift_keeps_the_details_languages(app, coordinator):
    """Issue 14 item 6: a refused shift unticked every language in Details."""
    token = csrf(coordinator, "/dashboard/roster")
    page = _add_quinn(coordinator, token)
    refused = coordinator.post(page + "/shifts", data={"csrf_token": token, "weekday": "0",
                                                       "start": "09:00", "end": "09:00"})
    assert refused.status_code == 400
    details = refused.text.split("<h2>Details</h2>")[1]
    assert len(re.findall(r'name="languages" value="(en|es)" checked', details)) == 2
    assert 'value="Quinn"' in details and 'value="+16175550160"' in details
    assert 'value="09:00"' in refused.text.split("<h2>Details</h2>")[0]   # the shift kept


def test_form_errors_all_at_once_tied_to_their_fields_first_one_focused(app, coordinator):
    """Issue 14 item 8: an empty form reported one error at a time, with no aria-invalid,
    aria-describedby or role=alert, and the page came back at the top."""
    token = csrf(coordinator, "/dashboard/roster")
    empty = coordinator.post("/dashboard/roster", data={"csrf_token": token, "name": "",
                                                        "phone": "", "tier": "1"})
    assert empty.status_code == 400
    fields = re.findall(r'<(?:input|select)[^>]*aria-invalid="true"[^>]*>', empty.text)
    assert {re.search(r'name="(\w+)"', f).group(1) for f in fields} == {"name", "phone",
                                                                         "languages"}
    for name in ("name", "phone", "languages"):
        assert f'aria-describedby="supporter-{name}-error"' in empty.text
        assert f'id="supporter-{name}-error"' in empty.text
    assert 'role="alert"' in empty.text
    autofocus = re.findall(r'<(?:input|select)[^>]*autofocus[^>]*>', empty.text)
    assert len(autofocus) == 1 and 'name="name"' in autofocus[0]
    page = _add_quinn(coordinator, token)
    shift = coordinator.post(page + "/shifts", data={"csrf_token": token, "weekday": "x",
                                                     "start": "", "end": "25:00"})
    assert shift.status_code == 400
    for name in ("weekday", "start", "end"):
        assert f'aria-describedby="shift-{name}-error"' in shift.text
    autofocus = re.findall(r'<(?:input|select)[^>]*autofocus[^>]*>', shift.text)
    assert len(autofocus) == 1 and 'name="weekday"' in autofocus[0]


def test_available_now_warns_when_nobody_is_available_and_the_roster_names_the_off(
        app, coordinator, session, make_supporter):
    """Issue 14 item 9: no warning when nobody was available; the roster's manual column
    said only "switched OFF"."""
    ada = make_supporter("Ada", available=False)
    now = coordinator.get("/dashboard/now").text
    assert "Nobody is available now" in now and 'role="alert"' in now
    ada.available = True
    session.commit()
    assert "Nobody is available now" not in coordinator.get("/dashboard/now").text
    ada.available = False                                  # a manual OFF
    session.commit()
    row = coordinator.get("/dashboard/roster").text.split("Ada</a>")[1].split("</tr>")[0]
    assert "switched OFF (until switched ON)" in row
