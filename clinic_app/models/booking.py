"""Bookings: a client, a therapist, a room and a time, and their status machine.

The status changes only through the methods of :class:`Booking` (``confirm``, ``cancel``,
``move``, ``complete``, ``mark_no_show``), each checked against :data:`TRANSITIONS`; a
wrong one raises :class:`InvalidTransition`. The services lock the row, call the method
and then record the messages.

A *hold* (status ``held``, issue 12.1) is a row that reserves one slot for a few minutes:
it blocks the therapist and the room exactly like a booking (the same exclusion constraints,
the same serial re-check) until ``expires_at``, then becomes the booking (``convert``) or is
deleted. Holds are invisible to every ORM query unless it opts in with the execution option
``include_holds=True`` (see :func:`_hide_holds`): no appointment list, email, count or export
ever sees one.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from datetime import timedelta
from typing import Any

from sqlalchemy import Boolean
from sqlalchemy import CheckConstraint
from sqlalchemy import ForeignKey
from sqlalchemy import Index
from sqlalchemy import Integer
from sqlalchemy import String
from sqlalchemy import Text
from sqlalchemy import event
from sqlalchemy import text
from sqlalchemy.dialects.postgresql import ExcludeConstraint
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import ORMExecuteState
from sqlalchemy.orm import Session
from sqlalchemy.orm import mapped_column
from sqlalchemy.orm import relationship
from sqlalchemy.orm import with_loader_criteria

from clinic_app.db import Base
from clinic_app.db import UTCDateTime
from clinic_app.errors import Conflict
from clinic_app.errors import DomainError
from clinic_app.errors import ValidationFailed
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
    HELD = "held"  # a slot reserved for a few minutes (sign-up, waitlist offer); not a booking


class HoldPurpose(enum.StrEnum):
    SIGNUP = "signup"  # a visitor creating an account at the confirm step
    OFFER = "offer"  # a freed slot offered to someone on the waitlist


# Statuses that hold the therapist and the room. Everything but cancelled:
# a completed or missed session still took that time, and a hold blocks until it expires.
ACTIVE_STATUSES = (
    BookingStatus.PENDING.value,
    BookingStatus.BOOKED.value,
    BookingStatus.COMPLETED.value,
    BookingStatus.NO_SHOW.value,
    BookingStatus.HELD.value,
)
_ACTIVE_SQL = "status <> 'cancelled'"
#: Ids are 32-bit in the database: a larger one (a URL can carry any number) is never a row.
MAX_ID = 2**31 - 1


class InvalidTransition(DomainError):
    """The booking's status does not allow that change (``code`` per change)."""


class InvalidChange(InvalidTransition, ValidationFailed):
    """422: the request cannot apply to a booking in this state (cancel, move, no-show)."""


class ConflictingChange(InvalidTransition, Conflict):
    """409: the booking has moved on (already completed, no longer pending)."""


@dataclass(frozen=True)
class Transition:
    """One change of the status machine: from which statuses, to which one, and the
    error a wrong start gives (kept as the API has always answered it)."""

    sources: frozenset[str]
    target: str | None  # None: the status stays (a move)
    code: str
    error: type[InvalidTransition]
    message: str  # formatted with the booking's status, spaces for underscores


_CHANGEABLE = frozenset({"pending", "booked"})
TRANSITIONS: dict[str, Transition] = {
    "confirm": Transition(frozenset({"pending"}), "booked", "not_pending", ConflictingChange,
                          "Only a pending booking can be confirmed; this one is {status}."),
    "cancel": Transition(_CHANGEABLE, "cancelled", "not_cancellable", InvalidChange,
                         "This booking is {status} and cannot be cancelled."),
    "move": Transition(_CHANGEABLE, None, "not_cancellable", InvalidChange,
                       "This booking is {status} and cannot be moved."),
    "complete": Transition(frozenset({"booked"}), "completed", "not_completable", ConflictingChange,
                           "A {status} booking cannot be completed."),
    "mark_no_show": Transition(_CHANGEABLE, "no_show", "invalid_status", InvalidChange,
                               "This booking is {status}."),
    # held -> pending or booked (the client's initial status decides; see Booking.convert).
    "convert": Transition(frozenset({"held"}), None, "not_held", ConflictingChange,
                          "This slot is not held any more; it is {status}."),
}
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
            "status IN ('pending', 'booked', 'completed', 'cancelled', 'no_show', 'held')",
            name="status",
        ),
        # Only a hold may lack a client (a visitor holds a slot before signing up), and every
        # hold says why it exists and when it ends.
        CheckConstraint("status = 'held' OR client_id IS NOT NULL", name="client_unless_held"),
        CheckConstraint(
            "status <> 'held' OR (expires_at IS NOT NULL AND hold_purpose IS NOT NULL)",
            name="hold_expires",
        ),
        Index("ix_bookings_expires_at", "expires_at"),
        Index("ix_bookings_therapist_blocked", "therapist_id", "blocked_start"),
        Index("ix_bookings_room_blocked", "room_id", "blocked_start"),
        Index("ix_bookings_client_start", "client_id", "start_at"),
        Index("ix_bookings_blocked_start", "blocked_start"),
        # Covers the slot search's range query (services/availability.py): the rows of the
        # look-back window it must skip are filtered inside the index, no table lookups.
        Index("ix_bookings_blocked_cover", "blocked_start", "blocked_end", "therapist_id",
              "room_id", "status", "expires_at"),
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
    # NULL only on a hold placed by a visitor without an account (CHECK client_unless_held).
    client_id: Mapped[int] = mapped_column(ForeignKey("users.id"), nullable=True)
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
    # --- staff booking options and notes (issue 11) ---
    # False: staff booked without emailing the client (no confirmation, no reminders).
    notify_client: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    # An admin booked inside the minimum notice or beyond the horizon: why (shown to staff).
    override_reason: Mapped[str] = mapped_column(String(255), default="", server_default="")
    # The therapist's private note on this booking (staff only, never sent to the client).
    private_note: Mapped[str] = mapped_column(Text, default="", server_default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # Holds only: when the hold stops blocking, and why it was placed (HoldPurpose).
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    hold_purpose: Mapped[str | None] = mapped_column(String(16))

    client: Mapped[User] = relationship(foreign_keys=[client_id])
    therapist: Mapped[Therapist] = relationship()
    service: Mapped[Service] = relationship()
    room: Mapped[Room] = relationship()

    # --- the status machine (the only code that changes ``status``) -------------------------

    def can(self, change: str) -> bool:
        """Whether ``change`` (a key of TRANSITIONS) is allowed from the current status."""
        return self.status in TRANSITIONS[change].sources

    def require(self, change: str) -> Transition:
        """The transition, or InvalidTransition when the current status does not allow it."""
        transition = TRANSITIONS[change]
        if self.status not in transition.sources:
            raise transition.error(
                transition.message.format(status=str(self.status).replace("_", " ")),
                code=transition.code)
        return transition

    def _enter(self, change: str, now: datetime) -> None:
        transition = self.require(change)
        if transition.target is not None:
            self.status = transition.target
        self.updated_at = now

    def confirm(self, now: datetime) -> None:
        """pending -> booked (a therapist confirmed the intake); calendars see the change."""
        self._enter("confirm", now)
        self.sequence = (self.sequence or 0) + 1

    def cancel(self, now: datetime, *, reason: str = "", late: bool = False) -> None:
        """pending/booked -> cancelled; ``late`` records a client inside the cutoff."""
        self._enter("cancel", now)
        self.late_cancel = late
        self.cancelled_at = now
        self.cancel_reason = (reason or "")[:255]
        self.sequence = (self.sequence or 0) + 1

    def move(self, now: datetime, *, therapist_id: int, room_id: int, start: datetime,
             end: datetime, buffer_before: timedelta, buffer_after: timedelta) -> None:
        """A pending/booked booking takes a new time (same id and status, sequence raised)."""
        self.require("move")
        self.place(now, therapist_id=therapist_id, room_id=room_id, start=start, end=end,
                   buffer_before=buffer_before, buffer_after=buffer_after)
        self.sequence = (self.sequence or 0) + 1

    def place(self, now: datetime, *, therapist_id: int, room_id: int, start: datetime,
              end: datetime, buffer_before: timedelta, buffer_after: timedelta) -> None:
        """Set the time held (buffers included); for a new booking, or inside ``move``."""
        self.therapist_id = therapist_id
        self.room_id = room_id
        self.start_at = start
        self.end_at = end
        self.blocked_start = start - buffer_before
        self.blocked_end = end + buffer_after
        self.updated_at = now

    def complete(self, now: datetime) -> None:
        """booked -> completed (the therapist recorded the session)."""
        self._enter("complete", now)

    def mark_no_show(self, now: datetime) -> None:
        """pending/booked -> no_show (the client did not come)."""
        self._enter("mark_no_show", now)

    def convert(self, now: datetime, *, client_id: int, status: str, booked_by_id: int,
                early_confirmed: bool) -> None:
        """held -> ``status`` (pending or booked): the hold becomes the client's booking,
        same row, so the slot is never free in between."""
        self.require("convert")
        if status not in (BookingStatus.PENDING.value, BookingStatus.BOOKED.value):
            raise ValueError(f"a hold becomes a pending or booked booking, not {status}")
        self.status = status
        self.client_id = client_id
        self.booked_by_id = booked_by_id
        self.early_confirmed = early_confirmed
        self.expires_at = None
        self.hold_purpose = None
        self.created_at = now  # the booking was made now, not when the slot was held
        self.updated_at = now

    def hold_lives(self, now: datetime) -> bool:
        """A held row that still blocks its slot (an expired one never does)."""
        return (self.status == BookingStatus.HELD.value and self.expires_at is not None
                and self.expires_at > now)

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES

    @property
    def ics_uid(self) -> str:
        return f"booking-{self.id}@clinic-app"


#: Execution option that lets a query see holds (the hold and slot-search code only).
INCLUDE_HOLDS = "include_holds"


# Built once: this hook runs on every ORM SELECT of every request, and building the
# criterion and option each time cost about a millisecond per booking (bench/booking.py).
_NO_HOLDS = with_loader_criteria(Booking, Booking.status != BookingStatus.HELD.value,
                                 include_aliases=True)


def unfiltered(statement: Any) -> Any:
    """``statement`` (a prebuilt ORM select) run without the hold filter below: only for a
    statement that selects no booking entity, or only a row that cannot be a hold (a new
    booking). The filter is an option added per execution, so the statement is copied and
    its cache key computed afresh each time (20-130 us per statement, bench/booking.py)."""
    return statement.execution_options(**{INCLUDE_HOLDS: True})


@event.listens_for(Session, "do_orm_execute")
def _hide_holds(state: ORMExecuteState) -> None:
    """Every ORM SELECT of bookings leaves holds out unless it opts in (INCLUDE_HOLDS).

    One rule instead of a ``status <> 'held'`` in each appointment list, dashboard count,
    email planner and export: a hold is never an appointment.
    """
    if (state.is_select and not state.is_column_load
            and not state.execution_options.get(INCLUDE_HOLDS, False)):
        state.statement = state.statement.options(_NO_HOLDS)
