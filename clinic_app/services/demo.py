"""Demo data for the embedded default: a clinic, rooms, therapists, services, logins, and a
course of treatment in progress for the demo client, so that a newcomer sees the product at
once: past sessions with records and check-ins (the soreness trend), the next-session window,
a check-in email waiting in the dev mailbox, and bookings over the coming week for every
therapist.

Everything is made through the real services (book, complete, check in), at the moments they
would have happened, relative to the clock's today: the demo is what the app would really show
after those weeks.
"""

from __future__ import annotations

from datetime import UTC
from datetime import date
from datetime import datetime
from datetime import time
from datetime import timedelta

from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy.orm import Session

from clinic_app.models.accounts import Role
from clinic_app.models.accounts import User
from clinic_app.models.booking import Booking
from clinic_app.models.outbox import OutboxMessage
from clinic_app.models.outbox import OutboxStatus
from clinic_app.models.schedule import Room
from clinic_app.models.schedule import Service
from clinic_app.models.schedule import Therapist
from clinic_app.models.schedule import WeeklyHours
from clinic_app.security import hash_password
from clinic_app.security import new_token
from clinic_app.services import booking as booking_service
from clinic_app.services import care
from clinic_app.services.availability import search_slots
from clinic_app.services.settings import clinic_zone
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
DEMO_CLIENT = "client@clinic.example"
# Other clients whose bookings fill the coming week (they cannot log in: no password set).
OTHER_CLIENTS = [("jordan@clinic.example", "Jordan Lee"), ("sam@clinic.example", "Sam Okafor"),
                 ("robin@clinic.example", "Robin Hart"), ("priya@clinic.example", "Priya Shah")]
# The demo client's course with Maya: (days before today, intensity, 24 h soreness, progress).
# The last session (on the latest working day whose 24 h check-in is due) has no check-in
# yet: its check-in email is waiting in the dev mailbox.
COURSE = [(24, 7, 7, None), (16, 6, 5, "better"), (9, 6, 3, "better"), (1, 5, None, None)]
HISTORY_WEEKS = 6  # weekly hours start this long before today, so the history fits in them

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
    # Hours apply from a Monday some weeks back, so that the demo history falls inside them.
    start = (now - timedelta(days=now.weekday(), weeks=HISTORY_WEEKS)).date()
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
    seed_course(session, now)
    return True


def _free_start(session: Session, service_id: int, therapist_id: int, day: date,
                booked_at: datetime, after: time) -> datetime | None:
    """The therapist's first free start on ``day`` at or after ``after`` (local), as the
    booking pages would have offered it at ``booked_at``."""
    zone, slots = search_slots(session, service_id=service_id, date_from=day, date_to=day,
                               therapist_id=therapist_id, now=booked_at)
    return next((s.start for s in slots if s.start.astimezone(zone).time() >= after), None)


def seed_course(session: Session, now: datetime) -> bool:
    """Give the demo client a course in progress and fill the coming week; nothing if the
    demo client already has bookings (idempotent). Returns True if anything was added."""
    client = session.scalar(select(User).where(User.email == DEMO_CLIENT))
    maya_user = session.scalar(select(User).where(User.email == THERAPISTS[0][0]))
    service = session.scalar(select(Service).where(Service.name == SERVICES[1][0]))
    if client is None or maya_user is None or service is None:
        return False
    if session.scalar(select(Booking.id).where(Booking.client_id == client.id).limit(1)):
        return False
    maya = session.scalar(select(Therapist).where(Therapist.user_id == maya_user.id))
    assert maya is not None
    zone = clinic_zone(session)
    today = now.astimezone(zone).date()
    care.save_intake(session, client, {"details": "Stiff neck and right shoulder from desk "
                                       "work; headaches most afternoons."},
                     now - timedelta(days=COURSE[0][0] + 3))
    for days_ago, intensity, soreness, progress in COURSE:
        day = today - timedelta(days=days_ago)
        while day.weekday() >= 5 or (soreness is None and datetime.combine(
                day, time(11, 30), tzinfo=zone) + timedelta(days=1) > now):
            # Maya works Monday to Friday; the last session's 24 h check-in must already be
            # due (it is sent only within three days of that, so it waits in the mailbox).
            day -= timedelta(days=1)
        booked_at = datetime.combine(day - timedelta(days=3), time(9), tzinfo=UTC)
        start = _free_start(session, service.id, maya.id, day, booked_at, time(10))
        if start is None:
            continue
        booking = booking_service.book(session, client=client, service_id=service.id,
                                       start=start, now=booked_at, therapist_id=maya.id)
        ended = booking.end_at + timedelta(minutes=10)
        care.complete_session(session, booking, actor=maya_user, now=ended, record={
            "intensity": intensity, "goal": "chronic",
            "regions": ["neck", "upper back", "right shoulder"],
            "muscles": ["upper trapezius", "levator scapulae"],
            "techniques": ["ischaemic compression", "stretching"],
            "notes": "Upper trapezius and levator scapulae; homework: doorway stretch."})
        if soreness is not None:
            care.submit_checkin(session, booking, kind="24h", soreness=soreness,
                                red_flags=[], progress=progress,
                                now=booking.end_at + timedelta(hours=25))
    _mark_past_mail_sent(session, now)
    _fill_coming_week(session, now, today)
    session.flush()
    return True


def _mark_past_mail_sent(session: Session, now: datetime) -> None:
    """The history's confirmations and reminders were sent at the time: record them so (the
    dev mailbox then holds what a client would have now, not weeks of old mail at once). The
    check-in email of the last session, due but not answered, stays to be delivered."""
    rows = session.scalars(select(OutboxMessage).where(
        OutboxMessage.status == OutboxStatus.PENDING.value, OutboxMessage.due_at < now)).all()
    latest_checkin = max((r for r in rows if r.kind == "checkin_24h"),
                         key=lambda r: r.due_at, default=None)
    for row in rows:
        if row is not latest_checkin:
            row.status = OutboxStatus.SENT.value
            row.sent_at = row.due_at


def _fill_coming_week(session: Session, now: datetime, today: date) -> None:
    """Two or three bookings for every therapist over the next seven days, for other
    clients, booked now through the booking service (so the confirmations go out too)."""
    pw = hash_password(new_token())  # no usable password: these clients do not log in
    clients = [_user(session, email, name, Role.CLIENT.value, now, pw)
               for email, name in OTHER_CLIENTS]
    services = session.scalars(select(Service).where(Service.is_first_visit.is_(False))
                               .order_by(Service.id)).all()
    therapists = session.scalars(select(Therapist).order_by(Therapist.id)).all()
    turn = 0
    for therapist in therapists:
        made = 0
        for offset in range(1, 8):
            if made == 3:
                break
            day = today + timedelta(days=offset)
            service = services[turn % len(services)]
            start = _free_start(session, service.id, therapist.id, day, now,
                                time(9 + (turn * 2) % 6))
            if start is None:
                continue
            booking_service.book(session, client=clients[turn % len(clients)],
                                 service_id=service.id, start=start, now=now,
                                 therapist_id=therapist.id)
            turn += 1
            made += 1
