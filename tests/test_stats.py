"""Every statistic on a small, hand-made event table (SQLite and PostgreSQL).

The period is the week of Monday 2025-03-03 in America/New_York; contacts are placed at
known local times with known event sequences, so each aggregate has one right answer.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from hotline.statistics import queries as stats
from hotline.disclosure import report as reports
from hotline.models import CallbackRequest, Contact, ContactEvent, Offer, Score, Supporter
from tests.test_stats_suppression import assert_protected

ZONE = ZoneInfo("America/New_York")
WEEK = stats.Period(date(2025, 3, 3), date(2025, 3, 9), ZONE)


def local(day: int, hour: int, minute: int = 0) -> datetime:
    """March ``day`` 2025 at a local time, as UTC."""
    return datetime(2025, 3, day, hour, minute, tzinfo=ZONE).astimezone(UTC)


class Seeder:
    """Adds contacts with their events, offers and callbacks."""

    def __init__(self, session, supporter: Supporter) -> None:
        self.session, self.supporter = session, supporter

    def contact(self, at: datetime, outcome: str | None = "connected", channel: str = "voice",
                wait: int = 1, caller: str = "k", escalated: bool = False,
                extra: tuple[str, ...] = (), mode: str | None = None) -> Contact:
        human = outcome in ("connected", "connected_backup")
        contact = Contact(channel=channel, caller_key=caller, state="ended", outcome=outcome,
                          mode=mode, created_at=at, supporter_id=self.supporter.id if human
                          else None, connected_at=at + timedelta(minutes=wait) if human else None,
                          ended_at=at + timedelta(minutes=wait + 20))
        self.session.add(contact)
        self.session.flush()
        events = [("started", at, None), ("queued", at, None)]
        if escalated:
            events.append(("escalated", at + timedelta(minutes=1), None))
        if outcome:
            events.append((outcome, at + timedelta(minutes=wait), outcome))
        events += [(kind, at + timedelta(minutes=wait + 20), None) for kind in extra]
        for kind, when, out in events:
            self.session.add(ContactEvent(contact_id=contact.id, kind=kind, at=when,
                                          channel=channel, outcome=out))
        if human:
            self.session.add(Offer(contact_id=contact.id, supporter_id=self.supporter.id,
                                   attempt=1, tier=1, state="accepted", created_at=at))
        self.session.commit()
        return contact


@pytest.fixture
def seeded(session, make_supporter):
    """A week with a known mix of contacts (and some outside it, which must not count)."""
    s = Seeder(session, make_supporter(name="Ada Peer"))
    for i in range(12):                                   # Monday 08:xx, voice, 1 min
        s.contact(local(3, 8, i), caller=f"a{i}", extra=("followup_consent",))
    for i in range(3):                                    # Monday 08:xx, sms, 4 min
        s.contact(local(3, 8, 30 + i), channel="sms", wait=4, caller="repeat",
                  extra=("followup_declined",))
    s.contact(local(5, 2, 10), outcome="connected_backup", wait=12, escalated=True,
              caller="b")                                 # Wednesday 02:10
    s.contact(local(5, 3), outcome="callback_requested", caller="c")
    s.contact(local(5, 4), outcome="callback_requested", caller="d")
    s.contact(local(9, 23, 59), outcome="abandoned", caller="e")   # Sunday, last minute
    s.contact(local(9, 22), outcome="crisis_transfer", caller="f")
    s.contact(local(10, 0, 0), caller="outside")          # the Monday after: not counted
    s.contact(local(2, 23, 59), caller="before")          # the Sunday before: not counted
    s.contact(local(4, 9), caller="c", mode="callback")   # a callback try: not a contact
    callbacks = session.query(Contact).filter(Contact.outcome == "callback_requested").all()
    kept, late = callbacks
    session.add_all([
        CallbackRequest(contact_id=kept.id, requested_at=kept.created_at, state="done",
                        promised_by=kept.created_at + timedelta(minutes=30),
                        completed_at=kept.created_at + timedelta(minutes=20)),
        CallbackRequest(contact_id=late.id, requested_at=late.created_at, state="done",
                        promised_by=late.created_at + timedelta(minutes=30),
                        completed_at=late.created_at + timedelta(minutes=50))])
    session.add_all([Score(day=date(2025, 3, 4), channel="voice", kind="helpful", value=v)
                     for v in (5, 5, 4, 2)] +
                    [Score(day=date(2025, 3, 10), channel="voice", kind="helpful", value=1)])
    session.commit()
    return stats.collect(session, WEEK)


def test_contacts_are_counted_in_the_week_only_by_local_day_and_hour(seeded):
    assert seeded.contacts == 20
    per_day = Counter()
    for (day, _hour), n in seeded.by_hour.items():
        per_day[day] += n
    assert per_day == {date(2025, 3, 3): 15, date(2025, 3, 5): 3, date(2025, 3, 9): 2}
    assert seeded.by_hour[(date(2025, 3, 3), 8)] == 15
    assert seeded.by_hour[(date(2025, 3, 9), 23)] == 1
    assert seeded.by_channel == {"voice": 17, "sms": 3}


def test_outcome_mix_and_escalation(seeded):
    assert seeded.outcomes == {"connected": 15, "connected_backup": 1, "callback_requested": 2,
                               "abandoned": 1, "crisis_transfer": 1, "none": 0}
    assert seeded.escalated == 1


def test_time_to_a_human_is_a_histogram_of_whole_seconds(seeded):
    assert seeded.waits == {60: 12, 240: 3, 720: 1}
    assert stats.quantile(seeded.waits, 0.5) == 60
    assert stats.quantile(seeded.waits, 0.9) == 240
    assert stats.quantile(Counter(), 0.5) is None


def test_repeat_contacts_come_from_keys_seen_more_than_once(seeded):
    assert seeded.repeat == 3            # the three texts from "repeat"; "c"'s try is left out


def test_callbacks_kept_within_the_promise(seeded):
    assert seeded.callbacks == {"kept": 1, "late": 1}


def test_follow_up_consent_and_scores(seeded):
    assert seeded.followups == {"followup_consent": 12, "followup_declined": 3}
    assert seeded.scores["helpful"] == {5: 2, 4: 1, 2: 1}
    assert seeded.scores["burnout"] == {}


def test_supporter_load(seeded):
    (row,) = seeded.supporters
    # Supporters' work counts callback tries too (17 offers made in the week); minutes
    # count by when the talk began (the Sunday-before contact connected on Monday 00:00).
    assert row["name"] == "Ada Peer" and row["offers"] == 17 and row["accepted"] == 17
    assert row["minutes"] == 18 * 20


def test_the_report_shows_only_safe_cells(seeded):
    report = reports.build(seeded, WEEK, k=11)
    shown = {t.id: dict((label, report.shown(keys[0])) for label, keys in t.rows)
             for t in report.tables}
    assert shown["channel"]["sms"] == "<11"
    # sms is small, so the total less voice would give it away: something else is hidden.
    assert "hidden" in (shown["channel"]["voice"], report.shown("contacts"))
    assert shown["outcomes"]["hung up waiting"] == "<11"
    # Tuesday had no contact: a zero is shown as <11 too ("fewer than 11, possibly none").
    assert shown["by_day"]["Tue 04 Mar"] == "<11"
    every = [report.shown(key) for t in report.tables for _label, keys in t.rows for key in keys]
    assert all(v in ("<11", "hidden") or v >= 11 for v in every)
    assert report.summary["share_abandoned"] is None
    assert_protected(report.values, report.lines, report.hidden, 11)


@pytest.mark.xfail(strict=True, reason="KNOWN GAP: the crisis transfer is protected by hiding "
                   "'human' (so no median), not the total and the day series: with both "
                   "shown, contacts - human = the five other outcomes, all <11, so it would "
                   "lie in 0..1")
def test_a_busy_week_hides_its_one_crisis_transfer_and_what_would_reveal_it(session,
                                                                            make_supporter):
    s = Seeder(session, make_supporter())
    for day in range(3, 10):
        for i in range(15):
            s.contact(local(day, 8 + i % 3, i), caller=f"x{day}{i}", wait=i % 3,
                      channel="sms" if i % 2 else "voice")
    s.contact(local(4, 3), outcome="crisis_transfer", caller="night")
    report = reports.build(stats.collect(session, WEEK), WEEK, k=11)
    assert report.shown("outcome:crisis_transfer") == "<11"
    assert report.shown("outcome:connected") == "hidden"
    assert report.summary["median_seconds_to_human"] == 60
    assert report.shown("channel:sms") == 49
    assert_protected(report.values, report.lines, report.hidden, 11)


def test_a_week_with_few_contacts_hides_even_its_total(session, make_supporter):
    Seeder(session, make_supporter()).contact(local(4, 12))
    report = reports.build(stats.collect(session, WEEK), WEEK, k=11)
    assert report.shown("contacts") == "<11"
    assert report.summary["median_seconds_to_human"] is None


def test_time_zone_with_half_hour_offset_uses_finer_sql_buckets(session, make_supporter):
    zone = ZoneInfo("Asia/Kolkata")
    Seeder(session, make_supporter()).contact(
        datetime(2025, 3, 3, 0, 10, tzinfo=zone).astimezone(UTC))
    raw = stats.collect(session, stats.Period(date(2025, 3, 3), date(2025, 3, 9), zone))
    assert raw.by_hour == {(date(2025, 3, 3), 0): 1}


def _busy_days(s: Seeder, days: range) -> None:
    """15 contacts on each of ``days`` (March), 08:00 to 10:59: nothing small there."""
    for day in days:
        for i in range(15):
            s.contact(local(day, 8 + i % 3, i), caller=f"busy{day}.{i}")


def test_a_quiet_weekday_of_single_contacts_does_not_pin_its_hours(session, make_supporter):
    """Monday's seven contacts fall in seven different hours. Were the other hours shown
    as 0, a reader would know Monday = the sum of seven hours each at least 1, so Monday
    lies in 7..10 and each of its hours in 1..4. Shown as <11 ("possibly none"), a zero
    hour is not known to be zero, and an hour keeps 1..10 open."""
    s = Seeder(session, make_supporter())
    for hour in range(1, 14, 2):
        s.contact(local(3, hour), caller=f"night{hour}")
    _busy_days(s, range(4, 10))
    report = reports.build(stats.collect(session, WEEK), WEEK, k=11)
    monday = dict(next(t for t in report.tables if t.id == "hour_of_week").rows)["Monday"]
    assert [report.shown(key) for key in monday] == ["<11"] * 24
    assert report.shown("day:2025-03-03") == "<11"
    assert_protected(report.values, report.lines, report.hidden, 11)


def test_a_week_of_one_contact_a_day_does_not_pin_its_days(session, make_supporter):
    """Seven days of one contact each: the week's 7 is <11, and were the days known to be
    at least 1, each would lie in 1..4."""
    s = Seeder(session, make_supporter())
    for day in range(3, 10):
        s.contact(local(day, 12), caller=f"one{day}")
    report = reports.build(stats.collect(session, WEEK), WEEK, k=11)
    assert {report.shown(f"day:2025-03-{d:02d}") for d in range(3, 10)} == {"<11"}
    assert report.shown("contacts") == "<11"
    assert_protected(report.values, report.lines, report.hidden, 11)


def test_a_year_is_shown_by_week_and_month_a_month_also_by_day(session, make_supporter):
    """Longer than a month, no day is published (its months publish them): weeks, months
    and hours of the week, each adding up to the total. A month keeps its days."""
    s = Seeder(session, make_supporter())
    first = date(2024, 3, 4)
    for n in range(0, 364, 3):
        at = datetime.combine(first + timedelta(days=n), datetime.min.time(), ZONE)
        s.contact((at + timedelta(hours=8 + n % 12)).astimezone(UTC), caller=f"y{n % 40}")
    year = stats.Period(first, first + timedelta(days=7 * 53 - 1), ZONE)
    quarter = stats.Period(first, first + timedelta(days=7 * 13 - 1), ZONE)
    month = stats.Period(date(2024, 3, 1), date(2024, 3, 31), ZONE)
    long = reports.build(stats.collect(session, year), year, k=11)
    tables = {t.id for t in long.tables}
    assert "by_day" not in tables and {"by_week", "by_month", "hour_of_week"} <= tables
    assert not any(key.startswith("day:") for key in long.values)
    assert long.values["contacts"] == 122
    week_line = next(ln for ln in long.lines
                     if ln[0] == ("contacts", 1) and ln[1][0].startswith("week:"))
    assert sum(long.values[c] for c, _ in week_line[1:]) == 122
    assert_protected(long.values, long.lines, long.hidden, 11)
    middle = reports.build(stats.collect(session, quarter), quarter, k=11)
    assert "by_day" not in {t.id for t in middle.tables}
    assert_protected(middle.values, middle.lines, middle.hidden, 11)
    short = reports.build(stats.collect(session, month), month, k=11)
    assert "by_day" in {t.id for t in short.tables}
    assert_protected(short.values, short.lines, short.hidden, 11)
