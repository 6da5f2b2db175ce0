"""Factories for the scheduling tests: a small clinic, API tokens, raw bookings."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from datetime import time
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

from clinic_app.extensions import db
from clinic_app.models import Booking
from clinic_app.models import Room
from clinic_app.models import Service
from clinic_app.models import Therapist
from clinic_app.models import User
from clinic_app.services.accounts import issue_api_token
from tests.factories import make_room
from tests.factories import make_service
from tests.factories import make_therapist
from tests.factories import make_user
from tests.factories import now_of

LONDON = ZoneInfo("Europe/London")
EVERY_DAY = {d: [(time(9), time(12)), (time(13), time(17))] for d in range(7)}


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


def make_clinic(app: Any, *, therapists: int = 2, rooms: int = 2, minutes: int = 60,
                before: int = 0, after: int = 15,
                hours: dict[int, list[tuple[time, time]]] | None = None) -> Clinic:
    """A small clinic; every therapist offers the service, every room suits it."""
    ts = [make_therapist(app, hours=hours) for _ in range(therapists)]
    rs = [make_room(app) for _ in range(rooms)]
    service = make_service(app, therapists=ts, rooms=rs, minutes=minutes, before=before,
                           after=after)
    return Clinic(ts, rs, service, make_user(app), make_user(app, role="admin"))


def local(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    """An aware datetime at a London wall-clock time."""
    return datetime(year, month, day, hour, minute, tzinfo=LONDON)


def token_for(app: Any, user: User) -> dict[str, str]:
    """An ``Authorization`` header for ``user``."""
    raw, _ = issue_api_token(db.session, user, now_of(app), 30)
    db.session.commit()
    return {"Authorization": f"Bearer {raw}"}


def raw_booking(app: Any, *, client: User, therapist: Therapist, room: Room, service: Service,
                start: datetime, status: str = "booked") -> Booking:
    """A booking written straight to the table (no checks): for set-up only."""
    start = start.astimezone(UTC)
    end = start + timedelta(minutes=service.duration_minutes)
    booking = Booking(
        client_id=client.id, therapist_id=therapist.id, room_id=room.id, service_id=service.id,
        start_at=start, end_at=end,
        blocked_start=start - timedelta(minutes=service.buffer_before_minutes),
        blocked_end=end + timedelta(minutes=service.buffer_after_minutes),
        status=status, price_cents=service.price_cents, created_at=now_of(app),
        updated_at=now_of(app),
    )
    db.session.add(booking)
    db.session.commit()
    return booking
