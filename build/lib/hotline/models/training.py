"""Training reminders: one row per text to send (a supporter's refresher reminder, or a
coordinator's weekly digest), the idempotency record that makes each go out exactly once.

No clinician is in here: supporters and coordinators are staff.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from hotline.models.core import Base, UtcDateTime, utcnow
from hotline.models.followups import FollowUpState

__all__ = ["TrainingReminder"]


class TrainingReminder(Base):
    """One scheduled training text. ``key`` names what it is for (kind, supporter or
    coordinator, the date it is about), so planning it twice makes one row."""
    __tablename__ = "training_reminders"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(80), unique=True)
    #: "due_30" / "due_7" (days before the refresher, to the supporter) or "digest".
    kind: Mapped[str] = mapped_column(String(12))
    supporter_id: Mapped[int | None] = mapped_column(ForeignKey("supporters.id"), index=True)
    #: A digest's coordinator number (staff, from HOTLINE_COORDINATOR_PHONES).
    recipient: Mapped[str | None] = mapped_column(String(20))
    #: The refresher date a reminder is about; the Monday of a digest's week.
    for_date: Mapped[date] = mapped_column(Date)
    due_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    #: The follow-ups' states: scheduled, sending (written before the text goes out),
    #: sent, canceled.
    state: Mapped[str] = mapped_column(String(12), default=FollowUpState.SCHEDULED.value)
    sending_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    message_sid: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
