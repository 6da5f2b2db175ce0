"""Helpers for the notification tests: bookings written straight to the database (with
the same notification calls the booking services make), a frozen-clock runner for the
worker's jobs, and a real SMTP sink (aiosmtpd) that counts Message-IDs."""

from __future__ import annotations

import contextvars
import email
import email.policy
import socket
import threading
from collections import Counter
from dataclasses import dataclass
from datetime import date
from datetime import datetime
from datetime import timedelta
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from sqlalchemy import select

from clinic_app.extensions import db
from clinic_app.models import Booking
from clinic_app.models import CheckIn
from clinic_app.models import OutboxMessage
from clinic_app.models import Recommendation
from clinic_app.models import Room
from clinic_app.models import Service
from clinic_app.models import Therapist
from clinic_app.models import User
from clinic_app.services.notify import events as notifications
from tests.factories import make_room
from tests.factories import make_service
from tests.factories import make_therapist
from tests.factories import make_user


@dataclass
class Clinic:
    therapist: Therapist
    room: Room
    service: Service
    client: User


def make_clinic(app: Any, *, client_email: str = "client@example.com") -> Clinic:
    """One therapist, one room, one 60-minute service and one client."""
    therapist = make_therapist(app, name="Maya Patel", email="maya@example.com")
    room = make_room(app, "Room A")
    service = make_service(app, therapists=[therapist], rooms=[room], name="Trigger point 60")
    client = make_user(app, email=client_email, name="Casey Client")
    return Clinic(therapist, room, service, client)


def now_of(app: Any) -> datetime:
    return app.extensions["clock"].now()


def make_booking(app: Any, clinic: Clinic, start: datetime, *, status: str = "booked",
                 client: User | None = None, minutes: int = 60) -> Booking:
    """A booking as the booking service would write it, with ``booking_created``."""
    now = now_of(app)
    end = start + timedelta(minutes=minutes)
    booking = Booking(
        client_id=(client or clinic.client).id, therapist_id=clinic.therapist.id,
        service_id=clinic.service.id, room_id=clinic.room.id, start_at=start, end_at=end,
        blocked_start=start, blocked_end=end + timedelta(minutes=15), status=status,
        sequence=0, created_at=now, updated_at=now,
    )
    db.session.add(booking)
    db.session.flush()
    notifications.booking_created(db.session, booking, now)
    db.session.commit()
    return booking


def cancel(app: Any, booking: Booking, *, late: bool = False) -> None:
    now = now_of(app)
    booking.status = "cancelled"
    booking.late_cancel = late
    booking.cancelled_at = now
    booking.sequence += 1
    booking.updated_at = now
    db.session.flush()
    notifications.booking_cancelled(db.session, booking, now)
    db.session.commit()


def move(app: Any, booking: Booking, new_start: datetime) -> None:
    now = now_of(app)
    old_start = booking.start_at
    length = booking.end_at - booking.start_at
    booking.start_at, booking.end_at = new_start, new_start + length
    booking.blocked_start, booking.blocked_end = new_start, new_start + length + timedelta(
        minutes=15)
    booking.sequence += 1
    booking.updated_at = now
    db.session.flush()
    notifications.booking_changed(db.session, booking, old_start, now)
    db.session.commit()


def complete(app: Any, booking: Booking) -> None:
    booking.status = "completed"
    booking.updated_at = now_of(app)
    db.session.flush()
    notifications.booking_completed(db.session, booking, now_of(app))
    db.session.commit()


def add_checkin(app: Any, booking: Booking, soreness: int | None, kind: str = "24h") -> CheckIn:
    row = CheckIn(booking_id=booking.id, kind=kind, soreness=soreness, red_flags=[],
                  submitted_at=now_of(app))
    db.session.add(row)
    db.session.commit()
    return row


def add_recommendation(app: Any, booking: Booking, *, earliest: date, ideal: date,
                       latest: date, action: str = "book") -> Recommendation:
    row = Recommendation(client_id=booking.client_id, booking_id=booking.id,
                         created_at=now_of(app), earliest=earliest, ideal=ideal, latest=latest,
                         action=action, reasons=[])
    db.session.add(row)
    db.session.commit()
    return row


def run_job(func: Any, app: Any) -> Any:
    """Run a worker job as the worker does (its own app context), after committing ours."""
    db.session.commit()
    result = contextvars.Context().run(func, app)
    db.session.expire_all()
    return result


def rows(kind: str | None = None) -> list[OutboxMessage]:
    stmt = select(OutboxMessage).order_by(OutboxMessage.id)
    if kind:
        stmt = stmt.where(OutboxMessage.kind == kind)
    return list(db.session.scalars(stmt))


class Sink:
    """An SMTP server's mail store: every accepted message, counted by Message-ID.

    ``hold_at``: when the n-th message arrives (before it is accepted), call
    ``on_hold(message_id)`` in a thread and accept it only if that returns True.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.messages: list[EmailMessage] = []
        self.reject_with: str | None = None
        self.hold_at: int | None = None
        self.on_hold: Any = None
        self.seen = 0

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd API
        import asyncio

        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        if self.reject_with:
            return self.reject_with
        with self.lock:
            self.seen += 1
            hold = self.hold_at is not None and self.seen == self.hold_at
        if hold:
            accept = await asyncio.get_running_loop().run_in_executor(
                None, self.on_hold, str(message["Message-ID"]))
            if not accept:
                return "451 4.3.0 Sender went away; not accepted"
        with self.lock:
            self.messages.append(message)
        return "250 OK"

    def ids(self) -> Counter[str]:
        with self.lock:
            return Counter(str(m["Message-ID"]) for m in self.messages)

    def to(self, address: str) -> list[EmailMessage]:
        with self.lock:
            return [m for m in self.messages if address in str(m["To"])]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_sink() -> tuple[Controller, Sink]:
    sink = Sink()
    controller = Controller(sink, hostname="127.0.0.1", port=free_port())
    controller.start()
    return controller, sink
