"""Calendar use cases: who may download a booking's ICS file, a therapist's feed and its URL."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from datetime import timedelta

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy.orm import joinedload

from clinic_app.errors import NotFound
from clinic_app.models.booking import Booking
from clinic_app.models.schedule import Therapist
from clinic_app.security import new_token

# The feed covers recent history (so a therapist can look back at last month) and the booking
# horizon with room to spare.
FEED_DAYS_BACK = 30
FEED_DAYS_AHEAD = 180


def regenerate_feed_token(session: Session, therapist: Therapist) -> str:
    """Give ``therapist`` a new secret feed token and return it.

    The old feed URL stops working at once (calendar apps subscribed to it get 404). The caller
    commits.
    """
    token = new_token()
    therapist.feed_token = token
    session.flush()
    return token


def feed_url(therapist: Therapist) -> str:
    """The absolute subscription URL of ``therapist``'s feed (``https://.../calendar/<t>.ics``).

    Calendar apps also accept it with the ``webcal://`` scheme, which opens them directly.
    """
    return f"{current_app.config['BASE_URL']}/calendar/{therapist.feed_token}.ics"


def therapist_for_feed(session: Session, token: str) -> Therapist:
    """The active therapist whose feed token is ``token``; ``NotFound`` for anything else."""
    therapist = session.scalar(
        select(Therapist).where(Therapist.feed_token == token).options(joinedload(Therapist.user))
    )
    if therapist is None or not therapist.active or not therapist.user.is_active:
        raise NotFound("Unknown calendar feed.")
    return therapist


def feed_bookings(session: Session, therapist: Therapist, now: datetime) -> Sequence[Booking]:
    """``therapist``'s bookings from 30 days ago to 180 days ahead, cancelled ones included,
    with service, room and client loaded in the same single query."""
    lo = now - timedelta(days=FEED_DAYS_BACK)
    hi = now + timedelta(days=FEED_DAYS_AHEAD)
    # Bounded on blocked_start on both sides so ix_bookings_therapist_blocked is used.
    return session.scalars(
        select(Booking)
        .where(
            Booking.therapist_id == therapist.id,
            Booking.blocked_start >= lo,
            Booking.blocked_start < hi,
        )
        .options(
            joinedload(Booking.service),
            joinedload(Booking.room),
            joinedload(Booking.client),
        )
        .order_by(Booking.start_at, Booking.id)
    ).all()
