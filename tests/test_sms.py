"""The text path webhook by webhook: intake, keywords, supporters' commands, relays."""

from __future__ import annotations

import itertools
import uuid

from lxml import etree
from rq import Queue
from sqlalchemy import select

from hotline.privacy import primitives as privacy
from hotline.lifecycle import routing
from hotline.core.extensions import jobs, settings
from hotline.models import (CallbackRequest, Contact, InboundMessage, MessageSid, Offer, OptOut,
                            Supporter)
from tests.conftest import HOTLINE_NUMBER

CLINICIAN = "+16175550161"
_sids = itertools.count(1)


def text(twilio, body, sender=CLINICIAN, sid=None, media=0):
    response = twilio.post("/twilio/sms", {
        "MessageSid": sid or f"SM{uuid.uuid4().hex}", "From": sender, "To": HOTLINE_NUMBER,
        "Body": body, "NumMedia": media, "AccountSid": "AC" + "1" * 32})
    assert response.status_code == 200, response.data
    doc = etree.fromstring(response.data)
    return [(m.get("to"), m.text) for m in doc.findall("Message")]


def job_names(redactions=False):
    names = [j.func_name for j in Queue("hotline", connection=jobs.queue.connection).jobs]
    return [n for n in names if redactions or n != "workers.texts.redact"]


def only_contact(session):
    return session.scalars(select(Contact)).one()


def test_first_text_gets_the_intake_menu_and_keeps_the_number_sealed(twilio, session):
    [(to, body)] = text(twilio, "hi, rough night")
    assert to is None and "Reply 1 for a call from a peer now, 2 to text" in body
    contact = only_contact(session)
    assert contact.channel == "sms" and contact.state == "menu"
    assert CLINICIAN not in (contact.sealed_number or "")
    assert privacy.unseal(contact.sealed_number, settings()) == CLINICIAN
    assert contact.caller_key == privacy.caller_key(CLINICIAN, settings())


def test_spanish_text_gets_spanish(twilio, session):
    [(_, body)] = text(twilio, "Hola, necesito hablar")
    assert body.startswith("Clinician Peer Support: apoyo confidencial")
    assert only_contact(session).language == "es"


def test_reply_2_asks_for_a_text_peer(twilio, session):
    text(twilio, "hello")
    [(_, body)] = text(twilio, "2")
    assert "finding a peer supporter to text with you" in body
    contact = only_contact(session)
    assert contact.mode == "text" and contact.state == "waiting"
    assert job_names() == ["workers.offer.route"]
    [(_, again)] = text(twilio, "are you there?")
    assert "still finding" in again


def test_reply_1_asks_for_a_call(twilio, session):
    text(twilio, "hello")
    [(_, body)] = text(twilio, "1")
    assert "will call you from this number" in body
    assert only_contact(session).mode == "call"


def test_crisis_words_get_the_crisis_line_at_once_and_go_first(twilio, session):
    jobs.queue.enqueue("workers.offer.route", 99, 1)  # someone else already waiting
    replies = text(twilio, "I want to end it all tonight")
    assert "call or text 988 now" in replies[0][1]
    assert "finding a peer supporter" in replies[1][1]
    queued = Queue("hotline", connection=jobs.queue.connection).jobs
    assert queued[0].args == (only_contact(session).id, 1)  # ahead of the earlier request


def test_reply_3_keeps_a_sealed_callback(twilio, session, make_supporter):
    make_supporter()  # someone is on: the promise is "within 30 minutes"
    text(twilio, "hello")
    [(_, body)] = text(twilio, "3")
    assert "call you back within 30 minutes" in body and "988" in body
    request = session.scalars(select(CallbackRequest)).one()
    assert privacy.unseal(request.sealed_number, settings()) == CLINICIAN
    contact = only_contact(session)
    assert contact.outcome == "callback_requested" and contact.sealed_number is None


def test_stop_silences_everything_until_start(twilio, session):
    text(twilio, "hello")
    text(twilio, "2")
    [(_, body)] = text(twilio, "STOP")
    assert "no more texts" in body
    assert session.get(OptOut, privacy.caller_key(CLINICIAN, settings())) is not None
    contact = only_contact(session)
    assert contact.outcome == "abandoned" and contact.sealed_number is None
    assert "workers.offer.cancel_offers" in job_names()
    assert text(twilio, "hello?") == []
    [(_, back)] = text(twilio, "start")
    assert "Texts are back on" in back
    assert session.scalars(select(OptOut)).all() == []


def test_help_names_the_program(twilio):
    [(_, body)] = text(twilio, "HELP")
    assert "Clinician Peer Support" in body and "your program coordinator" in body


def test_the_same_message_delivered_twice_has_one_effect(twilio, session):
    sid = "SM" + "d" * 32
    first = text(twilio, "hello", sid=sid)
    assert first and text(twilio, "hello", sid=sid) == []
    assert len(session.scalars(select(Contact)).all()) == 1
    assert session.scalars(select(InboundMessage)).one().message_sid == sid


def test_media_is_not_passed_on_and_empty_texts_get_the_menu(twilio, session):
    replies = text(twilio, "", media=1)
    assert "text only" in replies[0][1]
    [(_, body)] = text(twilio, "", sender="+16175550162")
    assert "empty message" in body


def test_an_incoming_sid_is_filed_for_redaction_before_a_failing_handler(
        twilio, session, monkeypatch):
    def fails(*args, **kwargs):
        raise RuntimeError("the handler breaks")

    monkeypatch.setattr("hotline.text.conversations.handle", fails)
    sid = "SM" + "e" * 32
    [(_, sorry)] = text(twilio, "hello", sid=sid)
    assert "could not take your message" in sorry
    [filed] = session.scalars(select(MessageSid)).all()
    assert (filed.sid, filed.direction, filed.redacted_at) == (sid, "inbound", None)
    assert job_names(redactions=True) == []  # the auditor redacts it: no job to lose


# --- supporters -----------------------------------------------------------------------------

def test_supporter_commands(twilio, session, make_supporter):
    supporter = make_supporter("Ada", available=False)
    [(_, on)] = text(twilio, "on", sender=supporter.phone)
    assert "You are ON" in on
    session.refresh(supporter)
    assert supporter.available
    [(_, status)] = text(twilio, "STATUS", sender=supporter.phone)
    assert "You are ON" in status and "no open request" in status
    [(_, off)] = text(twilio, "Off", sender=supporter.phone)
    assert "You are OFF" in off
    [(_, unknown)] = text(twilio, "what?", sender=supporter.phone)
    assert unknown.startswith("Commands: ON")
    [(_, yes)] = text(twilio, "YES", sender=supporter.phone)
    assert "no open request" in yes


def start_conversation(twilio, session, make_supporter):
    supporter = make_supporter("Ada")
    text(twilio, "hello")
    text(twilio, "2")
    contact = only_contact(session)
    [offer] = routing.offer_next(session, contact, 1)
    replies = text(twilio, "yes", sender=supporter.phone)
    return supporter, contact, offer, replies


def test_yes_connects_and_relays_both_ways_masked(twilio, session, make_supporter):
    supporter, contact, offer, replies = start_conversation(twilio, session, make_supporter)
    assert replies[0][0] is None and "texting with a clinician" in replies[0][1]
    assert replies[1] == (CLINICIAN, replies[1][1]) and "texting with a peer" in replies[1][1]
    session.refresh(contact)
    assert contact.outcome == "connected" and contact.supporter_id == supporter.id
    # clinician -> supporter: relayed from the hotline number, with a status callback
    [(to, body)] = text(twilio, "Long shift, lost a patient")
    assert (to, body) == (supporter.phone, "Long shift, lost a patient")
    # supporter -> clinician
    [(to, body)] = text(twilio, "I'm here. Tell me more.", sender=supporter.phone)
    assert (to, body) == (CLINICIAN, "I'm here. Tell me more.")
    long = "x" * 1600
    assert text(twilio, long) == [(supporter.phone, long)]


def test_every_reply_carries_a_status_callback_that_files_its_sid(twilio, session,
                                                                   make_supporter):
    start_conversation(twilio, session, make_supporter)
    response = twilio.post("/twilio/sms", {"MessageSid": "SM" + "f" * 32, "From": CLINICIAN,
                                           "Body": "hello there", "NumMedia": "0"})
    [relay] = etree.fromstring(response.data).findall("Message")
    assert relay.get("statusCallback") == "https://hotline.example.org/twilio/sms/status"
    menu = etree.fromstring(twilio.post("/twilio/sms", {
        "MessageSid": "SM" + "9" * 32, "From": "+16175550169", "Body": "hi"}).data)
    assert [m.get("statusCallback") for m in menu.findall("Message")] == [
        "https://hotline.example.org/twilio/sms/status"]  # not only relays
    jobs.queue.empty()
    # "sent" may be the last status a carrier reports: the sid is filed all the same
    for status in ("sent", "sent", "delivered"):
        assert twilio.post("/twilio/sms/status", {"MessageSid": "SM" + "a" * 32,
                                                  "MessageStatus": status}).status_code == 204
    filed = {m.sid: m.direction for m in session.scalars(select(MessageSid))}
    assert filed["SM" + "a" * 32] == "outbound"
    assert job_names(redactions=True) == []


def test_bye_ends_it_asks_about_check_ins_then_forgets_the_number(twilio, session,
                                                                  make_supporter):
    supporter, contact, *_ = start_conversation(twilio, session, make_supporter)
    replies = text(twilio, "BYE", sender=supporter.phone)
    # the supporter: their goodbye, then the thank-you text after a contact (issue 16)
    assert [to for to, _ in replies] == [None, None, CLINICIAN, CLINICIAN]
    assert "text SUPPORT" in replies[1][1]
    replies = replies[:1] + replies[2:]
    assert all("conversation has ended" in body for _, body in replies[:2])
    assert "check-in text" in replies[2][1]
    session.refresh(contact)
    session.refresh(supporter)
    assert contact.state == "ended" and contact.consent == "asked"
    assert supporter.busy_with is None
    [(_, body)] = text(twilio, "no")
    assert "Understood" in body
    session.refresh(contact)
    assert contact.sealed_number is None and contact.consent == "no"


def test_pass_moves_the_request_on(twilio, session, make_supporter):
    supporter = make_supporter("Ada")
    text(twilio, "hello")
    text(twilio, "2")
    contact = only_contact(session)
    routing.offer_next(session, contact, 1)
    jobs.queue.empty()
    [(_, body)] = text(twilio, "PASS", sender=supporter.phone)
    assert "moved on" in body
    offer = session.scalars(select(Offer)).one()
    assert offer.state == "declined"
    assert job_names() == ["workers.offer.route"]


def test_a_supporter_may_ask_for_support_themselves(twilio, session, make_supporter):
    supporter = make_supporter("Ada")
    [(_, body)] = text(twilio, "SUPPORT", sender=supporter.phone)
    assert "Reply 1 for a call from a peer now" in body
    contact = only_contact(session)
    assert contact.caller_key == privacy.caller_key(supporter.phone, settings())


def test_unsigned_texts_are_refused(twilio, session):
    response = twilio.post("/twilio/sms", {"MessageSid": "SM1", "From": CLINICIAN,
                                           "Body": "hi"}, signature="nope")
    assert response.status_code == 403
    assert session.scalars(select(Contact)).all() == []
    assert session.scalars(select(Supporter)).all() == []


def test_emoji_and_accents_pass_through_a_conversation(twilio, session, make_supporter):
    supporter, *_ = start_conversation(twilio, session, make_supporter)
    body = "Gracias 🙏 — día difícil 😔"
    assert text(twilio, body) == [(supporter.phone, body)]
