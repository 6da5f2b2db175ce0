"""Bookings: a client, a therapist, a room and a time."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Boolean
from sqlalchemy import CheckConstraint
from sqlalchemy import ForeignKey
from sqlalchemy import Index
from sqlalchemy import Integer
from sqlalchemy import String
from sqlalchemy import Text
from sqlalchemy import text
from sqlalchemy.dialects.postgresql import ExcludeConstraint
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column
from sqlalchemy.orm import relationship

from clinic_app.db import Base
from clinic_app.db import UTCDateTime
from clinic_app.models.accounts import User
from clinic_app.models.schedule import Room
from clinic_app.models.schedule import Service
from clinic_app.models.schedule import Therapist


class BookingStatus(enum.StrEnum):
    PENDING = "pending"  # waits for a therapist to confirm (intake "confirm first")
    BOOKED = "booked"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    NO_SHOW = "no_show"


# Statuses that hold the therapist and the room. Everything but cancelled:
# a completed or missed session still took that time.
ACTIVE_STATUSES = (
    BookingStatus.PENDING.value,
    BookingStatus.BOOKED.value,
    BookingStatus.COMPLETED.value,
    BookingStatus.NO_SHOW.value,
)
_ACTIVE_SQL = "status <> 'cancelled'"
# Used by the slot search's index-bounded overlap query (see services.availability).
MAX_BLOCKED_MINUTES = 24 * 60


class Booking(Base):
    """One appointment. ``blocked_*`` is the time held, buffers included."""

    __tablename__ = "bookings"
    __table_args__ = (
        CheckConstraint("end_at > start_at", name="times_ordered"),
        CheckConstraint(
            "blocked_start <= start_at AND blocked_end >= end_at", name="blocked_covers"
        ),
        CheckConstraint(
            "status IN ('pending', 'booked', 'completed', 'cancelled', 'no_show')", name="status"
        ),
        Index("ix_bookings_therapist_blocked", "therapist_id", "blocked_start"),
        Index("ix_bookings_room_blocked", "room_id", "blocked_start"),
        Index("ix_bookings_client_start", "client_id", "start_at"),
        Index("ix_bookings_blocked_start", "blocked_start"),
        # Covers the slot search's range query (services/availability.py): the rows of the
        # look-back window it must skip are filtered inside the index, no table lookups.
        Index("ix_bookings_blocked_cover", "blocked_start", "blocked_end", "therapist_id",
              "room_id", "status"),
        # The database itself refuses overlapping held time (PostgreSQL only;
        # SQLite relies on BEGIN IMMEDIATE plus the re-check in the service).
        ExcludeConstraint(
            ("therapist_id", "="),
            (text("tstzrange(blocked_start, blocked_end, '[)')"), "&&"),
            where=text(_ACTIVE_SQL),
            using="gist",
            name="ex_bookings_therapist_overlap",
        ).ddl_if(dialect="postgresql"),
        ExcludeConstraint(
            ("room_id", "="),
            (text("tstzrange(blocked_start, blocked_end, '[)')"), "&&"),
            where=text(_ACTIVE_SQL),
            using="gist",
            name="ex_bookings_room_overlap",
        ).ddl_if(dialect="postgresql"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    therapist_id: Mapped[int] = mapped_column(ForeignKey("therapists.id"))
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id"))
    room_id: Mapped[int] = mapped_column(ForeignKey("rooms.id"))
    start_at: Mapped[datetime] = mapped_column(UTCDateTime())
    end_at: Mapped[datetime] = mapped_column(UTCDateTime())
    blocked_start: Mapped[datetime] = mapped_column(UTCDateTime())
    blocked_end: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(16), default=BookingStatus.BOOKED.value)
    late_cancel: Mapped[bool] = mapped_column(Boolean, default=False)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    cancel_reason: Mapped[str] = mapped_column(String(255), default="")
    # Booked before the recommended earliest date, with the client's explicit consent.
    early_confirmed: Mapped[bool] = mapped_column(Boolean, default=False)
    price_cents: Mapped[int] = mapped_column(Integer, default=0)
    # RFC 5545 SEQUENCE: raised on every change the calendar should see.
    sequence: Mapped[int] = mapped_column(Integer, default=0)
    booked_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())

    client: Mapped[User] = relationship(foreign_keys=[client_id])
    therapist: Mapped[Therapist] = relationship()
    service: Mapped[Service] = relationship()
    room: Mapped[Room] = relationship()

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES

    @property
    def ics_uid(self) -> str:
        return f"booking-{self.id}@clinic-app"
