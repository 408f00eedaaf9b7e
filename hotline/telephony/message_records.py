"""The message records at Twilio: every sid is kept (never a body) until Twilio confirms
the body blanked and the media deleted, and with ``HOTLINE_TWILIO_LOG_DAYS`` until the
record itself is deleted there.

- ``file_sid`` files a sid in the caller's transaction (a second filing is a no-op: status
  callbacks come several times). Incoming texts are filed before they are handled, with
  the record that they were (``record_incoming``: one statement on PostgreSQL), so a
  handler that fails, or Redis being down, cannot lose one; the hotline's own texts (REST,
  TwiML replies, relays) are filed by their status callback, and REST ones on sending too.
- ``reconcile`` (the auditor, every 15 minutes) files the sids the hotline never learned:
  a text that came while the database or the whole app was down, a reply whose status
  callbacks were all lost. It lists the messages to and from the hotline's number at
  Twilio since the last complete listing (less a margin; a few days at most), a bounded
  number of pages per run, and files each unknown sid for ``sweep``.
- ``sweep`` (the auditor, every minute) redacts what is not yet redacted: Body="" then the
  media. A refusal (still queued or sending, a 429, Twilio unreachable) is tried again
  with backoff, for as long as it takes: nothing is given up.
- ``delete_old`` (the daily purge) deletes at Twilio the records older than
  ``HOTLINE_TWILIO_LOG_DAYS``, whatever their direction, and forgets their sids;
  ``forget_done`` forgets the sids with nothing left to do.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy import bindparam, delete, insert, literal, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from hotline.telephony import api as twilio_api
from hotline.core.errors import TwilioApiError
from hotline.models import FollowUp, InboundMessage, MessageSid, insert_for, utcnow
from hotline.core.settings import Settings

log = logging.getLogger(__name__)

INBOUND, OUTBOUND = "inbound", "outbound"
#: Messages redacted per sweep: the auditor runs every minute, the rest wait one.
BATCH = 100
#: Refusals in a row after which a sweep stops (the rest wait for the next minute).
GIVE_WAY = 3
#: Backoff of a refused redaction: 1 minute, doubling, at most an hour between tries.
FIRST_RETRY = timedelta(minutes=1)
LAST_RETRY = timedelta(hours=1)
#: A redacted sid is kept this long when no deletion at Twilio is due (a late status
#: callback then finds it and files nothing new).
KEEP_DONE = timedelta(days=7)

#: How often the messages at Twilio are listed (the minute pass only asks Redis if due).
RECONCILE_EVERY = timedelta(minutes=15)
#: Each listing goes back to the start of the last complete one less this (clock skew, and
#: texts whose sending date is set late)...
RECONCILE_MARGIN = timedelta(hours=1)
#: ...but never further than this: the first listing, or after Redis lost the watermark.
#: It must stay below KEEP_DONE, or sids already forgotten would be filed again.
RECONCILE_WINDOW = timedelta(days=3)
#: Messages per page, and pages per run: a long listing goes on at the next minute.
RECONCILE_PAGE_SIZE = 200
RECONCILE_PAGES = 5
#: Redis: the listing's state (a hash), and the key whose expiry says the next one is due.
RECONCILE_KEY = "hotline:message-records:reconcile"
RECONCILE_DUE_KEY = "hotline:message-records:reconcile-due"
#: The two halves of a listing: texts to the hotline's number, then texts from it.
PHASES = ("to", "from")


#: ``file_sid``'s INSERT, one per dialect: built once, as a statement with bound values (a
#: statement built per text, with its values, was most of what filing cost).
_FILE_SID: dict[str, object] = {}


def _file_sid_statement(session: Session):
    dialect = session.get_bind().dialect.name
    statement = _FILE_SID.get(dialect)
    if statement is None:
        # On the table, not the mapped class: a plain Core INSERT (the class would send it
        # through the ORM's bulk-insert path, for nothing: no object is made or tracked).
        statement = _FILE_SID[dialect] = insert_for(session, MessageSid.__table__).values(
            sid=bindparam("sid"), direction=bindparam("direction"),
            created_at=bindparam("created_at"), tries=0,
            redacted_at=bindparam("redacted_at")).on_conflict_do_nothing(
            index_elements=["sid"])
    return statement


def file_sid(session: Session, sid: str | None, direction: str, *,
           created_at: datetime | None = None, redacted_at: datetime | None = None) -> None:
    """File ``sid`` as a message at Twilio still to redact (no commit: the caller's);
    ``redacted_at`` files one known to be blank already."""
    if not sid:
        return
    session.execute(_file_sid_statement(session), {
        "sid": sid, "direction": direction, "created_at": created_at or utcnow(),
        "redacted_at": redacted_at})


_INSERT_HANDLED = insert(InboundMessage.__table__).values(
    message_sid=bindparam("sid"), received_at=bindparam("at"))


def _record_incoming_statement():
    """PostgreSQL's one statement for ``record_incoming``: the handled record's INSERT in a
    data-modifying CTE, whose RETURNING feeds the filing (a repeat's unique violation
    fails the whole statement, as the first of two INSERTs would)."""
    sids = MessageSid.__table__
    handled = _INSERT_HANDLED.returning(InboundMessage.__table__.c.message_sid).cte("handled")
    return pg_insert(sids).from_select(
        ["sid", "direction", "created_at", "tries"],
        select(handled.c.message_sid, literal(INBOUND),
               bindparam("at", type_=sids.c.created_at.type), literal(0))
    ).on_conflict_do_nothing(index_elements=["sid"])


_RECORD_INCOMING = _record_incoming_statement()


def record_incoming(session: Session, sid: str) -> None:
    """An incoming text's two records, in the caller's transaction (no commit): handled
    (``InboundMessage``: a repeated delivery meets the unique sid, IntegrityError) and
    filed for redaction. One round trip on PostgreSQL (``_RECORD_INCOMING``); the same two
    INSERTs one after the other elsewhere (SQLite has no INSERT in a WITH clause)."""
    at = utcnow()
    if session.get_bind().dialect.name == "postgresql":
        session.execute(_RECORD_INCOMING, {"sid": sid, "at": at})
        return
    session.execute(_INSERT_HANDLED, {"sid": sid, "at": at})
    file_sid(session, sid, INBOUND, created_at=at)


def reconcile(session: Session, settings: Settings, store: Redis,
              now: datetime | None = None) -> int:
    """File the messages at Twilio the hotline never learned of; returns how many.

    Runs at most every RECONCILE_EVERY (a key in ``store`` expires when the next is due),
    RECONCILE_PAGES pages a run. Its state is kept in ``store``: ``watermark``, when the
    last complete listing started, and the listing under way (``started``, ``since``,
    ``phase``, ``cursor``: the next page's URI). The watermark moves only when a listing
    is complete, so a failure or a cut-short run never skips a message; losing the state
    only widens the next window, to RECONCILE_WINDOW.
    """
    if not (settings.REDACT_AT_TWILIO or settings.TWILIO_LOG_DAYS):
        return 0  # nothing would be done at Twilio with the sids
    try:
        if not store.set(RECONCILE_DUE_KEY, "1", nx=True,
                         ex=int(RECONCILE_EVERY.total_seconds())):
            return 0
        state = {k.decode(): v.decode() for k, v in store.hgetall(RECONCILE_KEY).items()}
        return _reconcile(session, settings, store, state, now or utcnow())
    except RedisError as exc:  # the state cannot be kept: list once Redis is back
        log.warning("message reconciliation skipped: %s", type(exc).__name__)
        return 0


def _reconcile(session: Session, settings: Settings, store: Redis, state: dict[str, str],
               now: datetime) -> int:
    if state.get("started"):  # a listing cut short goes on where it stopped
        started, since = _parse(state["started"]), _parse(state["since"])
        phase, cursor = state.get("phase", PHASES[0]), state.get("cursor") or None
    else:
        started, since = now, now - RECONCILE_WINDOW
        if state.get("watermark"):
            since = max(since, _parse(state["watermark"]) - RECONCILE_MARGIN)
        phase, cursor = PHASES[0], None
    filed = 0
    for _ in range(RECONCILE_PAGES):
        number = {"to" if phase == "to" else "from_": settings.HOTLINE_NUMBER}
        try:
            page = twilio_api.list_messages(settings, **number, sent_after=since,
                                            page_size=RECONCILE_PAGE_SIZE, page_uri=cursor)
        except TwilioApiError as exc:  # this half starts again next time (a page's URI
            log.warning("message listing failed: %s", exc)  # may not outlive an outage)
            cursor = None
            break
        filed += _file_unknown(session, page.messages, now)
        cursor = page.next_uri
        if cursor is None:
            if phase == PHASES[-1]:  # complete: the next listing starts from this one
                with store.pipeline() as done:  # one transaction: no half-written state
                    done.delete(RECONCILE_KEY)
                    done.hset(RECONCILE_KEY, "watermark", started.isoformat())
                    done.execute()
                if filed:
                    log.info("reconciliation filed %s unknown messages", filed)
                return filed
            phase = PHASES[PHASES.index(phase) + 1]
    else:  # pages left to list: go on at the next minute, not in 15
        store.delete(RECONCILE_DUE_KEY)
    store.hset(RECONCILE_KEY, mapping={"started": started.isoformat(),
                                       "since": since.isoformat(), "phase": phase,
                                       "cursor": cursor or ""})
    return filed


def _file_unknown(session: Session, listed, now: datetime) -> int:
    """File each listed message not yet known, dated when Twilio sent it (so log-days
    deletion counts from then); one already blank is filed as redacted: no call for it."""
    sids = [m.sid for m in listed]
    known = set(session.scalars(select(MessageSid.sid).where(MessageSid.sid.in_(sids))))
    unknown = [m for m in listed if m.sid not in known]
    for m in unknown:
        file_sid(session, m.sid, INBOUND if m.inbound else OUTBOUND,
               created_at=m.sent_at or now, redacted_at=now if m.blank else None)
    session.commit()
    return len(unknown)


def _parse(value: str) -> datetime:
    return datetime.fromisoformat(value)


def backoff(tries: int) -> timedelta:
    """The wait after the ``tries``-th refusal."""
    return min(LAST_RETRY, FIRST_RETRY * 2 ** min(max(tries - 1, 0), 16))


def sweep(session: Session, settings: Settings, now: datetime | None = None) -> int:
    """Redact at Twilio the messages not yet redacted and due a try; returns how many
    Twilio confirmed. Does nothing when HOTLINE_REDACT_AT_TWILIO is off."""
    if not settings.REDACT_AT_TWILIO:
        return 0
    now = now or utcnow()
    due = session.scalars(select(MessageSid).where(
        MessageSid.redacted_at.is_(None),
        or_(MessageSid.next_try_at.is_(None), MessageSid.next_try_at <= now))
        .order_by(MessageSid.created_at).limit(BATCH)).all()
    confirmed = refused = 0
    for row in due:
        if refused >= GIVE_WAY:
            break  # Twilio is likely down: keep the auditor's pass short, go on next minute
        try:
            media = twilio_api.redact_message(settings, row.sid)
            if media:
                twilio_api.delete_media(settings, row.sid)
        except TwilioApiError as exc:  # refused for now: later, never given up
            row.tries += 1
            row.next_try_at = now + backoff(row.tries)
            log.info("message not redacted yet (try %s): %s", row.tries, exc)
            refused += 1
        else:
            row.redacted_at = now
            confirmed += 1
            refused = 0
        session.commit()
    return confirmed


def delete_old(session: Session, before: datetime, settings: Settings) -> dict[str, int]:
    """Delete at Twilio every message record from before ``before`` (in, out or relayed;
    its media go with it), then forget the sid. A failure is tried again next run."""
    sids = session.scalars(select(MessageSid.sid).where(MessageSid.created_at < before)
                           .order_by(MessageSid.created_at)).all()
    deleted = failed = 0
    for sid in sids:
        try:
            twilio_api.delete_message(settings, sid)
        except TwilioApiError as exc:
            log.warning("twilio message record not deleted: %s", exc)
            failed += 1
            continue
        session.execute(delete(MessageSid).where(MessageSid.sid == sid))
        session.execute(update(FollowUp).where(FollowUp.message_sid == sid)
                        .values(message_sid=None))
        session.commit()
        deleted += 1
    return {"twilio_messages": deleted, "twilio_messages_failed": failed}


def forget_done(session: Session, now: datetime, settings: Settings) -> int:
    """Forget the sids with nothing left to do at Twilio: redacted (or redaction is off),
    a week old, and no deletion there to come (HOTLINE_TWILIO_LOG_DAYS off)."""
    if settings.TWILIO_LOG_DAYS:
        return 0  # each is forgotten once ``delete_old`` deleted it
    done = MessageSid.created_at < now - KEEP_DONE
    if settings.REDACT_AT_TWILIO:
        done = done & MessageSid.redacted_at.is_not(None)
    return max(session.execute(delete(MessageSid).where(done)).rowcount or 0, 0)
