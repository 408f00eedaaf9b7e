"""The supporter's leg of a voice offer: answer, press 1 to accept, and its status.

The supporter is called out from the hotline number (workers/offer.py); answering plays
"press 1 to accept" in a <Gather>, so voicemail can never take a call; 1 bridges them to the
caller's queue with <Dial><Queue>; anything else passes the offer on.
"""

from __future__ import annotations

import logging

from flask import Blueprint, Response, abort, request
from twilio.twiml.voice_response import Dial, VoiceResponse

from hotline.lifecycle import contacts
from hotline.lifecycle import routing
from hotline.escalation import policy
from hotline.core.extensions import db, settings
from hotline.lifecycle import effects, transitions
from hotline.roster import care
from hotline.models import Offer, OfferState
from hotline.core.urls import public_url
from hotline.telephony.idempotency import once
from hotline.telephony.signature import protect
from hotline.telephony.twiml import empty, respond, safe_view, say, to_supporter
from hotline.voice.views import FINAL_STATUSES

log = logging.getLogger(__name__)

bp = once(protect(Blueprint("offer", __name__, url_prefix="/twilio/voice/offer")))

#: How long a supporter's <Dial><Queue> waits for the caller (they were just there).
BRIDGE_WAIT_SECONDS = 10
#: How a supporter's call that ended before pressing 1 closes the offer.
OFFER_ENDINGS = {"no-answer": OfferState.NO_ANSWER, "busy": OfferState.BUSY,
                 "failed": OfferState.FAILED, "canceled": OfferState.CANCELED,
                 "completed": OfferState.DECLINED}

def _offer(offer_id: int) -> Offer:
    offer = db.session.get(Offer, offer_id)
    if offer is None:
        abort(404)
    return offer


def _supporter_lang(offer: Offer) -> str:
    languages = offer.supporter.language_list
    return "en" if "en" in languages or not languages else languages[0]


def _goodbye(lang: str, key: str) -> Response:
    twiml = VoiceResponse()
    say(twiml, lang, key)
    twiml.hangup()
    return respond(twiml)


@bp.post("/<int:offer_id>/answer")
@safe_view(to_supporter)
def answer(offer_id: int) -> Response:
    """A supporter picked up: ask them to press 1 (voicemail never can)."""
    offer = _offer(offer_id)
    lang = _supporter_lang(offer)
    if offer.state != OfferState.RINGING.value or routing.is_stale(offer.contact, offer.attempt):
        # reserved (or held again) until this goodbye ends
        effects.apply(transitions.goodbye(db.session, offer, OfferState.CANCELED))
        return _goodbye(lang, "offer_taken")
    if not routing.answer_offer(db.session, offer):  # stopped since it was read above
        effects.apply(transitions.goodbye(db.session, offer, OfferState.CANCELED))
        return _goodbye(lang, "offer_taken")
    twiml = VoiceResponse()
    action = public_url("offer.accept", offer_id=offer.id)
    accept_seconds = policy.current().step_for_tier(offer.tier).accept_seconds
    node = twiml.gather(input="dtmf", num_digits=1, timeout=accept_seconds,
                        action=action, method="POST")
    say(node, lang, "offer_intro_callback" if offer.contact.mode in contacts.OUTBOUND_MODES
        else "offer_intro")
    twiml.redirect(action, method="POST")  # silence: declined
    return respond(twiml)


@bp.post("/<int:offer_id>/accept")
@safe_view(to_supporter)
def accept(offer_id: int) -> Response:
    """1 bridges the supporter to the waiting caller; anything else passes it on."""
    offer = _offer(offer_id)
    lang = _supporter_lang(offer)
    if request.form.get("Digits", "") != "1":
        # reserved until this goodbye ends; routing goes on. Silence (voicemail, a phone
        # in a pocket) is a missed offer, a key other than 1 a decline (hotline.roster.care).
        effects.apply(transitions.offer_over(db.session, offer, OfferState.DECLINED,
                                             answered=True,
                                             missed=not request.form.get("Digits")))
        return _goodbye(lang, "offer_declined")
    contact = offer.contact
    if offer.state != OfferState.RINGING.value or not contacts.connect(
            db.session, contact, offer.attempt, offer.supporter_id, offer.tier):
        effects.apply(transitions.goodbye(db.session, offer, OfferState.CANCELED))
        return _goodbye(lang, "offer_taken")
    done = transitions.accepted(db.session, offer)
    if not done.won:
        log.warning("offer %s accepted after it was closed", offer.id)
    wait = BRIDGE_WAIT_SECONDS
    if contact.mode in contacts.OUTBOUND_MODES:  # a "call me" text or a callback: call them now
        done.append(effects.call_clinician(contact.id))
        wait = settings().RING_SECONDS + BRIDGE_WAIT_SECONDS
    effects.apply(done)
    twiml = VoiceResponse()
    say(twiml, lang, "offer_connecting")
    dial = Dial(timeout=wait)
    dial.queue(contact.queue_name, url=public_url("voice.bridged", contact_id=contact.id),
               method="POST")
    twiml.append(dial)
    say(twiml, lang, "offer_ended")
    twiml.hangup()
    return respond(twiml)


@bp.post("/<int:offer_id>/status")
@safe_view(empty)
def status(offer_id: int) -> Response:
    """Status callback of a supporter's leg: free them and route on when it ends."""
    status = request.form.get("CallStatus", "")
    if status not in FINAL_STATUSES:
        return empty()
    offer = _offer(offer_id)
    if offer.state == OfferState.ACCEPTED.value:
        freed = routing.release(db.session, offer.supporter_id,
                                routing.contact_token(offer.contact_id))
        contacts.end(db.session, offer.contact)
        # once, by whichever status freed them: the cool-down starts, the text follows
        thank = freed and care.contact_over(db.session, offer.supporter_id, offer.contact)
        db.session.commit()
        if thank:
            effects.apply([effects.after_contact(offer.contact_id)])
    else:
        effects.apply(transitions.offer_over(db.session, offer, OFFER_ENDINGS[status]))
    return empty()
