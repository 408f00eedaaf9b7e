"""The supporter's leg: answer, press 1, decline, silence, status callbacks."""

from __future__ import annotations

import uuid

from rq import Queue
from rq.job import Job
from rq.registry import ScheduledJobRegistry
from sqlalchemy import select

from hotline.lifecycle import routing
from hotline.core.extensions import db, jobs
from hotline.telephony import api as twilio_api
from hotline.models import Contact, ContactEvent, ContactState, Offer
from tests.conftest import PUBLIC_BASE_URL, twiml
from workers import offer as offer_jobs


def setup_offer(session, make_supporter, tier=1):
    supporter = make_supporter("Ada", tier=tier)
    contact = Contact(caller_key="k" * 64, state=ContactState.WAITING.value, attempt=1,
                      call_sid="CA" + uuid.uuid4().hex)
    session.add(contact)
    session.commit()
    [offer] = routing.offer_next(session, contact, tier)
    offer.call_sid = "CA" + uuid.uuid4().hex
    session.commit()
    return contact, offer, supporter


def queued_jobs():
    return [(j.func_name, j.args) for j in Queue("hotline", connection=jobs.queue.connection).jobs]


def test_answer_asks_to_press_1_and_silence_declines(twilio, session, make_supporter):
    contact, offer, _ = setup_offer(session, make_supporter)
    doc = twiml(twilio.post(f"/twilio/voice/offer/{offer.id}/answer",
                            {"CallStatus": "in-progress"}))
    gather = doc.find("Gather")
    action = f"{PUBLIC_BASE_URL}/twilio/voice/offer/{offer.id}/accept"
    assert gather.get("action") == action and gather.get("timeout") == "15"
    assert gather.get("input") == "dtmf"
    assert gather.find("Say").text.startswith("Peer support call")
    assert doc.find("Redirect").text == action
    silence = twiml(twilio.post_url(action, {}))
    assert "offered to someone else" in silence.find("Say").text
    session.refresh(offer)
    # still reserved while the goodbye plays; the call's status callback frees them
    assert offer.state == "declined" and offer.supporter.busy_with == offer.token
    assert [j for j in queued_jobs() if j[0] == "workers.offer.route"] == [
        ("workers.offer.route", (contact.id, 1))]
    twilio.post(f"/twilio/voice/offer/{offer.id}/status", {"CallStatus": "completed"})
    session.refresh(offer.supporter)
    assert offer.supporter.busy_with is None


def test_press_1_bridges_to_the_callers_queue(twilio, session, make_supporter):
    contact, offer, supporter = setup_offer(session, make_supporter)
    doc = twiml(twilio.post(f"/twilio/voice/offer/{offer.id}/accept", {"Digits": "1"}))
    queue = doc.find("Dial/Queue")
    assert queue.text == f"hotline-contact-{contact.id}"
    assert queue.get("url") == f"{PUBLIC_BASE_URL}/twilio/voice/{contact.id}/bridged"
    session.refresh(contact)
    session.refresh(supporter)
    assert contact.outcome == "connected" and contact.state == "connected"
    assert supporter.busy_with == f"contact:{contact.id}"
    assert ("workers.offer.cancel_offers", (contact.id, offer.id)) in queued_jobs()


def test_backup_tier_acceptance_is_recorded_as_such(twilio, session, make_supporter):
    contact, offer, _ = setup_offer(session, make_supporter, tier=2)
    twilio.post(f"/twilio/voice/offer/{offer.id}/accept", {"Digits": "1"})
    session.refresh(contact)
    assert contact.outcome == "connected_backup"


def test_second_acceptance_is_told_the_caller_is_taken(twilio, session, make_supporter):
    contact, offer, _ = setup_offer(session, make_supporter, tier=2)
    make_supporter("Bo", tier=2)
    [other] = routing.offer_next(session, contact, 2, limit=None)
    twilio.post(f"/twilio/voice/offer/{offer.id}/accept", {"Digits": "1"})
    late = twiml(twilio.post(f"/twilio/voice/offer/{other.id}/accept", {"Digits": "1"}))
    assert "already been connected" in late.find("Say").text and late.find("Dial") is None
    session.refresh(other)
    assert other.state == "canceled" and other.supporter.busy_with == other.token
    twilio.post(f"/twilio/voice/offer/{other.id}/status", {"CallStatus": "completed"})
    session.refresh(other.supporter)
    assert other.supporter.busy_with is None  # free once the goodbye has ended


def test_other_key_declines(twilio, session, make_supporter):
    _, offer, _ = setup_offer(session, make_supporter)
    doc = twiml(twilio.post(f"/twilio/voice/offer/{offer.id}/accept", {"Digits": "2"}))
    assert doc.find("Dial") is None and doc.find("Hangup") is not None
    session.refresh(offer)
    assert offer.state == "declined"


def test_answer_after_the_caller_left_says_so(twilio, session, make_supporter):
    contact, offer, _ = setup_offer(session, make_supporter)
    contact.state = ContactState.ENDED.value
    session.commit()
    doc = twiml(twilio.post(f"/twilio/voice/offer/{offer.id}/answer", {}))
    assert "hung up" in doc.find("Say").text and doc.find("Gather") is None


def test_no_answer_busy_and_failed_release_and_route_on(twilio, session, make_supporter):
    for status, state in (("no-answer", "no_answer"), ("busy", "busy"), ("failed", "failed")):
        contact, offer, supporter = setup_offer(session, make_supporter)
        twilio.post(f"/twilio/voice/offer/{offer.id}/status", {"CallStatus": "ringing"})
        session.refresh(offer)
        assert offer.state == "ringing"
        twilio.post(f"/twilio/voice/offer/{offer.id}/status", {"CallStatus": status})
        twilio.post(f"/twilio/voice/offer/{offer.id}/status", {"CallStatus": status})  # repeat
        session.refresh(offer)
        session.refresh(supporter)
        assert offer.state == state and supporter.busy_with is None
        assert queued_jobs().count(("workers.offer.route", (contact.id, 1))) == 1
        jobs.queue.empty()


def test_end_of_a_connected_call_frees_the_supporter(twilio, session, make_supporter):
    contact, offer, supporter = setup_offer(session, make_supporter)
    twilio.post(f"/twilio/voice/offer/{offer.id}/accept", {"Digits": "1"})
    twilio.post(f"/twilio/voice/offer/{offer.id}/status", {"CallStatus": "completed"})
    session.refresh(contact)
    session.refresh(supporter)
    assert supporter.busy_with is None and contact.state == "ended"
    kinds = [e.kind for e in session.scalars(select(ContactEvent).order_by(ContactEvent.id))]
    assert kinds == ["connected", "ended"]


def test_unknown_offer_gets_safe_twiml(twilio):
    doc = twiml(twilio.post("/twilio/voice/offer/999/answer", {}))
    assert doc.find("Hangup") is not None


def test_offer_status_for_unknown_offer_is_harmless(twilio, session):
    response = twilio.post("/twilio/voice/offer/999/status", {"CallStatus": "completed"})
    assert response.status_code == 200
    assert session.scalars(select(Offer)).all() == []


# A pick-up that lands after its offer was closed (and its supporter freed): the goodbye

def canceled_then_picked_up(twilio, session, make_supporter, monkeypatch):
    """Ada and Bo rung together; Ada's press wins and the stopping job cancels Bo's offer
    (he stays held: his phone may ring on until its leg ends); Bo's pick-up lands after
    that and hears the caller is taken."""
    monkeypatch.setattr(twilio_api, "end_call", lambda cfg, sid, answered: None)
    make_supporter("Ada"), make_supporter("Bo")
    contact = Contact(caller_key="k" * 64, state=ContactState.WAITING.value, attempt=1)
    session.add(contact)
    session.commit()
    won, other = routing.offer_next(session, contact, 1, limit=2)
    won.call_sid, other.call_sid = "CA" + "1" * 32, "CA" + "2" * 32
    session.commit()
    twilio.post(f"/twilio/voice/offer/{won.id}/accept", {"Digits": "1"})
    assert offer_jobs.cancel_offers(contact.id, won.id) == 1
    session.refresh(other)
    assert other.state == "canceled" and other.supporter.busy_with == other.token
    assert scheduled_jobs().count(("workers.offer.free_supporter", (other.id,))) == 1
    return other


def test_a_canceled_call_holds_its_supporter_until_its_leg_has_ended(
        twilio, session, make_supporter, monkeypatch):
    """Freed when the cancel was sent, Bo could be rung for the next contact while the
    stopped call still rang on his phone (two calls at once; benchmarks/surge.py)."""
    other = canceled_then_picked_up(twilio, session, make_supporter, monkeypatch)
    assert routing.offer_next(session, another_contact(session), 1) == []
    twilio.post(f"/twilio/voice/offer/{other.id}/status", {"CallStatus": "canceled"})
    session.refresh(other)
    assert other.state == "canceled" and other.supporter.busy_with is None
    [offer] = routing.offer_next(session, another_contact(session), 1)
    assert offer.supporter_id == other.supporter_id


def another_contact(session):
    contact = Contact(caller_key="j" * 64, state=ContactState.WAITING.value, attempt=1)
    session.add(contact)
    session.commit()
    return contact


def scheduled_jobs():
    registry = ScheduledJobRegistry(queue=Queue("hotline", connection=jobs.queue.connection))
    return [(j.func_name, j.args) for j in
            (Job.fetch(i, connection=jobs.queue.connection) for i in registry.get_job_ids())]


def test_a_late_pick_up_holds_its_supporter_until_its_goodbye_ends(
        twilio, session, make_supporter, monkeypatch):
    """Before: the goodbye played on Bo's phone while he was free, so the next contact's
    routing rang him over it (two calls on one phone; benchmarks/surge.py)."""
    other = canceled_then_picked_up(twilio, session, make_supporter, monkeypatch)
    doc = twiml(twilio.post(f"/twilio/voice/offer/{other.id}/answer",
                            {"CallStatus": "in-progress"}))
    assert "already been connected" in doc.find("Say").text and doc.find("Gather") is None
    session.refresh(other.supporter)
    assert other.supporter.busy_with == other.token
    assert ("workers.offer.free_supporter", (other.id,)) in scheduled_jobs()
    assert routing.offer_next(session, another_contact(session), 1) == []
    twilio.post(f"/twilio/voice/offer/{other.id}/status", {"CallStatus": "completed"})
    session.refresh(other.supporter)
    assert other.supporter.busy_with is None  # the goodbye has ended
    [offer] = routing.offer_next(session, another_contact(session), 1)
    assert offer.supporter_id == other.supporter_id


def test_a_late_press_holds_its_supporter_until_its_goodbye_ends(
        twilio, session, make_supporter, monkeypatch):
    """The same by the press of 1 (or another key) after the cancel."""
    other = canceled_then_picked_up(twilio, session, make_supporter, monkeypatch)
    for digits in ("1", "2"):
        doc = twiml(twilio.post(f"/twilio/voice/offer/{other.id}/accept",
                                {"Digits": digits}))
        assert doc.find("Dial") is None and doc.find("Hangup") is not None
        session.refresh(other.supporter)
        assert other.supporter.busy_with == other.token
        routing.release(session, other.supporter_id, other.token)
        session.commit()


def test_a_late_pick_up_never_takes_a_supporter_reserved_for_something_else(
        twilio, session, make_supporter, monkeypatch):
    other = canceled_then_picked_up(twilio, session, make_supporter, monkeypatch)
    db.session.expire_all()
    assert offer_jobs.free_supporter(other.id) == "freed"  # no status came for a minute
    [newer] = routing.offer_next(session, another_contact(session), 1)  # Bo, meanwhile
    assert newer.supporter_id == other.supporter_id
    twilio.post(f"/twilio/voice/offer/{other.id}/answer", {"CallStatus": "in-progress"})
    session.refresh(other.supporter)
    assert other.supporter.busy_with == newer.token  # not taken by the goodbye
    # no second safety net: the goodbye held nobody
    assert scheduled_jobs().count(("workers.offer.free_supporter", (other.id,))) == 1
    twilio.post(f"/twilio/voice/offer/{other.id}/status", {"CallStatus": "completed"})
    db.session.expire_all()
    assert offer_jobs.free_supporter(other.id) == "already free"
    session.refresh(other.supporter)
    assert other.supporter.busy_with == newer.token  # nor released by its end


def test_the_safety_net_frees_a_held_supporter_whose_status_never_comes(
        twilio, session, make_supporter, monkeypatch):
    other = canceled_then_picked_up(twilio, session, make_supporter, monkeypatch)
    twilio.post(f"/twilio/voice/offer/{other.id}/answer", {"CallStatus": "in-progress"})
    session.refresh(other.supporter)
    assert other.supporter.busy_with == other.token
    db.session.expire_all()
    assert offer_jobs.free_supporter(other.id) == "freed"  # a minute on, no status came
    session.refresh(other.supporter)
    assert other.supporter.busy_with is None
