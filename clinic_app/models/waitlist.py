"""Waitlist entries: a client waiting for a freed slot (issue 13, item 1).

An entry names a service, one therapist or any (``therapist_id`` NULL), a date range in the
clinic's zone (at most the booking horizon ahead) and optional parts of the day. Its status
moves waiting -> left (the client left it), expired (its range ended) or booked (an offer was
accepted). Ranking the entries for a freed slot is pure: ``clinic_app.scheduling.waitlist``.
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
from sqlalchemy import String
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column
from sqlalchemy.orm import relationship

from clinic_app.db import Base
from clinic_app.db import UTCDateTime
from clinic_app.models.accounts import User
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
