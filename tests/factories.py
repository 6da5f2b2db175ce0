"""Factory helpers that write straight to the database (fast set-up for tests)."""

from __future__ import annotations

from datetime import date
from datetime import datetime
from datetime import time
from functools import cache
from itertools import count
from typing import Any

from clinic_app.extensions import db
from clinic_app.models import Room
from clinic_app.models import Service
from clinic_app.models import Therapist
from clinic_app.models import User
from clinic_app.models import WeeklyHours
from clinic_app.security import hash_password
from clinic_app.security import new_token

PASSWORD = "correct-horse-battery"
_seq = count(1)


@cache
def _password_hash() -> str:
    """``PASSWORD`` hashed once, inside the app (so with the cheap testing parameters)."""
    return hash_password(PASSWORD)


def now_of(app: Any) -> datetime:
    return app.extensions["clock"].now()


def make_user(app: Any, *, role: str = "client", email: str | None = None,
              name: str | None = None, verified: bool = True, password_hash: str | None = "",
              **extra: Any) -> User:
    """A user with the password ``PASSWORD`` (``password_hash=None``: no password)."""
    n = next(_seq)
    user = User(
        email=email or f"user{n}@example.com",
        name=name or f"User {n}",
        role=role,
        password_hash=_password_hash() if password_hash == "" else password_hash,
        email_verified_at=now_of(app) if verified else None,
        consent_at=now_of(app),
        created_at=now_of(app),
        **extra,
    )
    db.session.add(user)
    db.session.commit()
    return user


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
    room = Room(name=name or f"Room {next(_seq)}")
    db.session.add(room)
    db.session.commit()
    return room


def make_service(app: Any, *, therapists: list[Therapist], rooms: list[Room],
                 name: str | None = None, minutes: int = 60, before: int = 0, after: int = 15,
                 price_cents: int = 6500, active: bool = True,
                 first_visit: bool = False) -> Service:
    service = Service(name=name or f"Service {next(_seq)}", duration_minutes=minutes,
                      buffer_before_minutes=before, buffer_after_minutes=after,
                      price_cents=price_cents, active=active, is_first_visit=first_visit)
    service.therapists = list(therapists)
    service.rooms = list(rooms)
    db.session.add(service)
    db.session.commit()
    return service
