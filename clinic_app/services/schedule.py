"""Therapist hours: weekly ranges effective from a date, and time off / different hours.

Times are local wall-clock times in the clinic's zone (the slot search turns them into UTC per
date, so DST days stay right). Existing bookings are not touched by a change of hours: they
stay booked, and the therapist or the admin moves them if needed.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from datetime import datetime
from datetime import time

from sqlalchemy import delete
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy.orm import Session

from clinic_app.errors import NotFound
from clinic_app.errors import ValidationFailed
from clinic_app.models.schedule import HoursOverride
from clinic_app.models.schedule import Therapist
from clinic_app.models.schedule import WeeklyHours
from clinic_app.services import freed_time
from clinic_app.services.settings import clinic_zone
from clinic_app.validation import check_dates
from clinic_app.validation import date_problem
from clinic_app.validation import single_line_problem

__all__ = [
    "WEEKDAYS",
    "add_time_off",
    "current_hours",
    "delete_time_off",
    "list_time_off",
    "replace_weekly_hours",
]

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MAX_TIME_OFF_DAYS = 366


def _today(session: Session, now: datetime) -> date:
    return now.astimezone(clinic_zone(session)).date()


def replace_weekly_hours(
    session: Session,
    therapist: Therapist,
    ranges: Iterable[tuple[int, time, time]],
    effective_from: date,
    now: datetime,
) -> list[WeeklyHours]:
    """Make ``ranges`` (weekday 0 = Monday, start, end) the therapist's week from a date.

    The new set supersedes every set effective on or after ``effective_from`` (the latest
    edit wins from that date on); earlier sets keep governing earlier dates. At least one
    range is required. Raises ValidationFailed with per-weekday field
    messages (``hours.<weekday>``) for reversed, overlapping or invalid ranges, and for an
    ``effective_from`` in the past.
    """
    ranges = list(ranges)
    fields: dict[str, str] = {}
    today = _today(session, now)
    if effective_from < today:
        fields["effective_from"] = "Must be today or later."
    elif problem := date_problem(effective_from, today):
        fields["effective_from"] = problem
    by_day: dict[int, list[tuple[time, time]]] = {}
    for weekday, start, end in ranges:
        if not isinstance(weekday, int) or not 0 <= weekday <= 6:
            fields["hours"] = "Weekdays run from 0 (Monday) to 6 (Sunday)."
            continue
        key = f"hours.{weekday}"
        if start.tzinfo is not None or end.tzinfo is not None:
            fields[key] = "Give local wall-clock times without an offset."
            continue
        if not start < end:
            fields.setdefault(key, f"{WEEKDAYS[weekday]}: {start:%H:%M} must be before "
                                   f"{end:%H:%M}.")
            continue
        by_day.setdefault(weekday, []).append((start, end))
    for weekday, items in by_day.items():
        items.sort()
        for (s1, e1), (s2, e2) in zip(items, items[1:], strict=False):
            if s2 < e1:
                fields.setdefault(
                    f"hours.{weekday}",
                    f"{WEEKDAYS[weekday]}: {s1:%H:%M}-{e1:%H:%M} overlaps "
                    f"{s2:%H:%M}-{e2:%H:%M}.",
                )
    if not ranges:
        # The pure search reads "no rows" as "the previous set still applies", so an empty
        # week cannot be stored; leave and departures are time off or deactivation.
        fields.setdefault("hours", "Give at least one working range (use time off for leave).")
    if fields:
        raise ValidationFailed("Some working hours are not valid.", fields=fields)
    # Hours that add time free it for the waitlist: compare the schedule before and after.
    before = freed_time.schedule_before(session, therapist.id, now, first=effective_from)
    session.execute(
        delete(WeeklyHours).where(
            WeeklyHours.therapist_id == therapist.id,
            WeeklyHours.effective_from >= effective_from,
        )
    )
    rows = [
        WeeklyHours(therapist_id=therapist.id, weekday=d, start_time=s, end_time=e,
                    effective_from=effective_from)
        for d in sorted(by_day)
        for s, e in by_day[d]
    ]
    session.add_all(rows)
    session.flush()
    freed_time.working_time_added(session, before, freed_time.FreedReason.HOURS_ADDED, now)
    return rows


def current_hours(session: Session, therapist: Therapist, on: date) -> list[WeeklyHours]:
    """The weekly rows in force on local date ``on`` (the latest set not after it)."""
    latest = session.scalar(
        select(func.max(WeeklyHours.effective_from)).where(
            WeeklyHours.therapist_id == therapist.id, WeeklyHours.effective_from <= on
        )
    )
    if latest is None:
        return []
    return list(
        session.scalars(
            select(WeeklyHours)
            .where(WeeklyHours.therapist_id == therapist.id,
                   WeeklyHours.effective_from == latest)
            .order_by(WeeklyHours.weekday, WeeklyHours.start_time)
        )
    )


def upcoming_hours(session: Session, therapist: Therapist, after: date) -> list[WeeklyHours]:
    """Weekly rows of sets that start after ``after`` (scheduled changes)."""
    return list(
        session.scalars(
            select(WeeklyHours)
            .where(WeeklyHours.therapist_id == therapist.id, WeeklyHours.effective_from > after)
            .order_by(WeeklyHours.effective_from, WeeklyHours.weekday, WeeklyHours.start_time)
        )
    )


def add_time_off(
    session: Session,
    therapist: Therapist,
    start_date: date,
    end_date: date | None = None,
    start_time: time | None = None,
    end_time: time | None = None,
    reason: str = "",
    kind: str = "off",
    *,
    now: datetime | None = None,
) -> HoursOverride:
    """Add time off (``kind="off"``; whole days without times) or different hours
    (``kind="hours"``, times required) on the local dates ``start_date..end_date``.

    Raises ValidationFailed with field messages for reversed dates or times, a missing time,
    an unknown kind, a range longer than a year, a reason that is not one line, and (given
    ``now``, as pages and the API do) dates outside the accepted window around today.
    """
    end_date = end_date or start_date
    if now is not None:
        check_dates(_today(session, now), "The time off is not valid.",
                    start_date=start_date, end_date=end_date)
    fields: dict[str, str] = {}
    if problem := single_line_problem(reason):
        fields["reason"] = problem
    if kind not in ("off", "hours"):
        fields["kind"] = "Use 'off' (time off) or 'hours' (different hours)."
    if end_date < start_date:
        fields["end_date"] = "Must not be before the start date."
    elif (end_date - start_date).days + 1 > MAX_TIME_OFF_DAYS:
        fields["end_date"] = f"At most {MAX_TIME_OFF_DAYS} days at a time."
    if (start_time is None) != (end_time is None):
        fields["end_time" if end_time is None else "start_time"] = (
            "Give both a start and an end time, or neither for whole days.")
    elif start_time is not None and end_time is not None and not start_time < end_time:
        fields["end_time"] = "Must be after the start time."
    if kind == "hours" and start_time is None and "start_time" not in fields:
        fields["start_time"] = "Different hours need a start and an end time."
    if fields:
        raise ValidationFailed("The time off is not valid.", fields=fields)
    row = HoursOverride(therapist_id=therapist.id, start_date=start_date, end_date=end_date,
                        kind=kind, start_time=start_time, end_time=end_time,
                        reason=(reason or "")[:120])
    session.add(row)
    session.flush()
    return row


def list_time_off(session: Session, therapist: Therapist, since: date) -> list[HoursOverride]:
    """Overrides of the therapist that end on or after ``since``, earliest first."""
    return list(
        session.scalars(
            select(HoursOverride)
            .where(HoursOverride.therapist_id == therapist.id, HoursOverride.end_date >= since)
            .order_by(HoursOverride.start_date, HoursOverride.id)
        )
    )


def delete_time_off(session: Session, therapist: Therapist, override_id: int, *,
                    now: datetime) -> None:
    """Delete one of the therapist's overrides; NotFound for another therapist's. The
    working time it gave back is queued for the waitlist (``services.freed_time``)."""
    row = session.get(HoursOverride, override_id) if 0 < override_id <= 2**31 - 1 else None
    if row is None or row.therapist_id != therapist.id:
        raise NotFound("There is no such time off.")
    before = freed_time.schedule_before(session, therapist.id, now, first=row.start_date,
                                        last=row.end_date)
    session.delete(row)
    session.flush()
    freed_time.working_time_added(session, before, freed_time.FreedReason.TIME_OFF_REMOVED, now)
