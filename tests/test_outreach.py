"""Referrals and outreach (issue 17, part 1), through the stand-in: a colleague is referred
by the web page, by a call or by a text; they get one discreet text; YES is a callback
routed like the others (a peer first, then the colleague, bridged); NO, silence and STOP
end it and the number goes. The limits (quiet period, opt-outs, rate limits, quiet hours)
never change what the referrer is told.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import inspect, select

from hotline.core.extensions import db, jobs, settings
from hotline.escalation import auditor
from hotline.models import (CallbackRequest, CallbackState, Contact, ContactEvent, OptOut,
                            Outreach, OutreachState)
from hotline.outreach import referrals
from hotline.privacy import primitives as privacy
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
