"""Open alerts to the coordinators: one row per condition that holds (hotline/alerts/).

A row is the alert's whole state: it exists while the condition holds (so each condition has
at most one open alert), ``notified_at`` says when it was last sent (the repeat interval
counts from there), and it is deleted, once, when the condition clears (the "resolved"
message goes to whoever deleted it). ``summary`` is the banner's line: counts and times,
never a number, a name a caller gave, or anything a caller said.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from hotline.models.core import Base, UtcDateTime, utcnow

__all__ = ["OpenAlert"]


class OpenAlert(Base):
    __tablename__ = "alerts"

    #: The condition's name (``hotline.alerts.conditions.CONDITIONS``).
    condition: Mapped[str] = mapped_column(String(40), primary_key=True)
    opened_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    notified_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    summary: Mapped[str] = mapped_column(String(400))
