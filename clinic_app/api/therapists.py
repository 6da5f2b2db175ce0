"""API v1: a therapist's own hours, time off and bookings (``/therapists/me/...``).

Times of day are local wall-clock times in the clinic's zone ("09:00"); dates are local.
"""

from __future__ import annotations

from datetime import UTC
from datetime import date
from datetime import datetime
from datetime import time
from datetime import timedelta
from typing import Any
from typing import Literal

from pydantic import BaseModel
from pydantic import ConfigDict
from pydantic import Field
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from clinic_app.api.bookings import LOAD_OPTIONS
from clinic_app.api.bookings import BookingOut
from clinic_app.api.bookings import booking_json
from clinic_app.api.core import SingleLineText
from clinic_app.api.core import current_api_user
from clinic_app.api.core import endpoint
from clinic_app.clock import utcnow as now
from clinic_app.errors import NotFound
from clinic_app.errors import ValidationFailed
from clinic_app.extensions import db
from clinic_app.models.booking import Booking
from clinic_app.models.schedule import HoursOverride
from clinic_app.models.schedule import Therapist
from clinic_app.models.schedule import WeeklyHours
from clinic_app.services import schedule
from clinic_app.services.booking import therapist_for_user
from clinic_app.services.settings import clinic_zone
from clinic_app.validation import check_dates

MAX_BOOKINGS_RANGE_DAYS = 62


class RangeIn(BaseModel):
    weekday: int = Field(ge=0, le=6, description="0 = Monday ... 6 = Sunday")
    start: time = Field(description="Local wall-clock time, e.g. 09:00")
    end: time


class RangeOut(BaseModel):
    weekday: int
    start: str
    end: str


class HoursIn(BaseModel):
    effective_from: date | None = Field(default=None, description="Default: today (local)")
    hours: list[RangeIn] = Field(max_length=100)


class WeekOut(BaseModel):
    effective_from: date
    hours: list[RangeOut]


class TimeOffIn(BaseModel):
    start_date: date
    end_date: date | None = Field(default=None, description="Default: start_date")
    start_time: time | None = Field(default=None, description="Omit both times for whole days")
    end_time: time | None = None
    kind: Literal["off", "hours"] = Field(default="off",
                                          description="'hours': different hours those days")
    reason: SingleLineText = Field(default="", max_length=120)


class TimeOffOut(BaseModel):
    id: int
    start_date: date
    end_date: date
    kind: str
    start_time: str | None
    end_time: str | None
    reason: str


class HoursOut(BaseModel):
    timezone: str
    current: WeekOut | None
    scheduled: list[WeekOut]
    time_off: list[TimeOffOut]


class MyBookingsQuery(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    date_from: date | None = Field(default=None, alias="from",
                                   description="First local date; default today")
    date_to: date | None = Field(default=None, alias="to",
                                 description="Last local date (inclusive); default from + 6")


class MyBookingOut(BookingOut):
    client_name: str
    client_email: str
    client_phone: str | None


class MyBookingsOut(BaseModel):
    timezone: str
    bookings: list[MyBookingOut]


def _me() -> Therapist:
    therapist = therapist_for_user(db.session, current_api_user())
    if therapist is None:
        raise NotFound("There is no therapist profile for this account.")
    return therapist


def _hhmm(value: time | None) -> str | None:
    return None if value is None else value.strftime("%H:%M")


def _week(rows: list[WeeklyHours]) -> WeekOut:
    return WeekOut(effective_from=rows[0].effective_from, hours=[
        RangeOut(weekday=r.weekday, start=_hhmm(r.start_time), end=_hhmm(r.end_time))
        for r in rows])


def _time_off(row: HoursOverride) -> TimeOffOut:
    return TimeOffOut(id=row.id, start_date=row.start_date, end_date=row.end_date,
                      kind=row.kind, start_time=_hhmm(row.start_time),
                      end_time=_hhmm(row.end_time), reason=row.reason)


def _hours_out(therapist: Therapist) -> HoursOut:
    tz = clinic_zone(db.session)
    today = now().astimezone(tz).date()
    current = schedule.current_hours(db.session, therapist, today)
    later: dict[date, list[WeeklyHours]] = {}
    for row in schedule.upcoming_hours(db.session, therapist, today):
        later.setdefault(row.effective_from, []).append(row)
    return HoursOut(
        timezone=tz.key,
        current=_week(current) if current else None,
        scheduled=[_week(rows) for _, rows in sorted(later.items())],
        time_off=[_time_off(r) for r in schedule.list_time_off(db.session, therapist, today)],
    )


@endpoint("/therapists/me/hours", "GET", summary="My weekly hours and time off",
          tag="therapists", response=HoursOut, roles=("therapist",))
def therapist_hours_get() -> HoursOut:
    """The week in force today, weeks scheduled to start later, and time off to come."""
    return _hours_out(_me())


@endpoint("/therapists/me/hours", "PUT", summary="Replace my weekly hours from a date",
          tag="therapists", body=HoursIn, response=HoursOut, roles=("therapist",))
def therapist_hours_put(body: HoursIn) -> HoursOut:
    """Several ranges per weekday (breaks are the gaps); overlapping ranges are refused."""
    therapist = _me()
    effective = body.effective_from or now().astimezone(clinic_zone(db.session)).date()
    schedule.replace_weekly_hours(db.session, therapist,
                                  [(r.weekday, r.start, r.end) for r in body.hours],
                                  effective, now())
    out = _hours_out(therapist)
    db.session.commit()
    return out


@endpoint("/therapists/me/time-off", "POST", summary="Add time off (or different hours)",
          tag="therapists", body=TimeOffIn, response=TimeOffOut, status=201,
          roles=("therapist",))
def therapist_time_off_add(body: TimeOffIn) -> TimeOffOut:
    """Whole days without times, part of each day with times. Existing bookings stay."""
    therapist = _me()
    today = now().astimezone(clinic_zone(db.session)).date()
    # The window first: "0001-01-01" is out of range, not merely in the past.
    check_dates(today, "The time off is not valid.", start_date=body.start_date,
                end_date=body.end_date)
    if (body.end_date or body.start_date) < today:
        raise ValidationFailed("Time off must not be entirely in the past.",
                               fields={"end_date": "Must be today or later."})
    row = schedule.add_time_off(db.session, therapist, body.start_date, body.end_date,
                                body.start_time, body.end_time, body.reason, body.kind,
                                now=now())
    out = _time_off(row)
    db.session.commit()
    return out


@endpoint("/therapists/me/time-off/<int:override_id>", "DELETE", summary="Remove time off",
          tag="therapists", status=204, roles=("therapist",), errors=(404,))
def therapist_time_off_delete(override_id: int) -> tuple[dict, int]:
    """404 for someone else's."""
    schedule.delete_time_off(db.session, _me(), override_id, now=now())
    db.session.commit()
    return {}, 204


@endpoint("/therapists/me/bookings", "GET", summary="The sessions I give between two dates",
          tag="therapists", query=MyBookingsQuery, response=MyBookingsOut,
          roles=("therapist",))
def therapist_bookings(query: MyBookingsQuery) -> dict[str, Any]:
    """Every status, by start; local dates inclusive (at most 62 days)."""
    therapist = _me()
    tz = clinic_zone(db.session)
    today = now().astimezone(tz).date()
    check_dates(today, "Some dates are out of range.", **{"from": query.date_from,
                                                          "to": query.date_to})
    first = query.date_from or today
    last = query.date_to or first + timedelta(days=6)
    if last < first:
        raise ValidationFailed("'to' must not be before 'from'.", code="invalid_range",
                               fields={"to": "Must not be before 'from'."})
    if (last - first).days + 1 > MAX_BOOKINGS_RANGE_DAYS:
        raise ValidationFailed(f"At most {MAX_BOOKINGS_RANGE_DAYS} days at a time.",
                               code="range_too_long",
                               fields={"to": f"At most {MAX_BOOKINGS_RANGE_DAYS} days."})
    lo = datetime.combine(first, time(0), tzinfo=tz).astimezone(UTC)
    hi = datetime.combine(last + timedelta(days=1), time(0), tzinfo=tz).astimezone(UTC)
    rows = db.session.scalars(
        select(Booking)
        .where(Booking.therapist_id == therapist.id, Booking.start_at >= lo,
               Booking.start_at < hi)
        .options(*LOAD_OPTIONS, selectinload(Booking.client))
        .order_by(Booking.start_at, Booking.id)
    ).all()
    out = []
    for b in rows:
        item = booking_json(b, tz)
        item.update(client_name=b.client.name, client_email=b.client.email,
                    client_phone=b.client.phone)
        out.append(item)
    return {"timezone": tz.key, "bookings": out}
