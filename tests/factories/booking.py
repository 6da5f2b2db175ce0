"""Bookings: the one ``make_booking``, and a small clinic for the scheduling tests."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from datetime import time
from datetime import timedelta
from typing import Any
from typing import Protocol

from clinic_app.extensions import db
from clinic_app.models import Booking
from clinic_app.models import Room
from clinic_app.models import Service
from clinic_app.models import Therapist
from clinic_app.models import User
from clinic_app.scheduling.availability import Slot
from clinic_app.services import booking as booking_service
from clinic_app.services.availability import load_service
from clinic_app.services.notify import events as notifications
from tests.factories.accounts import make_user
from tests.factories.accounts import now_of
from tests.factories.schedule import make_room
from tests.factories.schedule import make_service
from tests.factories.schedule import make_therapist


class ClinicLike(Protocol):
    """What ``make_booking`` takes its defaults from (every ``Clinic`` of the factories)."""

    @property
    def therapist(self) -> Therapist: ...
    @property
    def room(self) -> Room: ...
    @property
    def service(self) -> Service: ...
    @property
    def client(self) -> User: ...


def make_booking(app: Any, clinic: ClinicLike | None = None, start: datetime | None = None, *,
                 client: User | None = None, therapist: Therapist | None = None,
                 service: Service | None = None, room: Room | None = None,
                 status: str = "booked", sequence: int = 0, notify: bool = False) -> Booking:
    """A booking at ``start``, without the availability checks (past times, any hours), for
    set-up; anything not given comes from ``clinic``.

    The booking service places it (``booking._place``: times, room, therapist and the blocked
    interval widened by the service's buffers, flushed in a SAVEPOINT), so the factory cannot
    drift from what ``book`` writes. ``notify``: also plan its messages as ``book`` does
    (confirmations and reminders), for the notification tests.
    """
    assert start is not None, "make_booking needs a start"
    client = client or clinic.client  # type: ignore[union-attr]
    therapist = therapist or clinic.therapist  # type: ignore[union-attr]
    service = service or clinic.service  # type: ignore[union-attr]
    room = room or clinic.room  # type: ignore[union-attr]
    now = now_of(app)
    start = start.astimezone(UTC)
    info = load_service(db.session, service.id)
    booking = Booking(
        client_id=client.id, service_id=service.id, status=status, sequence=sequence,
        price_cents=service.price_cents, late_cancel=False, cancel_reason="",
        created_at=now, cancelled_at=now if status == "cancelled" else None,
    )
    slot = Slot(start=start, end=start + timedelta(minutes=info.duration_minutes),
                therapist_id=therapist.id, room_id=room.id)
    placed = booking_service._place(db.session, booking, slot, info, now)
    assert placed, "the database refused an overlapping booking"
    if notify:
        notifications.booking_created(db.session, booking, now)
    db.session.commit()
    return booking


#: The name the scheduling tests used for ``make_booking`` (a booking written for set-up).
raw_booking = make_booking


@dataclass
class Clinic:
    """Two therapists (Mon-Sat 09-12, 13-17), two rooms, a 60-minute service, a client."""

    therapists: list[Therapist]
    rooms: list[Room]
    service: Service
    client: User
    admin: User

    @property
    def t1(self) -> Therapist:
        return self.therapists[0]

    @property
    def t2(self) -> Therapist:
        return self.therapists[1]

    @property
    def therapist(self) -> Therapist:
        return self.therapists[0]

    @property
    def room(self) -> Room:
        return self.rooms[0]


def make_clinic(app: Any, *, therapists: int = 2, rooms: int = 2, minutes: int = 60,
                before: int = 0, after: int = 15,
                hours: dict[int, list[tuple[time, time]]] | None = None) -> Clinic:
    """A small clinic; every therapist offers the service, every room suits it."""
    ts = [make_therapist(app, hours=hours) for _ in range(therapists)]
    rs = [make_room(app) for _ in range(rooms)]
    service = make_service(app, therapists=ts, rooms=rs, minutes=minutes, before=before,
                           after=after)
    return Clinic(ts, rs, service, make_user(app), make_user(app, role="admin"))
