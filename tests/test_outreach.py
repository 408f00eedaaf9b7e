"""Referrals and outreach (issue 17, part 1), through the stand-in: a colleague is referred
by the web page, by a call or by a text; they get one discreet text; YES is a callback
routed like the others (a peer first, then the colleague, bridged); NO, silence and STOP
end it and the number goes. The limits (quiet period, opt-outs, rate limits, quiet hours)
never change what the referrer is told.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import inspect, select

from hotline.core.extensions import db, jobs, settings
from hotline.disclosure import report as reports
from hotline.escalation import auditor
from hotline.models import (Base, CallbackRequest, CallbackState, Contact, ContactEvent,
                            OptOut, Outreach, OutreachState, User, utcnow)
from hotline.outreach import referrals
from hotline.privacy import primitives as privacy
from hotline.roster import shifts
from hotline.statistics import queries as stats
from hotline.simulator import Answer, ScriptedPhone
from tests.conftest import HOTLINE_NUMBER, run_jobs
from tests.coordinators import login, make_user, csrf
from tests.privacy_scan import assert_kept_nowhere
from tests.scenario import TextingPhone, heard, run_scheduled

REFERRER, COLLEAGUE = "+16175550301", "+16175550302"
COLLEAGUE_TYPED = "617 555 0302"


@pytest.fixture
def daylong(hotline):
    """Texts may go at any hour (quiet hours are a test of their own)."""
    hotline.app.extensions["hotline.settings"] = hotline.app.extensions[
        "hotline.settings"].replace(SEND_FROM_HOUR=0, SEND_UNTIL_HOUR=24)
    return hotline


def rows(hotline) -> list[Outreach]:
    with hotline.app.app_context():
        return list(db.session.scalars(select(Outreach).order_by(Outreach.id)))


def texts_to(hotline, number: str) -> list[str]:
    return [m["body"] for m in hotline.sim.messages
            if m["to"] == number and m["direction"] != "inbound"]


def offer_texts(hotline, number: str) -> list[str]:
    return [b for b in texts_to(hotline, number) if "Reply YES for a call" in b]


def refer_by_text(hotline, body=f"REFER {COLLEAGUE_TYPED}", number=REFERRER):
    phone = hotline.sim.phones.get(number) or hotline.sim.add_phone(TextingPhone(number))
    phone.text(body)
    hotline.run(120)
    return phone


def web_referrer(app, email="ref@example.org"):
    with app.app_context():
        make_user(email, role="referrer")
    client = app.test_client()
    assert login(client, email).status_code == 302
    return client


def refer_on_page(client, number=COLLEAGUE_TYPED, language=""):
    return client.post("/dashboard/refer", data={"csrf_token": csrf(client, "/dashboard/refer"),
                                                 "phone": number, "language": language})


# --- referral by text, and the colleague's YES --------------------------------------------

def test_a_text_referral_leads_to_a_bridged_call_with_a_peer_when_the_colleague_says_yes(
        daylong):
    hotline = daylong
    hotline.supporter("Ada", hangup_after_bridge=30)  # presses 1 on the offer
    colleague = hotline.sim.add_phone(TextingPhone(
        COLLEAGUE, replies=[("Reply YES for a call", "YES")], ring=Answer(2),
        hangup_after_bridge=30))
    referrer = refer_by_text(hotline)
    hotline.run(900)
    assert referrer.received() == [
        "Thank you. We will reach out to your colleague. We never record what happened, "
        "and we never tell them who asked."]
    [offer] = offer_texts(hotline, COLLEAGUE)
    for revealing in ("Peer Support", "Clinician", "hotline", REFERRER[2:], "event"):
        assert revealing not in offer  # nothing on a lock screen names who, what or why
    assert all(m["from"] == HOTLINE_NUMBER for m in hotline.sim.messages
               if m["direction"] != "inbound")
    [row] = rows(hotline)
    assert row.state == OutreachState.ACCEPTED and row.sealed_number is None
    # routed like every callback: Ada first, then the colleague, bridged
    assert hotline.offers()[0][:2] == ("Ada", "accepted")
    [leg] = hotline.legs_to(colleague)
    ada_legs = {leg.sid for leg in hotline.sim.legs.values() if leg.to != colleague.number}
    [bridge] = hotline.sim.bridges
    assert {bridge.a, bridge.b} & {leg.sid} and {bridge.a, bridge.b} & ada_legs
    assert bridge.duration(hotline.sim.now) >= 29
    with hotline.app.app_context():
        callback = db.session.scalars(select(CallbackRequest)).one()
        assert callback.state == CallbackState.DONE and callback.sealed_number is None
        assert callback.contact_id == row.contact_id
        kinds = set(db.session.scalars(select(ContactEvent.kind)))
        assert "outreach_accepted" in kinds and "bridged" in kinds
        assert all(c.sealed_number is None for c in db.session.scalars(select(Contact)))
        # the statistics count it, suppressed like every other count (never who referred)
        day = utcnow().astimezone(shifts.program_zone()).date()
        period = stats.Period(day, day, shifts.program_zone())
        report = reports.build(stats.collect(db.session, period), period, k=11)
    assert report.values["outreach:yes"] == 1 and report.shown("outreach:yes") == "<11"


def test_a_spanish_referral_by_text_writes_to_the_colleague_in_spanish(daylong):
    referrer = refer_by_text(daylong, f"REFERIR {COLLEAGUE_TYPED}")
    assert referrer.received()[0].startswith("Gracias. Nos pondremos en contacto")
    [offer] = [b for b in texts_to(daylong, COLLEAGUE) if "Responda YES" in b]
    assert offer.startswith("Hola.")
    assert rows(daylong)[0].language == "es"


def test_a_referral_text_without_a_number_explains_how(daylong):
    referrer = refer_by_text(daylong, "REFER")
    assert "text REFER and their mobile number" in referrer.received()[0]
    assert rows(daylong) == []


# --- NO, STOP, silence ---------------------------------------------------------------------

@pytest.mark.parametrize("answer, state, reply", [
    ("NO", OutreachState.DECLINED, "We will not write again"),
    ("STOP", OutreachState.OPTED_OUT, "You will get no more texts"),
])
def test_no_or_stop_ends_the_outreach_and_the_number_goes(daylong, answer, state, reply):
    hotline = daylong
    hotline.supporter("Ada")
    colleague = hotline.sim.add_phone(TextingPhone(
        COLLEAGUE, replies=[("Reply YES for a call", answer)]))
    refer_by_text(hotline)
    hotline.run(600)
    [row] = rows(hotline)
    assert row.state == state and row.sealed_number is None and row.ended_at is not None
    assert any(reply in body for body in colleague.received())
    assert hotline.offers() == [] and hotline.legs_to(colleague) == []
    assert_kept_nowhere(hotline.app, (COLLEAGUE[2:],), "")
    if answer == "STOP":  # never texted again, whoever refers them
        refer_by_text(hotline, f"REFER {COLLEAGUE_TYPED}", number="+16175550309")
        assert len(offer_texts(hotline, COLLEAGUE)) == 1 and len(rows(hotline)) == 1


def test_silence_ends_the_outreach_after_the_reply_window(daylong):
    hotline = daylong
    colleague = hotline.sim.add_phone(TextingPhone(COLLEAGUE))  # never answers
    refer_by_text(hotline)
    [row] = rows(hotline)
    assert row.state == OutreachState.PENDING and row.sealed_number  # waiting for an answer
    with hotline.app.app_context():
        job = jobs.queue.fetch_job(referrals.expire_job_id(row.id))
        scheduled = jobs.queue.scheduled_job_registry.get_scheduled_time(job)
        window = scheduled.replace(tzinfo=timezone.utc) - row.sent_at
        assert abs(window - timedelta(hours=48)) < timedelta(minutes=2)
    run_scheduled(hotline)  # the reply window is over
    [row] = rows(hotline)
    assert row.state == OutreachState.EXPIRED and row.sealed_number is None
    colleague.text("YES")  # too late: an ordinary first text, no callback
    hotline.run(60)
    with hotline.app.app_context():
        assert db.session.scalars(select(CallbackRequest)).all() == []
    assert_kept_nowhere(hotline.app, (COLLEAGUE[2:],), "")


def test_the_auditor_ends_an_outreach_whose_expiry_job_was_lost(daylong, clock):
    hotline = daylong
    hotline.sim.add_phone(TextingPhone(COLLEAGUE))
    refer_by_text(hotline)
    with hotline.app.app_context():
        jobs.queue.connection.flushdb()  # every scheduled job lost
        clock.advance(hours=49)
        assert auditor.audit()["outreach"] == 1
    [row] = rows(hotline)
    assert row.state == OutreachState.EXPIRED and row.sealed_number is None
    with hotline.app.app_context():
        clock.advance(days=14)  # past the quiet period: even the keyed hash goes
        assert auditor.audit()["outreach"] == 1
    assert rows(hotline) == []


# --- referral by web page and by voice -----------------------------------------------------

def test_a_referrer_account_refers_on_the_page_and_may_open_nothing_else(daylong):
    hotline = daylong
    client = web_referrer(hotline.app)
    page = client.get("/dashboard/refer")
    assert page.status_code == 200 and "we never record what happened" in page.text.lower()
    form = page.text.split("<form", 2)[2]  # the referral form (the first is the log-out)
    assert set(re.findall(r'name="(\w+)"', form)) == {
        "csrf_token", "phone", "language"}  # no field for names, events or reasons
    for other in ("/dashboard/", "/dashboard/roster", "/dashboard/now"):
        response = client.get(other)
        assert response.status_code == 302 and response.location.endswith("/dashboard/refer")
    assert client.get("/dashboard/users").status_code == 403  # an admin's page
    assert client.get("/api/stats").status_code == 403
    hotline.sim.add_phone(TextingPhone(COLLEAGUE))
    answer = refer_on_page(client, language="es")
    assert answer.status_code == 200 and "We will reach out" in answer.text
    run_jobs(hotline.app)
    hotline.run(60)
    [offer] = [b for b in texts_to(hotline, COLLEAGUE) if "Responda YES" in b]
    assert rows(hotline)[0].language == "es"
    assert refer_on_page(client, number="12").status_code == 400  # not a number: say so


def test_a_coordinator_refers_on_the_page_and_by_the_command_line(daylong):
    hotline = daylong
    with hotline.app.app_context():
        make_user("coord@example.org")
    client = hotline.app.test_client()
    login(client, "coord@example.org")
    assert "Refer a colleague" in client.get("/dashboard/roster").text
    assert refer_on_page(client).status_code == 200
    result = hotline.app.test_cli_runner().invoke(
        args=["outreach", "send", "617 555 0303", "--language", "es"])
    assert result.exit_code == 0 and result.output.strip() == "we will reach out"
    run_jobs(hotline.app)
    hotline.run(60)
    assert len(offer_texts(hotline, COLLEAGUE)) == 1
    assert [b for b in texts_to(hotline, "+16175550303") if "Responda YES" in b]


def test_a_referral_by_voice(daylong):
    hotline = daylong
    caller = hotline.sim.add_phone(ScriptedPhone(
        REFERRER, gather=["6", "6175550302#", "9"], hangup_after_bridge=1))
    hotline.call(caller)
    hotline.run(120)
    assert heard(caller, "key in your colleague's mobile number")
    assert heard(caller, "We will reach out to your colleague.")
    assert len(offer_texts(hotline, COLLEAGUE)) == 1
    [row] = rows(hotline)
    assert row.state == OutreachState.PENDING and row.language == "en"


def test_a_voice_referral_with_no_number_asks_once_more_then_the_menu(daylong):
    hotline = daylong
    caller = hotline.sim.add_phone(ScriptedPhone(
        REFERRER, gather=["6", "12#", "34#", "9"], hangup_after_bridge=1))
    hotline.call(caller)
    hotline.run(120)
    assert sum("not a mobile number I can text" in line for line in caller.heard) == 2
    assert rows(hotline) == []


# --- limits: quiet period, opt-outs, rate limits, quiet hours; the referrer's view -----------

def test_one_outreach_per_number_per_quiet_period_and_the_referrer_hears_the_same(
        daylong, clock):
    hotline = daylong
    hotline.sim.add_phone(TextingPhone(COLLEAGUE))
    first = refer_by_text(hotline, number="+16175550311")
    second = refer_by_text(hotline, number="+16175550312")  # another colleague, same number
    assert first.received() == second.received()
    assert len(offer_texts(hotline, COLLEAGUE)) == 1 and len(rows(hotline)) == 1
    clock.advance(days=13, hours=23)
    refer_by_text(hotline, number="+16175550313")
    assert len(rows(hotline)) == 1
    clock.advance(hours=2)  # 14 days on: a new referral may text again
    third = refer_by_text(hotline, number="+16175550314")
    assert third.received() == first.received()
    assert len(offer_texts(hotline, COLLEAGUE)) == 2 and len(rows(hotline)) == 2


def test_rate_limits_per_calling_number_and_per_account(daylong):
    hotline = daylong
    cfg = settings
    with hotline.app.app_context():
        per_caller, per_account = cfg().OUTREACH_PER_CALLER, cfg().OUTREACH_PER_REFERRER
    numbers = [f"+1617555{n:04d}" for n in range(400, 400 + per_caller + 1)]
    for number in numbers:
        hotline.sim.add_phone(TextingPhone(number))
        refer_by_text(hotline, f"REFER {number}")
    referrer = hotline.sim.phones[REFERRER]
    assert len(set(referrer.received())) == 1 and len(referrer.received()) == len(numbers)
    texted = [n for n in numbers if offer_texts(hotline, n)]
    assert texted == numbers[:per_caller]  # the one over the limit: dropped, told the same
    client = web_referrer(hotline.app)
    numbers = [f"+1617555{n:04d}" for n in range(500, 500 + per_account + 1)]
    pages = [refer_on_page(client, number).text for number in numbers]
    run_jobs(hotline.app)
    hotline.run(60)
    sent = [p.split('id="refer-sent">', 1)[1].split("<", 1)[0] for p in pages]
    assert set(sent) == {"Thank you. We will reach out."}
    assert [n for n in numbers if offer_texts(hotline, n)] == numbers[:per_account]


def test_a_number_that_opted_out_is_never_texted_and_only_its_hash_is_kept(daylong):
    hotline = daylong
    colleague = hotline.sim.add_phone(TextingPhone(COLLEAGUE))
    colleague.text("STOP")
    hotline.run(30)
    referrer = refer_by_text(hotline)
    assert offer_texts(hotline, COLLEAGUE) == [] and rows(hotline) == []
    assert "We will reach out" in referrer.received()[0]
    with hotline.app.app_context():
        [opt_out] = db.session.scalars(select(OptOut)).all()
        assert opt_out.caller_key == privacy.caller_key(COLLEAGUE, settings())
    assert_kept_nowhere(hotline.app, (COLLEAGUE[2:],), "")


def test_quiet_hours_hold_the_text_until_the_morning(hotline, clock):
    clock.set(datetime(2026, 7, 1, 3, tzinfo=timezone.utc))  # 23:00 in Boston
    hotline.sim.add_phone(TextingPhone(COLLEAGUE))
    refer_by_text(hotline)
    assert offer_texts(hotline, COLLEAGUE) == []
    [row] = rows(hotline)
    with hotline.app.app_context():
        job = jobs.queue.fetch_job(referrals.send_job_id(row.id))
        due = jobs.queue.scheduled_job_registry.get_scheduled_time(job)
    # RQ schedules on the wall clock: 08:00 in Boston is 9 hours after the frozen 23:00
    wait = due.replace(tzinfo=timezone.utc) - datetime.now(timezone.utc)
    assert timedelta(hours=8, minutes=55) < wait <= timedelta(hours=9)
    clock.set(datetime(2026, 7, 1, 12, tzinfo=timezone.utc))
    run_scheduled(hotline)
    hotline.run(30)
    assert len(offer_texts(hotline, COLLEAGUE)) == 1
    assert rows(hotline)[0].sent_at == datetime(2026, 7, 1, 12, tzinfo=timezone.utc)


@pytest.mark.parametrize("before", ["nothing", "accepted", "declined", "opted out", "pending"])
def test_the_referrers_view_is_the_same_whatever_happened(daylong, before):
    """Text, page and voice answers of a second referral are identical in every case."""
    hotline = daylong
    hotline.supporter("Ada", hangup_after_bridge=5)
    answer = {"accepted": "YES", "declined": "NO", "opted out": "STOP"}.get(before)
    colleague = hotline.sim.add_phone(TextingPhone(
        COLLEAGUE, replies=[("Reply YES", answer)] if answer else [], ring=Answer(2),
        hangup_after_bridge=5))
    if before != "nothing":
        refer_by_text(hotline, number="+16175550321")
        hotline.run(600)
    assert colleague is not None
    by_text = refer_by_text(hotline, number="+16175550322").received()
    client = web_referrer(hotline.app)
    page = refer_on_page(client).text
    caller = hotline.sim.add_phone(ScriptedPhone(
        "+16175550323", gather=["6", "6175550302#", "9"], hangup_after_bridge=1))
    hotline.call(caller)
    hotline.run(120)
    assert by_text == ["Thank you. We will reach out to your colleague. We never record what "
                       "happened, and we never tell them who asked."]
    assert page.split('id="refer-sent">', 1)[1].split("</section>", 1)[0] == (
        'Thank you. We will reach out.</p>\n  <p>We never tell your colleague who asked, '
        'and we never tell you what follows: it is theirs to decide.</p>\n  <p><a href="'
        '/dashboard/refer">Refer another colleague</a></p>\n  \n')
    spoken = caller.heard[caller.heard.index(next(
        line for line in caller.heard if "key in your colleague" in line)) + 1]
    assert spoken == "Thank you. We will reach out to your colleague."


# --- the canary ------------------------------------------------------------------------------

def test_canary_no_referrer_linked_and_the_number_gone_after_each_outcome(daylong, caplog):
    caplog.set_level(logging.DEBUG)
    hotline = daylong
    hotline.supporter("Ada", hangup_after_bridge=5)
    yes, no, silent = "+16175550331", "+16175550332", "+16175550333"
    hotline.sim.add_phone(TextingPhone(yes, replies=[("Reply YES", "YES")], ring=Answer(2),
                                       hangup_after_bridge=5))
    hotline.sim.add_phone(TextingPhone(no, replies=[("Reply YES", "NO")]))
    hotline.sim.add_phone(TextingPhone(silent))
    client = web_referrer(hotline.app, "canary-referrer@example.org")
    refer_on_page(client, yes)
    refer_by_text(hotline, f"REFER {no}")
    caller = hotline.sim.add_phone(ScriptedPhone(
        REFERRER, gather=["6", silent[2:] + "#", "9"], hangup_after_bridge=1))
    hotline.call(caller)
    hotline.run(900)
    run_scheduled(hotline)  # the silent one's reply window ends
    states = sorted(row.state for row in rows(hotline))
    assert states == ["accepted", "declined", "expired"]
    with hotline.app.app_context():
        columns = {c["name"] for c in inspect(db.engine).get_columns("outreach")}
        assert not {"referrer", "user_id", "referrer_key", "caller", "from"} & columns
        foreign = {fk["referred_table"] for fk in inspect(db.engine).get_foreign_keys("outreach")}
        assert foreign == {"contacts"}  # the colleague's own contact, never the referrer
        user = db.session.scalars(select(User)).one()
        referrer_keys = {privacy.caller_key(REFERRER, settings()),
                         privacy.caller_key(REFERRER.removeprefix("+"), settings())}
        for row in db.session.scalars(select(Outreach)):
            assert not referrer_keys & set(map(str, vars(row).values()))
            assert row.sealed_number is None
        # the referrers' limits: counters under keyed hashes only, expiring by themselves
        redis = jobs.queue.connection
        limits = list(redis.scan_iter(f"{referrals.LIMIT_PREFIX}:*"))
        assert len(limits) == 2 and all(0 < redis.ttl(k) <= referrals.LIMIT_SECONDS
                                        for k in limits)
        assert not any(str(user.id) == k.decode().rsplit(":", 1)[1] for k in limits)
    assert_kept_nowhere(hotline.app, tuple(n[2:] for n in (yes, no, silent)), caplog.text)
    with hotline.app.app_context():  # the account appears nowhere but its own row
        for table in Base.metadata.sorted_tables:
            if table.name not in ("users",):
                dumped = repr(db.session.execute(select(table)).all())
                assert "canary-referrer" not in dumped, table.name
