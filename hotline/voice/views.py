"""The voice path: the caller's menu and queue, and the supporter's offer leg.

Views are thin: read Twilio's parameters, call contacts/routing, answer TwiML. Every
branch answers TwiML; any failure answers safe TwiML that still reaches a human.
"""

from __future__ import annotations

import logging

from typing import NamedTuple

from flask import Blueprint, Response, abort, request
from sqlalchemy import select
from redis.exceptions import RedisError
from twilio.twiml.voice_response import VoiceResponse

from hotline.alerts import notify
from hotline.callbacks import requests as callbacks
from hotline.followups import consent
from hotline.lifecycle import contacts
from hotline.privacy import keys
from hotline.core import phones
from hotline.privacy import primitives as privacy
from hotline.escalation import matching, runner
from hotline.outreach import referrals
from hotline.roster import roles
from hotline.voice import debrief
from hotline.core.extensions import db, settings
from hotline.lifecycle import effects, transitions
from hotline.models import (Contact, ContactMode, ContactState, EventKind, Offer, OfferState,
                            Outcome)
from hotline.core.urls import public_url
from hotline.telephony.idempotency import CURRENT_ANSWER, deduplicated_by, once
from hotline.telephony.signature import protect
from hotline.telephony.twiml import (MENU_TIMEOUT_SECONDS, after_crisis, crisis_dial,
                                     empty, flows, gather, kept_but_for_id, respond, safe_view,
                                     said_then_paused, say, speak, to_caller)

log = logging.getLogger(__name__)

bp = once(protect(Blueprint("voice", __name__, url_prefix="/twilio/voice")))
# A caller's webhooks see the gaps the coordinators must hear of (nobody on shift, contacts
# without a peer, no worker): checked after the answer is sent, at most every 30 s.
bp.after_request(notify.check_after)

#: Menu turns before a caller who presses nothing is put through to a peer.
NO_INPUT_TURNS = 2
#: Menu turns before a caller who keeps pressing unknown keys is put through to a peer.
UNKNOWN_TURNS = 3
#: Twilio call statuses that end a call.
FINAL_STATUSES = {"completed", "busy", "failed", "no-answer", "canceled"}


def _contact(contact_id: int) -> Contact:
    contact = db.session.get(Contact, contact_id)
    if contact is None:
        abort(404)
    return contact


def _turn() -> int:
    return request.args.get("turn", default=0, type=int)


# --- the caller's leg -------------------------------------------------------------------

@bp.post("")
@deduplicated_by("contacts.call_sid")  # a repeat meets the unique CallSid: contacts.open_voice
@safe_view(to_caller)
def incoming() -> Response:
    """An incoming call: open a contact (caller known by keyed hash only) and play the menu.

    A repeated delivery (Twilio's retry, or two at once) finds the contact of its CallSid
    and answers the same menu: nothing written twice, so no answer is kept in Redis. The
    menu is made of the contact's id and language only; the language changes only by a
    choice in this menu, which the caller can make only once Twilio had the first answer
    (and Twilio retries only a delivery whose answer it did not get)."""
    call_sid = request.form.get("CallSid", "")
    if not call_sid:
        return to_caller()
    number = phones.try_normalize(request.form.get("From"))
    cfg = settings()
    opened = contacts.open_voice(  # the contact's id and language: all the menu needs
        db.session, call_sid, keys.current_caller_key(db.session, number or "anonymous", cfg),
        privacy.seal(number, cfg) if number else None,
        caller_verified=number is not None and consent.attested(request.form.get("StirVerstat")))
    db.session.commit()
    return _greeting(opened.id, opened.language)


class _StandIn(NamedTuple):
    """What ``_menu`` and ``_into_queue`` read of a contact."""
    id: int
    language: str


def _greeting(contact_id: int, language: str) -> Response:
    """The greeting and menu of an incoming call: ``respond(_menu(contact, 0, greet=True))``,
    the same document for every call in a language but for its contact id, so built
    once per language and kept (``kept_but_for_id``)."""
    return kept_but_for_id("greeting", (language,), contact_id, lambda n: _menu(
        _StandIn(n, language), turn=0, greet=True))


def _ask(contact: Contact, menu: str, turn: int, prompts: tuple[str, ...]) -> VoiceResponse:
    """A one-key-or-words question; silence posts the same URL without Digits."""
    twiml = VoiceResponse()
    action = public_url(f"voice.{menu}", contact_id=contact.id, turn=turn)
    node = gather(twiml, menu, contact.language, action)
    for key in prompts:
        say(node, contact.language, key)
    twiml.redirect(action, method="POST")
    return twiml


def _menu(contact: Contact, turn: int, greet: bool = False) -> VoiceResponse:
    return _ask(contact, "menu", turn, ("greeting", "menu") if greet else ("menu",))


def _heard() -> tuple[str, str]:
    """The keys pressed and the words heard in this request (either may be empty)."""
    return request.form.get("Digits", ""), request.form.get("SpeechResult", "")


@bp.post("/<int:contact_id>/menu")
@safe_view(to_caller)
def menu(contact_id: int) -> Response:
    """The caller's menu choice (a key, words, or nothing at all)."""
    digits, speech = _heard()
    if flows().key("menu", digits) == "talk":
        # The most frequent choice, and its key is the same in every language: queued by
        # id, the contact not read first (the queue's UPDATE returns what the answer says).
        return _talk_now(contact_id)
    contact = _contact(contact_id)
    choice = flows().choose("menu", contact.language, digits, speech)
    if digits.strip() == "*":  # star at the greeting: join a team meeting (debrief)
        choice = "join"
    if choice is None:
        return _menu_again(contact, heard_something=bool(digits or speech))
    return MENU_ACTIONS[choice](contact)


def _menu_again(contact: Contact, heard_something: bool) -> Response:
    """Repeat the menu once on silence (then talk now); say so on an unknown key."""
    turn = _turn() + 1
    if turn >= (UNKNOWN_TURNS if heard_something else NO_INPUT_TURNS):
        return _talk_now(contact)
    twiml = VoiceResponse()
    say(twiml, contact.language, "unknown" if heard_something else "no_input")
    for verb in _menu(contact, turn).verbs:
        twiml.append(verb)
    return respond(twiml)


def _talk_now(contact: Contact | int, prompt: str = "connecting") -> Response:
    """Queue the caller and start routing; the wait URL keeps them company. ``contact``:
    loaded, or only its id (``transitions.request_peer`` then returns what is said)."""
    queued = transitions.request_peer(db.session, contact)
    if queued.contact is None:
        abort(404)  # no such contact
    try:
        effects.apply(queued)
    except RedisError:
        log.error("contact %s: cannot queue routing (redis down); using fallback",
                  queued.contact.id)
        # The number stays: the fallback is a call, not the end of what the caller asked.
        transitions.finish(db.session, contact, Outcome.FAILED, forget=False, cancel=False)
        return to_caller()
    language = queued.contact.language  # the words, then the queue: the same but for the id
    return kept_but_for_id("queue", (language, prompt), queued.contact.id,
                           lambda n: _into_queue(_StandIn(n, language), prompt))


def _into_queue(contact, prompt: str) -> VoiceResponse:
    """Say ``prompt``, then wait in the contact's own queue (the wait URL keeps company).
    ``contact``: a Contact or a row with its ``id`` and ``language``."""
    twiml = VoiceResponse()
    say(twiml, contact.language, prompt, crisis=settings().CRISIS_LINE_NUMBER)
    twiml.enqueue(Contact.queue_of(contact.id),
                  action=public_url("voice.queue_exit", contact_id=contact.id),
                  method="POST", wait_url=public_url("voice.wait", contact_id=contact.id),
                  wait_url_method="POST")
    return twiml


def _switch_language(contact: Contact) -> Response:
    """Toggle between the configured languages and replay the menu."""
    codes = list(flows().languages)
    contact.language = codes[(codes.index(contact.language) + 1) % len(codes)]
    db.session.commit()
    return respond(_menu(contact, turn=_turn()))


def _crisis(contact: Contact) -> Response:
    """Put the caller through to the crisis line."""
    transitions.finish(db.session, contact, Outcome.CRISIS_TRANSFER, cancel=False)
    twiml = VoiceResponse()
    crisis_dial(twiml, contact.language, public_url("voice.crisis_result",
                                                    contact_id=contact.id))
    return respond(twiml)


def _callback(contact: Contact) -> Response:
    """Keep the caller's number sealed for a callback and tell them when to expect it."""
    number = phones.try_normalize(request.form.get("From"))
    twiml = VoiceResponse()
    if number is None:
        say(twiml, contact.language, "callback_no_number")
        again = _options(contact, 0) if contact.state == ContactState.OPTIONS.value \
            else _menu(contact, _turn())
        for verb in again.verbs:
            twiml.append(verb)
        return respond(twiml)
    cfg = settings()
    promised = callbacks.promise(db.session)
    callbacks.request(db.session, contact, number, promised)
    say(twiml, contact.language, promised.PROMPTS[promised.kind],
        minutes=cfg.CALLBACK_PROMISE_MINUTES, when=promised.when(contact.language),
        crisis=cfg.CRISIS_LINE_NUMBER)
    say(twiml, contact.language, "goodbye")
    twiml.hangup()
    return respond(twiml)


def _ask_match(contact: Contact) -> Response:
    """Menu choice 3: what kind of match (a peer in my role, nobody from my unit, both)."""
    return respond(_ask(contact, "match", 0, ("match",)))


#: What each answer of the match question asks next (roster.yaml's lists, in order).
MATCH_ASKS = {"role": ("role",), "unit": ("unit",), "both": ("role", "unit")}


@bp.post("/<int:contact_id>/match")
@safe_view(to_caller)
def match(contact_id: int) -> Response:
    """The kind of match asked for; silence or unknown keys twice: a peer now, as asked."""
    contact = _contact(contact_id)
    digits, speech = _heard()
    choice = flows().choose("match", contact.language, digits, speech)
    if choice is not None:
        first, *rest = MATCH_ASKS[choice]
        return respond(_ask_which(contact, first, rest, 0))
    if _turn() >= 1:
        return _talk_now(contact)
    twiml = VoiceResponse()
    say(twiml, contact.language, "unknown" if (digits or speech) else "no_input")
    for verb in _ask(contact, "match", _turn() + 1, ("match",)).verbs:
        twiml.append(verb)
    return respond(twiml)


def _ask_which(contact: Contact, kind: str, rest: list[str], turn: int) -> VoiceResponse:
    """Which role (or unit) is yours: each of roster.yaml's entries with its key."""
    twiml = VoiceResponse()
    action = public_url("voice.match_which", contact_id=contact.id, kind=kind,
                        then=",".join(rest), turn=turn)
    lists, language = roles.current(), flows().language(contact.language)
    node = twiml.gather(input="dtmf speech", num_digits=1, timeout=MENU_TIMEOUT_SECONDS,
                        speech_timeout="auto", action=action, method="POST",
                        language=language.speech,
                        hints=lists.hints(f"{kind}s", language.code))
    say(node, contact.language, f"match_{kind}")
    for entry in lists.entries(f"{kind}s"):
        say(node, contact.language, "match_item", label=entry.label(language.code),
            number=entry.digit)
    twiml.redirect(action, method="POST")
    return twiml


@bp.post("/<int:contact_id>/match-which")
@safe_view(to_caller)
def match_which(contact_id: int) -> Response:
    """The caller's role (or unit: ``kind``): kept on the open contact for routing; then
    the next question, or the queue. Silence or unknown keys twice: on without it."""
    contact = _contact(contact_id)
    kind = request.args.get("kind", "")
    if kind not in MATCH_ASKS["both"]:
        abort(404)
    rest = [k for k in request.args.get("then", "").split(",") if k in MATCH_ASKS["both"]]
    digits, speech = _heard()
    name = roles.current().choose(f"{kind}s", digits, speech)
    if name is None and _turn() < 1:
        twiml = VoiceResponse()
        say(twiml, contact.language, "unknown" if (digits or speech) else "no_input")
        for verb in _ask_which(contact, kind, rest, _turn() + 1).verbs:
            twiml.append(verb)
        return respond(twiml)
    if name is not None:
        contacts.ask_match(db.session, contact, **{kind: name})
        db.session.commit()
    if rest:
        return respond(_ask_which(contact, rest[0], rest[1:], 0))
    # Into the queue as fast as "talk now" (a peer who answers at once dials the queue);
    # what was asked for is said while waiting (``wait``).
    return _talk_now(contact)


def _join_meeting(contact: Contact) -> Response:
    """Join a team debrief: the meeting code (hotline.voice.debrief)."""
    return respond(debrief.ask_code(contact, tries=0))


def _ask_refer(contact: Contact, turn: int = 0) -> VoiceResponse:
    """Menu choice "ask a peer to reach out to a colleague": their mobile number, keyed
    in and ended with #; nothing else is asked (hotline/outreach)."""
    twiml = VoiceResponse()
    action = public_url("voice.refer", contact_id=contact.id, turn=turn)
    node = twiml.gather(input="dtmf", finish_on_key="#", timeout=MENU_TIMEOUT_SECONDS,
                        action=action, method="POST")
    say(node, contact.language, "refer_ask")
    twiml.redirect(action, method="POST")
    return twiml


@bp.post("/<int:contact_id>/refer")
@safe_view(to_caller)
def refer(contact_id: int) -> Response:
    """The colleague's number: the same thanks whatever follows, then the menu again (the
    caller may want a peer too). No number that parses: asked once more, then the menu."""
    contact = _contact(contact_id)
    number = phones.try_normalize(request.form.get("Digits", ""))
    twiml = VoiceResponse()
    if number is None and _turn() < 1:
        say(twiml, contact.language, "refer_invalid")
        for verb in _ask_refer(contact, _turn() + 1).verbs:
            twiml.append(verb)
        return respond(twiml)
    if number is not None:
        cfg = settings()
        referrals.refer(db.session, number, contact.language,
                        referrer=referrals.referrer_tag("caller", contact.caller_key, cfg),
                        limit=cfg.OUTREACH_PER_CALLER)
        say(twiml, contact.language, "refer_sent")
    else:
        say(twiml, contact.language, "refer_invalid")
    for verb in _menu(contact, 0).verbs:
        twiml.append(verb)
    return respond(twiml)


MENU_ACTIONS = {"talk": _talk_now, "callback": _callback, "language": _switch_language,
                "crisis": _crisis, "match": _ask_match, "join": _join_meeting,
                "refer": lambda contact: respond(_ask_refer(contact))}


@bp.post("/<int:contact_id>/wait")
@deduplicated_by("contacts.escalated, contacts.match_role: runner._ESCALATE, "
                 "matching._ERASE_ROLE", answer=CURRENT_ANSWER)
@safe_view(to_caller)
def wait(contact_id: int) -> Response:
    """The queue's wait URL: reassure; the escalation runner decides whether the caller
    leaves (exhausted, or time is up) and escalates when the policy says so.

    Its only changes are two conditional UPDATEs (escalated, set once while waiting; the
    caller's role, erased once when its wait is over): a repeated delivery, one after the
    other or at the same time, escalates, starts the step and is told of the fall-back
    only once; its answer is the one this poll gets now (to stay or to leave, the words
    for its QueueTime), so no answer is kept in Redis. The fall-back notice is said only
    by the delivery that erased the role."""
    cfg = settings()
    # The most frequent webhook (every WAIT_PAUSE_SECONDS per waiting caller) mostly
    # changes nothing: a light view in one SELECT without a transaction; the contact is
    # loaded only for what changes it (escalating, the role-first wait falling back).
    contact = contacts.glance(db.session, contact_id)
    if contact is None:
        abort(404)
    queue_seconds = request.form.get("QueueTime", default=0, type=int)
    if runner.on_wait(db.session, contact, queue_seconds):
        twiml = VoiceResponse()
        twiml.leave()
        return respond(twiml)
    words = flows().wait_message(contact.language, queue_seconds // cfg.WAIT_PAUSE_SECONDS)
    fell_back = bool(contact.match_role) and matching.fall_back(db.session,
                                                                _contact(contact_id))
    # the first loop says what they asked for (a peer in their role, or unit)
    asked = not fell_back and queue_seconds < cfg.WAIT_PAUSE_SECONDS and bool(
        contact.match_role or contact.match_unit)
    if not fell_back and not asked:  # only this loop's words: the same for every caller
        return said_then_paused(contact.language, words, cfg.WAIT_PAUSE_SECONDS)
    twiml = VoiceResponse()
    if fell_back:
        say(twiml, contact.language, "match_fallback")
    else:
        for key, wanted in (("match_role_set", contact.match_role),
                            ("match_unit_set", contact.match_unit)):
            if wanted:
                say(twiml, contact.language, key)
    speak(twiml, contact.language, words)
    twiml.pause(length=cfg.WAIT_PAUSE_SECONDS)
    return respond(twiml)


@bp.post("/<int:contact_id>/bridged")
@safe_view(empty)
def bridged(contact_id: int) -> Response:
    """Played to the caller just before the supporter is connected."""
    contact = _contact(contact_id)
    contacts.event(db.session, contact, EventKind.BRIDGED)
    if contact.outcome is None:  # a "call me" request: connected only now
        offer = db.session.scalar(select(Offer).where(
            Offer.contact_id == contact.id, Offer.state == OfferState.ACCEPTED.value))
        contacts.finish(db.session, contact, contacts.connected_outcome(offer.tier if offer
                                                                        else 1), end=False)
        callbacks.reached(db.session, contact)
    db.session.commit()
    twiml = VoiceResponse()
    say(twiml, contact.language, "bridged")
    return respond(twiml)


@bp.post("/<int:contact_id>/clinician-answer")
@safe_view(to_caller)
def clinician_answer(contact_id: int) -> Response:
    """A clinician who asked by text for a call picked up: into the queue the peer dials."""
    return respond(_into_queue(_contact(contact_id), "peer_calling"))


@bp.post("/<int:contact_id>/clinician-status")
@safe_view(empty)
def clinician_status(contact_id: int) -> Response:
    """The call to a clinician who asked for one ended: unanswered means they get a text."""
    status = request.form.get("CallStatus", "")
    contact = _contact(contact_id)
    # "completed" with no outcome yet: they picked up and hung up before the peer joined.
    if status in FINAL_STATUSES and contact.outcome is None:
        # The number stays for the text that says how to ask again (or the callback's).
        done = transitions.finish(db.session, contact, Outcome.FAILED, forget=False)
        if contact.mode == ContactMode.CALLBACK.value:
            done += callbacks.missed(db.session, contact)
        else:
            done.append(effects.tell_missed_call(contact.id))
        effects.apply(done)
    return empty()


def _hung_up(form) -> bool:
    return form.get("QueueResult") == "hangup"


@bp.post("/<int:contact_id>/queue-exit")
@deduplicated_by("contacts.outcome IS NULL: contacts.finish (a hang-up)", when=_hung_up)
@safe_view(to_caller)
def queue_exit(contact_id: int) -> Response:
    """The caller left the queue: bridged and done, timed out, or hung up.

    A hang-up (the most frequent exit) changes the contact only through the outcome's
    conditional UPDATE, so its repeat abandons nothing twice and answers the same empty
    TwiML: the database has its repeats, and no answer is kept in Redis. The other exits
    keep theirs, as any webhook."""
    result = request.form.get("QueueResult", "")
    if result == "hangup":
        # The most frequent exit: abandoned by id, the contact not read first (the
        # outcome's conditional UPDATE is the read; one already ended stays as it is).
        if not _abandon(contact_id).won:
            _contact(contact_id)  # read only then: no such contact is answered as before
        return empty()
    contact = _contact(contact_id)
    if result == "bridged":
        contacts.end(db.session, contact)
        db.session.commit()
        return _ask_consent(contact)
    if result == "leave":
        effects.apply(transitions.leave_for_options(db.session, contact))
        return respond(_options(contact, 0))
    if result == "redirected":
        return empty()
    effects.apply(transitions.finish(db.session, contact, Outcome.FAILED))
    return to_caller()


def _ask_consent(contact: Contact) -> Response:
    """After a conversation: a check-in text tomorrow? (By text if the caller already left.)"""
    twiml = VoiceResponse()
    if contact.mode in contacts.OUTBOUND_MODES or not contact.sealed_number:
        contacts.forget_number(db.session, contact)
        db.session.commit()
    elif request.form.get("CallStatus") == "completed":  # the caller hung up first
        consent.ask_by_text(db.session, contact)
        return empty()
    else:
        action = public_url("voice.consent_answer", contact_id=contact.id)
        node = twiml.gather(input="dtmf", num_digits=1, timeout=6, action=action,
                            method="POST")
        speak(node, contact.language, consent.flows().message(contact.language,
                                                             "consent_voice"))
        twiml.redirect(action, method="POST")
        return respond(twiml)
    say(twiml, contact.language, "goodbye")
    twiml.hangup()
    return respond(twiml)


@bp.post("/<int:contact_id>/consent")
@safe_view(empty)
def consent_answer(contact_id: int) -> Response:
    """1: yes to check-in texts (scheduled now, or once confirmed by text when the caller
    ID was not vouched for); anything else: no, and the number goes."""
    contact = _contact(contact_id)
    twiml = VoiceResponse()
    if request.form.get("Digits") == "1" and contact.sealed_number:
        said = consent.yes_on_the_call(db.session, contact)
        speak(twiml, contact.language, consent.flows().message(contact.language, said))
    else:
        consent.decline(db.session, contact)
        say(twiml, contact.language, "goodbye")
    twiml.hangup()
    return respond(twiml)


def _abandon(contact: Contact | int) -> transitions.Effects:
    """The caller hung up before reaching anyone: stop every call still ringing for them."""
    done = transitions.finish(db.session, contact, Outcome.ABANDONED)
    effects.apply(done)
    return done


def _options(contact: Contact, turn: int) -> VoiceResponse:
    return _ask(contact, "options", turn, ("options",))


@bp.post("/<int:contact_id>/options")
@safe_view(to_caller)
def options(contact_id: int) -> Response:
    """After the queue: keep waiting (1), a callback (2) or the crisis line (9)."""
    contact = _contact(contact_id)
    digits, speech = _heard()
    choice = flows().choose("options", contact.language, digits, speech)
    if choice is not None:
        return OPTION_ACTIONS[choice](contact)
    if _turn() >= 1:
        # Silence twice: keep waiting for a peer, with the crisis line offered. A clinician
        # who simply holds on asked for a peer; moving them to a crisis service they did
        # not choose (after ~35 s) is neither kind nor what they asked for, and someone
        # who cannot speak or press keys is better held than handed on. Nobody is dropped:
        # the options come back after each wait, the crisis line named each time.
        return _talk_now(contact, prompt="options_hold")
    twiml = VoiceResponse()
    say(twiml, contact.language, "unknown" if (digits or speech) else "no_input")
    for verb in _options(contact, _turn() + 1).verbs:
        twiml.append(verb)
    return respond(twiml)


OPTION_ACTIONS = {"keep_waiting": _talk_now, "callback": _callback, "crisis": _crisis}


@bp.post("/<int:contact_id>/crisis-result")
@safe_view(empty)
def crisis_result(contact_id: int) -> Response:
    """After the crisis line: if it did not connect, tell the caller how to reach it."""
    return after_crisis(_contact(contact_id).language)


@bp.post("/status")
@deduplicated_by("contacts.outcome IS NULL, contacts.state != ended: contacts.finish, end")
@safe_view(empty)
def call_status() -> Response:
    """Status callback of the caller's leg (set on the number): the call is over.

    It changes the contact only by conditional UPDATEs (the outcome set where there is
    none; the end where it has not ended): a repeated delivery, one after the other or at
    the same time, writes no second outcome, event, count or cancel job, and the answer is
    always the same empty TwiML, so no answer is kept in Redis."""
    if request.form.get("CallStatus") not in FINAL_STATUSES:
        return empty()
    # Most calls were ended by the queue exit already: a light view in one SELECT
    # without a transaction says so; the contact is loaded only when there is work.
    seen = contacts.glance_by_call_sid(db.session, request.form.get("CallSid", ""))
    if seen is None or (seen.outcome is not None and seen.state == ContactState.ENDED.value):
        return empty()  # ended stays ended: no UPDATE that cannot match, no reload
    contact = db.session.get(Contact, seen.id)
    if contact is None:  # gone meanwhile (a call that joined a debrief is no contact)
        return empty()
    if contact.outcome is None:
        _abandon(contact)
    elif contact.state != ContactState.ENDED.value:
        contacts.end(db.session, contact)
        db.session.commit()
    return empty()
