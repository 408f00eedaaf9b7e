"""Nothing a caller is identified by reaches a log: numbers in any encoding, in every
handler (the app's, the HTTP libraries' at DEBUG, gunicorn's access log), and no
invitation token in an access line."""

from __future__ import annotations

import io
import logging
import re
import subprocess
import sys
import urllib.request
from datetime import UTC, datetime
from urllib.parse import quote

import pytest

from hotline.privacy import primitives as privacy
from hotline.telephony import api as twilio_api
from hotline.core.extensions import settings
from tests.cluster import NO_CONTROL_SOCKET, ROOT, clean_environ, wait_until
from tests.privacy_scan import decoded
from tests.servers import free_port, stop_processes

NUMBER = "+16175550271"
NATIONAL = "6175550271"
#: The same number as it shows up in URLs, form bodies, reprs and people's writing.
ENCODINGS = (NUMBER, quote(NUMBER, safe=""), quote(quote(NUMBER, safe=""), safe=""),
             "%2B1+617+555+0271", "%2B1%20617%20555%200271", "+1 (617) 555-0271",
             "617.555.0271", "%28617%29%20555-0271", "To%3D%2B16175550271")


def carries_number(text: str, national: str = NATIONAL) -> bool:
    """Whether ``text`` holds the number in any encoding: escapes undone (twice), then
    every separator dropped."""
    return national in decoded(text)


def test_the_scan_sees_every_encoding():
    assert all(carries_number(form) for form in ENCODINGS)
    assert not carries_number("[redacted-number] 2026-12-05 05:16:36 127.0.0.1")


@pytest.mark.parametrize("form", ENCODINGS)
def test_numbers_are_redacted_in_any_encoding(form, caplog):
    privacy.install_log_redaction()
    with caplog.at_level(logging.INFO):
        logging.getLogger("hotline.test").info("GET /Messages.json?To=%s&PageSize=20", form)
    assert "Messages.json" in caplog.text and not carries_number(caplog.text), caplog.text


def test_dates_times_addresses_and_sids_are_left_alone():
    line = ("2026-12-05 05:16:36,123 INFO from 127.0.0.1 /Accounts/AC" + "1" * 32
            + "/Messages.json?DateSent%3E=2026-12-05T05%3A11%3A36Z contact 1234567")
    assert privacy.redact(line) == line


def test_http_libraries_write_no_number_even_at_debug(app, stand_in, caplog):
    """urllib3 logs each request line (query included) at DEBUG, twilio's client the URL
    and parameters at INFO: an operator turning them up must still see no number."""
    caplog.set_level(logging.DEBUG)
    for name in privacy.CHATTY_LIBRARIES:
        logging.getLogger(name).setLevel(logging.DEBUG)
    try:
        cfg = settings()
        twilio_api.send_message(cfg, NUMBER, "hello")
        assert twilio_api.find_sent(cfg, NUMBER, datetime.now(UTC))
    finally:
        for name in privacy.CHATTY_LIBRARIES:
            logging.getLogger(name).setLevel(logging.WARNING)
    urllib3_lines = [r.getMessage() for r in caplog.records if r.name.startswith("urllib3")]
    assert any("Messages.json" in line for line in urllib3_lines)  # they did log, at DEBUG
    assert not carries_number(caplog.text), caplog.text


def test_library_loggers_are_capped_by_the_app(app):
    assert all(logging.getLogger(name).getEffectiveLevel() >= logging.WARNING
               for name in privacy.CHATTY_LIBRARIES)


def test_every_root_handler_redacts_records_made_without_the_factory(app):
    """A record the factory never saw (``makeLogRecord``, a library's own ``makeRecord``)
    is still redacted by the handler that writes it."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        privacy.install_log_redaction()  # what create_app does once logging is configured
        record = logging.makeLogRecord({"name": "lib", "levelno": logging.ERROR,
                                        "msg": "To=%s", "args": (quote(NUMBER, safe=""),)})
        root.handle(record)
    finally:
        root.removeHandler(handler)
    assert "To=" in out.getvalue() and not carries_number(out.getvalue()), out.getvalue()


@pytest.fixture
def gunicorn(redis_server, tmp_path):
    """The app under gunicorn with the project's config; yields (base URL, log path)."""
    port = free_port()
    log_path = tmp_path / "gunicorn.log"
    env = clean_environ(HOTLINE_ENV="test", DATABASE_URL=f"sqlite:///{tmp_path / 'h.db'}",
                        REDIS_URL=redis_server.url, PUBLIC_BASE_URL=f"http://127.0.0.1:{port}",
                        TWILIO_AUTH_TOKEN="test-auth-token-0123456789",
                        TWILIO_ACCOUNT_SID="AC" + "1" * 32, HOTLINE_NUMBER="+16175550100")
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "config/gunicorn.conf.py", "--workers",
             "1", "--threads", "2", "--bind", f"127.0.0.1:{port}", *NO_CONTROL_SOCKET,
             "hotline:create_app()"], env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        assert proc.poll() is None, log_path.read_text()
        try:
            return urllib.request.urlopen(f"{url}/healthz", timeout=1).status == 200
        except OSError:
            return False
    try:
        wait_until(up, 30, "gunicorn to start", every=0.2)
        yield url, log_path
    finally:
        stop_processes([proc], 10)


def test_gunicorn_access_log_has_no_number_and_no_token(gunicorn):
    url, log_path = gunicorn
    token = "Zk3v_8QpL2mX9rT4wYb7nC1dE5fG6hJ0aS-uV2iO3pK"  # shaped like token_urlsafe(32)
    paths = [f"/healthz?To={quote(NUMBER, safe='')}&From=%2B1+617+555+0272",
             f"/dashboard/invite/{token}", f"/nothing/{quote(NUMBER, safe='')}"]
    for path in paths:
        try:
            urllib.request.urlopen(url + path, timeout=5).read()
        except urllib.error.HTTPError:
            pass  # a 404 is logged all the same

    def logged() -> str:
        text = log_path.read_text()
        return text if text.count('"GET ') >= len(paths) + 1 else ""
    text = wait_until(logged, 10, "the access lines")
    assert "/healthz" in text and "/dashboard/invite/" in text, text
    assert not carries_number(text) and not carries_number(text, "6175550272"), text
    assert token not in text, text


# --- invitation tokens: never in a URL the server sees, never in a cookie -----------------

def _admin(app):
    from tests.coordinators import login, make_user
    make_user("admin@example.org", "admin")
    client = app.test_client()
    assert login(client, "admin@example.org").status_code == 302
    return client


def _cookie_session(app, client) -> dict:
    """The Flask session cookie's content, as anyone holding the cookie can read it."""
    cookie = client.get_cookie("hotline_session")
    return app.session_interface.get_signing_serializer(app).loads(cookie.value)


def test_an_invitation_token_is_never_in_a_path_a_query_or_a_cookie(app):
    from tests.coordinators import PASSWORD, csrf
    admin = _admin(app)
    page = admin.post("/dashboard/users", data={"csrf_token": csrf(admin, "/dashboard/users"),
                                                "email": "new@example.org",
                                                "role": "coordinator"})
    link = re.search(r'<code class="link">([^<]+)</code>', page.text).group(1)
    url, _, token = link.partition("#")
    assert len(token) >= 40 and token not in url  # only the fragment, never sent
    assert "?" not in url and url.endswith("/dashboard/invite")
    assert token not in repr(_cookie_session(app, admin))
    reinvite = admin.post("/dashboard/users/2", data={
        "csrf_token": csrf(admin, "/dashboard/users"), "action": "reinvite"})
    fresh = re.search(r'<code class="link">[^<#]+#([^<]+)</code>', reinvite.text).group(1)
    assert fresh != token and fresh not in repr(_cookie_session(app, admin))
    assert fresh not in repr(reinvite.headers)
    # the old path-style link tells nothing and takes no token
    assert app.test_client().get(f"/dashboard/invite/{fresh}").status_code == 404
    invited = app.test_client()
    done = invited.post("/dashboard/invite", data={
        "csrf_token": csrf(invited, "/dashboard/invite"), "token": fresh,
        "password": PASSWORD, "confirm": PASSWORD})
    assert done.status_code == 302 and invited.get("/dashboard/").status_code == 200
    assert fresh not in repr(_cookie_session(app, invited))


def test_the_invitation_page_reads_its_token_from_the_fragment(app):
    page = app.test_client().get("/dashboard/invite")
    assert page.status_code == 200 and 'name="token"' in page.text
    script = app.test_client().get("/dashboard/static/invite.js")
    assert script.status_code == 200 and b"location.hash" in script.data
    assert b"replaceState" in script.data


# --- Redis: nothing of a login outlives its session --------------------------------------

def test_every_redis_key_left_by_logins_expires(app):
    """Sessions expire with their lifetime; failed-login counters (keyed hashes of the email
    and address, never the email) at most a day after the last attempt."""
    from hotline.dashboard import accounts
    from hotline.core.extensions import jobs
    from hotline.core.extensions import settings as current_settings
    from tests.coordinators import PASSWORD, login, make_user
    make_user("one@example.org")
    make_user("two@example.org", "admin")
    clients = [app.test_client() for _ in range(3)]
    for client, email in zip(clients, ("one@example.org", "one@example.org", "two@example.org")):
        assert login(client, email).status_code == 302
        assert client.get("/api/me").status_code == 200  # a request pushes expiries back
    assert login(app.test_client(), "two@example.org", PASSWORD + "!").status_code == 401
    lifetime = max(current_settings().SESSION_HOURS * 3600, accounts.FAILURE_WINDOW_SECONDS,
                   accounts.ACCOUNT_MEMORY_SECONDS)
    redis = jobs.queue.connection
    keys = list(redis.scan_iter())
    assert any(b"user-sessions" in key for key in keys)
    without = {key: redis.ttl(key) for key in keys if not 0 < redis.ttl(key) <= lifetime}
    assert without == {}, without


@pytest.mark.browser
def test_a_browser_follows_an_invitation_link_and_the_server_never_sees_its_token(
        app_settings, browser, request):
    """Chromium opens the link as an invited person would: the page's script moves the
    token from the fragment into the form and off the address bar; no request line the
    server receives (what any access log or proxy would write) holds it."""
    from threading import Thread

    from werkzeug.serving import make_server

    from hotline.dashboard import accounts
    from hotline.core.extensions import db
    from tests.coordinators import PASSWORD

    port = free_port()
    app_settings["PUBLIC_BASE_URL"] = f"http://127.0.0.1:{port}"
    app = request.getfixturevalue("fresh_app")
    with app.app_context():
        _, token = accounts.create(db.session, accounts.hasher(True), "new@example.org",
                                   "coordinator")
        from hotline.dashboard.users_views import invite_url
        with app.test_request_context():
            link = invite_url(token)
    seen = []
    inner = app.wsgi_app

    def recording(environ, start_response):
        seen.append(environ.get("PATH_INFO", "") + "?" + environ.get("QUERY_STRING", ""))
        return inner(environ, start_response)
    app.wsgi_app = recording
    server = make_server("127.0.0.1", port, app, threaded=True)
    Thread(target=server.serve_forever, daemon=True).start()
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(link)
        field = page.locator("input[name=token]")
        assert field.input_value() == token and not field.is_visible()
        assert "#" not in page.url and token not in page.url
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_label("Again").fill(PASSWORD)
        page.get_by_role("button", name="Save and log in").click()
        page.wait_for_url("**/dashboard/")
    finally:
        context.close()
        server.shutdown()
    assert any(line.startswith("/dashboard/invite") for line in seen)
    assert not any(token in line for line in seen), seen
    with app.app_context():
        assert accounts.find(db.session, "new@example.org").password_hash  # it worked
