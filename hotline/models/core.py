"""The hotline's tables (SQLAlchemy 2, typed mappings).

Nothing here holds what anybody said, and no raw caller number is stored outside
``CallbackRequest.sealed_number`` (encrypted, deleted once the callback is done).
"""

from __future__ import annotations

from datetime import date, datetime, timezone

from sqlalchemy import (Boolean, Date, DateTime, ForeignKey, Index, Integer, MetaData, String,
                        TypeDecorator, false)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from hotline.core import clock
# The enums live with the lifecycle that changes them; re-exported here as before.
from hotline.models.states import (CallbackState, Channel, Consent, ContactMode,
                                      ContactState, EventKind, OfferState, Outcome)

__all__ = ["Base", "Channel", "ContactState", "ContactMode", "Outcome", "OfferState",
           "CallbackState", "Consent", "EventKind", "Supporter", "Contact",
           "Offer", "ContactEvent", "CallbackRequest", "OptOut", "InboundMessage", "utcnow",
           "to_minute", "UtcDateTime"]

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UtcDateTime(TypeDecorator):
    """A timezone-aware UTC datetime on every backend (SQLite drops the zone otherwise)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc) if value is not None else None

    def process_result_value(self, value, dialect):
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value


def utcnow() -> datetime:
    """Timezone-aware now, the only clock the models use (hotline.core.clock: tests can stop it)."""
    return clock.utcnow()


def insert_for(session, model):
    """An INSERT of ``model`` in the session's dialect (PostgreSQL or SQLite), for
    ``on_conflict_do_nothing`` / ``on_conflict_do_update``, which core ``insert`` lacks."""
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    return insert(model)


def to_minute(moment: datetime) -> datetime:
    """Truncate to the minute: events never carry finer times."""
    return moment.replace(second=0, microsecond=0)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Supporter(Base):
    """A trained peer supporter (tier 1) or backup (tier 2)."""
    __tablename__ = "supporters"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    phone: Mapped[str] = mapped_column(String(20), unique=True)
    tier: Mapped[int] = mapped_column(Integer, default=1)
    languages: Mapped[str] = mapped_column(String(40), default="en")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    available: Mapped[bool] = mapped_column(Boolean, default=False)
    #: "offer:<id>" or "contact:<id>" while reserved; set only by a conditional UPDATE.
    busy_with: Mapped[str | None] = mapped_column(String(40), default=None)
    busy_since: Mapped[datetime | None] = mapped_column(UtcDateTime())
    #: Round-robin position: the least recently offered eligible supporter goes next.
    last_offered_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    #: Caring for supporters (``hotline.roster.care``): after a connected contact, offered
    #: another only when nobody else is free until then (READY clears it).
    cooldown_until: Mapped[datetime | None] = mapped_column(UtcDateTime())
    #: Offers in a row let ring out or met with silence; a yes or a decline resets it.
    missed_in_row: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    #: No thank-you text after their contacts (they texted QUIET).
    quiet: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    #: Training record (hotline.roster.training): when trained, and when the refresher is
    #: due. None = no record: with HOTLINE_REQUIRE_TRAINING never offered a contact.
    trained_on: Mapped[date | None] = mapped_column(Date)
    refresher_due: Mapped[date | None] = mapped_column(Date)
    #: One of ivr_flows/roster.yaml's roles (None: not given) and its units, comma
    #: separated like ``languages`` ("" none): what a caller's match request is matched on.
    role: Mapped[str | None] = mapped_column(String(32))
    units: Mapped[str] = mapped_column(String(200), default="", server_default="")

    __table_args__ = (Index("ix_supporters_pick", "tier", "active", "available",
                            "last_offered_at"),)

    @property
    def language_list(self) -> list[str]:
        return [code for code in self.languages.split(",") if code]

    @property
    def unit_list(self) -> list[str]:
        return [name for name in (self.units or "").split(",") if name]


class Contact(Base):
    """One call or text conversation; the caller is known only by ``caller_key``."""
    __tablename__ = "contacts"

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(8), default=Channel.VOICE.value)
    caller_key: Mapped[str] = mapped_column(String(64), index=True)
    call_sid: Mapped[str | None] = mapped_column(String(64), unique=True)
    language: Mapped[str] = mapped_column(String(8), default="en")
    state: Mapped[str] = mapped_column(String(12), default=ContactState.MENU.value)
    #: Routing generation: bumped on each (re)queue; a job for an older one exits.
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    escalated: Mapped[bool] = mapped_column(Boolean, default=False)
    tier2_rung: Mapped[bool] = mapped_column(Boolean, default=False)
    exhausted: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    queued_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    connected_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    outcome: Mapped[str | None] = mapped_column(String(20), index=True)
    supporter_id: Mapped[int | None] = mapped_column(ForeignKey("supporters.id"))
    #: Text path: "text" (a conversation by SMS) or "call" (a peer calls the clinician).
    mode: Mapped[str | None] = mapped_column(String(8))
    #: The clinician's number, sealed, only while the text path needs it to reach them.
    sealed_number: Mapped[str | None] = mapped_column(String(512))
    last_activity_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    #: Check-in texts: None (not asked), "asked", "yes" or "no".
    consent: Mapped[str | None] = mapped_column(String(8))
    #: The carrier vouched for this call's caller ID (STIR/SHAKEN A): a yes on the call
    #: counts. Otherwise the number's owner confirms by text first (hotline/consent.py).
    caller_verified: Mapped[bool] = mapped_column(Boolean, default=False,
                                                  server_default=false())
    #: The caller's match request, only while the contact is open, for routing: a peer in
    #: this role first (a roster.yaml name); nobody from this unit (its name sealed like a
    #: number: never written in the clear). Erased in the UPDATE that gives the contact
    #: its outcome (``hotline.lifecycle.contacts.ERASED_AT_OUTCOME``).
    match_role: Mapped[str | None] = mapped_column(String(32))
    match_unit: Mapped[str | None] = mapped_column(String(512))

    offers: Mapped[list["Offer"]] = relationship(back_populates="contact",
                                                 order_by="Offer.id")

    @property
    def queue_name(self) -> str:
        """The Twilio queue this contact waits in (one per contact: who bridges is exact)."""
        return Contact.queue_of(self.id)

    @staticmethod
    def queue_of(contact_id: int) -> str:
        """``queue_name`` of a contact known by its id only (not loaded)."""
        return f"hotline-contact-{contact_id}"


class Offer(Base):
    """One supporter's phone ringing for one contact."""
    __tablename__ = "offers"

    id: Mapped[int] = mapped_column(primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"), index=True)
    supporter_id: Mapped[int] = mapped_column(ForeignKey("supporters.id"), index=True)
    attempt: Mapped[int] = mapped_column(Integer)
    tier: Mapped[int] = mapped_column(Integer)
    call_sid: Mapped[str | None] = mapped_column(String(64), unique=True)
    state: Mapped[str] = mapped_column(String(12), default=OfferState.RINGING.value)
    answered: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime())

    contact: Mapped[Contact] = relationship(back_populates="offers")
    supporter: Mapped[Supporter] = relationship()

    @property
    def token(self) -> str:
        """What ``Supporter.busy_with`` holds while this offer reserves its supporter."""
        return f"offer:{self.id}"


class ContactEvent(Base):
    """Append-only event log for statistics: no number, no text, time to the minute."""
    __tablename__ = "contact_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"), index=True)
    kind: Mapped[str] = mapped_column(String(24))
    at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    channel: Mapped[str] = mapped_column(String(8))
    tier: Mapped[int | None] = mapped_column(Integer)
    outcome: Mapped[str | None] = mapped_column(String(20))


class CallbackRequest(Base):
    """A promised callback; the number is sealed and deleted once no longer needed."""
    __tablename__ = "callback_requests"

    id: Mapped[int] = mapped_column(primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"), unique=True)
    sealed_number: Mapped[str | None] = mapped_column(String(512))
    requested_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    promised_by: Mapped[datetime] = mapped_column(UtcDateTime())
    #: pending (not yet tried), calling (a try is under way), done, failed.
    state: Mapped[str] = mapped_column(String(12), default=CallbackState.PENDING.value)
    tries: Mapped[int] = mapped_column(Integer, default=0)
    #: The contact that carries the current try (a peer is rung, then the clinician).
    attempt_contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id"))
    #: The caller's match request, carried to each try; erased with the sealed number.
    match_role: Mapped[str | None] = mapped_column(String(32))
    match_unit: Mapped[str | None] = mapped_column(String(512))
    completed_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class OptOut(Base):
    """A number that texted STOP (or the like), known only by its keyed hash."""
    __tablename__ = "opt_outs"

    caller_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class InboundMessage(Base):
    """A MessageSid already handled: a repeated delivery has no second effect. No body."""
    __tablename__ = "inbound_messages"

    message_sid: Mapped[str] = mapped_column(String(64), primary_key=True)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow,
                                                  index=True)
