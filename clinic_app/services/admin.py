"""Admin use cases: services, rooms, therapists, settings, closures, bookings list, dashboard.

Pages call these with the session and ``now``; they validate everything and raise
:class:`~clinic_app.errors.ValidationFailed` with per-field messages.
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field
from datetime import date
from datetime import datetime
from datetime import time
from datetime import timedelta
from typing import TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy.orm import selectinload

from clinic_app.errors import NotFound
from clinic_app.errors import ValidationFailed
from clinic_app.models.accounts import User
from clinic_app.models.booking import ACTIVE_STATUSES
from clinic_app.models.booking import Booking
from clinic_app.models.booking import BookingStatus
from clinic_app.models.schedule import ClinicSettings
from clinic_app.models.schedule import Closure
from clinic_app.models.schedule import HoursOverride
from clinic_app.models.schedule import Room
from clinic_app.models.schedule import Service
from clinic_app.models.schedule import Therapist
from clinic_app.models.schedule import WeeklyHours
from clinic_app.scheduling import availability as engine
from clinic_app.services import freed_time
from clinic_app.services.settings import get_settings
from clinic_app.validation import MAX_PRICE_CENTS
from clinic_app.validation import date_problem
from clinic_app.validation import is_iana_zone
from clinic_app.validation import single_line_problem

Row = TypeVar("Row")


def _local_midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=tz)


# --- services ---------------------------------------------------------------------------------


def list_services(session: Session) -> list[Service]:
    """Every service, active first, by name."""
    return list(session.scalars(
        select(Service).options(selectinload(Service.therapists), selectinload(Service.rooms))
        .order_by(Service.active.desc(), Service.name)
    ))


def save_service(
    session: Session,
    service: Service | None,
    *,
    name: str,
    description: str = "",
    duration_minutes: int | None,
    buffer_before_minutes: int | None = 0,
    buffer_after_minutes: int | None = 0,
    price_cents: int | None = 0,
    active: bool = True,
    is_first_visit: bool = False,
    therapist_ids: list[int] | None = None,
    room_ids: list[int] | None = None,
) -> Service:
    """Create (``service`` None) or update a service, with who offers it and where."""
    fields: dict[str, str] = {}
    name = (name or "").strip()
    if not name:
        fields["name"] = "Enter a name."
    elif len(name) > 120:
        fields["name"] = "At most 120 characters."
    elif problem := single_line_problem(name):
        fields["name"] = problem
    else:
        clash = session.scalar(select(Service.id).where(func.lower(Service.name) == name.lower()))
        if clash is not None and (service is None or clash != service.id):
            fields["name"] = "Another service already has this name."
    if duration_minutes is None or not 5 <= duration_minutes <= 8 * 60:
        fields["duration_minutes"] = "Between 5 and 480 minutes."
    for key, value in (("buffer_before_minutes", buffer_before_minutes),
                       ("buffer_after_minutes", buffer_after_minutes)):
        if value is None or not 0 <= value <= 240:
            fields[key] = "Between 0 and 240 minutes."
    if price_cents is None or price_cents < 0:
        fields["price"] = "Enter a price of 0 or more."
    elif price_cents > MAX_PRICE_CENTS:
        fields["price"] = f"At most £{MAX_PRICE_CENTS // 100:,}."
    rooms = list(session.scalars(select(Room).where(Room.id.in_(room_ids or []))))
    therapists = list(session.scalars(
        select(Therapist).where(Therapist.id.in_(therapist_ids or []))
    ))
    if active and not rooms:
        fields["room_ids"] = "Choose at least one room: every booking needs one."
    if fields:
        raise ValidationFailed("Please correct the marked fields.", fields=fields)
    if service is None:
        service = Service(name=name, duration_minutes=duration_minutes)
        session.add(service)
    service.name = name
    service.description = (description or "").strip()
    service.duration_minutes = int(duration_minutes or 0)
    service.buffer_before_minutes = int(buffer_before_minutes or 0)
    service.buffer_after_minutes = int(buffer_after_minutes or 0)
    service.price_cents = int(price_cents or 0)
    service.active = bool(active)
    service.is_first_visit = bool(is_first_visit)
    service.rooms = rooms
    service.therapists = therapists
    session.flush()
    return service


def _by_id(session: Session, model: type[Row], row_id: int, missing: str) -> Row:
    """The ``model`` row with this id, or NotFound saying ``missing``."""
    row = session.get(model, row_id)
    if row is None:
        raise NotFound(missing)
    return row


def get_service(session: Session, service_id: int) -> Service:
    """The service with this id, or NotFound."""
    return _by_id(session, Service, service_id, "No such service.")


# --- rooms ------------------------------------------------------------------------------------


def list_rooms(session: Session) -> list[Room]:
    """Every room by name."""
    return list(session.scalars(select(Room).order_by(Room.active.desc(), Room.name)))


def save_room(session: Session, room: Room | None, *, name: str, active: bool = True) -> Room:
    """Create or rename/(de)activate a room."""
    name = (name or "").strip()
    if not name or len(name) > 80:
        raise ValidationFailed("Enter a room name.", fields={"name": "Enter 1 to 80 characters."})
    if problem := single_line_problem(name):
        raise ValidationFailed("Enter a room name.", fields={"name": problem})
    clash = session.scalar(select(Room.id).where(func.lower(Room.name) == name.lower()))
    if clash is not None and (room is None or clash != room.id):
        raise ValidationFailed("That name is taken.",
                               fields={"name": "Another room already has this name."})
    if room is None:
        room = Room(name=name)
        session.add(room)
    room.name = name
    room.active = bool(active)
    session.flush()
    return room


def get_room(session: Session, room_id: int) -> Room:
    """The room with this id, or NotFound."""
    return _by_id(session, Room, room_id, "No such room.")


# --- therapists -------------------------------------------------------------------------------


def list_therapists(session: Session, *, active_only: bool = False) -> list[Therapist]:
    """Therapists by name (with their user and services loaded)."""
    query = (select(Therapist).join(Therapist.user)
             .options(selectinload(Therapist.user), selectinload(Therapist.services))
             .order_by(Therapist.active.desc(), User.name))
    if active_only:
        query = query.where(Therapist.active.is_(True))
    return list(session.scalars(query))


def get_therapist(session: Session, therapist_id: int) -> Therapist:
    """The therapist with this id, or NotFound."""
    return _by_id(session, Therapist, therapist_id, "No such therapist.")


def future_bookings(session: Session, therapist: Therapist, now: datetime) -> list[Booking]:
    """The therapist's upcoming active bookings (to reassign or cancel)."""
    return list(session.scalars(
        select(Booking)
        .where(Booking.therapist_id == therapist.id, Booking.start_at >= now,
               Booking.status.in_((BookingStatus.PENDING.value, BookingStatus.BOOKED.value)))
        .order_by(Booking.start_at)
    ))


def set_therapist_active(session: Session, therapist: Therapist, active: bool,
                         now: datetime) -> list[Booking]:
    """Deactivate (no new bookings, no log-in) or reactivate a therapist.

    Returns the future bookings still assigned to them: deactivation keeps them, so
    that the admin can move each one to a colleague or cancel it with a message.
    """
    therapist.active = active
    therapist.user.is_active = active
    if not active:
        # Ends every session and remember cookie at once.
        therapist.user.session_version += 1
    session.flush()
    return future_bookings(session, therapist, now)


# --- settings and closures --------------------------------------------------------------------


SETTINGS_LIMITS = {
    "min_notice_minutes": (0, 7 * 24 * 60),
    "horizon_days": (1, 730),
    "slot_step_minutes": (5, 120),
    "cancel_cutoff_hours": (0, 14 * 24),
    "max_upcoming_per_client": (1, 100),
    "retention_years": (1, 30),
    # A waitlist offer holds the slot this long (issue 13.2): at least a few minutes to
    # read the email, at most a day (services.holds.MAX_HOLD_MINUTES).
    "offer_minutes": (5, 24 * 60),
}


def update_settings(session: Session, *, now: datetime, **values: object) -> ClinicSettings:
    """Validate and save the clinic's settings and policy (only the given fields)."""
    row = get_settings(session)
    fields: dict[str, str] = {}
    clean: dict[str, object] = {}
    for key, value in values.items():
        if key in ("name", "address", "phone"):
            text = str(value or "").strip()
            limit = {"name": 120, "address": 255, "phone": 40}[key]
            if key == "name" and not text:
                fields[key] = "Enter the clinic's name."
            elif len(text) > limit:
                fields[key] = f"At most {limit} characters."
            elif problem := single_line_problem(text):
                fields[key] = problem
            clean[key] = text
        elif key == "timezone":
            text = str(value or "").strip()
            if not is_iana_zone(text):
                fields[key] = "Enter an IANA time zone such as Europe/London."
            clean[key] = text
        elif key in SETTINGS_LIMITS:
            low, high = SETTINGS_LIMITS[key]
            if not isinstance(value, int) or not low <= value <= high:
                fields[key] = f"A whole number from {low} to {high}."
            clean[key] = value
        elif key == "reminder_offsets_hours":
            parts = [p.strip() for p in str(value or "").split(",") if p.strip()]
            try:
                hours = sorted({int(p) for p in parts}, reverse=True)
            except ValueError:
                hours = None
            if hours is None or any(not 1 <= h <= 14 * 24 for h in hours):
                fields[key] = "Hours before the start, separated by commas, e.g. 48,24."
            elif not hours:
                fields[key] = "Give at least one reminder, e.g. 24."
            else:
                clean[key] = ",".join(str(h) for h in hours)
        else:
            raise ValueError(f"unknown setting {key}")
    if fields:
        raise ValidationFailed("Please correct the marked fields.", fields=fields)
    for key, value in clean.items():
        setattr(row, key, value)
    row.updated_at = now
    session.flush()
    return row


def list_closures(session: Session, today: date) -> list[Closure]:
    """Closures that end today or later, soonest first."""
    return list(session.scalars(
        select(Closure).where(Closure.end_date >= today).order_by(Closure.start_date)
    ))


def add_closure(session: Session, *, start_date: date | None, end_date: date | None,
                today: date, reason: str = "") -> Closure:
    """Close the whole clinic on the local dates ``start_date..end_date`` (inclusive); both
    within the accepted window around ``today`` (local)."""
    fields = {}
    if start_date is None:
        fields["start_date"] = "Enter the first closed day."
    elif problem := date_problem(start_date, today):
        fields["start_date"] = problem
    if end_date is None:
        fields["end_date"] = "Enter the last closed day."
    elif problem := date_problem(end_date, today):
        fields["end_date"] = problem
    elif start_date is not None and end_date < start_date:
        fields["end_date"] = "The last day cannot be before the first."
    if len(reason or "") > 120:
        fields["reason"] = "At most 120 characters."
    elif problem := single_line_problem(reason):
        fields["reason"] = problem
    if fields:
        raise ValidationFailed("Please correct the marked fields.", fields=fields)
    closure = Closure(start_date=start_date, end_date=end_date, reason=(reason or "").strip())
    session.add(closure)
    session.flush()
    return closure


def delete_closure(session: Session, closure_id: int, *, now: datetime) -> None:
    """Reopen: remove a closure. Its days are queued as freed for every active therapist
    (the waitlist is offered the time it gives back)."""
    closure = _by_id(session, Closure, closure_id, "No such closure.")
    therapist_ids = session.scalars(select(Therapist.id).where(Therapist.active.is_(True)))
    freed_time.whole_days_freed(session, list(therapist_ids), closure.start_date,
                                closure.end_date, freed_time.FreedReason.CLOSURE_REMOVED, now)
    session.delete(closure)
    session.flush()


def bookings_on_closed_days(session: Session, closure: Closure, tz: ZoneInfo) -> list[Booking]:
    """Active bookings that fall inside a closure (the admin should move them)."""
    start = _local_midnight(closure.start_date, tz)
    end = _local_midnight(closure.end_date + timedelta(days=1), tz)
    return list(session.scalars(
        select(Booking).where(Booking.start_at >= start, Booking.start_at < end,
                              Booking.status.in_((BookingStatus.PENDING.value,
                                                  BookingStatus.BOOKED.value)))
        .order_by(Booking.start_at)
    ))


# --- bookings list ----------------------------------------------------------------------------


def search_bookings(
    session: Session,
    *,
    tz: ZoneInfo,
    date_from: date | None = None,
    date_to: date | None = None,
    therapist_id: int | None = None,
    status: str | None = None,
    client_query: str = "",
    limit: int = 500,
) -> list[Booking]:
    """Bookings filtered by local date range (inclusive), therapist, status and client."""
    query = select(Booking).options(
        selectinload(Booking.client), selectinload(Booking.service),
        selectinload(Booking.room),
        selectinload(Booking.therapist).selectinload(Therapist.user),
    )
    if date_from is not None:
        query = query.where(Booking.start_at >= _local_midnight(date_from, tz))
    if date_to is not None:
        query = query.where(Booking.start_at < _local_midnight(date_to + timedelta(days=1), tz))
    if therapist_id is not None:
        query = query.where(Booking.therapist_id == therapist_id)
    if status:
        query = query.where(Booking.status == status)
    if client_query.strip():
        like = f"%{client_query.strip().lower()}%"
        query = query.join(User, User.id == Booking.client_id).where(
            (func.lower(User.name).like(like)) | (func.lower(User.email).like(like))
        )
    return list(session.scalars(query.order_by(Booking.start_at).limit(limit)))


def list_clients(session: Session) -> list[User]:
    """Active client accounts by name (for booking on someone's behalf)."""
    return list(session.scalars(
        select(User).where(User.role == "client", User.is_active.is_(True),
                           User.anonymised_at.is_(None)).order_by(User.name)
    ))


# --- dashboard --------------------------------------------------------------------------------


@dataclass
class TherapistWeek:
    therapist_id: int
    name: str
    working_minutes: int = 0
    booked_minutes: int = 0
    bookings: int = 0

    @property
    def utilisation(self) -> int:
        """Booked minutes as a whole percentage of working minutes."""
        if not self.working_minutes:
            return 0
        return round(100 * self.booked_minutes / self.working_minutes)


@dataclass
class WeekFigures:
    week_start: date
    therapists: list[TherapistWeek] = field(default_factory=list)
    bookings: int = 0
    cancellations: int = 0
    late_cancellations: int = 0
    no_shows: int = 0
    completed: int = 0

    @property
    def week_end(self) -> date:
        return self.week_start + timedelta(days=6)

    @property
    def booked_minutes(self) -> int:
        return sum(t.booked_minutes for t in self.therapists)

    @property
    def working_minutes(self) -> int:
        return sum(t.working_minutes for t in self.therapists)

    @property
    def utilisation(self) -> int:
        if not self.working_minutes:
            return 0
        return round(100 * self.booked_minutes / self.working_minutes)


def week_start_of(day: date) -> date:
    """The Monday of ``day``'s week."""
    return day - timedelta(days=day.weekday())


def _schedule(session: Session, therapist_id: int) -> engine.TherapistSchedule:
    weekly = tuple(
        engine.WeeklyRange(w.weekday, w.start_time, w.end_time, w.effective_from)
        for w in session.scalars(select(WeeklyHours).where(WeeklyHours.therapist_id
                                                           == therapist_id))
    )
    overrides = tuple(
        engine.HoursOverride(o.start_date, o.end_date, o.kind, o.start_time, o.end_time)
        for o in session.scalars(select(HoursOverride).where(HoursOverride.therapist_id
                                                             == therapist_id))
    )
    return engine.TherapistSchedule(therapist_id, weekly, overrides)


def dashboard(session: Session, week_start: date, tz: ZoneInfo) -> WeekFigures:
    """The week's figures: utilisation per therapist (booked / working minutes), bookings,
    cancellations (late ones apart), no-shows. Days the clinic is closed count as not worked."""
    week_start = week_start_of(week_start)
    days = [week_start + timedelta(days=i) for i in range(7)]
    start = _local_midnight(week_start, tz)
    end = _local_midnight(week_start + timedelta(days=7), tz)
    closed: set[date] = set()
    for c in session.scalars(select(Closure).where(Closure.end_date >= week_start,
                                                    Closure.start_date <= days[-1])):
        closed.update(d for d in days if c.start_date <= d <= c.end_date)
    figures = WeekFigures(week_start=week_start)
    rows: dict[int, TherapistWeek] = {}
    for therapist in list_therapists(session):
        schedule = _schedule(session, therapist.id)
        minutes = 0
        for day in days:
            if day in closed:
                continue
            for interval in engine.working_intervals(schedule, day, tz):
                minutes += int((interval.end - interval.start).total_seconds() // 60)
        rows[therapist.id] = TherapistWeek(therapist.id, therapist.name, working_minutes=minutes)
    bookings = session.scalars(
        select(Booking).where(Booking.start_at >= start, Booking.start_at < end)
    ).all()
    for b in bookings:
        if b.status == BookingStatus.CANCELLED.value:
            figures.cancellations += 1
            figures.late_cancellations += int(bool(b.late_cancel))
            continue
        figures.bookings += 1
        figures.no_shows += int(b.status == BookingStatus.NO_SHOW.value)
        figures.completed += int(b.status == BookingStatus.COMPLETED.value)
        row = rows.get(b.therapist_id)
        if row is not None and b.status in ACTIVE_STATUSES:
            row.booked_minutes += int((b.end_at - b.start_at).total_seconds() // 60)
            row.bookings += 1
    # Inactive therapists with nothing that week add only noise.
    figures.therapists = [r for r in rows.values() if r.working_minutes or r.bookings]
    return figures
