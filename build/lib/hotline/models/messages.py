"""The message records Twilio keeps, known to the hotline by their sids only.

Every text that passes through the hotline's number (in, out, relayed, the webhook's own
replies) leaves a record at Twilio with its body and numbers. The hotline keeps each sid,
never the content, until Twilio has confirmed the body blanked and the media deleted
(``redacted_at``); with ``HOTLINE_TWILIO_LOG_DAYS`` the record is then deleted at Twilio
and the sid forgotten. ``hotline.telephony.message_records`` owns these rows.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from hotline.models.core import Base, UtcDateTime, utcnow

__all__ = ["MessageSid"]


class MessageSid(Base):
    """One message at Twilio: its sid, which way it went, and what is left to do there."""
    __tablename__ = "message_sids"

    sid: Mapped[str] = mapped_column(String(64), primary_key=True)
    #: "inbound" (a text to the hotline) or "outbound" (REST, TwiML reply or relay).
    direction: Mapped[str] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow, index=True)
    #: When Twilio confirmed the body blank and no media left (None: still to do).
    redacted_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    #: Failed redaction tries so far, and when the next may run (backoff; never given up).
    tries: Mapped[int] = mapped_column(Integer, default=0)
    next_try_at: Mapped[datetime | None] = mapped_column(UtcDateTime())

    __table_args__ = (Index("ix_message_sids_pending", "redacted_at", "next_try_at"),)
