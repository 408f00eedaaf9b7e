"""Coordinator side: accounts, weekly shifts and manual availability overrides.

Nothing here identifies a caller. Shifts are kept in minutes of the program's week
(Monday 00:00 = 0, in the program's time zone) so "who is on shift now" is one indexed
comparison in SQL on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from datetime import datetime
from enum import Enum

from sqlalchemy import Boolean, DateTime, ForeignKey, Index, Integer, String, false
from sqlalchemy.orm import Mapped, mapped_column, relationship

from hotline.models.core import Base, Contact, ContactEvent, Offer, Supporter, utcnow

__all__ = ["Role", "User", "Shift", "AvailabilityOverride", "MINUTES_PER_WEEK"]

#: Minutes in a week: shift times are minutes of the week, Monday 00:00 = 0.
MINUTES_PER_WEEK = 7 * 24 * 60


class Role(str, Enum):
    """What an account may do: admins also manage accounts; a referrer may only open the
    referral page (``hotline.outreach``)."""
    COORDINATOR = "coordinator"
    ADMIN = "admin"
    REFERRER = "referrer"


class User(Base):
    """A coordinator or admin account for the dashboard (never a caller, never a supporter)."""
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    #: argon2id hash; None until an invitation is accepted.
    password_hash: Mapped[str | None] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16), default=Role.COORDINATOR.value)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    #: SHA-256 of a pending invitation token (the token itself is only ever printed).
    invite_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    invite_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    @property
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN.value

    @property
    def is_referrer(self) -> bool:
        return self.role == Role.REFERRER.value


class Shift(Base):
    """One weekly shift of a supporter, in the program's time zone.

    ``start_minute`` is a minute of the week (0 .. 10079); ``end_minute`` is after it by at
    most a day and may pass 10080 (a Sunday night shift ending on Monday morning).
    """
    __tablename__ = "shifts"

    id: Mapped[int] = mapped_column(primary_key=True)
    supporter_id: Mapped[int] = mapped_column(ForeignKey("supporters.id"), index=True)
    start_minute: Mapped[int] = mapped_column(Integer)
    end_minute: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    supporter: Mapped[Supporter] = relationship()


class AvailabilityOverride(Base):
    """A manual OFF (texted OFF, ``hotline supporters off``, the dashboard) during a shift.

    It holds until ``until`` (the end of the shift it was given in); a manual ON is
    ``Supporter.available`` itself and needs no row here.
    """
    __tablename__ = "availability_overrides"

    supporter_id: Mapped[int] = mapped_column(ForeignKey("supporters.id"), primary_key=True)
    off_until: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    set_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    #: The hotline switched them OFF after missed offers (``hotline.roster.care``); any
    #: later switch (ON, OFF, schedule) replaces or deletes the row.
    auto_paused: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


#: Indexes for the statistics (declared here so autogenerate keeps them), each read by
#: ``hotline.statistics.queries`` without touching the tables (index-only on SQLite and PostgreSQL):
#: the contacts that started in a period, with their channel; the other events of those
#: contacts by kind; each contact's first outcome (only outcome events: a small index);
#: the callback tries left out of every period; offers and talk time per supporter.
EVENT_INDEXES = (
    Index("ix_contact_events_kind_at_contact", ContactEvent.kind, ContactEvent.at,
          ContactEvent.contact_id, ContactEvent.channel),
    Index("ix_contact_events_contact_kind", ContactEvent.contact_id, ContactEvent.kind),
    Index("ix_contact_events_outcome", ContactEvent.contact_id, ContactEvent.id,
          ContactEvent.outcome, ContactEvent.at,
          sqlite_where=ContactEvent.outcome.is_not(None),
          postgresql_where=ContactEvent.outcome.is_not(None)),
    Index("ix_contacts_mode", Contact.mode, Contact.id),
    Index("ix_contacts_connected_at", Contact.connected_at, Contact.supporter_id,
          Contact.ended_at),
    Index("ix_offers_created_at_supporter", Offer.created_at, Offer.supporter_id,
          Offer.state),
)
