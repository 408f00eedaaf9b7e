"""The contact's state changes that several adapters share, each in one place.

Each is the conditional UPDATE of ``hotline.lifecycle.contacts`` /
``hotline.lifecycle.routing`` (only the row in the expected state changes,
``UPDATE ... RETURNING``), plus its event, plus forgetting the number where due,
committed here; it returns the effects it needs
(``hotline.lifecycle.effects``) for the caller to ``effects.apply`` once it has answered
for its own part. Nothing here enqueues a job or calls Twilio.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from hotline.lifecycle import contacts
from hotline.lifecycle import routing
from hotline.lifecycle import effects
from hotline.lifecycle.effects import Effect
from hotline.models.states import ContactState, EventKind, OfferState, Outcome
from hotline.models import Contact, Offer, Supporter
from hotline.roster import care
from hotline.roster import supporters as roster

#: Grace past ring + accept time before a silent offer is expired by the safety net, and
#: before a supporter kept reserved for a goodbye is freed should its status never come.
EXPIRY_GRACE_SECONDS = 60


class Effects(list):
    """The effects of one transition; ``won``: whether its conditional UPDATE matched;
    ``contact`` (where a transition says so): the contact as it left it, the one loaded or,
    given only its id, the ``contacts.BRIEF`` row its UPDATE returned (None: no such
    contact)."""

    def __init__(self, items=(), won: bool = True, contact=None) -> None:
        super().__init__(items)
        self.won = won
        self.contact = contact


def finish(session: Session, contact: Contact | int, outcome: Outcome, *,
           tier: int | None = None, forget: bool = True, cancel: bool = True) -> Effects:
    """Finish a contact (loaded, or by id: not read first): its one outcome (and its end),
    the number forgotten (in the same commit), and, when this call set the outcome, its
    ringing offers canceled.

    ``forget=False``: the number is still needed (a missed "call me" is told by text; a
    callback request keeps its own sealed copy and forgets the contact's after).
    ``cancel=False``: nothing can be ringing (a menu choice, an auditor that cancels
    in-process)."""
    # the number is forgotten in the outcome's own UPDATE (or after it, if that lost)
    won = contacts.finish(session, contact, outcome, tier=tier, forget=forget)
    session.commit()
    contact_id = contact if isinstance(contact, int) else contact.id
    return Effects([effects.cancel_offers(contact_id)] if won and cancel else [], won)


def request_peer(session: Session, contact: Contact | int, mode: str | None = None,
                 at_front: bool = False) -> Effects:
    """(Re)queue the contact for a peer: a new routing attempt, and its first step.
    By id, the contact is not read first: ``Effects.contact`` is what the queue's UPDATE
    returned (None, and no effect, when there is no such contact)."""
    queued = contacts.queue(session, contact, mode=mode)  # the mode in the same UPDATE
    session.commit()
    if queued is None:
        return Effects(won=False)
    return Effects([effects.route(queued.id, queued.attempt, at_front=at_front)],
                   contact=queued)


def leave_for_options(session: Session, contact: Contact) -> Effects:
    """The caller left the queue for the options: stale routing exits, ringing stops."""
    contacts.leave_queue(session, contact, ContactState.OPTIONS)
    contacts.event(session, contact, EventKind.LEFT_QUEUE)
    session.commit()
    return Effects([effects.cancel_offers(contact.id)])


def close_answered(session: Session, offer: Offer, state: OfferState) -> Effects:
    """Close an offer whose supporter is still on its call: they stay reserved until the
    call's status callback frees them (``routing.close_offer(keep=True)``), or, should
    that never come, ``free_supporter`` a minute later."""
    won = routing.close_offer(session, offer, state, keep=True)
    return Effects([_safety_net(offer)] if won else [], won)


def _safety_net(offer: Offer) -> Effect:
    return effects.free_supporter(offer.id, timedelta(seconds=EXPIRY_GRACE_SECONDS))


def goodbye(session: Session, offer: Offer, state: OfferState) -> Effects:
    """The supporter's leg, live now (its own webhook answers), only says goodbye: close
    the offer as ``close_answered`` does; if it was closed meanwhile (another supporter
    won, the caller left: ``runner.cancel_offers`` keeps them, but the safety net may have
    freed them since), hold them again under the offer's token, only if they are free
    right now (``routing.hold``). Either way the leg's status callback frees them
    (``offer_over`` releases that token), or ``free_supporter`` should it never come;
    without it the next routing step could ring them during the goodbye."""
    done = close_answered(session, offer, state)
    if not done.won and routing.hold(session, offer.supporter_id, offer.token):
        session.commit()
        done.append(_safety_net(offer))
    return done


#: Offer endings that tell the supporter was there (a yes, a key other than 1, PASS, or
#: hanging up on it), so their missed offers start again from none.
ANSWERS = (OfferState.ACCEPTED, OfferState.DECLINED)


def offer_over(session: Session, offer: Offer, state: OfferState,
               answered: bool = False, missed: bool | None = None) -> Effects:
    """A ringing offer ended without a yes (declined, unanswered, busy...): routing goes
    on with the next step, once, by whichever caller closed it.

    ``answered``: its leg is on and says goodbye (``goodbye``).
    ``missed`` (default: the offer rang out, ``no_answer``; the supporter's leg passes
    True for silence after picking up): one more offer missed in a row
    (``hotline.roster.care``), which may switch the supporter OFF; a decline resets it."""
    done = goodbye(session, offer, state) if answered else Effects(
        won=routing.close_offer(session, offer, state))
    if done.won:
        done.append(effects.route(offer.contact_id, offer.attempt))
        done += _count_miss(session, offer, state == OfferState.NO_ANSWER
                            if missed is None else missed, state)
    return done


def _count_miss(session: Session, offer: Offer, missed: bool, state: OfferState) -> list:
    """Missed offers in a row, for the automatic pause; its text once it pauses them."""
    if missed:
        if not care.offer_missed(session, offer.supporter_id):
            session.commit()
            return []
        contacts.event(session, offer.contact, EventKind.CARE_PAUSED, tier=offer.tier)
        session.commit()
        return [effects.tell_paused(offer.supporter_id)]
    if state in ANSWERS:
        care.offer_answered(session, offer.supporter_id)
        session.commit()
    return []


def take_off_roster(session: Session, supporter: Supporter) -> Effects:
    """Take a supporter off the roster (``roster.deactivate``: inactive, no shifts, no
    manual switch), then withdraw the offers still ringing them: each contact goes on to
    its next step at once. One effect per offer withdrawn; a contact they are on is left
    alone, so a roster change never cuts a clinician off."""
    roster.deactivate(session, supporter)
    # After that commit, so no new offer can reach them meanwhile; each close is
    # conditional (an offer accepted or ended meanwhile stays as it is).
    ringing = session.scalars(select(Offer).where(
        Offer.supporter_id == supporter.id, Offer.state == OfferState.RINGING.value)
        .order_by(Offer.id)).all()
    done = Effects()
    for offer in ringing:
        done.extend(offer_over(session, offer, OfferState.CANCELED))
    return done


def accepted(session: Session, offer: Offer) -> Effects:
    """The supporter of ``offer`` won its contact (``contacts.connect`` already did):
    the reservation moves to the contact and every other ringing offer stops (the
    connection is committed with the reservation)."""
    won = routing.accept_offer(session, offer)
    care.offer_answered(session, offer.supporter_id)
    session.commit()
    return Effects([effects.cancel_offers(offer.contact_id, offer.id)], won)


__all__ = ["Effect", "Effects", "finish", "request_peer", "leave_for_options",
           "close_answered", "goodbye", "offer_over", "take_off_roster", "accepted",
           "EXPIRY_GRACE_SECONDS"]
