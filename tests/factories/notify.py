"""Notifications: a one-of-each clinic, bookings with their messages planned, cancelling and
moving through the booking service, a frozen-clock runner for the worker's jobs, and a real
SMTP sink (aiosmtpd) that counts Message-IDs.

Completing a session and checking in are in ``tests.factories.care`` (re-exported here):
every status change goes through the real services, so the tests see the messages those
services plan, not a copy of them.
"""

from __future__ import annotations

import asyncio
import contextvars
import email
import email.policy
import socket
import threading
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from functools import partial
from typing import Any

from aiosmtpd.controller import Controller
from sqlalchemy import select

from clinic_app.extensions import db
from clinic_app.models import Booking
from clinic_app.models import OutboxMessage
from clinic_app.models import Room
from clinic_app.models import Service
from clinic_app.models import Therapist
from clinic_app.models import User
from clinic_app.models.outbox import OutboxStatus
from clinic_app.services import booking as booking_service
from clinic_app.services.notify.events import intent
from tests.factories import booking as booking_factories
from tests.factories.accounts import make_user
from tests.factories.accounts import now_of
from tests.factories.care import add_checkin
from tests.factories.care import add_recommendation
from tests.factories.care import complete
from tests.factories.schedule import make_room
from tests.factories.schedule import make_service
from tests.factories.schedule import make_therapist

__all__ = [
    "Clinic", "Sink", "add_checkin", "add_recommendation", "cancel", "complete", "make_booking",
    "make_clinic", "move", "now_of", "outbox_row", "rows", "run_job", "start_sink",
]


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


#: ``tests.factories.booking.make_booking`` with the messages planned as ``book`` plans them.
make_booking = partial(booking_factories.make_booking, notify=True)


def _staff_of(booking: Booking) -> User:
    """The booking's therapist: staff may cancel or move it at any time, never "late"."""
    return db.session.get(Therapist, booking.therapist_id).user


def cancel(app: Any, booking: Booking, *, late: bool = False) -> None:
    """Cancel through ``booking.cancel``: by the client when ``late`` (it must then be inside
    the cutoff), else by the therapist."""
    actor = db.session.get(User, booking.client_id) if late else _staff_of(booking)
    booking_service.cancel(db.session, booking, actor=actor, now=now_of(app))
    assert booking.late_cancel == late, "a late cancel needs a booking inside the cutoff"
    db.session.commit()


def move(app: Any, booking: Booking, new_start: Any) -> None:
    """Move through ``booking.reschedule``, by the therapist (so the cutoff does not apply;
    the new time must be bookable)."""
    booking_service.reschedule(db.session, booking, new_start=new_start,
                               actor=_staff_of(booking), now=now_of(app))
    db.session.commit()


def run_job(func: Any, app: Any) -> Any:
    """Run a worker job as the worker does (its own app context), after committing ours."""
    db.session.commit()
    result = contextvars.Context().run(func, app)
    db.session.expire_all()
    return result


def outbox_row(app: Any, *, kind: str, user: User, at: datetime, status: str = "sent",
               booking: Booking | None = None) -> OutboxMessage:
    """An outbox intent of ``kind`` for ``user``, written at ``at`` and left in ``status``
    as the dispatcher (``sent``: sent at ``at``; ``failed``/``dead``: attempted then) or
    ``retire`` (``retired``) would leave it, for figures read off the outbox."""
    row = intent(db.session, kind=kind, key=f"test:{kind}:{user.id}:{at.isoformat()}:{status}",
                 to=user.email, now=at, user=user, booking=booking)
    assert row is not None, "the same key twice"
    row.status = status
    if status == OutboxStatus.SENT.value:
        row.sent_at, row.attempts = at, 1
    elif status in (OutboxStatus.FAILED.value, OutboxStatus.DEAD.value):
        row.attempts, row.last_error = 1, "550 mailbox unavailable"
    elif status == OutboxStatus.RETIRED.value:
        row.last_error = f"retired at {at.isoformat()}"
    db.session.commit()
    return row


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
