"""The clinic's schedule: therapists with weekly hours, rooms, services; London times."""

from __future__ import annotations

from datetime import date
from datetime import datetime
from datetime import time
from typing import Any
from zoneinfo import ZoneInfo

from clinic_app.extensions import db
from clinic_app.models import Room
from clinic_app.models import Service
from clinic_app.models import Therapist
from clinic_app.models import WeeklyHours
from clinic_app.security import new_token
from tests.factories.accounts import make_user
from tests.factories.accounts import next_number

LONDON = ZoneInfo("Europe/London")
EVERY_DAY = {d: [(time(9), time(12)), (time(13), time(17))] for d in range(7)}


def local(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    """An aware datetime at a London wall-clock time."""
    return datetime(year, month, day, hour, minute, tzinfo=LONDON)


def make_therapist(app: Any, *, name: str | None = None, email: str | None = None,
                   hours: dict[int, list[tuple[time, time]]] | None = None,
                   effective_from: date = date(2026, 1, 1)) -> Therapist:
    """A therapist (default: Mon-Sat 09:00-17:00 with a 12:00-13:00 break)."""
    user = make_user(app, role="therapist", name=name, email=email)
    therapist = Therapist(user_id=user.id, feed_token=new_token())
    db.session.add(therapist)
    db.session.flush()
    if hours is None:
        hours = {d: [(time(9), time(12)), (time(13), time(17))] for d in range(6)}
    for weekday, ranges in hours.items():
        for start, end in ranges:
            db.session.add(WeeklyHours(therapist_id=therapist.id, weekday=weekday,
                                       start_time=start, end_time=end,
                                       effective_from=effective_from))
    db.session.commit()
    return therapist


def make_room(app: Any, name: str | None = None) -> Room:
    room = Room(name=name or f"Room {next_number()}")
    db.session.add(room)
    db.session.commit()
    return room


def make_service(app: Any, *, therapists: list[Therapist], rooms: list[Room],
                 name: str | None = None, minutes: int = 60, before: int = 0, after: int = 15,
                 price_cents: int = 6500, active: bool = True,
                 first_visit: bool = False) -> Service:
    service = Service(name=name or f"Service {next_number()}", duration_minutes=minutes,
                      buffer_before_minutes=before, buffer_after_minutes=after,
                      price_cents=price_cents, active=active, is_first_visit=first_visit)
    service.therapists = list(therapists)
    service.rooms = list(rooms)
    db.session.add(service)
    db.session.commit()
    return service
