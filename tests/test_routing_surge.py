"""What the surge benchmark taught routing: a supporter still on the hotline's call stays
reserved until that call ends, and ring-all keeps to the caller's language."""

from __future__ import annotations

from hotline.lifecycle import routing
from hotline.telephony import api as twilio_api
from hotline.core.extensions import db
from hotline.models import Offer, OfferState, Supporter
from tests.test_routing import waiting_contact
from workers import offer as offer_jobs


def busy_with(session, supporter: Supporter) -> str | None:
    session.refresh(supporter)
    return supporter.busy_with


def test_a_kept_reservation_lasts_until_the_calls_own_close(session, make_supporter):
    ada = make_supporter("Ada")
    [offer] = routing.offer_next(session, waiting_contact(session), 1)
    assert routing.close_offer(session, offer, OfferState.DECLINED, keep=True)
    assert busy_with(session, ada) == offer.token  # the goodbye still plays on her phone
    assert routing.offer_next(session, waiting_contact(session), 1) == []
    # the status callback of her call: the offer had ended, she is free now
    assert not routing.close_offer(session, offer, OfferState.DECLINED)
    assert busy_with(session, ada) is None
    assert len(routing.offer_next(session, waiting_contact(session), 1)) == 1


def test_a_late_close_never_frees_a_supporter_held_by_something_else(session, make_supporter):
    ada = make_supporter("Ada")
    [first] = routing.offer_next(session, waiting_contact(session), 1)
    assert routing.close_offer(session, first, OfferState.NO_ANSWER)
    [second] = routing.offer_next(session, waiting_contact(session), 1)
    assert not routing.close_offer(session, first, OfferState.NO_ANSWER)  # a repeat
    assert busy_with(session, ada) == second.token


def test_canceling_an_offer_keeps_the_supporter_until_the_call_ends(
        twilio, session, make_supporter, monkeypatch):
    """Answered or only ringing, the phone is on until its leg ends: the status callback
    frees the supporter (a canceled ring's comes within moments), or the safety net."""
    ended = []
    monkeypatch.setattr(twilio_api, "end_call", lambda cfg, sid, answered: ended.append(sid))
    ada, bob = make_supporter("Ada"), make_supporter("Bob")
    contact = waiting_contact(session)
    answered, ringing = routing.offer_next(session, contact, 1, limit=None)
    answered.answered, answered.call_sid, ringing.call_sid = True, "CA1", "CA2"
    session.commit()

    assert offer_jobs.cancel_offers(contact.id) == 2
    assert ended == ["CA1", "CA2"]
    assert busy_with(session, ada) == answered.token  # still on the phone with us
    assert busy_with(session, bob) == ringing.token   # its ring is being stopped
    twilio.post(f"/twilio/voice/offer/{ringing.id}/status", {"CallStatus": "canceled"})
    db.session.expire_all()
    assert busy_with(session, bob) is None
    assert busy_with(session, ada) == answered.token
    db.session.expire_all()
    assert offer_jobs.free_supporter(answered.id) == "freed"  # the safety net, a minute on
    assert busy_with(session, ada) is None
    assert offer_jobs.free_supporter(answered.id) == "already free"


def test_ring_all_rings_only_speakers_when_one_is_free(session, make_supporter):
    make_supporter("english", tier=2)
    make_supporter("bilingual", tier=2, languages="en,es")
    make_supporter("spanish", tier=2, languages="es")
    offers = routing.offer_next(session, waiting_contact(session, "es"), 2, limit=None)
    assert sorted(o.supporter.name for o in offers) == ["bilingual", "spanish"]
    offers = routing.offer_next(session, waiting_contact(session, "es"), 2, limit=None)
    assert [o.supporter.name for o in offers] == ["english"]  # nobody else is free


def test_a_pick_is_the_least_recently_offered_and_reserves_in_the_same_step(
        session, make_supporter):
    names = [make_supporter(n).name for n in ("A", "B", "C")]
    contact = waiting_contact(session)
    picked = []
    for _ in range(3):
        [offer] = routing.offer_next(session, contact, 1)
        assert offer.supporter.busy_with == offer.token == f"offer:{offer.id}"
        picked.append(offer.supporter.name)
    assert picked == names
    assert session.query(Offer).count() == 3
