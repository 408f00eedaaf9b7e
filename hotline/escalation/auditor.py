"""The auditor, beside the escalation runner: every minute, find what a lost callback or a
dead worker left stuck, and resolve it, so no contact, offer, follow-up or callback waits forever.

It reschedules itself (one deterministic job id, so there is only ever one), and every
worker makes sure it is scheduled when it starts. The job is ``workers.audit.audit`` (a
thin adapter); what a lost job would have done is done here, in-process, by the same
functions the jobs call (``runner``, ``callbacks``, ``conversations``).
"""

from __future__ import annotations

import logging
from datetime import timedelta

from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus
from sqlalchemy import func, select

from hotline.alerts import notify as alerts
from hotline.alerts import signals
from hotline.callbacks import requests as callbacks
from hotline.lifecycle import contacts
from hotline.text import conversations
from hotline.followups import schedule as followups
from hotline.followups import training as training_texts
from hotline.telephony import message_records
from hotline.lifecycle import routing
from hotline.outreach import referrals
from hotline.roster import care
from hotline.debriefs import room
from hotline.escalation import policy, runner
from hotline.monitoring import counters
from hotline.lifecycle import effects, transitions
from hotline.models.states import CONNECTED_OUTCOMES
from hotline.core.extensions import db, jobs, redis_conn, settings
from hotline.models import (CallbackRequest, CallbackState, Channel, Contact, ContactMode,
                            ContactState, FollowUp, FollowUpState,
                            Offer, OfferState, Outcome, Supporter, utcnow)

log = logging.getLogger(__name__)

AUDIT_JOB_ID = "hotline-audit"
#: The job that runs ``audit`` (enqueued by name: nothing in hotline/ imports workers/).
AUDIT_JOB = "workers.audit.audit"
#: How often the auditor runs.
EVERY = timedelta(minutes=1)
#: Past these ages a step is stuck: its webhook or job will not come any more.
MENU_DEADLINE = timedelta(minutes=30)
CONNECTED_DEADLINE = timedelta(hours=4)
JOB_LATE = timedelta(minutes=10)
#: A ringing offer this long past its ring and accept time lost its call (a caller is
#: on hold: free the supporter and route on quickly; the normal safety net fires at 1 min).
OFFER_LATE = timedelta(minutes=2)


def schedule() -> str:
    """Schedule the audit of the next minute; every worker asking gets the same one job."""
    slot = (utcnow() + EVERY).replace(second=0, microsecond=0)
    job_id = f"{AUDIT_JOB_ID}-{slot:%Y%m%d%H%M}"
    if not _job_exists(job_id):
        jobs.queue.enqueue_at(slot, AUDIT_JOB, job_id=job_id)
    return job_id


def audit() -> dict[str, int]:
    """One pass: resolve everything stuck; returns what it did, by kind."""
    now = utcnow()
    steps = {"offers": _expire_offers, "held": _free_held, "contacts": _close_contacts,
             "rerouted": _reroute_waiting, "followups": _requeue_followups,
             "callbacks": _restart_callbacks, "conversations": _close_idle_texts,
             "reconciled": _reconcile_messages, "redacted": _redact_messages,
             "training": _plan_training, "debriefs": _end_overdue_debriefs,
             "outreach": _settle_outreach, "alerts": _check_alerts}
    done: dict[str, int] = {}
    try:
        for name, step in steps.items():
            # One step failing (a row it cannot handle, a database hiccup) must not stop
            # the others: each is tried again next minute.
            try:
                done[name] = step(now)
            except Exception:  # noqa: BLE001
                log.exception("audit step %s failed", name)
                db.session.rollback()
                done[name] = 0
        if any(done.values()):
            log.info("audit resolved %s", done)
        counters.count_now("auditor_runs")
        for kind, n in done.items():
            if n:
                counters.count_now("auditor_repaired", by=n, kind=kind)
    finally:
        schedule()  # nothing else schedules the next pass: it must never be skipped
    return done


#: A phone still ringing this long after its contact stopped waiting (someone else
#: accepted, the caller left) lost the job that stops it (``runner.cancel_offers``).
STRAY_AFTER = timedelta(seconds=30)


def _expire_offers(now) -> int:
    """Offers still ringing for a contact no longer waiting are stopped (their cancel job
    was lost: with several phones rung at once, each would ring on for nothing); offers
    past their ring and accept time are expired and routing goes on."""
    stray = db.session.scalars(select(Offer.contact_id).join(
        Contact, Contact.id == Offer.contact_id).where(
        Offer.state == OfferState.RINGING.value, Offer.created_at < now - STRAY_AFTER,
        Contact.state != ContactState.WAITING.value,
        func.coalesce(Contact.ended_at, Contact.connected_at, Offer.created_at)
        < now - STRAY_AFTER).distinct()).all()
    stopped = sum(runner.cancel_offers(contact_id) for contact_id in stray)
    limit = now - timedelta(seconds=policy.current().longest_ring) - OFFER_LATE
    stuck = db.session.scalars(select(Offer.id).where(
        Offer.state == OfferState.RINGING.value, Offer.created_at < limit)).all()
    for offer_id in stuck:
        runner.expire_offer(offer_id)
    return stopped + len(stuck)


def _free_held(now) -> int:
    """Supporters still held by an offer ended past the safety net's time are freed: their
    leg's status callback never came and their ``free_supporter`` job was lost too (Redis
    down when the offer closed), which would otherwise keep them off the roster for good."""
    late = now - timedelta(seconds=transitions.EXPIRY_GRACE_SECONDS) - OFFER_LATE
    held = db.session.scalars(select(Supporter.busy_with).where(  # and held that long
        Supporter.busy_with.like("offer:%"), Supporter.busy_since < late)).all()
    ids = [int(token.removeprefix("offer:")) for token in held]
    ended = db.session.scalars(select(Offer.id).where(
        Offer.id.in_(ids), Offer.state != OfferState.RINGING.value,
        Offer.ended_at < late)).all() if ids else []
    return sum(runner.free_supporter(offer_id) == "freed" for offer_id in ended)


def _close_contacts(now) -> int:
    """Contacts whose caller is surely gone get a defined outcome; their supporters are freed."""
    waiting_limit = now - timedelta(seconds=policy.current().final.after_seconds) - JOB_LATE
    stuck = db.session.scalars(select(Contact).where(
        Contact.outcome.is_(None), Contact.channel == Channel.VOICE.value,
        ((Contact.state.in_([ContactState.MENU.value, ContactState.OPTIONS.value]))
         & (Contact.created_at < now - MENU_DEADLINE))
        | ((Contact.state == ContactState.WAITING.value)
           & (Contact.queued_at < waiting_limit)))).all()
    for contact in stuck:  # ringing offers canceled here and now, not by a job
        transitions.finish(db.session, contact, Outcome.ABANDONED, cancel=False)
        runner.cancel_offers(contact.id)
    texts = db.session.scalars(select(Contact).where(
        Contact.outcome.is_(None), Contact.channel == Channel.SMS.value,
        Contact.state.in_([ContactState.MENU.value, ContactState.OPTIONS.value]),
        Contact.created_at < now - MENU_DEADLINE)).all()
    for contact in texts:  # never chose, or was told nobody was free and did not reply
        outcome = Outcome.FAILED if contact.state == ContactState.OPTIONS.value \
            else Outcome.ABANDONED
        transitions.finish(db.session, contact, outcome, cancel=False)
    connected = db.session.scalars(select(Contact).where(
        Contact.state == ContactState.CONNECTED.value,
        Contact.mode.is_distinct_from(ContactMode.TEXT.value),
        Contact.connected_at < now - CONNECTED_DEADLINE)).all()
    for contact in connected:
        thank = bool(contact.supporter_id) and routing.release(
            db.session, contact.supporter_id, routing.contact_token(contact.id)) \
            and care.contact_over(db.session, contact.supporter_id, contact)
        contacts.forget_number(db.session, contact)
        contacts.end(db.session, contact)
        db.session.commit()
        if thank:  # the cool-down started; the text its job would have sent
            care.send_after_contact(db.session, contact.id)
    return len(stuck) + len(texts) + len(connected)


#: A waiting contact with nothing ringing for this long lost its routing job (Redis was down).
REROUTE_AFTER = timedelta(minutes=1)


def _reroute_waiting(now) -> int:
    """Waiting contacts with nothing ringing and no routing under way are routed again."""
    waiting = db.session.scalars(select(Contact).where(
        Contact.state == ContactState.WAITING.value, Contact.outcome.is_(None),
        Contact.exhausted.is_(False), Contact.queued_at < now - REROUTE_AFTER)).all()
    rerouted = 0
    for contact in waiting:
        if not routing.ringing(contact):
            effects.apply([effects.route(contact.id, contact.attempt)])
            rerouted += 1
    return rerouted


def _requeue_followups(now) -> int:
    """Follow-ups whose job was lost (Redis flushed, a worker died) are scheduled again."""
    late = db.session.scalars(select(FollowUp).where(
        ((FollowUp.state == FollowUpState.SCHEDULED.value) & (FollowUp.due_at < now - JOB_LATE))
        | ((FollowUp.state == FollowUpState.SENDING.value)
           & (FollowUp.sending_at < now - JOB_LATE)))).all()
    requeued = 0
    for followup in late:
        if not _job_exists(followups.job_id(followup.id)):
            followup.due_at = now
            db.session.commit()
            followups.enqueue(followup)
            requeued += 1
    return requeued


def _plan_training(now) -> int:
    """Training reminders and this week's digest: rows made, lost jobs scheduled again."""
    return training_texts.plan(db.session, now)


def _end_overdue_debriefs(now) -> int:
    """Debriefs past their end whose end job was lost: ended now, their code forgotten."""
    return room.end_overdue()


def _settle_outreach(now) -> int:
    """Outreach past its reply window ends (the number goes); a lost send is rescheduled."""
    return referrals.audit(db.session, now, _still_scheduled)


def _still_scheduled(job_id: str) -> bool:
    """Is this job still waiting in RQ (not lost with a flushed Redis)?"""
    try:
        status = Job.fetch(job_id, connection=jobs.queue.connection).get_status()
    except NoSuchJobError:
        return False
    return status in (JobStatus.SCHEDULED, JobStatus.QUEUED, JobStatus.DEFERRED)


def _restart_callbacks(now) -> int:
    """Pending callbacks with no try under way (their retry job was lost) start again; a
    try that ended without settling its request (a worker or webhook died in between)
    settles it now: reached if the clinician was connected, else missed and retried."""
    pending = db.session.scalars(select(CallbackRequest).where(
        CallbackRequest.state == CallbackState.PENDING.value,
        CallbackRequest.sealed_number.is_not(None),
        CallbackRequest.requested_at < now - JOB_LATE
        - timedelta(minutes=settings().CALLBACK_RETRY_MINUTES))).all()
    for callback in pending:
        if _still_scheduled(callbacks.try_job_id(callback)):
            continue  # its try waits for its time (the next shift, or the retry spacing)
        callbacks.start_try(db.session, callback.id)
    orphaned = db.session.scalars(select(Contact).join(
        CallbackRequest, CallbackRequest.attempt_contact_id == Contact.id).where(
        CallbackRequest.state == CallbackState.CALLING.value, Contact.outcome.is_not(None),
        Contact.ended_at < now - JOB_LATE)).all()
    for attempt in orphaned:
        if attempt.outcome in CONNECTED_OUTCOMES:
            callbacks.reached(db.session, attempt)
            db.session.commit()
        else:
            effects.apply(callbacks.missed(db.session, attempt))
    return len(pending) + len(orphaned)


def _close_idle_texts(now) -> int:
    """Text conversations quiet past HOTLINE_SMS_IDLE_MINUTES whose idle-close job was lost
    (Redis down or flushed, a worker killed) are closed as that job would have: both sides
    told, the supporter freed, the number kept only while the check-in question is open."""
    limit = now - timedelta(minutes=settings().SMS_IDLE_MINUTES) - JOB_LATE
    last_seen = func.coalesce(Contact.last_activity_at, Contact.connected_at)
    quiet = db.session.scalars(select(Contact).where(
        Contact.state == ContactState.CONNECTED.value, Contact.mode == ContactMode.TEXT.value,
        last_seen.is_(None) | (last_seen < limit))).all()
    closed = 0
    for contact in quiet:
        if contact.last_activity_at is None:  # nothing ever said: quiet since it connected
            contact.last_activity_at = contact.connected_at or contact.created_at
            db.session.commit()
        try:
            closed += conversations.close_quiet(
                db.session, contact.id, int(contact.last_activity_at.timestamp())) == "closed"
        except Exception:  # noqa: BLE001 - one (an unreadable sealed number) must not
            # keep the others open; retention forgets its number, then it closes here
            log.exception("idle text conversation %s not closed", contact.id)
            db.session.rollback()
    return closed


def _reconcile_messages(now) -> int:
    """Messages at Twilio the hotline never learned of are filed, to be redacted below
    (``message_records.reconcile``: every 15 minutes; on other minutes one Redis call)."""
    return message_records.reconcile(db.session, settings(), redis_conn.client, now)


def _redact_messages(now) -> int:
    """Message bodies and media still at Twilio are redacted (``message_records.sweep``)."""
    return message_records.sweep(db.session, settings(), now)


def _job_exists(job_id: str) -> bool:
    return jobs.exists(job_id)


def _check_alerts(now) -> int:
    """The worker's heartbeat (this pass ran), then every alert condition; returns how many
    alerts were sent, repeated or resolved."""
    signals.beat(now)
    return len(alerts.check(now))
