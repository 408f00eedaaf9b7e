"""The text path: what one incoming text means, and what the hotline texts back.

``handle`` takes a text in memory and returns the texts to send (to the sender, or relayed
to the other side of a conversation). Bodies are never stored: relays go out in the
webhook's own TwiML reply, and the clinician's number is kept sealed on the contact only
while the conversation needs it. Order: carrier keywords (STOP, START, HELP) first, then
a supporter's commands or conversation, then the clinician's request.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import Row, and_, bindparam, delete, exists, or_, select
from sqlalchemy.orm import Session, make_transient_to_detached
from sqlalchemy.orm.util import identity_key
from sqlalchemy.orm.attributes import set_committed_value

from hotline.callbacks import requests as callbacks
from hotline.followups import consent
from hotline.lifecycle import contacts
from hotline.followups import schedule as followups
from hotline.privacy import keys
from hotline.privacy import primitives as privacy
from hotline.lifecycle import routing
from hotline.core import phones
from hotline.outreach import referrals
from hotline.core.extensions import settings
from hotline.lifecycle import effects, transitions
from hotline.telephony import outbound
from hotline.models import (Channel, Consent, Contact, ContactMode, ContactState,
                            Offer, OfferState, OptOut, Outcome, Supporter, utcnow)
from hotline.text.words import Command, Keyword, TextFlows
from hotline.roster import care, shifts, training
from hotline.roster import roles as role_lists

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Inbound:
    """One incoming text, in memory only."""
    number: str         # E.164 (or the raw From when it does not parse)
    body: str
    media: int = 0


@dataclass(frozen=True)
class Outgoing:
    """One text to send: ``to`` None means back to the sender; ``relay`` marks user words."""
    body: str
    to: str | None = None
    relay: bool = False


_CONTACTS = Contact.__table__
_OPEN_TEXT = and_(_CONTACTS.c.channel == Channel.SMS.value,
                  _CONTACTS.c.state != ContactState.ENDED.value)


def _sender_statement():
    """What a text needs to know of its sender, in one round trip: opted out or not, the
    active supporter with that phone (if any), and the sender's contacts a text can act
    on (the open text contacts, and the ended ones whose check-in question waits for its
    answer), oldest first. A one-row select of the first two, outer-joined to the
    contacts, so a sender with no contact still gets its row. Core on the tables' columns:
    no ORM object is made for a contact the text only reads."""
    opt_outs, supporters = OptOut.__table__, Supporter.__table__
    sender = select(
        exists().where(opt_outs.c.caller_key == bindparam("key")).label("opted_out"),
        select(supporters.c.id).where(supporters.c.phone == bindparam("number"),
                                      supporters.c.active.is_(True))
        .scalar_subquery().label("phone_supporter_id")).subquery("sender")
    return (select(sender.c.opted_out, sender.c.phone_supporter_id, *_CONTACTS.c)
            .select_from(sender.outerjoin(_CONTACTS, and_(
                _CONTACTS.c.caller_key == bindparam("key"),
                or_(_OPEN_TEXT, consent.awaiting_answer(bindparam("asked_since"))))))
            .order_by(_CONTACTS.c.id))


_SENDER = _sender_statement()
#: The sender's own columns come first in each row, then the contact's, in table order.
_SENDER_COLUMNS = 2


@dataclass(frozen=True)
class Sender:
    """What the database holds about a text's sender, read once (``Sender.read``)."""
    opted_out: bool
    supporter_id: int | None
    #: The latest open text contact (a row: ``Conversation.contact`` loads the object).
    open_contact: Row | None
    #: The latest ended contact still waiting for a yes or no to check-in texts.
    asked_contact: Row | None

    @classmethod
    def read(cls, session: Session, number: str, key: str) -> Sender:
        rows = session.execute(_SENDER, {"key": key, "number": number,
                                         "asked_since": utcnow() - consent.ANSWER_WINDOW}).all()
        first = rows[0]  # always one: the outer join keeps the sender's row
        found = [row for row in rows if row.id is not None]  # the outer join's NULLs: none
        open_ = [row for row in found if row.channel == Channel.SMS.value
                 and row.state != ContactState.ENDED.value]
        asked = [row for row in found if row.state == ContactState.ENDED.value]
        return cls(bool(first.opted_out), first.phone_supporter_id,
                   open_[-1] if open_ else None, asked[-1] if asked else None)


def _loaded(session: Session, row: Row) -> Contact:
    """The contact of a row ``Sender.read`` read in this transaction, as an object in the
    session, without reading it again: made as if loaded, or, when the session holds it
    already, that object brought up to the row (the database's, read just now)."""
    held = session.identity_map.get(identity_key(Contact, row.id))
    contact = held if held is not None else Contact()
    for column, value in zip(_CONTACTS.c, row[_SENDER_COLUMNS:]):
        set_committed_value(contact, column.key, value)
    if held is None:
        make_transient_to_detached(contact)
        session.add(contact)
    return contact


class Conversation:
    """Handles one incoming text against the database state."""

    def __init__(self, session: Session, flows: TextFlows, inbound: Inbound) -> None:
        self.session, self.flows, self.inbound = session, flows, inbound
        self.cfg = settings()
        # Under the newest key version; this caller's older rows move to it (hotline/keys.py).
        self.key = keys.current_caller_key(session, inbound.number, self.cfg)
        self.keyword = flows.keyword(inbound.body)
        self.word = flows.word(inbound.body)
        self.command = flows.command(inbound.body)

    def msg(self, lang: str, key: str, **values) -> str:
        return self.flows.message(lang, key, crisis=self.cfg.CRISIS_LINE_NUMBER,
                                  coordinator=self.cfg.COORDINATOR_CONTACT,
                                  minutes=values.pop("minutes", self.cfg.CALLBACK_PROMISE_MINUTES),
                                  **values)

    def reply(self, lang: str, key: str, **values) -> list[Outgoing]:
        return [Outgoing(self.msg(lang, key, **values))]

    # --- entry -------------------------------------------------------------------------

    def handle(self) -> list[Outgoing]:
        """Everything this text causes, as texts to send."""
        sender = Sender.read(self.session, self.inbound.number, self.key)
        if self.keyword is Keyword.OPT_OUT:
            return self._opt_out(sender.opted_out)
        if sender.opted_out:
            return self._opt_in() if self.keyword is Keyword.OPT_IN else []
        referral = self.flows.referral(self.inbound.body)
        if referral is not None:
            return self._refer(*referral)
        answered = referrals.answer(self.session, self.inbound.number, self.word)
        if answered is not None:  # a referred colleague's YES or NO to the outreach text
            lang, key, when = answered
            return self.reply(lang, key, when=when)
        if sender.supporter_id is not None and self.command is not Command.SUPPORT:
            supporter = self.session.get(Supporter, sender.supporter_id)
            return SupporterTexts(self, supporter).handle()
        return ClinicianTexts(self, sender).handle()

    def _opt_out(self, opted_out: bool) -> list[Outgoing]:
        """STOP and friends: no more texts, and nothing pending for this number."""
        if not opted_out:
            self.session.add(OptOut(caller_key=self.key))
        out: list[Outgoing] = []
        supporter = self.session.scalar(select(Supporter).where(
            Supporter.phone == self.inbound.number))
        if supporter is not None:
            supporter.available = False
            contact = _conversation_of(self.session, supporter)
            if contact is not None:
                out += end_conversation(self, contact, notify_sender=False)
        for contact in _open_contacts(self.session, self.key):
            out += end_conversation(self, contact, notify_sender=False, ask_consent=False) \
                if contact.state == ContactState.CONNECTED.value else []
            if contact.outcome is None:
                effects.apply(transitions.finish(self.session, contact, Outcome.ABANDONED))
            _forget_number(self.session, contact)
        followups.cancel_for(self.session, self.key)
        referrals.opted_out(self.session, self.key)
        for contact in self.session.scalars(select(Contact).where(
                Contact.caller_key == self.key, Contact.consent == Consent.ASKED.value)):
            contact.consent = Consent.NO.value
            _forget_number(self.session, contact)
        log.info("a number opted out")
        return out + self.reply("en", "opted_out")

    def _refer(self, lang: str, typed: str, asked: str | None) -> list[Outgoing]:
        """REFER and a colleague's number: the same thanks whatever follows (the
        referrer learns nothing); no number that parses: how to refer."""
        number = phones.try_normalize(typed)
        if number is None:
            return self.reply(lang, "refer_help")
        referrals.refer(self.session, number, asked or lang,
                        referrer=referrals.referrer_tag("caller", self.key, self.cfg),
                        limit=self.cfg.OUTREACH_PER_CALLER)
        return self.reply(lang, "refer_sent")

    def _opt_in(self) -> list[Outgoing]:
        self.session.execute(delete(OptOut.__table__).where(
            OptOut.__table__.c.caller_key == self.key))
        return self.reply("en", "opted_in")


def _open_contacts(session: Session, key: str) -> list[Contact]:
    return list(session.scalars(select(Contact).where(
        Contact.caller_key == key, Contact.channel == Channel.SMS.value,
        Contact.state != ContactState.ENDED.value).order_by(Contact.id)))


def _conversation_of(session: Session, supporter: Supporter) -> Contact | None:
    """The text conversation a supporter is in, if any."""
    if not (supporter.busy_with or "").startswith("contact:"):
        return None
    contact = session.get(Contact, int(supporter.busy_with.split(":", 1)[1]))
    if contact is None or contact.mode != ContactMode.TEXT.value \
            or contact.state != ContactState.CONNECTED.value:
        return None
    return contact


def _forget_number(session: Session, contact: Contact) -> None:
    contact.sealed_number = None


def clinician_number(contact: Contact) -> str | None:
    """The clinician's number while the text path still holds it."""
    return privacy.unseal(contact.sealed_number, settings()) if contact.sealed_number else None


def end_conversation(conv: Conversation, contact: Contact, notify_sender: bool = True,
                     idle: bool = False, ask_consent: bool = True) -> list[Outgoing]:
    """Close a text conversation: both sides told (each its own goodbye), supporter freed.

    The clinician is asked whether they would like check-in texts; their number stays
    sealed until they answer (or the question expires), otherwise it goes now.
    """
    session = conv.session
    key = "ended_idle" if idle else "ended"
    out: list[Outgoing] = []
    supporter = session.get(Supporter, contact.supporter_id) if contact.supporter_id else None
    number = clinician_number(contact)
    if supporter is not None:
        freed = routing.release(session, supporter.id, routing.contact_token(contact.id))
        if supporter.phone != conv.inbound.number or notify_sender:
            # The clinician's goodbye ("thank you for reaching out") is not the supporter's.
            out.append(Outgoing(conv.msg("en", f"{key}_supporter"),
                                to=_to(conv, supporter.phone)))
        if freed and care.contact_over(session, supporter.id, contact):
            # their cool-down starts; the thank-you text (unless QUIET), or today's cap
            body = care.after_contact_text(session, supporter) if notify_sender \
                or supporter.phone != conv.inbound.number else None
            if body:
                out.append(Outgoing(body, to=_to(conv, supporter.phone)))
    if number is not None and (number != conv.inbound.number or notify_sender):
        out.append(Outgoing(conv.msg(contact.language, key), to=_to(conv, number)))
        if ask_consent:
            out.append(Outgoing(consent.flows().message(contact.language, "consent_text"),
                                to=_to(conv, number)))
            contact.consent = Consent.ASKED.value
    if contact.consent != Consent.ASKED.value:
        _forget_number(session, contact)
    contacts.end(session, contact)
    return out


def close_quiet(session: Session, contact_id: int, stamp: int) -> str:
    """Close a text conversation nobody has written in since ``stamp`` (the idle check's
    job, or the auditor when that job was lost): both sides told, the supporter freed."""
    contact = session.get(Contact, contact_id)
    if (contact is None or contact.state != ContactState.CONNECTED.value
            or contact.mode != ContactMode.TEXT.value or contact.last_activity_at is None
            or int(contact.last_activity_at.timestamp()) != stamp):
        return "active"
    conv = Conversation(session, outbound.text_flows(), Inbound(number="", body=""))
    for out in end_conversation(conv, contact, idle=True):
        outbound.send_text(out.to, out.body)
    session.commit()
    log.info("contact %s closed after a quiet period", contact_id)
    return "closed"


def _to(conv: Conversation, number: str) -> str | None:
    """None (reply to the sender) when ``number`` is the sender's."""
    return None if number == conv.inbound.number else number


class SupporterTexts:
    """A registered supporter's text: a command, or a message in their conversation."""

    def __init__(self, conv: Conversation, supporter: Supporter) -> None:
        self.conv, self.supporter = conv, supporter
        self.session = conv.session

    def handle(self) -> list[Outgoing]:
        contact = _conversation_of(self.session, self.supporter)
        if contact is not None:
            return self._in_conversation(contact)
        command = COMMANDS.get(self.conv.command)
        if command is None:
            return self.conv.reply("en", "supporter_help")
        return command(self)

    def _in_conversation(self, contact: Contact) -> list[Outgoing]:
        if self.conv.command is Command.END or self.conv.keyword is Keyword.END:
            return end_conversation(self.conv, contact)
        return relay(self.conv, contact, clinician_number(contact))

    def _on(self) -> list[Outgoing]:
        if not training.may_be_offered(self.supporter):  # ON would not bring them requests
            return [Outgoing(self._training_lapsed())]
        self.supporter.available = True
        return self.conv.reply("en", "supporter_on")

    def _training_lapsed(self) -> str:
        """Why no request can reach them: no training record, or its refresher passed."""
        if self.supporter.refresher_due is None or self.supporter.trained_on is None:
            return self.conv.msg("en", "training_none")
        return self.conv.msg("en", "training_lapsed",
                             when=f"{self.supporter.refresher_due:%Y-%m-%d}")

    def _off(self) -> list[Outgoing]:
        self.supporter.available = False
        return self.conv.reply("en", "supporter_off")

    def _schedule(self) -> list[Outgoing]:
        shifts.back_to_schedule(self.session, self.supporter)
        return self.conv.reply("en", "supporter_schedule")

    def _open_offer(self) -> Offer | None:
        return self.session.scalar(select(Offer).join(Contact).where(
            Offer.supporter_id == self.supporter.id, Offer.state == OfferState.RINGING.value,
            Contact.mode == ContactMode.TEXT.value).order_by(Offer.id.desc()))

    def _status(self) -> list[Outgoing]:
        on = self.session.scalar(select(Supporter.id).where(
            Supporter.id == self.supporter.id, shifts.eligible(),
            training.current())) is not None
        state = self.conv.flows.command_word(Command.ON if on else Command.OFF)
        offer = self._open_offer()
        detail = (self.conv.msg("en", "offer",
                                 minutes=max(1, self.conv.cfg.SMS_ACCEPT_SECONDS // 60))
                  if offer else self.conv.msg("en", "no_offer"))
        if not training.may_be_offered(self.supporter):
            detail = self._training_lapsed()
        return self.conv.reply("en", "supporter_status", status=state, offer=detail)

    def _yes(self) -> list[Outgoing]:
        offer = self._open_offer()
        if offer is None:
            return self.conv.reply("en", "no_offer")
        contact = offer.contact
        if not contacts.connect(self.session, contact, offer.attempt, offer.supporter_id,
                                offer.tier):
            routing.close_offer(self.session, offer, OfferState.CANCELED)
            return self.conv.reply("en", "offer_taken")
        done = transitions.accepted(self.session, offer)
        contact.last_activity_at = utcnow()
        self.session.commit()
        effects.apply(done)
        schedule_idle_check(contact)
        number = clinician_number(contact)
        out = self.conv.reply("en", "connected_supporter")
        if number:
            out.append(Outgoing(self.conv.msg(contact.language, "connected_clinician"), to=number))
        return out

    def _pass(self) -> list[Outgoing]:
        offer = self._open_offer()
        if offer is None:
            return self.conv.reply("en", "no_offer")
        effects.apply(transitions.offer_over(self.session, offer, OfferState.DECLINED))
        return self.conv.reply("en", "offer_expired")

    def _help(self) -> list[Outgoing]:
        return self.conv.reply("en", "supporter_help")

    def _ready(self) -> list[Outgoing]:
        care.ready(self.supporter)
        return self.conv.reply(care.language(self.supporter), "care_ready")

    def _quiet(self) -> list[Outgoing]:
        off = care.toggle_quiet(self.supporter)
        return self.conv.reply(care.language(self.supporter),
                               "care_quiet_on" if off else "care_quiet_off")


#: What each command does (its words are sms.yaml's ``supporter_commands``); END outside a
#: conversation has nothing to end, so it gets the list of commands.
COMMANDS = {Command.ON: SupporterTexts._on, Command.OFF: SupporterTexts._off,
            Command.SCHEDULE: SupporterTexts._schedule,
            Command.STATUS: SupporterTexts._status, Command.TAKE: SupporterTexts._yes,
            Command.PASS: SupporterTexts._pass, Command.HELP: SupporterTexts._help,
            Command.END: SupporterTexts._help, Command.READY: SupporterTexts._ready,
            Command.QUIET: SupporterTexts._quiet}


def relay(conv: Conversation, contact: Contact, to: str | None) -> list[Outgoing]:
    """Pass the text to the other side; note the activity for the idle timer."""
    out: list[Outgoing] = []
    if conv.inbound.media:
        out += conv.reply(contact.language, "text_only")
    if conv.inbound.body.strip() and to:
        out.append(Outgoing(conv.inbound.body, to=to, relay=True))
    contact.last_activity_at = utcnow()
    conv.session.commit()
    schedule_idle_check(contact)
    return out


def schedule_idle_check(contact: Contact) -> None:
    """Close the conversation if nothing more is said for SMS_IDLE_MINUTES (best effort:
    with Redis down the conversation goes on and the auditor closes it later)."""
    effects.apply([effects.close_if_idle(contact.id, int(contact.last_activity_at.timestamp()),
                                         timedelta(minutes=settings().SMS_IDLE_MINUTES))])


class ClinicianTexts:
    """A clinician's text: a new request, a menu choice, or their side of a conversation."""

    def __init__(self, conv: Conversation, sender: Sender) -> None:
        self.conv = conv
        self.session = conv.session
        self.sender = sender
        self._contact: Contact | None = None
        row = sender.open_contact
        self.lang = row.language if row is not None else conv.flows.language_of(
            conv.inbound.body)
        self.crisis = conv.flows.is_crisis(conv.inbound.body)

    @property
    def contact(self) -> Contact | None:
        """The open contact as an object, loaded only by the handlers that change it (a
        text while waiting reads its row and changes nothing)."""
        if self._contact is None and self.sender.open_contact is not None:
            self._contact = _loaded(self.session, self.sender.open_contact)
        return self._contact

    @contact.setter
    def contact(self, contact: Contact) -> None:
        self._contact = contact

    def handle(self) -> list[Outgoing]:
        if self.conv.keyword is Keyword.HELP:
            return self.conv.reply(self.lang, "help")
        row = self.sender.open_contact
        if row is None:
            return self._between_contacts() or self._first_text()
        handler = STATE_HANDLERS.get(row.state, ClinicianTexts._menu)
        return handler(self)

    def _between_contacts(self) -> list[Outgoing] | None:
        """A reply to a follow-up's question, or to "would you like a check-in text?"."""
        score_reply = followups.answer(self.session, self.conv.key, self.conv.inbound.body,
                                       consent.flows())
        if score_reply is not None:
            return [Outgoing(score_reply)]
        row = self.sender.asked_contact
        asked = _loaded(self.session, row) if row is not None else None
        reply = consent.answer_by_text(self.session, asked, self.conv.word) if asked else None
        return [Outgoing(reply)] if reply else None

    def _first_text(self) -> list[Outgoing]:
        contact = contacts.start(
            self.session, channel=Channel.SMS.value, caller_key=self.conv.key,
            language=self.lang, state=ContactState.MENU.value,
            sealed_number=privacy.seal(self.conv.inbound.number, self.conv.cfg))
        self.session.commit()
        self.contact = contact
        if self.crisis:
            return self._request(ContactMode.TEXT.value)
        if self._choice() is not None:  # "1", "2" or "3" straight away: no menu needed
            return self._menu()
        asked = self._match()
        if asked is not None:
            return asked
        media = self.conv.reply(self.lang, "text_only") if self.conv.inbound.media else []
        if not self.conv.inbound.body.strip():
            return media + self.conv.reply(self.lang, "empty")
        return media + self.conv.reply(self.lang, "intake")

    def _choice(self) -> str | None:
        for name, digit in self.conv.flows.intake.items():
            if self.conv.word == digit:
                return name
        return None

    def _menu(self) -> list[Outgoing]:
        if self.crisis:
            return self._request(ContactMode.TEXT.value)
        choice = self._choice()
        if choice == "callback":
            return self._callback()
        if choice in ("call", "text"):
            return self._request(choice)
        return self._match() or self.conv.reply(self.lang, "intake_again")

    def _match(self) -> list[Outgoing] | None:
        """A match request in the intake (sms.yaml's ``match_words``): kept on the open
        contact for routing, confirmed, then the intake's choices again. The ask word, or
        words that name no role or unit, get the how-to. None: not a match request."""
        parts = self.conv.flows.match_request(self.conv.inbound.body)
        if parts is None:
            return None
        lists = role_lists.current()
        role = lists.choose("roles", words=parts.get("role", "")) if "role" in parts else None
        unit = lists.choose("units", words=parts.get("unit", "")) if "unit" in parts else None
        if (role is None and unit is None) or ("role" in parts and role is None) or (
                "unit" in parts and unit is None):
            return self.conv.reply(
                self.lang, "match_help",
                roles=", ".join(e.label(self.lang) for e in lists.roles),
                units=", ".join(e.label(self.lang) for e in lists.units))
        contacts.ask_match(self.session, self.contact, role=role, unit=unit)
        self.session.commit()
        out: list[Outgoing] = []
        if role:
            out += self.conv.reply(self.lang, "match_role_set",
                                   role=lists.entry("roles", role).label(self.lang))
        if unit:  # not named back: Twilio's message log would keep it
            out += self.conv.reply(self.lang, "match_unit_set")
        return out + self.conv.reply(self.lang, "intake_again")

    def _waiting(self) -> list[Outgoing]:
        return self.conv.reply(self.lang, "crisis" if self.crisis else "still_finding")

    def _options(self) -> list[Outgoing]:
        choice = self._choice()
        if choice == "callback":
            return self._callback()
        if self.crisis or choice in ("call", "text"):
            return self._request(choice or ContactMode.TEXT.value)
        return self.conv.reply(self.lang, "nobody")

    def _connected(self) -> list[Outgoing]:
        contact = self.contact
        if contact.mode != ContactMode.TEXT.value:
            return []  # on a call with a peer: texts meanwhile are not relayed
        if self.conv.keyword is Keyword.END:
            return end_conversation(self.conv, contact)
        supporter = self.session.get(Supporter, contact.supporter_id)
        out = relay(self.conv, contact, supporter.phone if supporter else None)
        return (self.conv.reply(self.lang, "crisis") if self.crisis else []) + out

    def _request(self, mode: str) -> list[Outgoing]:
        """Queue the request for a peer; crisis requests go to the front of the queue."""
        effects.apply(transitions.request_peer(self.session, self.contact,
                                               ContactMode(mode).value, at_front=self.crisis))
        first = self.conv.reply(self.lang, "crisis") if self.crisis else []
        return first + self.conv.reply(self.lang, "finding_call" if mode == ContactMode.CALL.value
                                       else "finding_text")

    def _callback(self) -> list[Outgoing]:
        promised = callbacks.promise(self.session)
        callbacks.request(self.session, self.contact, self.conv.inbound.number, promised)
        return self.conv.reply(self.lang, promised.MESSAGES[promised.kind],
                               when=promised.when(self.lang, with_zone=True))


STATE_HANDLERS = {ContactState.MENU.value: ClinicianTexts._menu,
                  ContactState.WAITING.value: ClinicianTexts._waiting,
                  ContactState.OPTIONS.value: ClinicianTexts._options,
                  ContactState.CONNECTED.value: ClinicianTexts._connected}


def handle(session: Session, flows: TextFlows, inbound: Inbound) -> list[Outgoing]:
    """Everything one incoming text causes, as texts to send. What it changed without a
    transition or a job to follow (a supporter's ON or OFF, a STOP, a goodbye) is
    committed by the caller (the SMS webhook) before anything is sent."""
    return Conversation(session, flows, inbound).handle()
