"""Words people read: each side its own goodbye, grammatical durations, one message per event,
and logins that warn before a wait (issue 14, "Words")."""

from __future__ import annotations

import json
import re
import shutil
from collections import Counter
from datetime import date
from zoneinfo import ZoneInfo

import pytest

from hotline.dashboard import accounts
from hotline.core import flows
from hotline.statistics import queries as stats
from hotline.text import words as texting
from hotline.core.errors import FlowError
from hotline.core.settings import ROOT
from tests.conftest import twiml
from tests.scenario import (TextingPhone, call, clinician, connected_conversation, only_contact,
                            press, run_scheduled)
from tests.coordinators import PASSWORD, csrf, make_user
from tests.coordinators import COORD, WRONG, post_login


def test_after_the_clinicians_bye_the_supporter_gets_a_goodbye_meant_for_them(hotline):
    ada, doc = connected_conversation(hotline, "+16175550191")
    assert hotline.contacts()[0].state == "connected"
    doc.text("BYE")
    hotline.run(600)
    assert hotline.contacts()[0].state == "ended"
    assert any("Thank you for reaching out" in b for b in doc.received())
    mine = [b for b in ada.received() if "ended" in b]
    assert mine == ["The conversation has ended. Thank you for supporting a colleague."]
    assert not any("reaching out" in b or "Text us any time" in b for b in ada.received())


def test_a_quiet_conversation_tells_the_supporter_in_their_own_words(hotline):
    ada, doc = connected_conversation(hotline, "+16175550192")
    run_scheduled(hotline)  # SMS_IDLE_MINUTES later
    hotline.run(60)
    assert any("Text us any time" in b for b in doc.received())
    assert any("quiet period. Thank you for supporting a colleague" in b
               for b in ada.received())
    assert not any("Text us any time" in b for b in ada.received())


def test_a_supporter_who_passes_is_told_once_that_the_request_moved_on(hotline):
    passes = hotline.supporter("Passes", phone_class=TextingPhone,
                               replies=[("Reply YES", "PASS")])
    hotline.supporter("Ready", phone_class=TextingPhone, replies=[("Reply YES", "YES")])
    doc = clinician(hotline, "+16175550194", replies=[("Reply 1", "2")])
    doc.text("hello")
    hotline.run(600)
    run_scheduled(hotline)  # the passed offer's expiry job runs too: it must say nothing
    hotline.run(300)
    assert hotline.offers() == [("Passes", "declined", 1), ("Ready", "accepted", 1)]
    assert [b for b in passes.received() if "moved on" in b] == [
        "The request has moved on to another supporter."]


# --- durations: "1 minute", "5 minutes", "1 minuto", "5 minutos" --------------------------

@pytest.fixture
def one_minute(app_settings):
    """A program that gives supporters 1 minute to reply and promises callbacks in 1."""
    app_settings.update(SMS_ACCEPT_SECONDS=60, CALLBACK_PROMISE_MINUTES=1)
    return app_settings


def test_a_one_minute_offer_says_1_minute(one_minute, request):
    hotline = request.getfixturevalue("hotline")
    ada = hotline.supporter("Ada", phone_class=TextingPhone, replies=[("Reply YES", "STATUS")])
    doc = clinician(hotline, "+16175550195", replies=[("Reply 1", "2")])
    doc.text("hello")
    hotline.run(600)
    offers = [b for b in ada.received() if "Reply YES" in b]
    assert offers[0] == ("Peer support text request. Reply YES within 1 minute to take it, "
                         "PASS to pass.")
    assert any("You are ON. Peer support text request. Reply YES within 1 minute " in b
               for b in ada.received())  # STATUS says the same
    assert not any("1 minutes" in b for b in ada.received())


def test_a_spanish_text_callback_promise_says_1_minuto(one_minute, request):
    hotline = request.getfixturevalue("hotline")
    hotline.supporter("Ada", phone_class=TextingPhone)  # on: "within N minutes" is keepable
    doc = clinician(hotline, "+16175550196", replies=[("Responda 1", "3")])
    doc.text("hola, necesito hablar")
    hotline.run(300)
    promise = [b for b in doc.received() if "devolverá la llamada" in b]
    assert promise and "en menos de 1 minuto desde este número" in promise[0]


@pytest.mark.parametrize("lang,minutes,said", [
    ("en", 1, "within 1 minute, from"), ("en", 5, "within 5 minutes, from"),
    ("es", 1, "en menos de 1 minuto, desde"), ("es", 5, "en menos de 5 minutos, desde")])
def test_a_spoken_callback_promise_is_grammatical(app_settings, request, lang, minutes, said):
    app_settings["CALLBACK_PROMISE_MINUTES"] = minutes
    twilio = request.getfixturevalue("twilio")
    session = request.getfixturevalue("session")
    request.getfixturevalue("make_supporter")()  # someone is on: the promise is "within"
    call(twilio)
    contact = only_contact(session)
    if lang == "es":
        press(twilio, contact.id, digits="8")
    doc = twiml(press(twilio, contact.id, digits="2"))
    assert said in doc.find("Say").text


def test_flows_that_write_the_unit_after_minutes_are_refused_at_start(tmp_path):
    """"{minutes}" is the whole duration: "{minutes} minutes" would read "5 minutes minutes"."""
    for name, loader in (("sms.yaml", texting.load), ("voice.yaml", flows.load)):
        folder = tmp_path / name.split(".")[0]
        shutil.copytree(ROOT / "ivr_flows", folder)
        text = (folder / name).read_text()
        (folder / name).write_text(text.replace("en menos de {minutes}",
                                                "en menos de {minutes} minutos"))
        with pytest.raises(FlowError, match="with no unit after it"):
            loader(folder)
        loader(ROOT / "ivr_flows")  # the shipped flows load


# --- logins: a warning before the last free try, whom to ask, a logout confirmation --------

def _login_text(response) -> str:
    return response.text.replace("&#39;", "'")


@pytest.mark.parametrize("email", [COORD, "nobody@example.org"])
def test_wrong_passwords_warn_before_the_last_free_try(app, clock, email):
    """Before: five times the same "do not match", then a wait with no warning. Now the
    try before the last free one says 1 attempt is left and whom to ask; the one that
    starts the wait says so at once. An unknown email reads exactly the same."""
    make_user(COORD)
    client = app.test_client()
    free = accounts.MAX_FAILURES_PER_ACCOUNT
    pages = [post_login(client, email, WRONG) for _ in range(free)]
    assert [p.status_code for p in pages] == [401] * free
    texts = [_login_text(p) for p in pages]
    assert all("That email and password do not match an account." in t for t in texts)
    assert not any("left before a wait" in t for t in texts[:free - 3])
    assert "2 attempts left before a wait" in texts[free - 3]
    assert "1 attempt left before a wait" in texts[free - 2]
    assert "ask one of the program's dashboard admins" in texts[free - 2]
    assert re.search(r"Too many failed logins for this account\. You can try again at "
                     r"\d\d:\d\d \S+ \(in 1 minute\)", texts[free - 1])
    assert "ask one of the program's dashboard admins" in texts[free - 1]
    assert post_login(client, email, WRONG).status_code == 429


def test_logging_out_says_so(app):
    make_user(COORD)
    client = app.test_client()
    assert post_login(client, COORD, PASSWORD).status_code == 302
    out = client.post("/dashboard/logout",
                      data={"csrf_token": csrf(client, "/dashboard/roster")},
                      follow_redirects=True)
    assert out.status_code == 200 and "Log in" in out.text
    assert re.search(r'role="status">You are logged out\.<', out.text)
    assert client.get("/dashboard/roster").status_code in (302, 401)


# --- statistics: time to a human to the second ------------------------------------------

def test_time_to_a_human_is_shown_to_the_second(app, session, make_supporter):
    """Before: whole minutes (65 s showed as 1, 700 s as 11). Now the page writes
    "1 min 05 s" and the CSV and JSON keep the exact seconds; the buckets are unchanged."""
    import csv
    import io
    from datetime import UTC, datetime, time, timedelta

    from hotline.statistics import periods
    from hotline.roster.shifts import program_zone
    from tests.test_stats import Seeder
    zone = program_zone()
    span = periods.containing(datetime.now(zone).date() - timedelta(days=60), "month")
    seeder = Seeder(session, make_supporter(name="Ada Peer"))
    # Enough in every bucket, and of both kinds of human, that the medians are published.
    waits = [30] * 12 + [65] * 30 + [200] * 12 + [400] * 12 + [700] * 12
    for i, seconds in enumerate(waits):
        day = span.first + timedelta(days=i % 20)
        at = datetime.combine(day, time(9 + i % 8, i % 60), tzinfo=zone).astimezone(UTC)
        seeder.contact(at, wait=seconds / 60, caller=f"w{i}",
                       outcome="connected_backup" if seconds >= 400 else "connected")
    make_user(COORD)
    client = app.test_client()
    assert post_login(client, COORD, PASSWORD).status_code == 302

    data = client.get(f"/api/stats?period={span.id}").json
    assert data["summary"]["median_seconds_to_human"] == 65
    assert data["summary"]["p90_seconds_to_human"] == 700
    table = next(t for t in data["tables"] if t["id"] == "time_to_human")
    assert [r["values"][0] for r in table["rows"]] == [12, 30, 12, 12, 12]

    rows = list(csv.reader(io.StringIO(client.get(
        f"/dashboard/stats.csv?period={span.id}").text)))
    assert ["summary", "median_seconds_to_human", "", "65"] in rows
    assert ["summary", "p90_seconds_to_human", "", "700"] in rows

    page = client.get(f"/dashboard/?period={span.id}").text
    assert re.search(r'<div class="value">1 min 05 s</div><div class="label">median time to '
                     r'a human', page)
    assert re.search(r'<div class="value">11 min 40 s</div><div class="label">90th percentile',
                     page)


def test_a_month_published_in_whole_minutes_keeps_its_wait_buckets():
    """A month frozen before waits were counted by the second ("waits": minutes) reads as
    the start of each minute: the same bucket counts it was published with."""
    from hotline.disclosure import joint
    from hotline.disclosure import report as reports
    raw = stats.Raw(contacts=50, outcomes=Counter(connected=50),
                    waits=Counter({0: 11, 1: 12, 4: 13, 12: 14}))
    old = json.loads(joint._dump(raw))
    old["waits"] = old.pop("wait_seconds")
    loaded = joint._load(json.dumps(old))
    assert loaded.waits == {0: 11, 60: 12, 240: 13, 720: 14}
    assert joint._load(joint._dump(loaded)).waits == loaded.waits  # new rows: exact seconds
    built = reports.build(loaded, stats.Period(date(2025, 3, 1), date(2025, 3, 31),
                                               ZoneInfo("UTC")), k=11)
    assert [built.shown(f"wait:{i}") for i in range(5)] == [11, 12, 13, "<11", 14]


def test_days_cached_when_waits_were_minutes_are_counted_again(session):
    """A day cached before waits were counted by the second ("w": minutes) is not added
    in as seconds: it is counted again, and stored anew."""
    import random

    from sqlalchemy import select, update

    from hotline.models import StatsDay
    from hotline.statistics.records import DAY_VERSION
    from tests.test_stats_days import NOW, periods, seed
    seed(session, random.Random(4))
    period = periods()[1]
    live = stats.collect(session, period, cache=False, now=NOW)
    session.rollback()
    assert stats.collect(session, period, now=NOW) == live  # fills the cache
    for day, counts in session.execute(select(StatsDay.day, StatsDay.counts)).all():
        old = json.loads(counts)  # as cached before: no version, waits in minutes
        del old["version"]
        old["w"] = {str(int(s) // 60): n for s, n in old.pop("waits")}
        session.execute(update(StatsDay).where(StatsDay.day == day)
                        .values(counts=json.dumps(old)))
    session.commit()
    assert stats.collect(session, period, now=NOW) == live
    assert all(json.loads(c)["version"] == DAY_VERSION and "w" not in json.loads(c)
               for c in session.scalars(select(StatsDay.counts)))
