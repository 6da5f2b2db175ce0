"""Factories for the treatment-continuity tests: recorded sessions and check-in links."""

from __future__ import annotations

from datetime import datetime
from datetime import timedelta
from typing import Any

from clinic_app.extensions import db
from clinic_app.models import Booking
from clinic_app.models import SessionRecord
from clinic_app.models import User
from clinic_app.services import care
from tests.booking_factories import Clinic
from tests.booking_factories import raw_booking


def recorded_session(app: Any, clinic: Clinic, start: datetime, *, client: User | None = None,
                     therapist: Any = None, intensity: int = 5, goal: str = "chronic",
                     soreness: int | None = None, progress: str | None = None,
                     red_flags: list[str] | None = None) -> tuple[Booking, SessionRecord]:
    """A booking at ``start``, completed by its therapist just after it ended, with an
    optional 24 h check-in. The clock ends at the last step (or stays, if it was later)."""
    clock = app.extensions["clock"]
    saved = clock.now()
    therapist = therapist or clinic.t1
    booking = raw_booking(app, client=client or clinic.client, therapist=therapist,
                          room=clinic.rooms[0], service=clinic.service, start=start)
    clock.set(booking.end_at + timedelta(minutes=5))
    record = care.complete_session(db.session, booking, actor=therapist.user, now=clock.now(),
                                   record={"intensity": intensity, "goal": goal,
                                           "regions": ["upper back"]})
    if soreness is not None or red_flags:
        clock.set(booking.end_at + timedelta(hours=24))
        care.submit_checkin(db.session, booking, kind="24h", soreness=soreness,
                            red_flags=red_flags or [], progress=progress, now=clock.now())
    db.session.commit()
    clock.set(max(saved, clock.now()))
    return booking, record


def checkin_path(app: Any, booking: Booking, kind: str = "24h") -> str:
    """The check-in page's path for a booking (what the +24 h email links to)."""
    with app.test_request_context():
        return f"/check-in/{care.checkin_token(booking, kind)}"
