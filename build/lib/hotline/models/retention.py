"""Retention: what is left of old events and scores once their rows are deleted.

Monthly totals only: no contact id, no caller key, no time finer than a month (in the
program's time zone). ``hotline.retention.purge`` adds to these and deletes what it folded.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import Date, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from hotline.models.core import Base

__all__ = ["MonthlyAggregate", "MonthlyScore"]


class MonthlyAggregate(Base):
    """How many events of one kind a month saw, by channel, tier and outcome."""
    __tablename__ = "monthly_aggregates"

    id: Mapped[int] = mapped_column(primary_key=True)
    month: Mapped[date] = mapped_column(Date)            # first day of the month
    channel: Mapped[str] = mapped_column(String(8))
    kind: Mapped[str] = mapped_column(String(24))
    tier: Mapped[int | None] = mapped_column(Integer)
    outcome: Mapped[str | None] = mapped_column(String(20))
    count: Mapped[int] = mapped_column(Integer, default=0)

    __table_args__ = (Index("ix_monthly_aggregates_month_kind", "month", "kind"),)


class MonthlyScore(Base):
    """How many times a score value was given in a month, by channel and kind."""
    __tablename__ = "monthly_scores"

    id: Mapped[int] = mapped_column(primary_key=True)
    month: Mapped[date] = mapped_column(Date, index=True)  # first day of the month
    channel: Mapped[str] = mapped_column(String(8))
    kind: Mapped[str] = mapped_column(String(16))          # "helpful" or "burnout"
    value: Mapped[int] = mapped_column(Integer)
    count: Mapped[int] = mapped_column(Integer, default=0)
