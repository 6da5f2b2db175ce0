"""What the clinic offers and when: settings, closures, rooms, services, therapists, hours."""

from __future__ import annotations

from datetime import date
from datetime import datetime
from datetime import time

from sqlalchemy import Boolean
from sqlalchemy import CheckConstraint
from sqlalchemy import Column
from sqlalchemy import Date
from sqlalchemy import ForeignKey
from sqlalchemy import Integer
from sqlalchemy import String
from sqlalchemy import Table
from sqlalchemy import Text
from sqlalchemy import Time
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column
from sqlalchemy.orm import relationship

from clinic_app.db import Base
from clinic_app.db import UTCDateTime
from clinic_app.models.accounts import User

service_therapists = Table(
    "service_therapists",
    Base.metadata,
    Column("service_id", ForeignKey("services.id", ondelete="CASCADE"), primary_key=True),
    Column("therapist_id", ForeignKey("therapists.id", ondelete="CASCADE"), primary_key=True),
)

service_rooms = Table(
    "service_rooms",
    Base.metadata,
    Column("service_id", ForeignKey("services.id", ondelete="CASCADE"), primary_key=True),
    Column("room_id", ForeignKey("rooms.id", ondelete="CASCADE"), primary_key=True),
)


class ClinicSettings(Base):
    """The clinic's one row of admin-editable settings and policy."""

    __tablename__ = "clinic_settings"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120), default="Trigger Point Clinic")
    address: Mapped[str] = mapped_column(String(255), default="")
    phone: Mapped[str] = mapped_column(String(40), default="")
    timezone: Mapped[str] = mapped_column(String(64), default="Europe/London")
    min_notice_minutes: Mapped[int] = mapped_column(Integer, default=240)
    horizon_days: Mapped[int] = mapped_column(Integer, default=90)
    slot_step_minutes: Mapped[int] = mapped_column(Integer, default=15)
    cancel_cutoff_hours: Mapped[int] = mapped_column(Integer, default=24)
    max_upcoming_per_client: Mapped[int] = mapped_column(Integer, default=6)
    # Comma-separated hours before the start, e.g. "48,24".
    reminder_offsets_hours: Mapped[str] = mapped_column(String(64), default="48,24")
    retention_years: Mapped[int] = mapped_column(Integer, default=8)
    # How long a held slot stays reserved (sign-up at the confirm step), issue 12.1.
    hold_minutes: Mapped[int] = mapped_column(Integer, default=10)
    # How long a freed slot offered to the waitlist stays held for the client, issue 13.2.
    offer_minutes: Mapped[int] = mapped_column(Integer, default=30)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    def reminder_offsets(self) -> list[int]:
        """The reminder offsets in hours, largest first."""
        values = {int(p) for p in self.reminder_offsets_hours.split(",") if p.strip()}
        return sorted(values, reverse=True)


class Closure(Base):
    """Days the whole clinic is shut (inclusive local dates)."""

    __tablename__ = "closures"
    __table_args__ = (CheckConstraint("end_date >= start_date", name="dates_ordered"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    start_date: Mapped[date] = mapped_column(Date, index=True)
    end_date: Mapped[date] = mapped_column(Date)
    reason: Mapped[str] = mapped_column(String(120), default="")


class Room(Base):
    """A treatment room; every booking holds one."""

    __tablename__ = "rooms"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(80), unique=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class Therapist(Base):
    """The bookable side of a therapist's user account."""

    __tablename__ = "therapists"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), unique=True)
    bio: Mapped[str] = mapped_column(Text, default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Capability URL for calendar apps; regenerating it revokes the old one.
    feed_token: Mapped[str] = mapped_column(String(64), unique=True)

    user: Mapped[User] = relationship(back_populates="therapist")
    services: Mapped[list[Service]] = relationship(
        secondary=service_therapists, back_populates="therapists"
    )

    @property
    def name(self) -> str:
        return self.user.name


class Service(Base):
    """A bookable treatment."""

    __tablename__ = "services"
    __table_args__ = (
        CheckConstraint("duration_minutes > 0", name="duration_positive"),
        CheckConstraint("buffer_before_minutes >= 0 AND buffer_after_minutes >= 0", name="buffers"),
        CheckConstraint("price_cents >= 0", name="price"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    duration_minutes: Mapped[int] = mapped_column(Integer)
    buffer_before_minutes: Mapped[int] = mapped_column(Integer, default=0)
    buffer_after_minutes: Mapped[int] = mapped_column(Integer, default=15)
    price_cents: Mapped[int] = mapped_column(Integer, default=0)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    is_first_visit: Mapped[bool] = mapped_column(Boolean, default=False)

    therapists: Mapped[list[Therapist]] = relationship(
        secondary=service_therapists, back_populates="services"
    )
    rooms: Mapped[list[Room]] = relationship(secondary=service_rooms)

    @property
    def price(self) -> str:
        return f"{self.price_cents // 100}.{self.price_cents % 100:02d}"


class WeeklyHours(Base):
    """One working range on a weekday, local wall-clock, effective from a date.

    The rows sharing the greatest ``effective_from`` not after a date are the
    therapist's week on that date; a new set supersedes the old one.
    """

    __tablename__ = "weekly_hours"
    __table_args__ = (
        CheckConstraint("weekday >= 0 AND weekday <= 6", name="weekday"),
        CheckConstraint("end_time > start_time", name="times_ordered"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    therapist_id: Mapped[int] = mapped_column(
        ForeignKey("therapists.id", ondelete="CASCADE"), index=True
    )
    weekday: Mapped[int] = mapped_column(Integer)
    start_time: Mapped[time] = mapped_column(Time)
    end_time: Mapped[time] = mapped_column(Time)
    effective_from: Mapped[date] = mapped_column(Date)


class HoursOverride(Base):
    """Time off or different hours on a date range (inclusive, local)."""

    __tablename__ = "hours_overrides"
    __table_args__ = (
        CheckConstraint("end_date >= start_date", name="dates_ordered"),
        CheckConstraint("kind IN ('off', 'hours')", name="kind"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    therapist_id: Mapped[int] = mapped_column(
        ForeignKey("therapists.id", ondelete="CASCADE"), index=True
    )
    start_date: Mapped[date] = mapped_column(Date)
    end_date: Mapped[date] = mapped_column(Date)
    kind: Mapped[str] = mapped_column(String(8), default="off")
    start_time: Mapped[time | None] = mapped_column(Time)  # None with kind=off: whole days
    end_time: Mapped[time | None] = mapped_column(Time)
    reason: Mapped[str] = mapped_column(String(120), default="")
