"""Recording freed time: the queue the waitlist's offer job reads (issue 13, item 2).

Every change that frees some of a therapist's time writes one ``freed_slots`` row
(:class:`~clinic_app.models.waitlist.FreedTime`) in its own transaction: a cancellation, the
old time of a move, a released hold, an expired sign-up hold (the job finds those), time off
removed, working hours added, a closure removed. Nothing else happens in the request: the
worker's offer job (``services.waitlist_offers``) finds the free slots inside each row, ranks
the waiting entries and offers the best match within seconds.

This module is deliberately low: it imports models and the slot search's schedule loader
only, so the booking, hold and schedule services can call it without importing the waitlist
services (which import them). Services never commit: the caller does.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC
from datetime import date
from datetime import datetime
from datetime import time
from datetime import timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from clinic_app.models.booking import Booking
from clinic_app.models.waitlist import FreedReason
from clinic_app.models.waitlist import FreedTime
from clinic_app.scheduling import availability as pure
from clinic_app.scheduling.intervals import subtract_pairs
from clinic_app.services.availability import load_schedules
from clinic_app.services.settings import get_settings

__all__ = [
    "FreedReason",
    "Span",
    "booking_freed",
    "record",
    "record_span",
    "schedule_before",
    "span_of",
    "working_time_added",
    "whole_days_freed",
]


@dataclass(frozen=True)
class Span:
    """A therapist's blocked time, remembered before a change (a move) gives it up."""

    therapist_id: int
    start: datetime
    end: datetime
    source_booking_id: int | None = None


def record(session: Session, *, therapist_id: int, start: datetime, end: datetime,
           reason: str, now: datetime, source_booking_id: int | None = None) -> FreedTime | None:
    """Queue ``[start, end)`` of the therapist's time as freed (the future part only: time
    already past frees nothing anyone can book). One INSERT at the caller's flush."""
    start = max(start, now)
    if end <= start:
        return None
    row = FreedTime(therapist_id=therapist_id, start_at=start, end_at=end, reason=reason,
                    created_at=now, source_booking_id=source_booking_id)
    session.add(row)
    return row


def span_of(booking: Booking) -> Span:
    """The time ``booking`` blocks now (buffers included), to record after it moves."""
    return Span(booking.therapist_id, booking.blocked_start, booking.blocked_end, booking.id)


def record_span(session: Session, span: Span, reason: str, now: datetime) -> FreedTime | None:
    """Queue a remembered span (the old time of a move) as freed."""
    return record(session, therapist_id=span.therapist_id, start=span.start, end=span.end,
                  reason=reason, now=now, source_booking_id=span.source_booking_id)


def booking_freed(session: Session, booking: Booking, reason: str,
                  now: datetime) -> FreedTime | None:
    """Queue the time ``booking`` (or hold) blocked as freed: it was cancelled or released."""
    return record_span(session, span_of(booking), reason, now)


# --- schedule changes: record exactly the working time they add ------------------------------


def _window(session: Session, now: datetime) -> tuple[ZoneInfo, date, date]:
    """The clinic's zone and the local dates a change can free bookable time on (today to
    the horizon): later dates cannot be booked yet, past ones never again."""
    settings = get_settings(session)
    zone = ZoneInfo(settings.timezone)
    today = now.astimezone(zone).date()
    return zone, today, today + timedelta(days=settings.horizon_days)


@dataclass(frozen=True)
class ScheduleBefore:
    """A therapist's schedule read before a change, to compare with the one after it."""

    therapist_id: int
    schedule: pure.TherapistSchedule
    first: date
    last: date


def schedule_before(session: Session, therapist_id: int, now: datetime, *,
                    first: date | None = None, last: date | None = None) -> ScheduleBefore:
    """Read the therapist's hours and overrides on ``first..last`` (default: today to the
    horizon) before changing them (one statement)."""
    _, today, horizon = _window(session, now)
    first = max(first or today, today)
    last = min(last or horizon, horizon)
    (schedule,), _ = load_schedules(session, therapist_ids=(therapist_id,), date_from=first,
                                    date_to=max(first, last))
    return ScheduleBefore(therapist_id, schedule, first, last)


def working_time_added(session: Session, before: ScheduleBefore, reason: str,
                       now: datetime) -> list[FreedTime]:
    """After a change of hours or time off: queue the working time the therapist has now
    and did not have ``before``, day by day (nothing when the change only removed time).
    One more statement reads the schedule after the change; rows are inserted together."""
    if before.first > before.last:
        return []
    session.flush()
    zone, _, _ = _window(session, now)
    (after,), closures = load_schedules(session, therapist_ids=(before.therapist_id,),
                                        date_from=before.first, date_to=before.last)
    rows = []
    for day in _days(before.first, before.last):
        if any(d1 <= day <= d2 for d1, d2 in closures):
            continue  # the clinic is shut that day: nothing there is bookable
        old = [iv.as_pair() for iv in pure.working_intervals(before.schedule, day, zone)]
        new = [iv.as_pair() for iv in pure.working_intervals(after, day, zone)]
        for start, end in subtract_pairs(new, old):
            row = record(session, therapist_id=before.therapist_id, start=start, end=end,
                         reason=reason, now=now)
            if row is not None:
                rows.append(row)
    return rows


def whole_days_freed(session: Session, therapist_ids: Iterable[int], first: date, last: date,
                     reason: str, now: datetime) -> list[FreedTime]:
    """Queue the local dates ``first..last`` (within today..horizon) of each therapist as
    freed, one row per therapist (a closure removed: nothing was bookable on them before)."""
    zone, today, horizon = _window(session, now)
    first, last = max(first, today), min(last, horizon)
    if first > last:
        return []
    start = datetime.combine(first, time(0), tzinfo=zone).astimezone(UTC)
    end = datetime.combine(last + timedelta(days=1), time(0), tzinfo=zone).astimezone(UTC)
    rows = [record(session, therapist_id=tid, start=start, end=end, reason=reason, now=now)
            for tid in therapist_ids]
    return [row for row in rows if row is not None]


def _days(first: date, last: date) -> Iterable[date]:
    day = first
    while day <= last:
        yield day
        day += timedelta(days=1)
