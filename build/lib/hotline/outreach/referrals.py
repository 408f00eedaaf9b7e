"""Referrals and the outreach text they may cause (see the package's docstring).

``refer`` is the one entry for every kind of referrer: it returns nothing the referrer
could learn from (each adapter says "we will reach out" whatever happened). An outreach is
created only when the number has not opted out, had no outreach within the quiet period,
and the referrer is under their rate limit; its text leaves at a decent local hour
(``followups.decent_time``) by a job with a deterministic id, and the reply window starts
when it has left. The auditor (``audit``) is the safety net of both jobs.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from hotline.callbacks import requests as callbacks
from hotline.core.extensions import redis_conn, settings
from hotline.core.settings import Settings
from hotline.followups import consent
from hotline.followups import schedule as followups
from hotline.lifecycle import contacts, effects
from hotline.lifecycle.effects import Effect
from hotline.models import (Channel, Contact, ContactState, EventKind, Outreach,
                            OutreachDay, OutreachState, insert_for, to_minute, utcnow)
from hotline.privacy import keys
from hotline.privacy import primitives as privacy
from hotline.telephony import outbound

log = logging.getLogger(__name__)

#: The RQ jobs (``workers/outreach.py``), by dotted name.
SEND_JOB = "workers.outreach.send"
EXPIRE_JOB = "workers.outreach.expire"
#: Rate-limit counters (Redis, one day each) and the short lock that keeps two referrals
#: of the same number at the same moment from both passing the quiet-period check.
LIMIT_PREFIX = "hotline:outreach:limit"
LOCK_PREFIX = "hotline:outreach:lock"
LIMIT_SECONDS = 24 * 3600
#: A send job this late (lost with a flushed Redis) is scheduled again by the auditor.
SEND_LATE = timedelta(minutes=10)


def send_job_id(outreach_id: int) -> str:
    return f"hotline-outreach-{outreach_id}-send"


def expire_job_id(outreach_id: int) -> str:
    return f"hotline-outreach-{outreach_id}-expire"


def referrer_tag(kind: str, identity: str, cfg: Settings) -> str:
    """A referrer as the rate limits know them: a keyed hash (``kind`` "account" with the
    account id, or "caller" with a caller key), never the id itself."""
    return privacy.caller_key(f"{kind}:{identity}", cfg)


def _over_limit(tag: str, limit: int) -> bool:
    """Count one referral by ``tag`` today; True past ``limit`` (the counter expires a day
    after the first, with nothing else kept)."""
    client = redis_conn.client
    name = f"{LIMIT_PREFIX}:{tag}"
    count = client.incr(name)
    if count == 1:
        client.expire(name, LIMIT_SECONDS)
    return count > limit


def refer(session: Session, number: str, language: str | None = None, *,
          referrer: str | None = None, limit: int | None = None,
          now: datetime | None = None) -> None:
    """A referral of ``number`` (E.164) by ``referrer`` (a ``referrer_tag``; None for a
    coordinator at the command line) allowed ``limit`` referrals a day.

    Returns nothing on purpose: whether a text will go is nobody's business but the
    colleague's."""
    cfg = settings()
    now = now or utcnow()
    if referrer is not None and _over_limit(referrer, limit or cfg.OUTREACH_PER_REFERRER):
        log.info("a referral over its referrer's daily limit was dropped")
        return
    hashes = privacy.caller_keys(number, cfg)
    lock = f"{LOCK_PREFIX}:{hashes[0]}"
    if not redis_conn.client.set(lock, "1", nx=True, ex=60):
        return  # the same number referred this very moment: that one counts
    try:
        if keys.opted_out(session, number, cfg):
            log.info("a referral of a number that opted out was dropped")
            return
        recent = session.scalar(select(Outreach.id).where(
            Outreach.caller_key.in_(hashes),
            Outreach.created_at >= now - timedelta(days=cfg.OUTREACH_QUIET_DAYS)).limit(1))
        if recent is not None:
            log.info("a referral within a number's quiet period was dropped")
            return
        row = Outreach(caller_key=hashes[0], language=_language(language),
                       sealed_number=privacy.seal(number, cfg),
                       state=OutreachState.PENDING.value, created_at=to_minute(now))
        session.add(row)
        session.commit()
    finally:
        redis_conn.client.delete(lock)
    at = followups.decent_time(now, followups.timezone_for(number, cfg), cfg)
    effects.apply([_send(row.id, at - now)])
    log.info("outreach %s scheduled", row.id)


def _language(code: str | None) -> str:
    offered = outbound.text_flows().languages
    return code if code in offered else next(iter(offered))


def _send(outreach_id: int, delay: timedelta) -> Effect:
    return Effect(SEND_JOB, (outreach_id,), job_id=send_job_id(outreach_id),
                  delay=delay if delay > timedelta(0) else None)


def send(session: Session, outreach_id: int) -> str:
    """The one text (a job at a decent hour): sent at most once, then the reply window."""
    row = session.get(Outreach, outreach_id, with_for_update=True)
    if row is None or row.state != OutreachState.PENDING.value or row.sent_at is not None \
            or not row.sealed_number:
        session.rollback()
        return "nothing to do"
    cfg = settings()
    number = privacy.unseal(row.sealed_number, cfg)
    if keys.opted_out(session, number, cfg):  # STOP between the referral and now
        _end(row, OutreachState.OPTED_OUT)
        session.commit()
        return "opted out"
    # Marked sent before it leaves: a worker killed after the send never sends it twice.
    row.sent_at = utcnow()
    _count_sent(session, row.sent_at.astimezone(ZoneInfo(cfg.TIMEZONE)).date())
    session.commit()
    effects.apply([Effect(EXPIRE_JOB, (row.id,), job_id=expire_job_id(row.id),
                          delay=timedelta(hours=cfg.OUTREACH_REPLY_HOURS))])
    outbound.send_text(number, outbound.text_flows().message(row.language, "outreach_offer"))
    log.info("outreach %s sent", row.id)
    return "sent"


def _count_sent(session: Session, day) -> None:
    """One more text sent on local ``day``, in the send's own transaction: the statistics'
    "sent" outlives the outreach rows (deleted after the quiet period) and links nothing."""
    session.execute(insert_for(session, OutreachDay).values(day=day, sent=1)
                    .on_conflict_do_update(index_elements=["day"],
                                           set_={"sent": OutreachDay.sent + 1}))


def _end(row: Outreach, state: OutreachState) -> None:
    """The outreach is over: its state, and the number goes."""
    row.state = state.value
    row.sealed_number = None
    row.ended_at = to_minute(utcnow())


def expire(session: Session, outreach_id: int) -> str:
    """No answer within the reply window: it ends, and the number is deleted."""
    row = session.get(Outreach, outreach_id, with_for_update=True)
    if row is None or row.state != OutreachState.PENDING.value:
        session.rollback()
        return "nothing to do"
    _end(row, OutreachState.EXPIRED)
    session.commit()
    log.info("outreach %s expired unanswered", outreach_id)
    return "expired"


def pending_for(session: Session, number: str) -> Outreach | None:
    """The outreach sent to ``number`` that still waits for its answer, if any."""
    return session.scalar(select(Outreach).where(
        Outreach.caller_key.in_(privacy.caller_keys(number, settings())),
        Outreach.state == OutreachState.PENDING.value, Outreach.sent_at.is_not(None))
        .order_by(Outreach.id.desc()).limit(1))


def answer(session: Session, number: str, word: str) -> tuple[str, str, str] | None:
    """The colleague's YES or NO to the outreach text: (language, message key, promise
    ``when``) to text back; None when no outreach waits or the text is neither word.

    YES opens a contact with a callback request (``hotline.callbacks``): a peer is rung
    first, then the colleague, as for every callback. Either way the outreach's own copy of
    the number goes now."""
    first = word.split()[0] if word.split() else ""
    yes, no = consent.flows().yes_words, consent.flows().no_words
    if first not in yes and first not in no:
        return None
    row = pending_for(session, number)
    if row is None:
        return None
    if first in no:
        _end(row, OutreachState.DECLINED)
        session.commit()
        log.info("outreach %s declined", row.id)
        return row.language, "outreach_no", ""
    cfg = settings()
    contact = Contact(channel=Channel.SMS.value, caller_key=row.caller_key,
                      language=row.language, state=ContactState.MENU.value,
                      sealed_number=privacy.seal(number, cfg))
    session.add(contact)
    session.flush()
    contacts.event(session, contact, EventKind.STARTED)
    contacts.event(session, contact, EventKind.OUTREACH_ACCEPTED)
    _end(row, OutreachState.ACCEPTED)
    row.contact_id = contact.id
    promised = callbacks.promise(session)
    callbacks.request(session, contact, number, promised)  # commits, then the first try
    log.info("outreach %s accepted", row.id)
    return row.language, promised.MESSAGES[promised.kind], promised.when(row.language,
                                                                         with_zone=True)


def opted_out(session: Session, caller_key: str) -> None:
    """STOP from the colleague: any outreach still pending for them ends (the caller
    commits with the opt-out)."""
    for row in session.scalars(select(Outreach).where(
            Outreach.caller_key == caller_key,
            Outreach.state == OutreachState.PENDING.value)):
        _end(row, OutreachState.OPTED_OUT)


def audit(session: Session, now: datetime, still_scheduled) -> int:
    """The safety net: a pending outreach past its reply window ends (its expiry job was
    lost); one whose send job was lost is scheduled again. And an outreach over and past
    its quiet period is deleted: the number's keyed hash has no use any more (the
    statistics count the contact a YES opened, not this row). Returns how many it handled."""
    cfg = settings()
    done = session.execute(delete(Outreach).where(
        Outreach.state != OutreachState.PENDING.value,
        Outreach.created_at < now - timedelta(days=cfg.OUTREACH_QUIET_DAYS))).rowcount
    session.commit()
    for row in session.scalars(select(Outreach).where(
            Outreach.state == OutreachState.PENDING.value)).all():
        if row.sent_at is not None:
            if row.sent_at + timedelta(hours=cfg.OUTREACH_REPLY_HOURS) <= now:
                done += expire(session, row.id) == "expired"
        elif row.created_at <= now - SEND_LATE and not still_scheduled(send_job_id(row.id)):
            number = privacy.unseal(row.sealed_number, cfg)
            at = followups.decent_time(now, followups.timezone_for(number, cfg), cfg)
            effects.apply([_send(row.id, at - now)])
            done += 1
    return done
