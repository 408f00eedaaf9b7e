"""Retention: sealed numbers after their last use, old events folded into monthly totals,
the daily purge job, ``hotline purge``, Twilio log deletion and the policy on the dashboard."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select, update

from hotline.telephony import message_records
from hotline.retention import purge as retention
from hotline.statistics import queries as stats
from hotline.telephony import api as twilio_api
from hotline.core.extensions import jobs, settings
from hotline.models import (CallbackRequest, Contact, ContactEvent, FollowUp, InboundMessage,
                            MessageSid, MonthlyAggregate, MonthlyScore, Offer, Score)
from tests.conftest import HOTLINE_NUMBER
from tests.coordinators import login, make_user
from workers.audit import _job_exists

NOW = datetime.now(UTC).replace(second=0, microsecond=0)
ZONE = ZoneInfo("America/New_York")
#: Mid-month, midday: the same month in UTC and in the program's zone.
OLD = (NOW - timedelta(days=500)).replace(day=15, hour=17)
OLD_MONTH = date(OLD.year, OLD.month, 1)
RECENT = NOW - timedelta(days=10)
NUMBER = "+12125550123"


def contact(session, at: datetime, channel: str = "voice", outcome: str = "connected",
            tier: int | None = 1, ended: bool = True, events: bool = True, **extra) -> Contact:
    """A contact with its started and outcome events at ``at`` (ended a few minutes later)."""
    row = Contact(channel=channel, caller_key="k" * 64, created_at=at,
                  state="ended" if ended else "connected", outcome=outcome if ended else None,
                  ended_at=at + timedelta(minutes=5) if ended else None, **extra)
    session.add(row)
    session.flush()
    if events:
        session.add(ContactEvent(contact_id=row.id, kind="started", at=at, channel=channel))
        session.add(ContactEvent(contact_id=row.id, kind=outcome, at=at + timedelta(minutes=2),
                                 channel=channel, tier=tier, outcome=outcome))
    session.commit()
    return row


def recent_period() -> stats.Period:
    last = NOW.astimezone(ZONE).date()
    return stats.Period(last - timedelta(days=20), last, ZONE)


def aggregates(session) -> dict:
    return {(a.month, a.channel, a.kind, a.tier, a.outcome): a.count
            for a in session.scalars(select(MonthlyAggregate))}


def count(session, model) -> int:
    return session.scalar(select(func.count()).select_from(model))


@pytest.fixture
def history(session, make_supporter):
    """Old contacts (with offers, a follow-up, a callback, scores) and recent ones."""
    ada = make_supporter("Ada")
    old = [contact(session, OLD + timedelta(hours=i)) for i in range(3)]
    old.append(contact(session, OLD, channel="sms", outcome="abandoned", tier=None))
    for i, row in enumerate(old[:3]):
        session.add(Offer(contact_id=row.id, supporter_id=ada.id, attempt=1, tier=1,
                          state="accepted", created_at=row.created_at, call_sid=f"CA{i:032d}"))
    session.add(FollowUp(contact_id=old[0].id, caller_key="k" * 64, sequence=1, kind="survey",
                         channel="voice", due_at=OLD, state="sent", sent_at=OLD))
    session.add(CallbackRequest(contact_id=old[3].id, requested_at=OLD, promised_by=OLD,
                                state="done", completed_at=OLD, attempt_contact_id=old[2].id))
    # An old contact with an event inside the window is kept until that event is old too.
    straddling = contact(session, OLD)
    session.add(ContactEvent(contact_id=straddling.id, kind="followup_reply", at=RECENT,
                             channel="voice"))
    recent = [contact(session, RECENT + timedelta(hours=i), outcome=o, tier=1)
              for i, o in enumerate(["connected", "connected", "abandoned"])]
    session.add(Offer(contact_id=recent[0].id, supporter_id=ada.id, attempt=1, tier=1,
                      state="accepted", created_at=RECENT))
    session.add_all([Score(day=OLD.date(), channel="voice", kind="helpful", value=4),
                     Score(day=OLD.date(), channel="voice", kind="helpful", value=4),
                     Score(day=OLD.date() + timedelta(days=1), channel="sms", kind="helpful",
                           value=2),
                     Score(day=RECENT.date(), channel="voice", kind="helpful", value=5)])
    session.add_all([InboundMessage(message_sid="SM" + "1" * 32,
                                    received_at=NOW - timedelta(days=8)),
                     InboundMessage(message_sid="SM" + "2" * 32, received_at=NOW)])
    session.commit()
    return {"old": old, "straddling": straddling, "recent": recent}


def test_old_events_are_folded_into_exact_monthly_totals(app, session, history):
    before = stats.collect(session, recent_period())
    assert before.contacts == 3 and before.outcomes["connected"] == 2
    done = retention.purge(session, NOW, settings())
    assert done["events_folded"] == 10 and done["scores_folded"] == 3
    assert done["contacts"] == 4 and done["offers"] == 3 and done["inbound_messages"] == 1
    assert aggregates(session) == {
        (OLD_MONTH, "voice", "started", None, None): 4,
        (OLD_MONTH, "voice", "connected", 1, "connected"): 4,
        (OLD_MONTH, "sms", "started", None, None): 1,
        (OLD_MONTH, "sms", "abandoned", None, "abandoned"): 1}
    assert {(s.month, s.channel, s.kind, s.value): s.count
            for s in session.scalars(select(MonthlyScore))} == {
        (OLD_MONTH, "voice", "helpful", 4): 2, (OLD_MONTH, "sms", "helpful", 2): 1}
    assert session.scalar(select(func.min(ContactEvent.at))) >= NOW - timedelta(days=400)
    assert count(session, ContactEvent) == 7 and count(session, Score) == 1
    kept = set(session.scalars(select(Contact.id)))
    assert kept == {history["straddling"].id} | {c.id for c in history["recent"]}
    assert count(session, Offer) == 1 and count(session, FollowUp) == 0
    assert count(session, CallbackRequest) == 0
    assert session.scalars(select(InboundMessage.message_sid)).all() == ["SM" + "2" * 32]
    assert stats.collect(session, recent_period()) == before


def test_a_second_run_changes_nothing_and_later_folds_add_up(app, session, history):
    retention.purge(session, NOW, settings())
    folded = aggregates(session)
    again = retention.purge(session, NOW, settings())
    assert not any(again.values()), again
    assert aggregates(session) == folded
    # A later month's fold adds to the same rows (NULL tiers and outcomes match NULLs).
    contact(session, OLD + timedelta(days=1))
    retention.purge(session, NOW, settings())
    assert aggregates(session)[(OLD_MONTH, "voice", "started", None, None)] == 5
    assert aggregates(session)[(OLD_MONTH, "voice", "connected", 1, "connected")] == 5
    assert count(session, MonthlyAggregate) == 4


def test_sealed_numbers_go_after_their_last_use_and_stay_while_needed(app, session):
    hour, day = timedelta(hours=1), timedelta(days=1)

    def sealed(at, **extra):
        return contact(session, at, events=False, sealed_number="sealed", **extra)

    gone = [sealed(NOW - 2 * hour), sealed(NOW - 2 * hour, consent="no"),
            sealed(NOW - 2 * hour, consent="yes")]
    unanswered = sealed(NOW - day - 2 * hour, consent="asked")
    kept = [sealed(NOW - 10 * timedelta(minutes=1)),                   # may be asking by voice
            sealed(NOW - 2 * hour, consent="asked"),                   # question still open
            sealed(NOW - 2 * hour, ended=False)]                       # still connected
    # never ended: a lost webhook or job left them open; a day after their last sign of
    # life the number goes, whatever the state
    stuck = [sealed(NOW - 30 * day, ended=False, mode="text",
                    last_activity_at=NOW - 2 * day),
             sealed(NOW - 2 * day, ended=False)]
    for state, at in (("menu", None), ("waiting", NOW - 30 * hour), ("options", None)):
        stuck.append(sealed(NOW - 2 * day, ended=False, queued_at=at))
        stuck[-1].state = state
    kept.append(sealed(NOW - 2 * day, ended=False, mode="text", last_activity_at=NOW - hour))
    session.commit()
    callbacks = {state: CallbackRequest(contact_id=sealed(NOW - 2 * hour).id,
                                        sealed_number="sealed", state=state,
                                        requested_at=NOW - (8 * day if state == "stale"
                                                            else hour),
                                        promised_by=NOW)
                 for state in ("pending", "calling", "done", "failed", "stale")}
    callbacks["stale"].state = "pending"
    session.add_all(callbacks.values())
    followups = {state: FollowUp(contact_id=gone[0].id, caller_key="k" * 64,
                                 sealed_number="sealed", sequence=1, kind="checkin",
                                 channel="voice", due_at=NOW, state=state)
                 for state in ("scheduled", "sending", "sent", "replied", "canceled")}
    session.add_all(followups.values())
    session.commit()
    done = retention.forget_numbers(session, NOW)
    assert done == {"numbers_contacts": 3 + 1 + 5 + 5, "numbers_callbacks": 3,
                    "numbers_followups": 3}
    session.expire_all()
    assert all(c.sealed_number is None for c in gone)
    assert unanswered.sealed_number is None and unanswered.consent == "no"
    assert all(c.sealed_number == "sealed" for c in kept)
    assert all(c.sealed_number is None for c in stuck)
    assert kept[1].consent == "asked"
    assert {s: c.sealed_number for s, c in callbacks.items()} == {
        "pending": "sealed", "calling": "sealed", "done": None, "failed": None, "stale": None}
    assert {s: f.sealed_number for s, f in followups.items()} == {
        "scheduled": "sealed", "sending": "sealed", "sent": None, "replied": None,
        "canceled": None}
    assert retention.forget_numbers(session, NOW) == {
        "numbers_contacts": 0, "numbers_callbacks": 0, "numbers_followups": 0}


def test_hotline_purge_prints_counts(app, history):
    result = app.test_cli_runner().invoke(args=["purge"])
    assert result.exit_code == 0, result.output
    lines = dict(line.split("\t") for line in result.output.splitlines())
    assert lines["events_folded"] == "10" and lines["contacts"] == "4"
    assert lines["numbers_contacts"] == "0" and "twilio_calls" not in lines
    assert all(value.isdigit() for value in lines.values())


def test_the_daily_job_has_one_id_per_day_at_three_in_the_morning(app, session):
    from hotline.retention import purge as plan
    from workers import retention as job
    night = datetime(2026, 7, 1, 6, 0, tzinfo=UTC)       # 02:00 in New York: today's 03:00
    morning = datetime(2026, 7, 1, 8, 0, tzinfo=UTC)     # 04:00 in New York: tomorrow's
    assert plan.schedule(night) == plan.schedule(night) == "hotline-purge-20260701"
    assert plan.schedule(morning) == "hotline-purge-20260702"
    registry = jobs.queue.scheduled_job_registry
    assert sorted(registry.get_job_ids()) == ["hotline-purge-20260701", "hotline-purge-20260702"]
    assert plan.next_slot(night, ZONE) == datetime(2026, 7, 1, 7, 0, tzinfo=UTC)
    assert plan.next_slot(datetime(2026, 1, 15, 12, 0, tzinfo=UTC), ZONE) == \
        datetime(2026, 1, 16, 8, 0, tzinfo=UTC)           # winter: 03:00 EST
    done = job.purge()
    assert done["events_folded"] == 0
    tomorrow = (datetime.now(UTC) + timedelta(minutes=1)).astimezone(ZONE)
    tomorrow = tomorrow.date() + timedelta(days=1 if tomorrow.hour >= 3 else 0)
    assert f"hotline-purge-{tomorrow:%Y%m%d}" in registry.get_job_ids()


def test_the_worker_command_schedules_the_purge(app, monkeypatch):
    import rq
    monkeypatch.setattr(rq.Worker, "work", lambda self, **kwargs: True)
    result = app.test_cli_runner().invoke(args=["worker", "--burst"])
    assert result.exit_code == 0, result.output
    ids = jobs.queue.scheduled_job_registry.get_job_ids()
    assert any(i.startswith("hotline-purge-") for i in ids)
    assert any(i.startswith("hotline-audit-") for i in ids)
    assert _job_exists("hotline-stats-warm")   # the statistics cache, warmed now


def twilio_history(session, sim) -> dict:
    """Messages at the stand-in in every direction, 40 and 5 days old, filed as the
    hotline files them (``message_records``), and two calls."""
    old_sid = twilio_api.send_message(settings(), NUMBER, "a check-in")
    new_sid = twilio_api.send_message(settings(), NUMBER, "another check-in")
    old_in = sim.send_sms(NUMBER, HOTLINE_NUMBER, "old words", media=("image/jpeg",))["sid"]
    new_in = sim.send_sms(NUMBER, HOTLINE_NUMBER, "new words")["sid"]
    old_relay = sim.create_message(to=NUMBER, from_=HOTLINE_NUMBER, body="relayed words",
                                   direction="outbound-reply")["sid"]
    old_call = contact(session, NOW - timedelta(days=40), call_sid="CA" + "4" * 32)
    new_call = contact(session, NOW - timedelta(days=5), call_sid="CA" + "5" * 32)
    for sid, sent in ((old_sid, NOW - timedelta(days=40)), (new_sid, NOW - timedelta(days=5))):
        session.add(FollowUp(contact_id=old_call.id, caller_key="k" * 64, sequence=1,
                             kind="checkin", channel="voice", due_at=sent, state="sent",
                             sent_at=sent, message_sid=sid))
    for sid, direction, days in ((old_sid, "outbound", 40), (new_sid, "outbound", 5),
                                 (old_in, "inbound", 40), (new_in, "inbound", 5),
                                 (old_relay, "outbound", 31)):
        message_records.file_sid(session, sid, direction)
        session.execute(update(MessageSid).where(MessageSid.sid == sid).values(
            created_at=NOW - timedelta(days=days)))
    session.commit()
    return {"old_sid": old_sid, "new_sid": new_sid, "old_call": old_call, "new_call": new_call,
            "old": {old_sid, old_in, old_relay}, "new": {new_sid, new_in}}


def deletes(sim) -> list[str]:
    return [path for method, path, _ in sim.rest_log if method == "DELETE"]


def test_twilio_logs_are_deleted_only_when_the_setting_is_on(app, session, stand_in):
    seeded = twilio_history(session, stand_in)
    done = retention.purge(session, NOW, settings())
    assert "twilio_calls" not in done and deletes(stand_in) == []
    assert len(stand_in.messages) == 5

    done = retention.purge(session, NOW, settings().replace(TWILIO_LOG_DAYS=30))
    # every direction: a follow-up sent, a text received (with its picture), a relay
    assert done["twilio_messages"] == 3
    assert {m["sid"] for m in stand_in.messages} == seeded["new"]
    assert any(path.endswith(f"/Messages/{seeded['old_sid']}.json")
               for path in deletes(stand_in))
    assert any(path.endswith("/Calls/CA" + "4" * 32 + ".json") for path in deletes(stand_in))
    assert not any(seeded["new_sid"] in p or "CA" + "5" * 32 in p for p in deletes(stand_in))
    # the stand-in never saw that call: a 404 means there is nothing left to delete
    assert done["twilio_calls"] == 1 and done["twilio_failed"] == 0
    session.expire_all()
    assert session.scalar(select(func.count()).where(FollowUp.message_sid.is_not(None))) == 1
    assert set(session.scalars(select(MessageSid.sid))) == seeded["new"]  # the rest forgotten


def test_redacted_sids_are_forgotten_after_a_week_unless_a_deletion_is_due(app, session):
    for sid, days, redacted in (("SM" + "1" * 32, 8, True), ("SM" + "2" * 32, 8, False),
                                ("SM" + "3" * 32, 2, True)):
        session.add(MessageSid(sid=sid, direction="inbound",
                               created_at=NOW - timedelta(days=days),
                               redacted_at=NOW - timedelta(days=days) if redacted else None))
    session.commit()
    assert message_records.forget_done(session, NOW, settings().replace(TWILIO_LOG_DAYS=30)) \
        == 0  # each waits for its deletion at Twilio
    assert retention.purge(session, NOW, settings())["message_sids"] == 1
    assert sorted(session.scalars(select(MessageSid.sid))) == ["SM" + "2" * 32, "SM" + "3" * 32]


def test_the_statistics_page_states_the_retention_policy(app, session):
    make_user("coord@example.org")
    client = app.test_client()
    assert login(client, "coord@example.org").status_code == 302
    page = " ".join(client.get("/dashboard/").text.split())
    assert "events are kept 400 days, then folded into monthly totals" in page
    assert "call and message logs at Twilio are not deleted by the hotline" in page
    app.extensions["hotline.settings"] = settings().replace(RETENTION_DAYS=200,
                                                            TWILIO_LOG_DAYS=30)
    page = " ".join(client.get("/dashboard/").text.split())
    assert "events are kept 200 days" in page and "are deleted after 30 days" in page


def test_twilio_log_days_must_be_below_the_retention_period():
    from hotline.core import settings as settings_module
    from hotline.core.errors import SettingsError
    assert settings_module.load({}).RETENTION_DAYS == 400
    with pytest.raises(SettingsError, match="HOTLINE_TWILIO_LOG_DAYS"):
        settings_module.load({"HOTLINE_RETENTION_DAYS": "30", "HOTLINE_TWILIO_LOG_DAYS": "30"})
    with pytest.raises(SettingsError, match="HOTLINE_RETENTION_DAYS must be greater than 0"):
        settings_module.load({"HOTLINE_RETENTION_DAYS": "0"})
