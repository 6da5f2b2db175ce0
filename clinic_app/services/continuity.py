"""Adherence to the recommended interval, for the admin dashboard's continuity panel
(issue 13, item 4).

A follow-up is a session (booking not cancelled) that a client booked while a dated
recommendation of an earlier session was current: the client's newest recommendation row
created before the booking was made, for a session that started before it. It landed inside
its window when ``earliest <= local date <= latest``, else before ``earliest`` or after
``latest``. Sessions booked with no such recommendation (first visits, after a referral) are
not follow-ups. Weeks start on Monday in the clinic's zone.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from dataclasses import field
from datetime import UTC
from datetime import date
from datetime import datetime
from datetime import time
from datetime import timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy.orm import aliased

from clinic_app.models.booking import INCLUDE_HOLDS
from clinic_app.models.booking import Booking
from clinic_app.models.booking import BookingStatus
from clinic_app.models.care import Recommendation

__all__ = ["Adherence", "ContinuityPanel", "continuity_panel"]

CHART_WEEKS = 12


@dataclass
class Adherence:
    """Follow-ups of one period by where they landed relative to their window."""

    inside: int = 0
    before_earliest: int = 0
    after_latest: int = 0

    @property
    def total(self) -> int:
        return self.inside + self.before_earliest + self.after_latest

    def share(self, part: int) -> float | None:
        """``part`` as a fraction of all follow-ups (None when there were none)."""
        return part / self.total if self.total else None


@dataclass
class ContinuityPanel:
    """The chosen week's figures and the 12 weeks up to it (oldest first)."""

    week: date
    current: Adherence
    weeks: list[tuple[date, Adherence]] = field(default_factory=list)


def _midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)


def continuity_panel(session: Session, week: date, tz: ZoneInfo) -> ContinuityPanel:
    """Adherence for the week starting ``week`` and each of the 12 weeks ending with it."""
    first_week = week - timedelta(weeks=CHART_WEEKS - 1)
    start, end = _midnight(first_week, tz), _midnight(week + timedelta(days=7), tz)
    bookings = session.execute(
        select(Booking.client_id, Booking.start_at, Booking.created_at)
        .where(Booking.status != BookingStatus.CANCELLED.value,
               Booking.start_at >= start, Booking.start_at < end)
    ).all()
    session_booking = aliased(Booking)
    clients = {b.client_id for b in bookings}
    # Every dated recommendation of those clients, with its session's start, oldest first.
    recs: dict[int, list[tuple[datetime, datetime, date, date]]] = {}
    if clients:
        for client_id, created, session_start, earliest, latest in session.execute(
            select(Recommendation.client_id, Recommendation.created_at,
                   session_booking.start_at, Recommendation.earliest, Recommendation.latest)
            .join(session_booking, session_booking.id == Recommendation.booking_id)
            .where(Recommendation.client_id.in_(clients), Recommendation.created_at < end)
            .order_by(Recommendation.client_id, Recommendation.created_at, Recommendation.id)
            # A recommendation's booking is a completed session, never a hold; and the
            # hold-hiding criteria cannot name the alias in a column-only select.
            .execution_options(**{INCLUDE_HOLDS: True})
        ):
            recs.setdefault(client_id, []).append((created, session_start, earliest, latest))
    by_week = {first_week + timedelta(weeks=i): Adherence() for i in range(CHART_WEEKS)}
    for client_id, booking_start, booked_at in bookings:
        history = recs.get(client_id, [])
        # The recommendation current when the booking was made (newest created before it).
        index = bisect_right([created for created, *_ in history], booked_at) - 1
        if index < 0:
            continue
        _, session_start, earliest, latest = history[index]
        if earliest is None or latest is None or session_start >= booking_start:
            continue  # after a referral (no dates), or not a follow-up of that session
        day = booking_start.astimezone(tz).date()
        bucket = by_week[day - timedelta(days=day.weekday())]
        if day < earliest:
            bucket.before_earliest += 1
        elif day > latest:
            bucket.after_latest += 1
        else:
            bucket.inside += 1
    return ContinuityPanel(week=week, current=by_week[week], weeks=sorted(by_week.items()))
