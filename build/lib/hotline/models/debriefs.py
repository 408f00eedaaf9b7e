"""Team debriefs (issue 17): a group call after a hard event, and its reminder texts.

While a debrief is live its row holds when it starts, how long it lasts, who facilitates
and its meeting code as a keyed hash (never the code). When it ends, all of that is
cleared: what stays is the day and how many participants joined. No participant's number
is ever stored; the facilitators are staff (roster rows).
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from hotline.models.core import Base, UtcDateTime, utcnow
from hotline.models.followups import FollowUpState

__all__ = ["Debrief", "DebriefReminder", "DebriefState"]


class DebriefState:
    SCHEDULED = "scheduled"
    ENDED = "ended"
    CANCELED = "canceled"


class Debrief(Base):
    """One scheduled group debrief."""
    __tablename__ = "debriefs"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: The day it is (was) held, in the program's time zone: kept afterwards.
    day: Mapped[date] = mapped_column(Date, index=True)
    #: Participants who joined (facilitators not counted): kept afterwards.
    participants: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    state: Mapped[str] = mapped_column(String(12), default=DebriefState.SCHEDULED, index=True)
    # -- cleared at the end ------------------------------------------------------------
    starts_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    minutes: Mapped[int | None] = mapped_column(Integer)
    facilitator_id: Mapped[int | None] = mapped_column(ForeignKey("supporters.id"))
    second_facilitator_id: Mapped[int | None] = mapped_column(ForeignKey("supporters.id"))
    #: Keyed hash of the 6-digit meeting code (privacy.primitives.code_hash).
    code_hash: Mapped[str | None] = mapped_column(String(64), unique=True)


class DebriefReminder(Base):
    """One reminder text to a facilitator (the day before, 15 minutes before), sent exactly
    once the follow-ups' way; deleted when the debrief ends."""
    __tablename__ = "debrief_reminders"

    id: Mapped[int] = mapped_column(primary_key=True)
    debrief_id: Mapped[int] = mapped_column(ForeignKey("debriefs.id"), index=True)
    supporter_id: Mapped[int] = mapped_column(ForeignKey("supporters.id"))
    #: "day_before" or "soon".
    kind: Mapped[str] = mapped_column(String(12))
    due_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    state: Mapped[str] = mapped_column(String(12), default=FollowUpState.SCHEDULED.value)
    sending_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
