"""Outreach to a colleague someone referred (``hotline.outreach``).

Who referred is never stored: there is no referrer column, and the rate limits that need
the referrer are Redis counters that expire by themselves. The colleague's number is
sealed only while the outreach is pending; its keyed hash stays for the quiet period (one
outreach per number per HOTLINE_OUTREACH_QUIET_DAYS). Times are kept to the minute.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import Enum

from sqlalchemy import Date, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from hotline.models.core import Base, UtcDateTime

__all__ = ["Outreach", "OutreachDay", "OutreachState"]


class OutreachState(str, Enum):
    PENDING = "pending"      # the text is waiting for decent hours, or for an answer
    ACCEPTED = "accepted"    # YES: a callback request took it over
    DECLINED = "declined"    # NO
    EXPIRED = "expired"      # no answer within HOTLINE_OUTREACH_REPLY_HOURS
    OPTED_OUT = "opted_out"  # STOP (or the number had opted out before the text left)


class Outreach(Base):
    """One discreet text offering a colleague a call from a peer."""
    __tablename__ = "outreach"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: The colleague's keyed hash: the quiet period and matching their reply.
    caller_key: Mapped[str] = mapped_column(String(64), index=True)
    language: Mapped[str] = mapped_column(String(8), default="en")
    #: The colleague's number, sealed; None once the outreach is over.
    sealed_number: Mapped[str | None] = mapped_column(String(512))
    state: Mapped[str] = mapped_column(String(12), default=OutreachState.PENDING.value)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    #: When the text went out (None: not yet, quiet hours); the reply window starts here.
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    #: On YES: the contact whose callback request calls the colleague (reached a peer when
    #: that request is done).
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id"))


class OutreachDay(Base):
    """How many outreach texts left on a local day (HOTLINE_TIMEZONE): the statistics'
    "sent", kept after the outreach rows are deleted. A tally only: no outreach id, number,
    key or referrer, nothing finer than the day."""
    __tablename__ = "outreach_days"

    day: Mapped[date] = mapped_column(Date(), primary_key=True)
    sent: Mapped[int] = mapped_column(Integer(), default=0)
