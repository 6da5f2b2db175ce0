"""Factory helpers for calendar and concurrency tests (bookings written straight to the DB)."""

from __future__ import annotations

from datetime import datetime
from datetime import timedelta
from typing import Any

from clinic_app.extensions import db
from clinic_app.models import Booking
from clinic_app.models import Room
from clinic_app.models import Service
from clinic_app.models import Therapist
from clinic_app.models import User
from tests.factories import now_of


def make_booking(app: Any, *, client: User, therapist: Therapist, service: Service, room: Room,
                 start: datetime, status: str = "booked", sequence: int = 0) -> Booking:
    """A booking row with its blocked interval widened by the service's buffers."""
    end = start + timedelta(minutes=service.duration_minutes)
    booking = Booking(
        client_id=client.id, therapist_id=therapist.id, service_id=service.id, room_id=room.id,
        start_at=start, end_at=end,
        blocked_start=start - timedelta(minutes=service.buffer_before_minutes),
        blocked_end=end + timedelta(minutes=service.buffer_after_minutes),
        status=status, sequence=sequence, price_cents=service.price_cents,
        created_at=now_of(app), updated_at=now_of(app),
        cancelled_at=now_of(app) if status == "cancelled" else None,
    )
    db.session.add(booking)
    db.session.commit()
    return booking
