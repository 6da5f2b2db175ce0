"""Booking emails, written to the outbox in the caller's transaction.

The booking services call these three functions on every change; they decide
which messages (confirmation, reminders, aftercare, check-ins...) to enqueue or
retire. Interface fixed for the booking layer; filled by the notifications work.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from clinic_app.models.booking import Booking


def booking_created(session: Session, booking: Booking, now: datetime) -> None:
    """A booking was made (status booked or pending)."""


def booking_changed(session: Session, booking: Booking, old_start: datetime,
                    now: datetime) -> None:
    """A booking moved (rescheduled) or changed therapist/room; ``sequence`` already raised."""


def booking_cancelled(session: Session, booking: Booking, now: datetime) -> None:
    """A booking was cancelled (``late_cancel`` set); ``sequence`` already raised."""


def booking_completed(session: Session, booking: Booking, now: datetime) -> None:
    """A booking was completed (the session record exists)."""
