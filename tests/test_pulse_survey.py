"""The public staff pulse survey (issue 19, part 3) on SQLite and PostgreSQL: the page when
no window is open, CSRF, one cookie only, the anonymity canary (the client address nowhere:
tables, Redis, logs, the access log), the daily keyed rate limit, and the coordinators'
pages.
"""

from __future__ import annotations

import hashlib
import logging
import re
import urllib.request

import pytest
from redis import Redis
from sqlalchemy import select

from hotline import migrate
from hotline.core.extensions import db, redis_conn
from hotline.models import Base, PulseResponse
from hotline.pulse import survey
from tests.coordinators import csrf
from tests.test_privacy_logs import _cookie_session, gunicorn  # noqa: F401 - a fixture
from tests.cluster import wait_until

#: A distinctive client behind one trusted proxy, and the proxy itself.
CANARY_CLIENT = "198.51.100.237"
BALANCER = "10.77.66.55"
CANARY = {"burnout": "5", "knows_line": "no", "used_line": "yes", "likely": "1",
          "role": "pharmacist"}
ANSWERS = {"burnout": "2", "knows_line": "yes", "used_line": "no", "likely": "4",
           "role": "nurse"}


def post(client, answers, address="192.0.2.10", forwarded=None, token=True, lang=None):
    data = dict(answers)
    if token:
        data["csrf_token"] = csrf(client, "/pulse")
    if lang:
        data["lang"] = lang
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    return client.post("/pulse", data=data, headers=headers,
                       environ_base={"REMOTE_ADDR": address})


def ballots() -> list[PulseResponse]:
    db.session.expire_all()
    return list(db.session.scalars(select(PulseResponse)))


@pytest.fixture
def window(app, session, clock):
    return survey.open_window(session, "Spring 2026")


def test_the_page_says_so_when_no_window_is_open_and_sets_no_cookie(app, session, clock):
    client = app.test_client()
    page = client.get("/pulse")
    assert page.status_code == 200
    assert "The pulse survey is not open right now" in page.text
    assert "<form" not in page.text and "Set-Cookie" not in page.headers
    assert "no-store" in page.headers["Cache-Control"]
    spanish = client.get("/pulse?lang=es")
    assert "La encuesta no está abierta" in spanish.text and 'lang="es"' in spanish.text
    # A window closed in between: the answers are refused and nothing is kept.
    window = survey.open_window(session, "Short")
    token = csrf(client, "/pulse")
    survey.close_window(session, window.id)
    answer = client.post("/pulse", data={**ANSWERS, "csrf_token": token})
    assert answer.status_code == 409 and "not open right now" in answer.text
    assert ballots() == []
    assert redis_conn.client.keys(f"{survey.LIMIT_PREFIX}:*") == []  # no limit spent


def test_the_open_survey_asks_the_five_questions_in_each_language(app, window):
    page = app.test_client().get("/pulse").text
    assert "Using your own definition of burnout, please select one of the answers below" in page
    assert "I enjoy my work. I have no symptoms of burnout." in page
    assert "I feel completely burned out" in page
    assert re.findall(r'name="burnout" value="(\d)"', page) == ["1", "2", "3", "4", "5"]
    assert re.findall(r'name="likely" value="(\d)"', page) == ["1", "2", "3", "4", "5"]
    roles = re.findall(r'name="role" value="(\w+)"', page)
    assert roles == ["physician", "nurse", "advanced_practice", "resident", "pharmacist",
                     "other", "prefer_not_to_say"]
    assert "Do you know how to reach the peer support line?" in page
    spanish = app.test_client().get("/pulse?lang=es").text
    assert "Según su propia definición de agotamiento" in spanish
    assert "Prefiero no decirlo" in spanish and "Enfermería" in spanish


def test_a_ballot_needs_the_forms_csrf_token(app, window):
    client = app.test_client()
    client.get("/pulse")
    refused = post(client, ANSWERS, token=False)
    assert refused.status_code == 400
    other = app.test_client()  # a token from another browser's session is no better
    forged = other.post("/pulse", data={**ANSWERS, "csrf_token": csrf(client, "/pulse")})
    assert forged.status_code == 400
    assert ballots() == []
    assert post(client, ANSWERS).status_code == 201
    assert len(ballots()) == 1


def test_the_csrf_session_is_the_only_cookie_and_holds_only_the_token(app, window):
    client = app.test_client()
    page = client.get("/pulse")
    assert [h.split("=")[0] for h in page.headers.getlist("Set-Cookie")] == ["hotline_session"]
    assert "Expires" not in page.headers["Set-Cookie"]  # gone with the browser session
    answer = post(client, ANSWERS)
    assert answer.status_code == 201 and "Your answers were counted" in answer.text
    assert [c.key for c in client._cookies.values()] == ["hotline_session"]
    assert set(_cookie_session(app, client)) == {"csrf"}


def test_an_incomplete_ballot_is_asked_again_and_not_counted(app, window):
    client = app.test_client()
    answer = post(client, {**ANSWERS, "likely": "9", "role": "astronaut"})
    assert answer.status_code == 400 and "Please answer every question." in answer.text
    assert 'value="2" required checked' in answer.text  # the answers given stay chosen
    assert ballots() == []


def _dump_tables() -> str:
    rows = []
    with db.engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            rows += [f"{table.name}: {tuple(r)!r}" for r in conn.execute(select(table))]
    return "\n".join(rows)


def _dump_redis(client: Redis) -> str:
    out = []
    for key in client.scan_iter(count=1000):
        kind = client.type(key).decode()
        reader = {"string": lambda k: client.get(k), "hash": client.hgetall,
                  "list": lambda k: client.lrange(k, 0, -1), "set": client.smembers,
                  "zset": lambda k: client.zrange(k, 0, -1, withscores=True)}.get(kind)
        value = reader(key) if reader else b""
        out.append(f"{key!r} {kind} {value!r}")
    return "\n".join(out)


def _forms_of(address: str) -> list[str]:
    """The address, and the obvious ways of writing it down or hashing it unkeyed."""
    return [address, address.replace(".", "-"), address.replace(".", ""),
            hashlib.sha256(address.encode()).hexdigest(),
            hashlib.md5(address.encode()).hexdigest(),  # noqa: S324 - looking for it
            hashlib.sha1(address.encode()).hexdigest()]  # noqa: S324


def test_a_canary_ballot_is_kept_without_its_address_anywhere(app_settings, request, clock,
                                                              caplog):
    """The canary's answers are stored, from a client behind a trusted proxy; its address
    (and the proxy's) is in no table, no Redis key or value and no log line."""
    app_settings["PROXY_HOPS"] = 1  # one balancer: X-Forwarded-For names the client
    app = request.getfixturevalue("app")
    survey.open_window(db.session, "Canary window")
    caplog.set_level(logging.DEBUG)
    client = app.test_client()
    answer = post(client, CANARY, address=BALANCER, forwarded=CANARY_CLIENT)
    assert answer.status_code == 201
    [stored] = ballots()
    assert (stored.role, stored.burnout, stored.knows_line, stored.used_line,
            stored.likely) == ("pharmacist", 5, False, True, 1)
    # The limit counted this client (the proxy's address is not the one limited).
    assert survey.limit_key(CANARY_CLIENT) in {k.decode() for k in redis_conn.client.keys()}
    tables, keys = _dump_tables(), _dump_redis(redis_conn.client)
    assert "pharmacist" in tables and "Canary window" in tables  # the dump sees the rows
    for address in (CANARY_CLIENT, BALANCER):
        for form in _forms_of(address):
            assert form not in tables, form
            assert form not in keys, form
            assert form not in caplog.text, form
    # No column of the ballot is a time: only the window says when.
    assert all(not hasattr(getattr(stored, c.key), "year")
               for c in PulseResponse.__table__.columns)


def test_the_access_log_writes_no_address_for_the_survey(gunicorn, tmp_path):  # noqa: F811
    """gunicorn's access line for /pulse has "-" where other pages have the address."""
    url, log_path = gunicorn
    migrate.upgrade("head", url=f"sqlite:///{tmp_path / 'h.db'}")
    for path in ("/pulse", "/pulse?lang=es", "/healthz"):
        urllib.request.urlopen(url + path, timeout=5).read()
    def logged() -> str:
        text = log_path.read_text()
        # both /pulse lines, and /healthz twice (the fixture's start-up check and ours)
        return text if text.count('GET /pulse') >= 2 and text.count("GET /healthz") >= 2 \
            else ""
    text = wait_until(logged, 10, "the access lines")
    lines = [line for line in text.splitlines() if '"GET /' in line]
    pulse = [line for line in lines if "GET /pulse " in line]
    assert len(pulse) == 2 and all(line.startswith('- "GET /pulse HTTP') for line in pulse), text
    assert any(line.startswith('127.0.0.1 "GET /healthz') for line in lines), text
    assert "127.0.0.1" not in "\n".join(pulse)


def test_the_daily_limit_counts_a_keyed_hash_per_address(app_settings, request, clock):
    """HOTLINE_PULSE_PER_DAY ballots from one address a day: the next is refused and not
    stored; another address is counted, and so is the first again the next day. The
    counters' keys carry no address and expire by the end of the day."""
    app_settings["PULSE_PER_DAY"] = 3
    app = request.getfixturevalue("app")
    survey.open_window(db.session, "Limited")
    client = app.test_client()
    first, second = "192.0.2.44", "192.0.2.45"
    assert [post(client, ANSWERS, first).status_code for _ in range(3)] == [201] * 3
    refused = post(client, ANSWERS, first)
    assert refused.status_code == 429 and "already have the answers" in refused.text
    assert len(ballots()) == 3
    assert post(client, ANSWERS, second).status_code == 201
    redis = redis_conn.client
    limits = [k for k in redis.keys(f"{survey.LIMIT_PREFIX}:*")]
    assert len(limits) == 2
    assert sorted(int(redis.get(k)) for k in limits) == [1, 4]
    for key in limits + redis.keys(f"{survey.DAY_SECRET_PREFIX}:*"):
        assert first.encode() not in key and second.encode() not in key
        assert 0 < redis.ttl(key) <= 86400
    clock.advance(days=1)
    assert post(client, ANSWERS, first).status_code == 201
    assert len(ballots()) == 5
    # A new day's secret: the same address has a key unlike yesterday's.
    assert len(redis.keys(f"{survey.LIMIT_PREFIX}:*")) == 3
    assert len(redis.keys(f"{survey.DAY_SECRET_PREFIX}:*")) == 2


def test_coordinators_open_and_close_a_window_and_see_suppressed_results(app, request,
                                                                         clock):
    anonymous = app.test_client()  # (before any login: the test's app context keeps g.user)
    assert anonymous.get("/dashboard/pulse").status_code == 302  # login required
    coordinator = request.getfixturevalue("coordinator")
    page = coordinator.get("/dashboard/pulse")
    assert page.status_code == 200 and "No window is open" in page.text
    token = csrf(coordinator, "/dashboard/pulse")
    assert coordinator.post("/dashboard/pulse/open", data={"title": "May"}).status_code == 400
    opened = coordinator.post("/dashboard/pulse/open", data={"csrf_token": token,
                                                            "title": "May 2026"})
    assert opened.status_code == 302
    page = coordinator.get("/dashboard/pulse").text
    assert "<strong>May 2026</strong> is open" in page
    again = coordinator.post("/dashboard/pulse/open", data={"csrf_token": token, "title": "X"})
    assert again.status_code == 400 and "already open" in again.text
    voter = app.test_client()
    for i in range(14):
        assert post(voter, ANSWERS, address=f"192.0.2.{i + 1}").status_code == 201
    for i in range(3):
        assert post(voter, CANARY, address=f"192.0.2.{i + 100}").status_code == 201
    window = survey.current(db.session)
    voter_token = csrf(voter, "/pulse")
    assert "Trends" in page and "No closed window yet" in page  # open: no results yet
    closed = coordinator.post(f"/dashboard/pulse/{window.id}/close",
                              data={"csrf_token": token})
    assert closed.status_code == 302
    page = coordinator.get("/dashboard/pulse").text
    assert "May 2026" in page and "fewer than 11 answers from this role" in page
    trends_row = re.search(r"<th scope=\"row\">May 2026</th>(.*?)</tr>", page).group(1)
    assert "<td>17</td>" in trends_row
    # 14 nurses and 3 pharmacists: the pharmacists are hidden, and so are the nurses.
    nurse_row = re.search(r"<th scope=\"row\">Nurse</th>(.*?)</tr>", page).group(1)
    assert "&lt;11" in nurse_row and "worked out from the total" in nurse_row
    late = voter.post("/pulse", data={**ANSWERS, "csrf_token": voter_token})
    assert late.status_code == 409 and len(ballots()) == 17


def test_the_promise_about_results_says_the_running_k(app_settings, request, clock):
    app_settings["MIN_CELL"] = 20
    app = request.getfixturevalue("app")
    survey.open_window(db.session, "Spring")
    assert "Results are only shown for groups of at least 20 people." in (
        app.test_client().get("/pulse").text)
    assert "al menos 20 personas" in app.test_client().get("/pulse?lang=es").text


def test_an_ipv6_client_cannot_rotate_through_its_own_64_to_stuff_ballots(app_settings,
                                                                         request, clock):
    """One IPv6 subscriber holds a whole /64 (2^64 addresses): counting each address
    alone let one person vote without limit. The limit counts the /64 (behind a balancer
    set as one hop, the forwarded client's /64)."""
    app_settings["PULSE_PER_DAY"] = 3
    app_settings["PROXY_HOPS"] = 1
    app = request.getfixturevalue("app")
    survey.open_window(db.session, "Limited")
    client = app.test_client()
    answers = [post(client, ANSWERS, f"2001:db8:5:7::{n:x}").status_code for n in range(1, 6)]
    assert answers == [201, 201, 201, 429, 429]
    behind = [post(client, ANSWERS, BALANCER, forwarded=f"2001:db8:9:9:{n:x}::1").status_code
              for n in range(1, 6)]
    assert behind == [201, 201, 201, 429, 429]
    assert post(client, ANSWERS, "2001:db8:5:8::1").status_code == 201  # another /64
    assert len(ballots()) == 7


def test_hostile_input_to_the_coordinators_windows_is_a_clear_400(app, coordinator, clock):
    """A NUL in a title (PostgreSQL refuses it), other control characters and bidi
    overrides (a title reading backwards on the page), and a window id past 64 bits: each
    is a 400 saying why, never a 500, and no window is opened."""
    token = csrf(coordinator, "/dashboard/pulse")
    for title in ("Spring\x00 2026", "\x00", "Spring\x1b[2J", "Spring \u202e6202"):
        page = coordinator.post("/dashboard/pulse/open", data={"csrf_token": token,
                                                               "title": title})
        assert page.status_code == 400 and "character" in page.text, title
    assert survey.current(db.session) is None
    for window_id in (2 ** 63, 2 ** 64, 10 ** 30):
        page = coordinator.post(f"/dashboard/pulse/{window_id}/close",
                                data={"csrf_token": token})
        assert page.status_code == 400 and "not open" in page.text


def test_a_key_expiring_between_two_redis_calls_leaves_no_counter_for_ever(app, window,
                                                                           monkeypatch):
    """At the day's end a key can expire between two Redis calls. The day's secret was set
    then read back (gone: the tag was made under an empty secret, the same every day) and
    the counter given its expiry then incremented (gone: INCR made a counter with no expiry,
    kept for ever). One atomic script does each now."""
    real = redis_conn.client

    class ExpiresAtOnce:
        """Redis, where every key a plain SET writes is gone before the next call."""
        def __getattr__(self, name):
            return getattr(real, name)

        def set(self, name, *args, **kwargs):
            done = real.set(name, *args, **kwargs)
            real.delete(name)
            return done

    monkeypatch.setattr(type(redis_conn), "client", property(lambda _self: ExpiresAtOnce()))
    assert post(app.test_client(), ANSWERS, "192.0.2.80").status_code == 201
    keys = real.keys(f"{survey.LIMIT_PREFIX}:*")
    assert len(keys) == 1 and 0 < real.ttl(keys[0]) <= 86400
    secrets = real.keys(f"{survey.DAY_SECRET_PREFIX}:*")
    assert len(secrets) == 1 and real.get(secrets[0]) and 0 < real.ttl(secrets[0]) <= 86400


def test_a_client_on_the_hospital_network_cannot_forge_x_forwarded_for_to_stuff_ballots(
        app_settings, request, clock):
    """With HOTLINE_PROXY_HOPS unset, a peer on a private network (a staff member's
    computer on the hospital's own network, reaching the app directly) was counted by
    whatever X-Forwarded-For it sent: a new invented address for each ballot, no limit.
    The survey counts only the address the hops setting vouches for (failing closed: a
    balancer nobody declared is one voter until HOTLINE_PROXY_HOPS is set)."""
    app_settings["PULSE_PER_DAY"] = 3
    app = request.getfixturevalue("app")
    survey.open_window(db.session, "Limited")
    client = app.test_client()
    answers = [post(client, ANSWERS, "10.20.30.40", forwarded=f"203.0.113.{n}").status_code
               for n in range(1, 7)]
    assert answers == [201, 201, 201, 429, 429, 429]
    assert len(ballots()) == 3


def test_a_ballot_in_flight_when_the_window_closes_is_not_added_to_its_results(
        app, window, monkeypatch):
    """A ballot found the window open, then a coordinator closed it and read its results,
    then the ballot was stored in the closed window: a second version of final results, and
    the two versions subtracted are that one ballot. The ballot now goes in only while the
    window is open at the moment it is stored (the close waits for it, or it is refused)."""
    from sqlalchemy.orm import Session

    counted = survey.over_limit

    def closed_meanwhile(address):
        with Session(db.engine) as coordinator:   # another request, its own transaction
            survey.close_window(coordinator, window.id)
        return counted(address)

    monkeypatch.setattr(survey, "over_limit", closed_meanwhile)
    answer = post(app.test_client(), ANSWERS)
    assert answer.status_code == 409 and "not open right now" in answer.text
    assert ballots() == []
