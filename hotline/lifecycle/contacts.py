"""A contact's life: created, queued, connected, ended; exactly one outcome each.

State changes that can race (two webhooks, a webhook and a job) are conditional
UPDATEs: the caller of each function learns whether it won. None of them commits: the
transaction ends in the lifecycle transition (``hotline.lifecycle.transitions``) or the
adapter (webhook, job) that called it, with everything else that belongs to it. Each
returns the updated row (``RETURNING``) into the contact, so the contact is current
without a second query; only an UPDATE that lost reloads it.

The state changes a caller's own webhooks make most (queued from the menu, abandoned on
hanging up) also take the contact's id alone: then no contact is read first (the
conditional UPDATE is the read) and no ORM object is built; RETURNING gives back only
``BRIEF``. Every statement is written on the table's columns (``_C``), not the model's
attributes, so SQLAlchemy executes it as plain Core, not through its ORM bulk-update path.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, scoped_session
from sqlalchemy.orm import make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value

from hotline.core.extensions import settings
from hotline.monitoring import counters
from hotline.privacy import primitives as privacy
from hotline.statistics import days as stats_cache
from hotline.models import states
from hotline.models.states import OUTBOUND_MODES  # noqa: F401 - callers read it here
from hotline.models import (Channel, Contact, ContactEvent, ContactState, EventKind, Outcome,
                            utcnow, to_minute)

log = logging.getLogger(__name__)

_INSERT_EVENT = insert(ContactEvent.__table__)
#: The contacts table's columns (``_C.attempt + 1``, not ``Contact.attempt + 1``: see above).
_C = Contact.__table__.c


def event(session: Session, contact: Contact, kind: EventKind | Outcome | str,
          tier: int | None = None, outcome: str | None = None, at: datetime | None = None) -> None:
    """Append one statistics event (no number, no text, minute resolution); a late one
    (a contact days old) drops the cached statistics of the contact's day."""
    kind = states.value(kind)
    # A Core INSERT, sent now: an event is never read back as an object, and the ORM's
    # unit of work (an object to track, a flush, RETURNING its id) was the dearest part of
    # most webhooks. Its contact is in the database already (``contact.id`` is set).
    session.execute(_INSERT_EVENT, {"contact_id": contact.id, "kind": kind,
                                    "at": to_minute(at or utcnow()), "channel": contact.channel,
                                    "tier": tier, "outcome": outcome})
    _after_event(session, contact, kind, outcome, committed=False)


def _after_event(session: Session, contact, kind: str, outcome: str | None,
                 committed: bool) -> None:
    """What an event's INSERT brings besides itself: a late one (a contact days old) drops
    the cached statistics of the contact's day; an outcome (written once per contact, when
    it ends) is counted, once its transaction commits (``committed``: it has, in
    autocommit: counted now)."""
    stats_cache.forget_contact(session, contact, kind)
    if outcome is not None:
        if committed:
            counters.count_now("contacts", channel=contact.channel, outcome=outcome)
        else:
            counters.count_on_commit(session, "contacts", channel=contact.channel,
                                     outcome=outcome)


#: The event's own values in a change sent with it (``_logged``), named apart from the
#: contact's columns (an outcome is both a contact's column and its event's).
_EVENT_VALUES = {name: bindparam(f"event_{name}", type_=ContactEvent.__table__.c[name].type)
                 for name in ("kind", "at", "tier", "outcome")}
_LOGGED: dict = {}


def _with_event(statement):
    """``statement`` (one contact's UPDATE or INSERT ... RETURNING at least its ``id`` and
    ``channel``) and its event as one statement (PostgreSQL's data-modifying WITH): the
    event is INSERTed ... SELECTed from the change's RETURNING, so it exists only if the
    change matched a row; the statement returns what ``statement`` returns. Built once."""
    logged = _LOGGED.get(statement)
    if logged is None:
        changed = statement.cte("changed")
        logged = _LOGGED[statement] = select(*changed.c).add_cte(
            insert(ContactEvent.__table__).from_select(
                ("contact_id", "channel", *_EVENT_VALUES), select(
                    changed.c.id, changed.c.channel, *_EVENT_VALUES.values())).cte("logged"))
    return logged


def _logged(session: Session, statement, values: dict, kind: str | None,
            tier: int | None = None, outcome: str | None = None):
    """Send ``statement`` (one contact's change ... RETURNING, see ``_with_event``) with
    ``values``, and, when it matched a row and ``kind`` is given, its event; the row it
    returned, or None. The one owner of "a contact's change and its event".

    PostgreSQL: one statement (``_with_event``); in autocommit when the session has no
    transaction yet (no BEGIN, no COMMIT: the statement is atomic on its own), inside it
    otherwise (whatever the caller wrote before commits with it, or nothing does).
    SQLite (no UPDATE or INSERT in WITH): the change, then the event's INSERT, in the
    session's transaction, as ``event`` writes it."""
    session.flush()  # pending changes first (a Core statement does not autoflush)
    if kind is None or session.get_bind().dialect.name != "postgresql":
        row = session.execute(statement, values).one_or_none()
        if row is not None and kind is not None:
            event(session, row, kind, tier=tier, outcome=outcome)
        return row
    values = {**values, "event_kind": kind, "event_at": to_minute(utcnow()),
              "event_tier": tier, "event_outcome": outcome}
    committed = not _in_transaction(session)
    if committed:
        with _autocommit(session) as conn:
            row = conn.execute(_with_event(statement), values).one_or_none()
    else:
        row = session.execute(_with_event(statement), values).one_or_none()
    if row is not None:
        _after_event(session, row, kind, outcome, committed)
    return row


#: The incoming call's two rows, a new contact and its STARTED event (``_logged``: one
#: statement on PostgreSQL), bringing back only what the menu answers with (the
#: contact's id and language) and what its event reads (channel, created_at), not the 23
#: columns of an ORM object.
_CONTACTS = Contact.__table__
_INSERT_VOICE = insert(_CONTACTS).values(
    channel=Channel.VOICE.value, call_sid=bindparam("call_sid"),
    caller_key=bindparam("caller_key"), sealed_number=bindparam("sealed_number"),
    caller_verified=bindparam("caller_verified")).returning(
    *(_C[name] for name in ("id", "language", "channel", "created_at")))


def open_voice(session: Session, call_sid: str, caller_key: str,
               sealed_number: str | None = None, caller_verified: bool = False):
    """The contact for an incoming call, with its STARTED event; the same one again for a
    repeated webhook. Returns a Row with the contact's ``id`` and ``language`` (what the
    menu needs), not an ORM object. The caller commits.

    ``sealed_number`` is kept only while the call may still need it (a callback or the
    check-in question); ``forget_number`` drops it as soon as it does not.
    ``caller_verified``: the carrier vouched for the caller ID (see consent.attested).
    """
    # INSERT first: a CallSid is new but for a repeated delivery, which the unique index
    # turns away (a SELECT before every INSERT cost each call a round trip for the rare
    # repeat). That also makes a repeated delivery idempotent without Redis: the repeat
    # meets the unique CallSid (after the first commits, if both run at once), writes
    # nothing, and answers the same menu of the same contact (see voice.views.incoming).
    # Nothing before it in the transaction is lost by the rollback: a repeat's caller key
    # was moved to the newest version by its first delivery.
    values = {"call_sid": call_sid, "caller_key": caller_key, "sealed_number": sealed_number,
              "caller_verified": caller_verified}
    # In autocommit unless a caller re-keyed first (their rows then move with it).
    try:
        opened = _logged(session, _INSERT_VOICE, values, EventKind.STARTED.value)
    except IntegrityError:  # the same CallSid delivered again (or twice at once)
        session.rollback()
        return glance_by_call_sid(session, call_sid)
    # DEBUG, not INFO: the line written by every incoming call cost it more than the seal
    # of its number; the webhook metrics count the calls, the statistics their contacts.
    log.debug("contact %s started (voice)", opened.id)
    return opened


#: ``start``'s INSERTs, one per set of columns given.
_INSERTS: dict = {}


def start(session: Session, **values: Any) -> Contact:
    """A new contact row (defaults as the model's) and its STARTED event (``_logged``),
    the contact in the session as if loaded: one INSERT ... RETURNING, without the ORM's
    unit of work (an object to flush, its id fetched back). IntegrityError as a flush
    would raise it."""
    statement = _INSERTS.get(tuple(values))
    if statement is None:  # built once per set of columns given (see ``_Change``)
        statement = _INSERTS[tuple(values)] = insert(_CONTACTS).values(
            **{name: bindparam(name) for name in values}).returning(*_C)
    return _persistent(session, _logged(session, statement, values,
                                        EventKind.STARTED.value)._mapping)


def _persistent(session: Session, row) -> Contact:
    """The contact of a row just INSERTed ... RETURNING, in the session as if loaded (the
    row is what the database holds)."""
    contact = Contact()
    for key, value in row.items():
        set_committed_value(contact, key, value)
    make_transient_to_detached(contact)
    session.add(contact)
    return contact


#: What the most frequent webhooks decide on: a waiting caller's poll (the queue's wait
#: URL: ``runner.on_wait``, the words said while waiting) and the status callback of a
#: call (mostly one already ended): so they read only these.
_GLANCE_COLUMNS = tuple(Contact.__table__.c[name] for name in (
    "id", "state", "attempt", "exhausted", "escalated", "language", "match_role",
    "match_unit", "outcome"))
_GLANCE = select(*_GLANCE_COLUMNS).where(Contact.__table__.c.id == bindparam("key"))
_GLANCE_BY_CALL_SID = select(*_GLANCE_COLUMNS).where(
    Contact.__table__.c.call_sid == bindparam("key"))


def _in_transaction(session: Session | scoped_session) -> bool:
    """Whether ``session`` has begun a transaction (a scoped session, such as the app's
    ``db.session``, does not pass ``in_transaction`` on to its session)."""
    return (session() if isinstance(session, scoped_session) else session).in_transaction()


def _autocommit(session: Session):
    """A connection of ``session``'s engine in autocommit: each statement is committed as
    it ends, no BEGIN, no COMMIT (for one statement that needs no transaction around it)."""
    return session.get_bind().connect().execution_options(isolation_level="AUTOCOMMIT")


def _glance(session: Session, statement, key):
    with _autocommit(session) as conn:
        return conn.execute(statement, {"key": key}).first()


def glance(session: Session, contact_id: int):
    """A light, read-only view of the contact (a Row with the attributes of
    ``_GLANCE_COLUMNS``), or None when there is none: one SELECT on a connection in
    autocommit, so no BEGIN and no ROLLBACK travel with it, and no ORM object is built (no
    identity map, no refresh). What it decides to change is done on the contact loaded
    in ``session``."""
    return _glance(session, _GLANCE, contact_id)


def glance_by_call_sid(session: Session, call_sid: str):
    """``glance`` of the contact whose caller leg is ``call_sid``."""
    return _glance(session, _GLANCE_BY_CALL_SID, call_sid)


def discard(session: Session, contact: Contact) -> None:
    """A call that turned out to be no contact (it joined a team debrief): its row and
    events go, so it is neither a call in the statistics nor an abandoned one. Commits."""
    session.execute(delete(ContactEvent).where(ContactEvent.contact_id == contact.id))
    session.delete(contact)
    session.commit()
    log.info("call %s joined a debrief: not a contact", contact.id)



#: What a state change made by id returns (a Row with these attributes): what its event
#: (``event``) and the caller's answer (the language it speaks, the attempt it routes) read.
BRIEF = tuple(_C[name] for name in ("id", "channel", "language", "created_at", "attempt"))


class _Change:
    """One conditional UPDATE of a contact's row, built once per set of columns it is given
    (building an UPDATE and its cache key cost ~0.1 ms a call, as much as sending it): the
    row ``row_id`` if ``where`` holds, SET the ``expressions`` here (``attempt + 1``) and
    each column named among the values it is executed with; RETURNING the whole row or
    ``BRIEF``. The columns are bound by name in the statement itself, not left for
    SQLAlchemy to take from the parameters: inside a WITH (``_with_event``) it would not."""

    def __init__(self, *where: Any, **expressions: Any) -> None:
        self.statement = update(Contact.__table__).where(
            _C.id == bindparam("row_id"), *where).values(**expressions)
        self.built: dict = {}

    def returning(self, values: dict, whole: bool):
        """The UPDATE SETting the columns among ``values``' keys, RETURNING the whole row
        (``whole``) or ``BRIEF``."""
        key = (whole, *values)
        built = self.built.get(key)
        if built is None:
            built = self.built[key] = self.statement.values(
                **{name: bindparam(name) for name in values if name in _C}).returning(
                *(_C if whole else BRIEF))
        return built


_NEXT_ATTEMPT = _C.attempt + 1  # a new attempt: routing jobs of the previous one exit
_WAITING = _C.state == ContactState.WAITING.value
_NO_OUTCOME = _C.outcome.is_(None)
_QUEUE = _Change(attempt=_NEXT_ATTEMPT)
_LEAVE_QUEUE = _Change(_WAITING, attempt=_NEXT_ATTEMPT)
_FORGET = _Change(_C.sealed_number.is_not(None))
_SET_OUTCOME = _Change(_NO_OUTCOME)
_SET_OUTCOME_AND_END = _Change(_NO_OUTCOME, attempt=_NEXT_ATTEMPT)
_CONNECT = _Change(_WAITING, _C.attempt == bindparam("expected_attempt"), _NO_OUTCOME)
_END = _Change(_C.state != ContactState.ENDED.value, attempt=_NEXT_ATTEMPT)


def _update(session: Session, contact: Contact | int, change: _Change,
            logged: dict | None = None, **values: Any):
    """The ``change`` of the contact's row, if its condition holds; the contact as it now
    is when it did, else None. ``logged``: its event (``kind``, and ``tier``, ``outcome``
    if any), written only if the change matched, with it (``_logged``: then committed
    already, in autocommit, when the session had no transaction yet). Otherwise the
    transaction stays open for the caller to commit.

    A loaded contact: the new row comes back with RETURNING and replaces its attributes
    (as a refresh would); one whose UPDATE matched nothing is reloaded instead. A contact
    id: the ``BRIEF`` row RETURNING gives back (None also when there is no such contact).
    """
    whole = not isinstance(contact, int)
    row = _logged(session, change.returning(values, whole),
                  {"row_id": contact.id if whole else contact, **values},
                  **(logged or {"kind": None}))
    if not whole:
        return row
    if row is None:
        session.refresh(contact)
        return None
    for key, value in row._mapping.items():  # a Core UPDATE: no ORM bulk-update bookkeeping
        set_committed_value(contact, key, value)
    return contact


def queue(session: Session, contact: Contact | int, mode: str | None = None):
    """Put the contact (back) in the queue: a new routing attempt (its number:
    ``.attempt`` of what this returns: the contact, or by id its ``BRIEF`` row; None when
    there is no such contact). ``mode``: what was asked for (a call, a text...), set in
    the same UPDATE."""
    return _update(session, contact, _QUEUE, {"kind": EventKind.QUEUED.value},
                   state=ContactState.WAITING.value, escalated=False, tier2_rung=False,
                   exhausted=False, queued_at=utcnow(),
                   **({"mode": mode} if mode is not None else {}))


def leave_queue(session: Session, contact: Contact, new_state: ContactState) -> bool:
    """Take a waiting contact out of the queue; stale routing jobs then exit."""
    return _update(session, contact, _LEAVE_QUEUE, state=new_state.value) is not None




def forget_number(session: Session, contact: Contact | int) -> None:
    """Delete the contact's sealed number: nothing more needs to reach the clinician
    (committed with the caller's transaction)."""
    if isinstance(contact, int):  # not loaded: not read for this either
        _update(session, contact, _FORGET, sealed_number=None)
    else:
        contact.sealed_number = None


#: What a contact holds only until its outcome, erased in the very UPDATE that sets it (so
#: no committed row has both): the caller's match request (docs/privacy.md).
ERASED_AT_OUTCOME = {"match_role": None, "match_unit": None}


def ask_match(session: Session, contact: Contact, role: str | None = None,
              unit: str | None = None) -> None:
    """The caller's match request, on the open contact only, for routing (erased with its
    outcome: ``ERASED_AT_OUTCOME``); the unit sealed (``hotline.escalation.matching.unit_of``
    opens it); the caller commits. The statistics get one
    ``match_asked`` event per contact, which names neither the role nor the unit."""
    if not contact.match_role and not contact.match_unit and (role or unit):
        event(session, contact, EventKind.MATCH_ASKED)
    if role:
        contact.match_role = role
    if unit:  # sealed like a number: the plain name is never written to the database
        contact.match_unit = privacy.seal(unit, settings())


def finish(session: Session, contact: Contact | int, outcome: Outcome,
           tier: int | None = None, end: bool = True, forget: bool = False) -> bool:
    """Set the one outcome of a contact (loaded, or by id); False when it already had one
    (or, by id, there is no such contact).

    ``forget``: the sealed number goes in the same UPDATE (one statement, not two), or,
    when the outcome was set before, all the same (``forget_number``)."""
    values: dict = {"outcome": outcome.value, **ERASED_AT_OUTCOME}
    if end:
        values.update(state=ContactState.ENDED.value, ended_at=utcnow())
    if forget:
        values["sealed_number"] = None
    done = _update(session, contact, _SET_OUTCOME_AND_END if end else _SET_OUTCOME,
                   {"kind": outcome.value, "tier": tier, "outcome": outcome.value}, **values)
    if done is None:
        if forget:
            forget_number(session, contact)
        return False
    log.info("contact %s outcome %s", done.id, outcome.value)
    return True


def connected_outcome(tier: int) -> Outcome:
    """The outcome of reaching a supporter of ``tier``."""
    return Outcome.CONNECTED if tier == 1 else Outcome.CONNECTED_BACKUP


def connect(session: Session, contact: Contact, attempt: int, supporter_id: int,
            tier: int) -> bool:
    """The supporter who accepted first wins the contact; False if another did.

    When the hotline calls the clinician (a "call me" text, a callback) the outcome comes
    only once they pick up and are bridged; every other contact is connected now.
    """
    outcome = connected_outcome(tier)
    now_final = contact.mode not in OUTBOUND_MODES
    won = _update(session, contact, _CONNECT, expected_attempt=attempt,
                  state=ContactState.CONNECTED.value, supporter_id=supporter_id,
                  connected_at=utcnow(), outcome=outcome.value if now_final else None,
                  **(ERASED_AT_OUTCOME if now_final else {})) is not None
    if won and now_final:
        event(session, contact, outcome.value, tier=tier, outcome=outcome.value)
    if won:
        log.info("contact %s connected (tier %s)", contact.id, tier)
    return won


def end(session: Session, contact: Contact) -> None:
    """Mark a connected contact's call as over (its outcome stays)."""
    if _update(session, contact, _END, state=ContactState.ENDED.value, ended_at=utcnow()):
        event(session, contact, EventKind.ENDED)
