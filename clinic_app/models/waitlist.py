"""Waitlist entries, the offers made to them, and the queue of freed time (issue 13).

An entry names a service, one therapist or any (``therapist_id`` NULL), a date range in the
clinic's zone (at most the booking horizon ahead) and optional parts of the day. Its status
moves waiting -> left (the client left it), expired (its range ended) or booked (an offer was
accepted). Ranking the entries for a freed slot is pure: ``clinic_app.scheduling.waitlist``.

When time frees up (a cancellation, a move, a released hold ...) a :class:`FreedTime` row is
queued; the worker offers the free slots in it to the best match (:class:`WaitlistOffer`).
"""

from __future__ import annotations

import enum
from datetime import date
from datetime import datetime

from sqlalchemy import JSON
from sqlalchemy import CheckConstraint
from sqlalchemy import Date
from sqlalchemy import ForeignKey
from sqlalchemy import Index
from sqlalchemy import Integer
from sqlalchemy import String
from sqlalchemy import text
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column
from sqlalchemy.orm import relationship

from clinic_app.db import Base
from clinic_app.db import UTCDateTime
from clinic_app.models.accounts import User
from clinic_app.models.booking import Booking
from clinic_app.models.booking import BookingStatus
from clinic_app.models.booking import HoldPurpose
from clinic_app.models.schedule import Service
from clinic_app.models.schedule import Therapist


class WaitlistStatus(enum.StrEnum):
    WAITING = "waiting"
    LEFT = "left"
    EXPIRED = "expired"
    BOOKED = "booked"


class WaitlistEntry(Base):
    """One client's wish to be offered a freed slot."""

    __tablename__ = "waitlist_entries"
    __table_args__ = (
        CheckConstraint("date_to >= date_from", name="dates_ordered"),
        CheckConstraint("status IN ('waiting', 'left', 'expired', 'booked')", name="status"),
        # The ranking reads the waiting entries of one service.
        Index("ix_waitlist_entries_service_status", "service_id", "status"),
        Index("ix_waitlist_entries_client_status", "client_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id"))
    # NULL: any therapist who offers the service.
    therapist_id: Mapped[int | None] = mapped_column(ForeignKey("therapists.id"))
    date_from: Mapped[date] = mapped_column(Date)
    date_to: Mapped[date] = mapped_column(Date)
    # Values of scheduling.waitlist.PartOfDay; empty means any time of day.
    parts_of_day: Mapped[list[str]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(16), default=WaitlistStatus.WAITING.value)
    # Who created it: the client, or staff joining for them.
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())

    client: Mapped[User] = relationship(foreign_keys=[client_id])
    service: Mapped[Service] = relationship()
    therapist: Mapped[Therapist | None] = relationship()


class OfferStatus(enum.StrEnum):
    OPEN = "open"  # the slot is held for the client until expires_at
    ACCEPTED = "accepted"  # the hold became the client's booking (booking_id)
    DECLINED = "declined"  # the client said no; the slot went back to the queue
    EXPIRED = "expired"  # nobody answered in time; the slot went back to the queue
    WITHDRAWN = "withdrawn"  # the entry was left or the account closed while it was open


class WaitlistOffer(Base):
    """A freed slot offered to one waiting client (issue 13, item 2).

    The slot is held for them by a ``bookings`` row with status ``held`` (``hold_id``); on
    acceptance that same row becomes the booking (``booking_id``). ``hold_id`` is a plain
    number, not a foreign key: a declined or expired offer's hold is deleted, and the offer
    keeps saying which row it was. ``freed_at`` is when the slot became free, so the
    dashboard can tell how long a freed slot stayed empty.
    """

    __tablename__ = "waitlist_offers"
    __table_args__ = (
        CheckConstraint("status IN ('open', 'accepted', 'declined', 'expired', 'withdrawn')",
                        name="status"),
        CheckConstraint("end_at > start_at", name="times_ordered"),
        # One open offer per client at a time, enforced by the database as well as the job.
        Index("uq_waitlist_offers_open_client", "client_id", unique=True,
              sqlite_where=text("status = 'open'"), postgresql_where=text("status = 'open'")),
        # Who was already offered this therapist's time (never ask twice for one slot).
        Index("ix_waitlist_offers_therapist_start", "therapist_id", "start_at"),
        # The job's expiry scan.
        Index("ix_waitlist_offers_status_expires", "status", "expires_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    entry_id: Mapped[int] = mapped_column(ForeignKey("waitlist_entries.id"))
    client_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id"))
    therapist_id: Mapped[int] = mapped_column(ForeignKey("therapists.id"))
    start_at: Mapped[datetime] = mapped_column(UTCDateTime())
    end_at: Mapped[datetime] = mapped_column(UTCDateTime())
    hold_id: Mapped[int] = mapped_column(Integer)
    booking_id: Mapped[int | None] = mapped_column(
        ForeignKey("bookings.id", ondelete="SET NULL"))
    status: Mapped[str] = mapped_column(String(16), default=OfferStatus.OPEN.value)
    freed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    responded_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    entry: Mapped[WaitlistEntry] = relationship()
    client: Mapped[User] = relationship()
    service: Mapped[Service] = relationship()
    therapist: Mapped[Therapist] = relationship()

    def lives(self, now: datetime) -> bool:
        """Open and not yet past its expiry (the job may not have marked it yet)."""
        return self.status == OfferStatus.OPEN.value and self.expires_at > now

    def is_held_by(self, hold: Booking | None) -> bool:
        """Whether ``hold`` is this offer's hold. Checked on its contents, not its id alone:
        SQLite reuses the id of a deleted last row, so a hold deleted meanwhile (a booking
        removes expired holds on its time) may have given its id to somebody else's."""
        return hold is not None and hold.id == self.hold_id and (
            hold.status, hold.hold_purpose, hold.client_id, hold.therapist_id, hold.start_at
        ) == (BookingStatus.HELD.value, HoldPurpose.OFFER.value, self.client_id,
              self.therapist_id, self.start_at)


class FreedReason(enum.StrEnum):
    """Why a range of a therapist's time became free (``freed_slots.reason``)."""

    CANCELLED = "cancelled"
    MOVED = "moved"  # the old time of a rescheduled booking
    HOLD_RELEASED = "hold_released"
    HOLD_EXPIRED = "hold_expired"  # a sign-up hold nobody used (announced once)
    OFFER_DECLINED = "offer_declined"
    OFFER_EXPIRED = "offer_expired"
    OFFER_WITHDRAWN = "offer_withdrawn"
    TIME_OFF_REMOVED = "time_off_removed"
    HOURS_ADDED = "hours_added"
    CLOSURE_REMOVED = "closure_removed"


class FreedTime(Base):
    """A queue row: a therapist's time ``[start_at, end_at)`` became free.

    Written in the transaction that frees it (one INSERT, nothing else in the request); the
    worker's offer job reads the unprocessed rows, offers the free slots inside to the best
    waiting match and sets ``processed_at``. ``source_booking_id`` names the booking or hold
    that freed it, when there was one (no foreign key: a hold is deleted afterwards).
    """

    __tablename__ = "freed_slots"
    __table_args__ = (
        CheckConstraint("end_at > start_at", name="times_ordered"),
        # The job reads the queue oldest first; processed rows stay for the figures.
        Index("ix_freed_slots_pending", "created_at",
              sqlite_where=text("processed_at IS NULL"),
              postgresql_where=text("processed_at IS NULL")),
        # "Was this expired sign-up hold announced already?"
        Index("ix_freed_slots_source", "source_booking_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    therapist_id: Mapped[int] = mapped_column(ForeignKey("therapists.id"))
    start_at: Mapped[datetime] = mapped_column(UTCDateTime())
    end_at: Mapped[datetime] = mapped_column(UTCDateTime())
    reason: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    source_booking_id: Mapped[int | None] = mapped_column(Integer)
