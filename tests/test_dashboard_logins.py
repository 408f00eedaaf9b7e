"""Logins under attack: equal argon2 cost, tries counted before the check, limits that hold
across addresses and cannot lock the program out."""

from __future__ import annotations

import re
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from http.cookiejar import CookieJar

import pytest
from argon2 import PasswordHasher, profiles
from werkzeug.serving import make_server

from hotline.dashboard import accounts
from hotline.dashboard import access
from hotline.core.extensions import db
from tests.coordinators import COORD, PASSWORD, WRONG, csrf, make_user, post_login

class CountingHasher(PasswordHasher):
    """argon2 as the app uses it, counting every hash and verification (thread-safe)."""

    def __init__(self, *args, delay: float = 0.0, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.calls: list[str] = []
        self.delay = delay
        self._lock = threading.Lock()

    def _count(self, name: str) -> None:
        with self._lock:
            self.calls.append(name)

    def hash(self, password, *, salt=None):
        self._count("hash")
        return super().hash(password, salt=salt)

    def verify(self, hash, password):
        self._count("verify")
        time.sleep(self.delay)  # a slow check, as in production: widens any race
        return super().verify(hash, password)


def counting_hasher(monkeypatch, delay: float = 0.0) -> CountingHasher:
    cheapest = profiles.CHEAPEST
    ph = CountingHasher(time_cost=cheapest.time_cost, memory_cost=cheapest.memory_cost,
                        parallelism=cheapest.parallelism, hash_len=cheapest.hash_len,
                        salt_len=cheapest.salt_len, type=cheapest.type, delay=delay)
    monkeypatch.setattr(access, "password_hasher", lambda: ph)
    return ph


@pytest.fixture
def proxied(app_settings, request):
    """The app behind one load balancer, HOTLINE_PROXY_HOPS=1 (set right)."""
    app_settings["PROXY_HOPS"] = 1
    return request.getfixturevalue("app")


def test_every_login_path_costs_exactly_one_argon2_verification(app, monkeypatch):
    """Unknown email, invited account, deactivated account, wrong and right password: the
    same single argon2 run (before: an unknown email cost a hash and a verification)."""
    make_user(COORD)
    gone = make_user("gone@example.org")
    gone.active = False
    accounts.create(db.session, accounts.hasher(True), "invited@example.org", "coordinator")
    ph = counting_hasher(monkeypatch)
    cases = [("nobody@example.org", PASSWORD, 401), ("invited@example.org", PASSWORD, 401),
             ("gone@example.org", PASSWORD, 401), (COORD, WRONG, 401), (COORD, PASSWORD, 302)]
    for email, password, status in cases:
        ph.calls.clear()
        assert post_login(app.test_client(), email, password).status_code == status
        assert ph.calls == ["verify"], (email, ph.calls)


def test_concurrent_wrong_passwords_reach_the_check_at_most_the_limit(app_settings, request,
                                                                      monkeypatch):
    """20 wrong passwords at once over real HTTP: only the limit's worth are checked
    (before: all 20 were checked and answered 401)."""
    app_settings["SECURE_COOKIES"] = "0"  # plain http on loopback: the cookie jar sends them
    fresh_app = request.getfixturevalue("fresh_app")
    with fresh_app.app_context():
        make_user(COORD)
    ph = counting_hasher(monkeypatch, delay=0.3)
    server = make_server("127.0.0.1", 0, fresh_app, threaded=True)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02},
                     daemon=True).start()
    base = f"http://127.0.0.1:{server.server_port}/dashboard/login"
    tries = 20
    start = threading.Barrier(tries)
    statuses: list[int] = []

    def attacker() -> None:
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))
        page = opener.open(base, timeout=30).read().decode()
        token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        data = urllib.parse.urlencode({"csrf_token": token, "email": COORD,
                                       "password": WRONG}).encode()
        start.wait()
        try:
            status = opener.open(base, data=data, timeout=30).status
        except urllib.error.HTTPError as exc:
            status = exc.code
        statuses.append(status)

    threads = [threading.Thread(target=attacker) for _ in range(tries)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    finally:
        server.shutdown()
    limit = accounts.MAX_FAILURES_PER_ACCOUNT
    assert ph.calls.count("verify") == limit
    assert sorted(statuses) == [401] * limit + [429] * (tries - limit)


def test_the_account_limit_holds_across_addresses(proxied, clock):
    """Wrong passwords for one account from ten addresses: after the limit, every address
    waits, the right password included (before: each address had its own five)."""
    make_user(COORD)
    statuses = [post_login(proxied.test_client(), COORD, WRONG, f"203.0.113.{i}").status_code
                for i in range(10)]
    limit = accounts.MAX_FAILURES_PER_ACCOUNT
    assert statuses == [401] * limit + [429] * (10 - limit)
    assert post_login(proxied.test_client(), COORD, PASSWORD, "198.51.100.1").status_code == 429


def test_failures_behind_a_misconfigured_balancer_lock_nobody_else_out(app, monkeypatch):
    """HOTLINE_PROXY_HOPS=0 behind a balancer: every request comes from its address. One
    client's failures on many emails do not keep a coordinator out (before: 30 failures
    from anyone locked every coordinator out)."""
    make_user(COORD)
    balancer = {"REMOTE_ADDR": "10.0.0.2"}
    attacker = app.test_client()
    for i in range(accounts.MAX_FAILURES_PER_ADDRESS + 5):
        attacker.post("/dashboard/login", environ_base=balancer,
                      headers={"X-Forwarded-For": "198.51.100.7"},
                      data={"csrf_token": csrf(attacker), "email": f"x{i}@example.org",
                            "password": WRONG})
    last = attacker.post("/dashboard/login", environ_base=balancer,
                         headers={"X-Forwarded-For": "198.51.100.7"},
                         data={"csrf_token": csrf(attacker), "email": "y@example.org",
                               "password": WRONG})
    assert last.status_code == 429  # the attacker, seen through the balancer, is limited
    coordinator = app.test_client()
    response = coordinator.post("/dashboard/login", environ_base=balancer,
                                headers={"X-Forwarded-For": "203.0.113.5"},
                                data={"csrf_token": csrf(coordinator), "email": COORD,
                                      "password": PASSWORD})
    assert response.status_code == 302


def test_one_address_spraying_many_emails_is_still_limited(app):
    """No balancer: the per-address limit stops one client trying many accounts."""
    make_user(COORD)
    client = app.test_client()
    for i in range(accounts.MAX_FAILURES_PER_ADDRESS):
        assert post_login(client, f"x{i}@example.org", WRONG).status_code == 401
    response = post_login(client, COORD, PASSWORD)
    assert response.status_code == 429 and "your network address" in response.text


def test_the_account_backoff_doubles_and_is_only_ever_a_delay(app, clock):
    """After the free tries each failure doubles the wait, up to a cap; the message says
    until when and whom to ask; an unknown email is held up the same way."""
    make_user(COORD)
    waits = {}
    for email in ("nobody@example.org", COORD):
        client = app.test_client()
        for _ in range(accounts.MAX_FAILURES_PER_ACCOUNT):
            assert post_login(client, email, WRONG).status_code == 401
        seen = []
        for _ in range(6):
            refused = post_login(client, email, WRONG)
            assert refused.status_code == 429
            seen.append(int(refused.headers["Retry-After"]))
            clock.advance(seconds=seen[-1])
            assert post_login(client, email, WRONG).status_code == 401
        waits[email] = seen
    first, cap = accounts.BACKOFF_FIRST_SECONDS, accounts.BACKOFF_MAX_SECONDS
    assert waits[COORD] == [first, 2 * first, 4 * first, 8 * first, cap, cap]
    assert waits["nobody@example.org"] == waits[COORD]
    client = app.test_client()
    refused = post_login(client, COORD, PASSWORD)
    text = refused.text.replace("&#39;", "'")
    assert refused.status_code == 429
    assert "Too many failed logins for this account" in text
    assert re.search(r"try again at \d\d:\d\d \S+ \(in 15 minutes\)", text)
    assert "ask one of the program's dashboard admins" in text
    clock.advance(seconds=cap)
    assert post_login(client, COORD, PASSWORD).status_code == 302  # a delay, not a lock


def test_a_browser_that_logged_in_before_is_not_kept_out(proxied, clock):
    """An attacker elsewhere throttles the account; its owner's browser (trusted device
    cookie) still gets in, with a limit of its own. Forged or other accounts' cookies do
    not help (before: failures elsewhere were not counted for the account at all)."""
    make_user(COORD)
    make_user("other@example.org")
    owner = proxied.test_client()
    assert post_login(owner, COORD, PASSWORD, "203.0.113.5").status_code == 302
    owner.post("/dashboard/logout", data={"csrf_token": csrf(owner, "/dashboard/roster")})
    attacker = proxied.test_client()
    for i in range(10):
        post_login(attacker, COORD, WRONG, f"198.51.100.{i}")
    assert post_login(attacker, COORD, PASSWORD, "198.51.100.99").status_code == 429

    assert post_login(owner, COORD, PASSWORD, "203.0.113.5").status_code == 302

    forged = proxied.test_client()
    forged.set_cookie(access.DEVICE_COOKIE, "forged", path="/dashboard/login")
    assert post_login(forged, COORD, PASSWORD, "203.0.113.6").status_code == 429
    elsewhere = proxied.test_client()  # trusted for another account only
    assert post_login(elsewhere, "other@example.org", PASSWORD, "203.0.113.7").status_code == 302
    assert post_login(elsewhere, COORD, PASSWORD, "203.0.113.7").status_code == 429

    thief = proxied.test_client()  # a copied device cookie gets only the device's tries
    thief.set_cookie(access.DEVICE_COOKIE, owner.get_cookie(
        access.DEVICE_COOKIE, path="/dashboard/login").value, path="/dashboard/login")
    for _ in range(accounts.MAX_FAILURES_PER_DEVICE):
        assert post_login(thief, COORD, WRONG, "198.51.100.50").status_code == 401
    assert post_login(thief, COORD, PASSWORD, "198.51.100.50").status_code == 429


def test_an_invitation_lifts_the_account_backoff(app, clock):
    """The way out an admin can give at once: a new invitation link."""
    user = make_user(COORD)
    client = app.test_client()
    for _ in range(accounts.MAX_FAILURES_PER_ACCOUNT + 1):
        post_login(client, COORD, WRONG)
    assert post_login(client, COORD, PASSWORD).status_code == 429
    secret = accounts.reinvite(db.session, user)
    invited = app.test_client()
    token = csrf(invited, "/dashboard/invite")
    assert invited.post("/dashboard/invite", data={"csrf_token": token, "token": secret,
                                                   "password": PASSWORD,
                                                   "confirm": PASSWORD}).status_code == 302
    assert post_login(app.test_client(), COORD, PASSWORD).status_code == 302


def test_a_nul_in_the_email_is_an_ordinary_failed_login(app, monkeypatch):
    """An email with a NUL character (which PostgreSQL refuses in any string) is a failed
    login like any other, at the same one argon2 cost (before: a 500 on PostgreSQL)."""
    make_user(COORD)
    ph = counting_hasher(monkeypatch)
    response = post_login(app.test_client(), "coord\x00@example.org", PASSWORD)
    assert response.status_code == 401
    assert ph.calls == ["verify"]


def test_a_client_on_the_internet_cannot_forge_its_way_past_the_address_limit(app):
    """No balancer (HOTLINE_PROXY_HOPS=0): a client connecting from a public address sends
    a new X-Forwarded-For with every try. Only a peer that can be a proxy of ours (a private
    or loopback address) has its forwarded client counted apart; the public peer is counted
    as itself (before: each forged header got its own 30 tries, so spraying was unlimited)."""
    make_user(COORD)
    sprayer = app.test_client()
    public = {"REMOTE_ADDR": "8.8.4.4"}
    for i in range(accounts.MAX_FAILURES_PER_ADDRESS):
        response = sprayer.post("/dashboard/login", environ_base=public,
                                headers={"X-Forwarded-For": f"192.0.2.{i}"},
                                data={"csrf_token": csrf(sprayer), "email": f"x{i}@example.org",
                                      "password": WRONG})
        assert response.status_code == 401
    response = sprayer.post("/dashboard/login", environ_base=public,
                            headers={"X-Forwarded-For": "192.0.2.200"},
                            data={"csrf_token": csrf(sprayer), "email": COORD,
                                  "password": PASSWORD})
    assert response.status_code == 429 and "your network address" in response.text


def test_an_operator_on_the_host_can_lift_an_accounts_backoff(app, monkeypatch):
    """Someone failing once every 15 minutes keeps an account at the longest wait; when that
    account is the only admin, nobody is left to send an invitation: the host can lift it."""
    counting_hasher(monkeypatch)
    make_user(COORD)
    for _ in range(accounts.MAX_FAILURES_PER_ACCOUNT + 1):
        post_login(app.test_client(), COORD, WRONG)
    assert post_login(app.test_client(), COORD, PASSWORD).status_code == 429
    result = app.test_cli_runner().invoke(args=["users", "unlock", COORD.upper()])
    assert result.exit_code == 0, result.output
    assert post_login(app.test_client(), COORD, PASSWORD).status_code == 302
    missing = app.test_cli_runner().invoke(args=["users", "unlock", "nobody@example.org"])
    assert missing.exit_code != 0 and "no account" in missing.output


@pytest.mark.parametrize("email", ["a\x00b@example.org", "a\tb@example.org",
                                   "ab@exa\u200bmple.org"])
def test_an_account_email_with_control_characters_is_refused(app, email):
    with pytest.raises(accounts.AccountError, match="valid email"):
        accounts.create(db.session, accounts.hasher(True), email, "coordinator", None)
