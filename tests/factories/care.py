"""Treatment continuity: completed sessions with their records, check-ins, recommendations.

Status changes and check-ins go through ``services.care`` (as the therapist's and the
client's pages do), so the messages they plan are the real ones.
"""

from __future__ import annotations

from datetime import date
from datetime import datetime
from datetime import timedelta
from typing import Any

from clinic_app.extensions import db
from clinic_app.models import Booking
from clinic_app.models import CheckIn
from clinic_app.models import Recommendation
from clinic_app.models import SessionRecord
from clinic_app.models import Therapist
from clinic_app.models import User
from clinic_app.services import care
from tests.factories.accounts import now_of
from tests.factories.booking import ClinicLike
from tests.factories.booking import make_booking

#: A plain session record: what a therapist enters for an ordinary visit.
RECORD = {"intensity": 5, "goal": "chronic", "regions": ["upper back"]}


def complete(app: Any, booking: Booking, *, intensity: int = 5, goal: str = "chronic",
             actor: User | None = None) -> SessionRecord:
    """Its therapist completes ``booking`` now (``care.complete_session``, with a record)."""
    therapist = actor or db.session.get(Therapist, booking.therapist_id).user
    record = care.complete_session(db.session, booking, actor=therapist, now=now_of(app),
                                   record={**RECORD, "intensity": intensity, "goal": goal})
    db.session.commit()
    return record


def recorded_session(app: Any, clinic: ClinicLike, start: datetime, *,
                     client: User | None = None, therapist: Any = None, intensity: int = 5,
                     goal: str = "chronic", soreness: int | None = None,
                     progress: str | None = None,
                     red_flags: list[str] | None = None) -> tuple[Booking, SessionRecord]:
    """A booking at ``start``, completed by its therapist just after it ended, with an
    optional 24 h check-in. The clock ends at the last step (or stays, if it was later)."""
    clock = app.extensions["clock"]
    saved = clock.now()
    therapist = therapist or clinic.therapist
    booking = make_booking(app, clinic, start, client=client, therapist=therapist)
    clock.set(booking.end_at + timedelta(minutes=5))
    record = complete(app, booking, intensity=intensity, goal=goal, actor=therapist.user)
    if soreness is not None or red_flags:
        clock.set(booking.end_at + timedelta(hours=24))
        care.submit_checkin(db.session, booking, kind="24h", soreness=soreness,
                            red_flags=red_flags or [], progress=progress, now=clock.now())
    db.session.commit()
    clock.set(max(saved, clock.now()))
    return booking, record


def add_checkin(app: Any, booking: Booking, soreness: int | None, kind: str = "24h", *,
                still_sore: bool | None = None) -> CheckIn:
    """The client's check-in for ``booking`` now, through ``care.submit_checkin``."""
    row = care.submit_checkin(db.session, booking, kind=kind, soreness=soreness, red_flags=[],
                              still_sore=still_sore, now=now_of(app))
    db.session.commit()
    return row


def add_recommendation(app: Any, booking: Booking, *, earliest: date, ideal: date,
                       latest: date, action: str = "book") -> Recommendation:
    """A recommendation with a window chosen by the test (written directly: the window
    would otherwise depend on the whole recommender)."""
    row = Recommendation(client_id=booking.client_id, booking_id=booking.id,
                         created_at=now_of(app), earliest=earliest, ideal=ideal, latest=latest,
                         action=action, reasons=[])
    db.session.add(row)
    db.session.commit()
    return row


def checkin_path(app: Any, booking: Booking, kind: str = "24h") -> str:
    """The check-in page's path for a booking (what the +24 h email links to)."""
    with app.test_request_context():
        return f"/check-in/{care.checkin_token(booking, kind)}"
