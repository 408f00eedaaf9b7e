"""Retention: what the hotline deletes, and when (run daily by ``workers.retention``).

- Sealed numbers go after their last use: an ended contact's once its check-in question is
  answered or has waited 24 hours (no answer counts as no); a callback's once it is done,
  failed or a week old; a follow-up's once it is sent, replied to or canceled.
- Events older than ``HOTLINE_RETENTION_DAYS`` are folded into anonymous monthly totals
  (``MonthlyAggregate``: month, channel, kind, tier, outcome, count) and deleted; scores
  likewise (``MonthlyScore``). Then the old offers, and the ended contacts no event refers to
  any more (with their follow-ups and callback requests), are deleted. Statistics of any
  period after the cutoff are untouched: they only read events, contacts and offers from it.
  The statistics cache's days that the deleted rows counted in go in the same transaction
  (``stats_cache.forget_before``); after the purge, the newly settled days are cached
  (``joint.warm_all``: the nightly warm-up of the published periods and their decisions).
- Handled MessageSids are kept a week (they only stop a retried webhook from acting twice).
- Opt-outs are kept: a STOP must hold for ever, and it is only a keyed hash.
- With ``HOTLINE_TWILIO_LOG_DAYS`` the call logs whose sids the hotline knows, and every
  message record (incoming, sent, relayed: ``hotline.telephony.message_records``), are deleted at
  Twilio after that many days, and the sids are then forgotten. Without it, a message's
  sid is forgotten a week after Twilio confirmed its body redacted.
- A contact that never ended (its last webhook or job was lost) keeps its sealed number
  no longer than a day after its last sign of life, whatever its state.

Counting is done by SQL (GROUP BY); Python only files the groups under months.
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Integer, cast, delete, exists, func, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from hotline.telephony import message_records
from hotline.disclosure import joint
from hotline.statistics import days as stats_cache
from hotline.telephony import api as twilio_api
from hotline.core.errors import TwilioApiError
from hotline.models import Debrief, DebriefState, OutreachDay, utcnow
from hotline.models import (CallbackRequest, CallbackState, Consent, Contact, ContactEvent,
                            ContactState, FollowUp, FollowUpState, InboundMessage, MonthlyAggregate,
                            MonthlyScore, Offer, OfferState, Score)
from hotline.core.extensions import jobs
from hotline.core.extensions import settings as app_settings
from hotline.core.settings import Settings

log = logging.getLogger(__name__)

#: A check-in question unanswered this long is a no (as ``consent.ANSWER_WINDOW``).
CONSENT_WINDOW = timedelta(hours=24)
#: An ended contact may still be asking its question by voice a few seconds after its end.
ENDED_GRACE = timedelta(hours=1)
#: A callback is tried within hours; a week on, its number is surely no longer needed.
CALLBACK_KEEP = timedelta(days=7)
#: A contact not ended this long after its last sign of life is stuck (a call never lasts
#: a day; a quiet text conversation closes after HOTLINE_SMS_IDLE_MINUTES, or the auditor
#: closes it): its sealed number goes whatever its state.
OPEN_KEEP = timedelta(days=1)
#: Handled MessageSids only dedupe Twilio's retries, which stop within hours.
INBOUND_KEEP = timedelta(days=7)
#: SQL time buckets (seconds) that are then filed under local months: every real time
#: zone's offset is a whole number of quarter hours.
BUCKET_SECONDS = 15 * 60
#: Rows deleted per statement (keeps IN lists small on both databases).
CHUNK = 500
FINAL_FOLLOWUPS = (FollowUpState.SENT.value, FollowUpState.REPLIED.value,
                   FollowUpState.CANCELED.value)


def purge(session: Session, now: datetime, settings: Settings) -> dict[str, int]:
    """Everything retention does, once; returns counts by what was done (and commits)."""
    done: dict[str, int] = {}
    done.update(forget_numbers(session, now))
    if settings.TWILIO_LOG_DAYS:
        done.update(delete_twilio_logs(session, now - timedelta(days=settings.TWILIO_LOG_DAYS),
                                       settings))
    done.update(fold_and_delete(session, now - timedelta(days=settings.RETENTION_DAYS),
                                ZoneInfo(settings.TIMEZONE)))
    done["inbound_messages"] = _deleted(session.execute(
        delete(InboundMessage).where(InboundMessage.received_at < now - INBOUND_KEEP)))
    done["message_sids"] = message_records.forget_done(session, now, settings)
    session.commit()
    done["stats_days_warmed"] = _warm_statistics(session, now, ZoneInfo(settings.TIMEZONE))
    return done


def _warm_statistics(session: Session, now: datetime, zone: ZoneInfo) -> int:
    """Cache the newly settled days of the statistics (``joint.warm_all``), so the first view
    of the longest period reads them instead of counting a year. Only a speed-up: a
    failure is logged, and the next view counts what is missing."""
    try:
        return joint.warm_all(session, zone, now)
    except SQLAlchemyError as exc:
        session.rollback()
        log.warning("statistics cache not warmed: %s", exc.__class__.__name__)
        return 0


def forget_numbers(session: Session, now: datetime) -> dict[str, int]:
    """Delete every sealed number no longer needed (see the module's docstring), in every
    contact state: an open contact past ``OPEN_KEEP`` lost its last webhook or job."""
    ended = (Contact.state == ContactState.ENDED.value) & Contact.sealed_number.is_not(None)
    unanswered = _updated(session.execute(
        update(Contact).where(ended, Contact.consent == Consent.ASKED.value,
                              Contact.ended_at < now - CONSENT_WINDOW)
        .values(consent=Consent.NO.value, sealed_number=None)))
    contacts = _updated(session.execute(
        update(Contact).where(ended, Contact.consent.is_distinct_from(Consent.ASKED.value),
                              Contact.ended_at < now - ENDED_GRACE)
        .values(sealed_number=None)))
    last_seen = func.coalesce(Contact.last_activity_at, Contact.connected_at,
                              Contact.queued_at, Contact.created_at)
    stuck = _updated(session.execute(
        update(Contact).where(Contact.state != ContactState.ENDED.value,
                              Contact.sealed_number.is_not(None),
                              last_seen < now - OPEN_KEEP)
        .values(sealed_number=None)))
    callbacks = _updated(session.execute(
        update(CallbackRequest).where(
            CallbackRequest.sealed_number.is_not(None),
            CallbackRequest.state.in_((CallbackState.DONE.value, CallbackState.FAILED.value))
            | (CallbackRequest.requested_at < now - CALLBACK_KEEP))
        .values(sealed_number=None, match_role=None, match_unit=None)))
    followups = _updated(session.execute(
        update(FollowUp).where(FollowUp.sealed_number.is_not(None),
                               FollowUp.state.in_(FINAL_FOLLOWUPS))
        .values(sealed_number=None)))
    session.commit()
    return {"numbers_contacts": unanswered + contacts + stuck, "numbers_callbacks": callbacks,
            "numbers_followups": followups}


def fold_and_delete(session: Session, cutoff: datetime, zone: ZoneInfo) -> dict[str, int]:
    """Fold events and scores from before ``cutoff`` into monthly totals; delete old rows."""
    events = _fold_events(session, cutoff, zone)
    scores = _fold_scores(session, cutoff.astimezone(zone).date())
    offers = _deleted(session.execute(delete(Offer).where(
        Offer.created_at < cutoff, Offer.state != OfferState.RINGING.value)))
    contacts = _delete_contacts(session, cutoff)
    cached = stats_cache.forget_before(session, cutoff)  # the cached days of what went
    # A held debrief keeps only its day and its number of participants: kept as long as
    # the events are, then gone.
    debriefs = _deleted(session.execute(delete(Debrief).where(
        Debrief.state == DebriefState.ENDED, Debrief.day < cutoff.astimezone(zone).date())))
    # The outreach tally is counts by day, like the statistics cache: gone with the events.
    tallies = _deleted(session.execute(delete(OutreachDay).where(
        OutreachDay.day < cutoff.astimezone(zone).date())))
    return {"events_folded": events, "scores_folded": scores, "offers": offers,
            "contacts": contacts, "stats_days": cached, "debriefs": debriefs,
            "outreach_days": tallies}


def _fold_events(session: Session, cutoff: datetime, zone: ZoneInfo) -> int:
    old = ContactEvent.at < cutoff
    bucket = (_epoch(session, ContactEvent.at) // BUCKET_SECONDS).label("bucket")
    columns = (ContactEvent.channel, ContactEvent.kind, ContactEvent.tier, ContactEvent.outcome)
    totals: Counter = Counter()
    for slot, channel, kind, tier, outcome, count in session.execute(
            select(bucket, *columns, func.count()).where(old).group_by(bucket, *columns)):
        month = _month(datetime.fromtimestamp(int(slot) * BUCKET_SECONDS, UTC)
                       .astimezone(zone).date())
        totals[(month, channel, kind, tier, outcome)] += count
    for (month, channel, kind, tier, outcome), count in totals.items():
        _add(session, MonthlyAggregate, count, month=month, channel=channel, kind=kind,
             tier=tier, outcome=outcome)
    return _deleted(session.execute(delete(ContactEvent).where(old)))


def _fold_scores(session: Session, first_kept: date) -> int:
    old = Score.day < first_kept
    columns = (Score.day, Score.channel, Score.kind, Score.value)
    totals: Counter = Counter()
    for day, channel, kind, value, count in session.execute(
            select(*columns, func.count()).where(old).group_by(*columns)):
        totals[(_month(day), channel, kind, value)] += count
    for (month, channel, kind, value), count in totals.items():
        _add(session, MonthlyScore, count, month=month, channel=channel, kind=kind,
             value=value)
    return _deleted(session.execute(delete(Score).where(old)))


def _delete_contacts(session: Session, cutoff: datetime) -> int:
    """Ended contacts from before ``cutoff`` that nothing still needs, children first."""
    open_callback = exists().where(
        CallbackRequest.state.in_((CallbackState.PENDING.value,
                                   CallbackState.CALLING.value)),
        (CallbackRequest.contact_id == Contact.id)
        | (CallbackRequest.attempt_contact_id == Contact.id))
    ids = session.scalars(select(Contact.id).where(
        Contact.state == ContactState.ENDED.value, Contact.ended_at < cutoff,
        ~exists().where(ContactEvent.contact_id == Contact.id),
        ~exists().where(FollowUp.contact_id == Contact.id,
                        FollowUp.state.not_in(FINAL_FOLLOWUPS)),
        ~open_callback)).all()
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start:start + CHUNK]
        session.execute(delete(Offer).where(Offer.contact_id.in_(chunk)))
        session.execute(delete(FollowUp).where(FollowUp.contact_id.in_(chunk)))
        session.execute(delete(CallbackRequest).where(CallbackRequest.contact_id.in_(chunk)))
        session.execute(update(CallbackRequest).where(
            CallbackRequest.attempt_contact_id.in_(chunk)).values(attempt_contact_id=None))
        session.execute(delete(Contact).where(Contact.id.in_(chunk)))
    return len(ids)


def delete_twilio_logs(session: Session, before: datetime,
                       settings: Settings) -> dict[str, int]:
    """Delete at Twilio the finished calls from before ``before`` whose sids the hotline
    knows, and every message record (``message_records.delete_old``), then forget those
    sids. A failure is logged and retried next run."""
    calls = session.execute(select(Contact.id, Contact.call_sid).where(
        Contact.call_sid.is_not(None), Contact.state == ContactState.ENDED.value,
        Contact.ended_at < before)).all()
    legs = session.execute(select(Offer.id, Offer.call_sid).where(
        Offer.call_sid.is_not(None), Offer.state != OfferState.RINGING.value,
        Offer.created_at < before)).all()
    done = Counter()
    for model, rows in ((Contact, calls), (Offer, legs)):
        for row_id, sid in rows:
            try:
                twilio_api.delete_call(settings, sid)
            except TwilioApiError as exc:
                log.warning("twilio log of %s %s not deleted: %s", model.__tablename__,
                            row_id, exc)
                done["twilio_failed"] += 1
                continue
            session.execute(update(model).where(model.id == row_id).values(call_sid=None))
            session.commit()
            done["twilio_calls"] += 1
    messages = message_records.delete_old(session, before, settings)
    return {"twilio_calls": done["twilio_calls"], "twilio_messages": messages["twilio_messages"],
            "twilio_failed": done["twilio_failed"] + messages["twilio_messages_failed"]}


def _add(session: Session, model, count: int, **key) -> None:
    """Add ``count`` to the row of ``model`` with ``key`` (NULLs match NULLs), or insert it."""
    match = [getattr(model, name).is_not_distinct_from(value) for name, value in key.items()]
    if not _updated(session.execute(update(model).where(*match)
                                    .values(count=model.count + count))):
        session.add(model(count=count, **key))
        session.flush()


def _month(day: date) -> date:
    return day.replace(day=1)


def _epoch(session: Session, column):
    """Seconds since 1970 of a timestamp column, as SQL for this database."""
    if session.get_bind().dialect.name == "sqlite":
        return cast(func.strftime("%s", column), Integer)
    return cast(func.floor(func.extract("epoch", column)), Integer)


def _updated(result) -> int:
    return max(result.rowcount or 0, 0)


_deleted = _updated


# When the purge runs: once a day at 03:00 program time. The job (``workers.retention``)
# reschedules itself for the next day with one deterministic job id per day, so however
# many workers start (each makes sure it is scheduled) there is only ever one purge a day.
# Jobs are named, not imported: nothing in hotline/ imports workers/.
PURGE_JOB = "workers.retention.purge"
WARM_JOB = "workers.retention.warm_statistics"
PURGE_JOB_ID = "hotline-purge"
#: Local time of the daily purge: the quietest hour of most lines.
AT = time(3, 0)


def next_slot(now: datetime, zone: ZoneInfo) -> datetime:
    """The next 03:00 in ``zone`` after ``now`` (aware, in ``zone``)."""
    local = now.astimezone(zone)
    day = local.date() if local.time() < AT else local.date() + timedelta(days=1)
    return datetime.combine(day, AT, tzinfo=zone)


def job_id(slot: datetime) -> str:
    """One id per local day: a second scheduling of the same day's purge is a no-op."""
    return f"{PURGE_JOB_ID}-{slot:%Y%m%d}"


def schedule(now: datetime | None = None) -> str:
    """Schedule the next daily purge unless it already is; returns its job id."""
    slot = next_slot(now or utcnow(), ZoneInfo(app_settings().TIMEZONE))
    ident = job_id(slot)
    if not jobs.exists(ident):
        jobs.queue.enqueue_at(slot.astimezone(UTC), PURGE_JOB, job_id=ident)
    return ident


WARM_JOB_ID = "hotline-stats-warm"


def enqueue_warm_up() -> None:
    """At a worker's start: warm the statistics cache now rather than at 03:00, so the
    first view of a long period after a deploy (or a cache emptied) does not count it
    whole. Idempotent: the warm-up only counts the days the cache lacks."""
    if not jobs.exists(WARM_JOB_ID):
        jobs.queue.enqueue(WARM_JOB, job_id=WARM_JOB_ID)
