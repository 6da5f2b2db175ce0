"""Treatment continuity: intake, courses, session records, check-ins, recommendations.

These tables hold health data. Staff reads go through services that write the
audit log; nothing here is ever copied into the log itself.
"""

from __future__ import annotations

from datetime import date
from datetime import datetime
from typing import Any

from sqlalchemy import JSON
from sqlalchemy import Boolean
from sqlalchemy import CheckConstraint
from sqlalchemy import Date
from sqlalchemy import ForeignKey
from sqlalchemy import Integer
from sqlalchemy import String
from sqlalchemy import Text
from sqlalchemy import UniqueConstraint
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column
from sqlalchemy.orm import relationship

from clinic_app.db import Base
from clinic_app.db import UTCDateTime
from clinic_app.models.booking import Booking


class Intake(Base):
    """A client's health intake answers and the screening flags derived from them."""

    __tablename__ = "intakes"

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("users.id"), unique=True)
    answers: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    flags: Mapped[list[str]] = mapped_column(JSON, default=list)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # "confirm first" flags block self-booking until a therapist confirms.
    confirmed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Course(Base):
    """A course of treatment; sessions are numbered within it."""

    __tablename__ = "courses"

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    started_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    goal: Mapped[str] = mapped_column(String(16), default="chronic")
    injury_date: Mapped[date | None] = mapped_column(Date)


class SessionRecord(Base):
    """What the therapist did in a completed booking."""

    __tablename__ = "session_records"
    __table_args__ = (
        CheckConstraint("intensity >= 0 AND intensity <= 10", name="intensity"),
        CheckConstraint("session_number >= 1", name="session_number"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    booking_id: Mapped[int] = mapped_column(ForeignKey("bookings.id"), unique=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("courses.id"), index=True)
    session_number: Mapped[int] = mapped_column(Integer)
    regions: Mapped[list[str]] = mapped_column(JSON, default=list)
    muscles: Mapped[list[str]] = mapped_column(JSON, default=list)
    techniques: Mapped[list[str]] = mapped_column(JSON, default=list)
    intensity: Mapped[int] = mapped_column(Integer)
    notes: Mapped[str] = mapped_column(Text, default="")
    goal: Mapped[str] = mapped_column(String(16))
    injury_date: Mapped[date | None] = mapped_column(Date)
    progress: Mapped[str | None] = mapped_column(String(8))
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())

    booking: Mapped[Booking] = relationship()
    course: Mapped[Course] = relationship()
    amendments: Mapped[list[SessionAmendment]] = relationship(
        order_by="SessionAmendment.created_at"
    )


class SessionAmendment(Base):
    """An addition to a session record after its 24 h edit window."""

    __tablename__ = "session_amendments"

    id: Mapped[int] = mapped_column(primary_key=True)
    session_record_id: Mapped[int] = mapped_column(ForeignKey("session_records.id"), index=True)
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    text: Mapped[str] = mapped_column(Text)


class CheckIn(Base):
    """The client's answer to the +24 h (or +72 h) soreness check-in."""

    __tablename__ = "check_ins"
    __table_args__ = (
        CheckConstraint("soreness IS NULL OR (soreness >= 0 AND soreness <= 10)", name="soreness"),
        # One answer per booking and kind, even for two submissions racing each other.
        UniqueConstraint("booking_id", "kind", name="uq_check_ins_booking_kind"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    booking_id: Mapped[int] = mapped_column(ForeignKey("bookings.id"), index=True)
    kind: Mapped[str] = mapped_column(String(8), default="24h")  # 24h or 72h
    soreness: Mapped[int | None] = mapped_column(Integer)
    red_flags: Mapped[list[str]] = mapped_column(JSON, default=list)
    progress: Mapped[str | None] = mapped_column(String(8))
    still_sore: Mapped[bool | None] = mapped_column(Boolean)
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ProblemReport(Base):
    """A warning sign the client reported after a session, outside the one-time check-ins
    (several per booking are allowed: each alerts the therapist and pauses booking)."""

    __tablename__ = "problem_reports"

    id: Mapped[int] = mapped_column(primary_key=True)
    booking_id: Mapped[int] = mapped_column(ForeignKey("bookings.id"), index=True)
    red_flags: Mapped[list[str]] = mapped_column(JSON, default=list)
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Recommendation(Base):
    """A follow-up window, computed by the rules or set by a therapist (history kept)."""

    __tablename__ = "recommendations"

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    booking_id: Mapped[int] = mapped_column(ForeignKey("bookings.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    earliest: Mapped[date | None] = mapped_column(Date)
    ideal: Mapped[date | None] = mapped_column(Date)
    latest: Mapped[date | None] = mapped_column(Date)
    action: Mapped[str] = mapped_column(String(20))
    intensity_advice: Mapped[str | None] = mapped_column(String(20))
    reasons: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    source: Mapped[str] = mapped_column(String(10), default="rules")  # rules or override
    override_reason: Mapped[str] = mapped_column(Text, default="")
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
