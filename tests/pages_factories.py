"""Set-up helpers for the page tests (integration and browser)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from datetime import timedelta
from typing import Any

from clinic_app.extensions import db
from clinic_app.models import Booking
from clinic_app.models import Room
from clinic_app.models import Service
from clinic_app.models import Therapist
from clinic_app.models import User
from tests.factories import PASSWORD
from tests.factories import make_room
from tests.factories import make_service
from tests.factories import make_therapist
from tests.factories import make_user
from tests.factories import now_of


@dataclass
class Clinic:
    admin: User
    therapist: Therapist
    other_therapist: Therapist
    room: Room
    service: Service
    client: User
    other_client: User


def make_clinic(app: Any) -> Clinic:
    """An admin, two therapists (Mon-Sat 09-12, 13-17), a room, a 60-min service, two clients."""
    admin = make_user(app, role="admin", name="Ada Admin")
    therapist = make_therapist(app, name="Maya Therapist")
    other = make_therapist(app, name="Tom Therapist")
    room = make_room(app, "Room A")
    service = make_service(app, therapists=[therapist, other], rooms=[room],
                           name="Trigger point 60", price_cents=6500)
    client = make_user(app, name="Casey Client")
    other_client = make_user(app, name="Olive Other")
    return Clinic(admin, therapist, other, room, service, client, other_client)


def make_booking(app: Any, *, client: User, service: Service, therapist: Therapist,
                 room: Room, start: datetime, status: str = "booked") -> Booking:
    """A booking written straight to the database."""
    end = start + timedelta(minutes=service.duration_minutes)
    booking = Booking(client_id=client.id, therapist_id=therapist.id, service_id=service.id,
                      room_id=room.id, start_at=start, end_at=end, blocked_start=start,
                      blocked_end=end + timedelta(minutes=service.buffer_after_minutes),
                      status=status, price_cents=service.price_cents, created_at=now_of(app),
                      updated_at=now_of(app), late_cancel=False, cancel_reason="", sequence=0)
    db.session.add(booking)
    db.session.commit()
    return booking


def login(client: Any, user: User) -> None:
    """Log the test client in as ``user`` (the factories' password)."""
    client.post("/logout")
    response = client.post("/login", data={"email": user.email, "password": PASSWORD})
    assert response.status_code == 302, response.data[:500]
