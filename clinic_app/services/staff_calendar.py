"""The staff calendar: working hours, time off, closures and bookings as events.

:func:`build_events` is pure (plain rows in, events out); :func:`calendar_events` loads those
rows for a viewer with a fixed number of statements and applies the access rule:

* a therapist sees their own column only (asking for another therapist is NotFound);
* an admin sees every active therapist, or one;
* everyone else is NotFound.

Working hours are expanded per local date by the slot search's own pure function
(:func:`clinic_app.scheduling.availability.working_intervals`) from the rows that
:func:`clinic_app.services.availability.load_schedules` reads, so the grid and the search can
never disagree about when someone works. A booking overlapping time off or a closure is a
``conflict``: it was made before the time off, or kept when the time off was saved.
"""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Sequence
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

from clinic_app.errors import NotFound
from clinic_app.errors import ValidationFailed
from clinic_app.models.accounts import Role
from clinic_app.models.accounts import User
from clinic_app.models.booking import MAX_BLOCKED_MINUTES
from clinic_app.models.booking import Booking
from clinic_app.models.booking import BookingStatus
from clinic_app.models.care import Intake
from clinic_app.models.schedule import Closure
from clinic_app.models.schedule import HoursOverride
from clinic_app.models.schedule import Room
from clinic_app.models.schedule import Service
from clinic_app.models.schedule import Therapist
from clinic_app.scheduling import availability as pure
from clinic_app.scheduling.intervals import Interval
from clinic_app.services import booking as booking_svc
from clinic_app.services import care
from clinic_app.services.audit import record_read
from clinic_app.services.availability import check_range
from clinic_app.services.availability import load_schedules
from clinic_app.services.settings import clinic_zone

__all__ = [
    "EVENT_KINDS",
    "BookingRow",
    "CalendarData",
    "CalendarEvent",
    "build_events",
    "calendar_events",
    "Covered",
    "cancel_covered",
    "covered_bookings",
    "local_midnight",
    "save_private_note",
]

EVENT_KINDS = ("booking", "time_off", "closure", "working")
ONE_DAY = timedelta(days=1)
MAX_BLOCKED = timedelta(minutes=MAX_BLOCKED_MINUTES)


@dataclass(frozen=True)
class BookingRow:
    """One active booking as the calendar needs it (plain values, no ORM object)."""

    id: int
    therapist_id: int
    room_id: int
    service_id: int
    client_id: int
    start: datetime
    end: datetime
    status: str
    client_name: str
    service_name: str
    room_name: str
    blocked_start: datetime | None = None  # buffers included
    blocked_end: datetime | None = None


@dataclass(frozen=True)
class CalendarEvent:
    """One block on the grid. Times are aware UTC; the API shows them in the clinic zone."""

    kind: str
    start: datetime
    end: datetime
    therapist_id: int | None
    booking_id: int | None = None
    status: str | None = None
    conflict: bool = False
    room_id: int | None = None
    service_id: int | None = None
    client_id: int | None = None
    label: str = ""
    client_name: str = ""
    service_name: str = ""
    flags: tuple[str, ...] = ()
    held: Interval | None = None  # a booking's held time, buffers included


@dataclass
class CalendarData:
    """Events of a range plus what a page needs to label its columns."""

    tz: ZoneInfo
    date_from: date
    date_to: date
    events: list[CalendarEvent]
    therapists: list[tuple[int, str]]  # (id, name) of the columns, ascending id
    rooms: list[tuple[int, str]] = field(default_factory=list)

    @property
    def conflicts(self) -> list[CalendarEvent]:
        """Bookings overlapping time off or a closure, soonest first."""
        return sorted((e for e in self.events if e.conflict), key=lambda e: e.start)


def local_midnight(day: date, tz: ZoneInfo) -> datetime:
    """UTC instant of 00:00 local on ``day`` (23- and 25-hour days included)."""
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)


def _wall(day: date, wall: time, tz: ZoneInfo) -> datetime:
    # Same reading as the slot search: fold=0, a time in the spring gap maps forward.
    return datetime.combine(day, wall, tzinfo=tz).astimezone(UTC)


def _days(first: date, last: date) -> Iterable[date]:
    day = first
    while day <= last:
        yield day
        day += ONE_DAY


def _time_off(schedule: pure.TherapistSchedule, day: date, tz: ZoneInfo) -> list[Interval]:
    """The therapist's "off" overrides on ``day`` as UTC intervals (whole days included)."""
    out: list[Interval] = []
    for row in schedule.overrides:
        if row.kind != "off" or not row.start_date <= day <= row.end_date:
            continue
        if row.start_time is None or row.end_time is None:
            out.append(Interval(local_midnight(day, tz), local_midnight(day + ONE_DAY, tz)))
        else:
            out.append(Interval(_wall(day, row.start_time, tz), _wall(day, row.end_time, tz)))
    return sorted(out)


def _overlaps(start: datetime, end: datetime, intervals: Iterable[Interval]) -> bool:
    return any(start < i.end and i.start < end for i in intervals)


def build_events(
    *,
    tz: ZoneInfo,
    date_from: date,
    date_to: date,
    schedules: Sequence[pure.TherapistSchedule],
    closures: Sequence[tuple[date, date]],
    bookings: Sequence[BookingRow],
    flags: dict[int, tuple[str, ...]] | None = None,
) -> list[CalendarEvent]:
    """Every event on local dates ``date_from..date_to`` (inclusive), sorted by start.

    Per therapist and local date: ``working`` intervals (hours after time off; none on a
    closed day), ``time_off`` (whole days from midnight to midnight). Per closed date one
    ``closure`` event without a therapist. Per booking one ``booking`` event, ``conflict``
    when it overlaps that therapist's time off or a closure. ``flags`` are the intake flag
    labels per client id, already filtered by the health-data rule by the caller.
    """
    flags = flags or {}
    closed: set[date] = set()
    for first, last in closures:
        closed.update(_days(max(first, date_from), min(last, date_to)))
    events: list[CalendarEvent] = []
    closure_spans = [Interval(local_midnight(d, tz), local_midnight(d + ONE_DAY, tz))
                     for d in sorted(closed)]
    for span in closure_spans:
        events.append(CalendarEvent("closure", span.start, span.end, None, label="Clinic closed"))
    off_by_therapist: dict[int, list[Interval]] = {}
    for schedule in schedules:
        tid = schedule.therapist_id
        for day in _days(date_from, date_to):
            off = _time_off(schedule, day, tz)
            off_by_therapist.setdefault(tid, []).extend(off)
            for span in off:
                events.append(CalendarEvent("time_off", span.start, span.end, tid,
                                            label="Time off"))
            if day in closed:
                continue
            for span in pure.working_intervals(schedule, day, tz):
                events.append(CalendarEvent("working", span.start, span.end, tid,
                                            label="Working"))
    for row in bookings:
        conflict = (_overlaps(row.start, row.end, off_by_therapist.get(row.therapist_id, ()))
                    or _overlaps(row.start, row.end, closure_spans))
        events.append(CalendarEvent(
            "booking", row.start, row.end, row.therapist_id, booking_id=row.id,
            status=row.status, conflict=conflict, room_id=row.room_id,
            service_id=row.service_id, client_id=row.client_id,
            label=f"{row.client_name} · {row.service_name}", client_name=row.client_name,
            service_name=row.service_name,
            held=Interval(row.blocked_start or row.start, row.blocked_end or row.end),
            flags=flags.get(row.client_id, ()),
        ))
    order = {kind: i for i, kind in enumerate(("closure", "time_off", "working", "booking"))}
    events.sort(key=lambda e: (e.start, order[e.kind], e.therapist_id or 0, e.booking_id or 0))
    return events


def _columns(session: Session, viewer: User, therapist_id: int | None) -> list[tuple[int, str]]:
    """The therapists ``viewer`` may see in this call, as (id, name); NotFound otherwise."""
    if viewer.role == Role.THERAPIST.value:
        own = booking_svc.therapist_for_user(session, viewer)
        if own is None or (therapist_id is not None and therapist_id != own.id):
            raise NotFound("There is no such therapist.",
                           fields={"therapist_id": "No such therapist."})
        return [(own.id, viewer.name)]
    if viewer.role != Role.ADMIN.value:
        raise NotFound("Not found.")
    stmt = (select(Therapist.id, User.name).join(User, User.id == Therapist.user_id)
            .order_by(Therapist.id))
    if therapist_id is not None:
        stmt = stmt.where(Therapist.id == therapist_id)
    else:
        stmt = stmt.where(Therapist.active.is_(True))
    rows = [(tid, name) for tid, name in session.execute(stmt)]
    if therapist_id is not None and not rows:
        raise NotFound("There is no such therapist.",
                       fields={"therapist_id": "No such therapist."})
    return rows


def _booking_rows(session: Session, therapist_ids: list[int], lo: datetime,
                  hi: datetime) -> list[BookingRow]:
    """Active bookings of ``therapist_ids`` overlapping ``[lo, hi)``, one query.

    ``blocked_start > lo - longest hold`` bounds the ``(therapist_id, blocked_start)`` index on
    both sides (see engineering.md "Speed targets").
    """
    if not therapist_ids:
        return []
    stmt = (
        select(Booking.id, Booking.therapist_id, Booking.room_id, Booking.service_id,
               Booking.client_id, Booking.start_at, Booking.end_at, Booking.status,
               User.name, Service.name, Room.name, Booking.blocked_start, Booking.blocked_end)
        .join(User, User.id == Booking.client_id)
        .join(Service, Service.id == Booking.service_id)
        .join(Room, Room.id == Booking.room_id)
        .where(Booking.therapist_id.in_(therapist_ids),
               Booking.status != BookingStatus.CANCELLED.value,
               Booking.blocked_start > lo - MAX_BLOCKED,
               Booking.start_at < hi,
               Booking.end_at > lo)
        .order_by(Booking.start_at, Booking.id)
    )
    return [BookingRow(*row) for row in session.execute(stmt)]


def _flags_for(session: Session, viewer: User, client_ids: set[int],
               now: datetime) -> dict[int, tuple[str, ...]]:
    """Intake flag labels of the clients ``viewer`` may see health data of (care's rule).

    Showing a flag is a staff read of health data, so each client shown is audited, as on
    the therapist's day page.
    """
    visible = {cid for cid in client_ids if care.can_see_health(session, viewer, cid)}
    if not visible:
        return {}
    out: dict[int, tuple[str, ...]] = {}
    for row in session.scalars(select(Intake).where(Intake.client_id.in_(visible))):
        if row.flags:
            out[row.client_id] = tuple(care.FLAG_LABELS.get(f, f) for f in row.flags)
            record_read(session, viewer, "read:intake_flags", row.client_id, "intake", row.id,
                        now)
    return out


def calendar_events(
    session: Session,
    viewer: User,
    *,
    date_from: date,
    date_to: date,
    now: datetime,
    therapist_id: int | None = None,
    with_flags: bool = True,
) -> CalendarData:
    """The calendar of local dates ``date_from..date_to`` as ``viewer`` may see it.

    Raises ValidationFailed (``invalid_range``, ``range_too_long``) or NotFound (a client,
    another therapist's calendar, an unknown therapist). ``with_flags`` adds the intake flag
    labels (audited); the JSON API leaves them out.
    """
    check_range(date_from, date_to)
    columns = _columns(session, viewer, therapist_id)
    tz = clinic_zone(session)
    tids = [tid for tid, _ in columns]
    schedules, closures = load_schedules(session, therapist_ids=tids, date_from=date_from,
                                         date_to=date_to)
    lo = local_midnight(date_from, tz)
    hi = local_midnight(date_to + ONE_DAY, tz)
    rows = _booking_rows(session, tids, lo, hi)
    flags = _flags_for(session, viewer, {r.client_id for r in rows}, now) if with_flags else {}
    events = build_events(tz=tz, date_from=date_from, date_to=date_to, schedules=schedules,
                          closures=closures, bookings=rows, flags=flags)
    rooms = sorted({(r.room_id, r.room_name) for r in rows})
    return CalendarData(tz, date_from, date_to, events, columns, rooms)


# --- acting from the calendar: private notes, time off and closures over bookings ------------

NOTE_MAX = 5000


def save_private_note(session: Session, booking: Booking, *, actor: User, text: str,
                      now: datetime) -> Booking:
    """The booking's therapist (or an admin) keeps a private note on it (never emailed).

    NotFound for anyone else (a client included, even on their own booking).
    """
    if actor.role == Role.ADMIN.value:
        pass
    elif actor.role == Role.THERAPIST.value:
        own = booking_svc.therapist_for_user(session, actor)
        if own is None or own.id != booking.therapist_id:
            raise NotFound("There is no such booking.")
    else:
        raise NotFound("There is no such booking.")
    clean = (text or "").strip()
    if len(clean) > NOTE_MAX:
        raise ValidationFailed(f"At most {NOTE_MAX} characters.",
                               fields={"private_note": f"At most {NOTE_MAX} characters."})
    booking.private_note = clean
    booking.updated_at = now
    session.flush()
    return booking


@dataclass
class Covered:
    """What a saved time off or closure covers: its description and the open bookings."""

    kind: str  # time_off or closure
    item_id: int
    description: str
    bookings: list[Booking]


def covered_bookings(session: Session, viewer: User, *, kind: str, item_id: int,
                     now: datetime) -> Covered:
    """Pending or booked sessions from ``now`` on that a time off (``HoursOverride`` of kind
    off) or a closure covers, soonest first. A therapist may ask about their own time off
    only; closures are the admin's. Anything else is NotFound."""
    tz = clinic_zone(session)
    if kind == "time_off":
        row = session.get(HoursOverride, item_id) if 0 < item_id <= 2**31 - 1 else None
        if row is None or row.kind != "off":
            raise NotFound("Not found.")
        if viewer.role == Role.THERAPIST.value:
            own = booking_svc.therapist_for_user(session, viewer)
            if own is None or own.id != row.therapist_id:
                raise NotFound("Not found.")
        elif viewer.role != Role.ADMIN.value:
            raise NotFound("Not found.")
        schedule = pure.TherapistSchedule(row.therapist_id, (), (pure.HoursOverride(
            row.start_date, row.end_date, "off", row.start_time, row.end_time),))
        spans = [span for day in _days(row.start_date, row.end_date)
                 for span in _time_off(schedule, day, tz)]
        therapist_ids: list[int] | None = [row.therapist_id]
        when = (f"{row.start_date:%a %d %b}" if row.start_date == row.end_date
                else f"{row.start_date:%a %d %b} – {row.end_date:%a %d %b}")
        if row.start_time is not None and row.end_time is not None:
            when += f", {row.start_time:%H:%M}–{row.end_time:%H:%M}"
        description = f"Time off {when}" + (f" ({row.reason})" if row.reason else "")
        first, last = row.start_date, row.end_date
    elif kind == "closure":
        if viewer.role != Role.ADMIN.value:
            raise NotFound("Not found.")
        closure = session.get(Closure, item_id) if 0 < item_id <= 2**31 - 1 else None
        if closure is None:
            raise NotFound("Not found.")
        spans = [Interval(local_midnight(d, tz), local_midnight(d + ONE_DAY, tz))
                 for d in _days(closure.start_date, closure.end_date)]
        therapist_ids = None
        description = (f"Clinic closed {closure.start_date:%a %d %b}"
                       + ("" if closure.end_date == closure.start_date
                          else f" – {closure.end_date:%a %d %b}")
                       + (f" ({closure.reason})" if closure.reason else ""))
        first, last = closure.start_date, closure.end_date
    else:
        raise NotFound("Not found.")
    lo = max(local_midnight(first, tz), now)
    hi = local_midnight(last + ONE_DAY, tz)
    stmt = select(Booking).where(
        Booking.status.in_((BookingStatus.PENDING.value, BookingStatus.BOOKED.value)),
        Booking.start_at < hi, Booking.end_at > lo,
        Booking.blocked_start > lo - MAX_BLOCKED,
    ).order_by(Booking.start_at, Booking.id)
    if therapist_ids is not None:
        stmt = stmt.where(Booking.therapist_id.in_(therapist_ids))
    found = [b for b in session.scalars(stmt) if _overlaps(b.start_at, b.end_at, spans)]
    return Covered(kind, item_id, description, found)


def cancel_covered(session: Session, viewer: User, covered: Covered, booking_ids: Iterable[int],
                   *, message: str, now: datetime) -> list[Booking]:
    """Cancel the chosen covered bookings with ``message`` (the client is told by the normal
    cancellation email). Ids outside ``covered`` are ignored; ValidationFailed without a
    message or without a choice."""
    chosen = set(booking_ids)
    targets = [b for b in covered.bookings if b.id in chosen]
    text = " ".join((message or "").split())
    if not targets:
        raise ValidationFailed("Choose at least one booking to cancel.",
                               fields={"booking_ids": "Choose at least one."})
    if not text:
        raise ValidationFailed("Write the message the clients will get.",
                               fields={"message": "Required to cancel."})
    for booking in targets:
        booking_svc.cancel(session, booking, actor=viewer, now=now, reason=text[:255])
    return targets
