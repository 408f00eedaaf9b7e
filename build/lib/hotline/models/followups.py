"""Follow-ups, consent and outcome measures.

A FollowUp keeps the clinician's number sealed only until its last text is sent (or STOP);
its ``caller_key`` matches replies and goes with it. Scores carry a day and a channel,
never a key: they cannot be traced back to anyone.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from enum import Enum

from sqlalchemy import Date, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from hotline.models.core import Base, UtcDateTime, utcnow

#: How long after a follow-up a numeric reply still counts as its answer. Here, with the
#: table, because the statistics need it too: a day's follow-up counts settle after it.
REPLY_WINDOW = timedelta(days=3)

__all__ = ["FollowUp", "FollowUpState", "Score"]


class FollowUpState(str, Enum):
    SCHEDULED = "scheduled"
    SENDING = "sending"    # written before the text goes out: the crash check reads it
    SENT = "sent"
    REPLIED = "replied"
    CANCELED = "canceled"


class FollowUp(Base):
    """One scheduled check-in text."""
    __tablename__ = "followups"

    id: Mapped[int] = mapped_column(primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"), index=True)
    caller_key: Mapped[str] = mapped_column(String(64), index=True)
    sealed_number: Mapped[str | None] = mapped_column(String(512))
    sequence: Mapped[int] = mapped_column(Integer)        # 1 = first check-in, 2 = second...
    kind: Mapped[str] = mapped_column(String(16))         # "survey" or "checkin"
    channel: Mapped[str] = mapped_column(String(8))       # channel of the contact followed up
    language: Mapped[str] = mapped_column(String(8), default="en")
    due_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    state: Mapped[str] = mapped_column(String(12), default=FollowUpState.SCHEDULED.value)
    sending_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    message_sid: Mapped[str | None] = mapped_column(String(64))
    awaiting: Mapped[str | None] = mapped_column(String(16))  # "helpful", "burnout" or None
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class Score(Base):
    """An outcome measure (1 to 5): the day and the channel only, no link to anyone."""
    __tablename__ = "scores"

    id: Mapped[int] = mapped_column(primary_key=True)
    day: Mapped[date] = mapped_column(Date, index=True)
    channel: Mapped[str] = mapped_column(String(8))
    kind: Mapped[str] = mapped_column(String(16))         # "helpful" or "burnout"
    value: Mapped[int] = mapped_column(Integer)
