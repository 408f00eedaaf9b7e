"""The statistics cache: exact counts of settled days (``hotline.statistics.queries``).

``StatsDay``: one row per local day of one time zone, once its counts are final:
the same additive counts the event, offer and contact tables give for its contacts (by
hour, channel, outcome, seconds to a human, callback state, escalation, follow-ups) and
per supporter id its offers by result and seconds on contacts (what the supporter load
already shows). No contact id, no caller key, no number: nothing that the event table
does not already hold, and nothing finer than a local hour. ``StatsPeriod``: a past
period's repeat-caller count and score counts, the numbers the dashboard shows for it.
``StatsPublished``: the counts a published month was first shown with, kept as they were
(``hotline.disclosure.joint``), so a late event never publishes a second version of it.
Retention deletes a day, or period, here in the transaction that deletes its events.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from hotline.models.core import Base, UtcDateTime, utcnow

__all__ = ["StatsDay", "StatsPeriod", "StatsPublished"]


class StatsDay(Base):
    """A settled local day's counts: a ``hotline.statistics.records.DayCounts`` as JSON with
    its schema ``version`` (a row of another version is counted again and replaced)."""
    __tablename__ = "stats_days"

    zone: Mapped[str] = mapped_column(String(64), primary_key=True)   # IANA name
    day: Mapped[date] = mapped_column(Date, primary_key=True)          # local day
    counts: Mapped[str] = mapped_column(Text)
    computed_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class StatsPeriod(Base):
    """A past period's repeat callers and scores, as JSON (final a day after its end)."""
    __tablename__ = "stats_periods"

    zone: Mapped[str] = mapped_column(String(64), primary_key=True)
    first: Mapped[date] = mapped_column(Date, primary_key=True)
    last: Mapped[date] = mapped_column(Date, primary_key=True)
    counts: Mapped[str] = mapped_column(Text)
    computed_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class StatsPublished(Base):
    """A published month's exact counts (a ``stats.Raw`` as JSON, supporters by id), as
    first published: every later view shows this version (``hotline.disclosure.joint``)."""
    __tablename__ = "stats_published"

    zone: Mapped[str] = mapped_column(String(64), primary_key=True)
    period: Mapped[str] = mapped_column(String(16), primary_key=True)   # 2025-03
    first: Mapped[date] = mapped_column(Date)                          # for retention
    counts: Mapped[str] = mapped_column(Text)
    published_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
