"""Demo data for the embedded default: a clinic, rooms, therapists, services, logins."""

from __future__ import annotations

from datetime import datetime
from datetime import time
from datetime import timedelta

from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy.orm import Session

from clinic_app.models.accounts import Role
from clinic_app.models.accounts import User
from clinic_app.models.schedule import Room
from clinic_app.models.schedule import Service
from clinic_app.models.schedule import Therapist
from clinic_app.models.schedule import WeeklyHours
from clinic_app.security import hash_password
from clinic_app.security import new_token
from clinic_app.services.settings import get_settings

DEMO_PASSWORD = "demo-clinic-2026"  # noqa: S105 - printed by `clinic up`, demo only
DEMO_LOGINS = {
    "password": DEMO_PASSWORD,
    "accounts": [
        ("admin", "admin@clinic.example"),
        ("therapist", "maya@clinic.example"),
        ("therapist", "tom@clinic.example"),
        ("therapist", "ines@clinic.example"),
        ("client", "client@clinic.example"),
    ],
}

THERAPISTS = [
    ("maya@clinic.example", "Maya Patel", "Neck, shoulder and jaw pain; 12 years of practice.",
     # Mon-Fri 09:00-17:00 with lunch 12:30-13:30
     {d: [(time(9), time(12, 30)), (time(13, 30), time(17))] for d in range(5)}),
    ("tom@clinic.example", "Tom Walsh", "Lower back, hips and sports injuries.",
     # Tue-Sat 10:00-18:00 with a break 14:00-14:30
     {d: [(time(10), time(14)), (time(14, 30), time(18))] for d in range(1, 6)}),
    ("ines@clinic.example", "Ines Moreau", "Headaches, forearm and hand pain; pregnancy massage.",
     # Mon, Wed, Thu 08:00-15:00 straight
     {d: [(time(8), time(15))] for d in (0, 2, 3)}),
]

SERVICES = [
    ("Trigger point therapy - 30 min", 30, 3500, False,
     "A focused session on one area, such as the neck or a shoulder."),
    ("Trigger point therapy - 60 min", 60, 6500, False,
     "The standard session: two or three related areas, with self-care advice."),
    ("Trigger point therapy - 90 min", 90, 9000, False,
     "An extended session for widespread or long-standing pain."),
    ("First visit with assessment - 75 min", 75, 8000, True,
     "History, assessment of posture and movement, and a first treatment."),
]


def is_empty(session: Session) -> bool:
    return not session.scalar(select(func.count()).select_from(User))


def _user(session: Session, email: str, name: str, role: str, now: datetime,
          password_hash: str) -> User:
    user = session.scalar(select(User).where(User.email == email))
    if user is None:
        user = User(email=email, name=name, role=role, password_hash=password_hash,
                    email_verified_at=now, consent_at=now, created_at=now)
        session.add(user)
        session.flush()
    return user


def seed(session: Session, now: datetime) -> bool:
    """Add whatever of the demo data is missing. Returns True if anything was added."""
    if session.scalar(select(User.id).where(User.email == "admin@clinic.example")):
        return False
    settings = get_settings(session)
    settings.name = "Trigger Point Clinic"
    settings.address = "12 Harbour Street, Bristol BS1 4QA"
    settings.phone = "0117 496 0000"
    pw = hash_password(DEMO_PASSWORD)
    _user(session, "admin@clinic.example", "Alex Admin", Role.ADMIN.value, now, pw)
    _user(session, "client@clinic.example", "Casey Client", Role.CLIENT.value, now, pw)

    rooms = []
    for name in ("Room 1", "Room 2"):
        room = session.scalar(select(Room).where(Room.name == name))
        if room is None:
            room = Room(name=name)
            session.add(room)
        rooms.append(room)
    session.flush()

    therapists = []
    # Hours apply from the Monday of the current week (local date is close enough here).
    start = (now - timedelta(days=now.weekday())).date()
    for email, name, bio, week in THERAPISTS:
        user = _user(session, email, name, Role.THERAPIST.value, now, pw)
        therapist = session.scalar(select(Therapist).where(Therapist.user_id == user.id))
        if therapist is None:
            therapist = Therapist(user_id=user.id, bio=bio, feed_token=new_token())
            session.add(therapist)
            session.flush()
            for weekday, ranges in week.items():
                for begin, end in ranges:
                    session.add(WeeklyHours(therapist_id=therapist.id, weekday=weekday,
                                            start_time=begin, end_time=end,
                                            effective_from=start))
        therapists.append(therapist)

    for name, minutes, price, first, description in SERVICES:
        service = session.scalar(select(Service).where(Service.name == name))
        if service is None:
            service = Service(name=name, duration_minutes=minutes, price_cents=price,
                              is_first_visit=first, description=description,
                              buffer_before_minutes=0, buffer_after_minutes=15)
            service.therapists = list(therapists)
            service.rooms = list(rooms)
            session.add(service)
    session.flush()
    return True
