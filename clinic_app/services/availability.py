"""Slot search against the database: load once, then the pure search does the rest.

:func:`search_slots` (the API, the picker) keeps the catalogue -- settings, services, hours,
overrides, closures -- cached per process behind the catalogue stamp
(:mod:`clinic_app.models.catalog_stamp`): while the stamp is unchanged a search is ONE
statement (the stamp and the bookings in one ``UNION ALL``); a cold cache costs four, a stale
one at most five, whatever the date range or the number of bookings (a test counts them).

The booking path re-checks one day inside its write transaction
(:func:`load_service`, :func:`load_booking_data`): the service with its active therapists
and rooms and the catalogue stamp (one joined query), then the active bookings whose blocked
interval overlaps the day, with an index-bounded filter on ``blocked_start`` (see
engineering.md "Speed targets"). Hours, overrides and closures come from the same cached
catalogue while the stamp read with the service is its stamp, else from a reload. The
settings row is the session's (``services.settings.get_settings``).
:func:`load_search_data` reads the schedules afresh instead (one ``UNION ALL`` of weekly
hours, overrides and closures, each branch bounded by its own index).

Rows are read as plain tuples, not ORM entities: loading hundreds of objects would cost more
than the search itself. The pure functions live in :mod:`clinic_app.scheduling.availability`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from dataclasses import field
from datetime import UTC
from datetime import date
from datetime import datetime
from datetime import time
from datetime import timedelta
from typing import Any
from weakref import WeakKeyDictionary
from zoneinfo import ZoneInfo

from sqlalchemy import Date
from sqlalchemy import Integer
from sqlalchemy import String
from sqlalchemy import Time
from sqlalchemy import and_
from sqlalchemy import bindparam
from sqlalchemy import cast
from sqlalchemy import literal_column
from sqlalchemy import null
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy import union_all
from sqlalchemy.orm import Session

from clinic_app.db import UTCDateTime
from clinic_app.db import raw_timestamp
from clinic_app.db import utc_from_raw
from clinic_app.errors import DomainError
from clinic_app.errors import NotFound
from clinic_app.errors import ValidationFailed
from clinic_app.models.booking import MAX_BLOCKED_MINUTES
from clinic_app.models.booking import Booking
from clinic_app.models.booking import BookingStatus
from clinic_app.models.catalog_stamp import STAMP_ROW_ID
from clinic_app.models.catalog_stamp import CatalogStamp
from clinic_app.models.schedule import ClinicSettings
from clinic_app.models.schedule import Closure
from clinic_app.models.schedule import HoursOverride
from clinic_app.models.schedule import Room
from clinic_app.models.schedule import Service
from clinic_app.models.schedule import Therapist
from clinic_app.models.schedule import WeeklyHours
from clinic_app.models.schedule import service_rooms
from clinic_app.models.schedule import service_therapists
from clinic_app.scheduling import availability as pure
from clinic_app.scheduling.intervals import Interval
from clinic_app.services.settings import get_settings
from clinic_app.validation import check_dates

MAX_RANGE_DAYS = 62
MAX_BLOCKED = timedelta(minutes=MAX_BLOCKED_MINUTES)

__all__ = [
    "MAX_RANGE_DAYS",
    "SearchData",
    "ServiceInfo",
    "check_range",
    "load_schedules",
    "load_booking_data",
    "load_search_data",
    "load_service",
    "rules_from",
    "search_slot_starts",
    "search_slots",
]


@dataclass(frozen=True)
class ServiceInfo:
    """A service as the scheduler sees it (plain values, no ORM object)."""

    id: int
    name: str
    active: bool
    duration_minutes: int
    buffer_before_minutes: int
    buffer_after_minutes: int
    price_cents: int
    therapist_ids: tuple[int, ...]  # active therapists offering it, ascending
    room_ids: tuple[int, ...]  # active suitable rooms, ascending
    # The catalogue stamp read in the same statement (load_service), None when not read: it
    # tells the booking path whether this process's cached schedules are current. Not part
    # of the service's value (two reads of an unchanged service are equal).
    stamp: int | None = field(default=None, compare=False)

    @property
    def spec(self) -> pure.ServiceSpec:
        """The pure module's view of this service."""
        return pure.ServiceSpec(
            duration=timedelta(minutes=self.duration_minutes),
            buffer_before=timedelta(minutes=self.buffer_before_minutes),
            buffer_after=timedelta(minutes=self.buffer_after_minutes),
            room_ids=self.room_ids,
        )


@dataclass(frozen=True)
class SearchData:
    """Everything :func:`find_slots` / :func:`check_start` need, loaded for one range."""

    rules: pure.Rules
    service: ServiceInfo
    therapists: tuple[pure.TherapistSchedule, ...]
    closures: tuple[tuple[date, date], ...]
    therapist_busy: dict[int, list[Interval]]
    room_busy: dict[int, list[Interval]]
    # Holds that had expired by ``now`` (not busy), as (therapist id, room id, held time):
    # a booking deletes them only when one lies in its way (booking.delete_expired_holds).
    expired_holds: tuple[tuple[int | None, int | None, Interval], ...] = ()


def rules_from(settings: ClinicSettings) -> pure.Rules:
    """The pure booking rules from the clinic's settings row."""
    return pure.Rules(
        tz=ZoneInfo(settings.timezone),
        min_notice=timedelta(minutes=settings.min_notice_minutes),
        horizon=timedelta(days=settings.horizon_days),
        step=timedelta(minutes=settings.slot_step_minutes),
    )


# The hot-path statements are built once, with bind parameters, and run on the Core
# connection: building expressions and going through the ORM layer cost more than the
# SQL itself here (measured with cProfile in bench/availability.py).
_SERVICE_COLUMNS = (
    Service.id,
    Service.name,
    Service.active,
    Service.duration_minutes,
    Service.buffer_before_minutes,
    Service.buffer_after_minutes,
    Service.price_cents,
    Therapist.id,
    Room.id,
)
_SERVICE_STMT = (
    select(
        *_SERVICE_COLUMNS,
        select(CatalogStamp.stamp).where(CatalogStamp.id == STAMP_ROW_ID).scalar_subquery(),
    )
    .select_from(Service)
    .outerjoin(service_therapists, service_therapists.c.service_id == Service.id)
    .outerjoin(
        Therapist,
        and_(Therapist.id == service_therapists.c.therapist_id, Therapist.active.is_(True)),
    )
    .outerjoin(service_rooms, service_rooms.c.service_id == Service.id)
    .outerjoin(Room, and_(Room.id == service_rooms.c.room_id, Room.active.is_(True)))
    .where(Service.id == bindparam("service_id"))
)


def load_service(session: Session, service_id: int) -> ServiceInfo:
    """The service with its active therapists and rooms and the catalogue stamp, in one
    query; NotFound if missing."""
    rows = session.connection().execute(_SERVICE_STMT, {"service_id": service_id}).all()
    if not rows:
        raise NotFound("There is no such service.", fields={"service_id": "No such service."})
    first = rows[0]
    return ServiceInfo(
        id=first[0],
        name=first[1],
        active=bool(first[2]),
        duration_minutes=first[3],
        buffer_before_minutes=first[4],
        buffer_after_minutes=first[5],
        price_cents=first[6],
        therapist_ids=tuple(sorted({r[7] for r in rows if r[7] is not None})),
        room_ids=tuple(sorted({r[8] for r in rows if r[8] is not None})),
        stamp=first[9],
    )


def _local_midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)


def _schedule_statement() -> Any:
    """Weekly hours, overrides and closures for ``:tids`` and ``:date_from..:date_to``."""
    weekly = select(
        literal_column("'w'").label("src"),
        WeeklyHours.therapist_id.label("tid"),
        WeeklyHours.weekday.label("weekday"),
        WeeklyHours.effective_from.label("d1"),
        cast(null(), Date).label("d2"),
        cast(null(), String).label("kind"),
        WeeklyHours.start_time.label("t1"),
        WeeklyHours.end_time.label("t2"),
    ).where(
        WeeklyHours.therapist_id.in_(bindparam("tids", expanding=True)),
        WeeklyHours.effective_from <= bindparam("date_to"),
    )
    overrides = select(
        literal_column("'o'"),
        HoursOverride.therapist_id,
        cast(null(), Integer),
        HoursOverride.start_date,
        HoursOverride.end_date,
        HoursOverride.kind,
        HoursOverride.start_time,
        HoursOverride.end_time,
    ).where(
        HoursOverride.therapist_id.in_(bindparam("tids", expanding=True)),
        HoursOverride.start_date <= bindparam("date_to"),
        HoursOverride.end_date >= bindparam("date_from"),
    )
    closures_q = select(
        literal_column("'c'"),
        cast(null(), Integer),
        cast(null(), Integer),
        Closure.start_date,
        Closure.end_date,
        cast(null(), String),
        cast(null(), Time),
        cast(null(), Time),
    ).where(
        Closure.start_date <= bindparam("date_to"), Closure.end_date >= bindparam("date_from")
    )
    return union_all(weekly, overrides, closures_q)


_SCHEDULE_STMT = _schedule_statement()
_BUSY_STMTS: dict[str, Any] = {}


def _busy_statement(dialect: str) -> Any:
    """Held time of active bookings touching ``[:lo, :hi)`` for ``:tids`` or ``:rids``.

    ``blocked_start > :lo_bound`` (``:lo`` minus the longest possible hold) bounds the
    ``blocked_start`` index on both sides; ``blocked_end > :lo`` is the true filter.
    Timestamps are read raw (see :func:`clinic_app.db.raw_timestamp`). The last column
    says whether the row is a hold that expired by ``:hold_alive_at``: such a hold never
    blocks (issue 12.1), but it is read, so that a booking knows whether one lies in its way
    and needs deleting (a DELETE on every booking was a round trip that almost never
    deleted anything).
    """
    stmt = _BUSY_STMTS.get(dialect)
    if stmt is None:
        stmt = select(
            Booking.therapist_id,
            Booking.room_id,
            raw_timestamp(Booking.blocked_start, dialect),
            raw_timestamp(Booking.blocked_end, dialect),
            and_(Booking.status == BookingStatus.HELD.value,
                 Booking.expires_at <= bindparam("hold_alive_at", type_=UTCDateTime()),
                 ).label("hold_expired"),
        ).where(
            Booking.status != BookingStatus.CANCELLED.value,
            Booking.blocked_start > bindparam("lo_bound"),
            Booking.blocked_start < bindparam("hi"),
            Booking.blocked_end > bindparam("lo"),
            or_(
                Booking.therapist_id.in_(bindparam("tids", expanding=True)),
                Booking.room_id.in_(bindparam("rids", expanding=True)),
            ),
            Booking.id != bindparam("exclude_id"),
        )
        _BUSY_STMTS[dialect] = stmt
    return stmt


def load_schedules(
    session: Session, *, therapist_ids: Iterable[int], date_from: date, date_to: date
) -> tuple[tuple[pure.TherapistSchedule, ...], tuple[tuple[date, date], ...]]:
    """Weekly hours and overrides of ``therapist_ids`` plus the clinic's closures that touch
    local dates ``date_from..date_to``, in one ``UNION ALL`` statement.

    Shared by the slot search and the staff calendar (``services.staff_calendar``), so both
    read the schedule the same way. Schedules come back in ascending therapist id.
    """
    tids = sorted(set(therapist_ids))
    weekly_rows: dict[int, list[pure.WeeklyRange]] = {t: [] for t in tids}
    override_rows: dict[int, list[pure.HoursOverride]] = {t: [] for t in tids}
    closures: list[tuple[date, date]] = []
    for src, tid, weekday, d1, d2, kind, t1, t2 in session.connection().execute(
        _SCHEDULE_STMT, {"tids": tids, "date_from": date_from, "date_to": date_to}
    ):
        if src == "w":
            weekly_rows[tid].append(pure.WeeklyRange(weekday, t1, t2, d1))
        elif src == "o":
            override_rows[tid].append(pure.HoursOverride(d1, d2, kind, t1, t2))
        else:
            closures.append((d1, d2))
    schedules = tuple(
        pure.TherapistSchedule(t, tuple(weekly_rows[t]), tuple(override_rows[t])) for t in tids
    )
    return schedules, tuple(closures)


def load_search_data(
    session: Session,
    *,
    settings: ClinicSettings,
    service: ServiceInfo,
    therapist_ids: Iterable[int],
    date_from: date,
    date_to: date,
    exclude_booking_id: int | None = None,
    now: datetime | None = None,
) -> SearchData:
    """Load schedules, closures and busy time for local dates ``date_from..date_to``.

    Two statements: one ``UNION ALL`` over weekly hours, overrides and closures, and one
    index-bounded range query over bookings. ``exclude_booking_id`` leaves a booking out of
    the busy time (a booking being moved must not collide with itself). Holds that expired
    by ``now`` are not busy (without ``now`` every hold counts, the safe side).
    """
    tids = sorted(set(therapist_ids))
    schedules, closures = load_schedules(session, therapist_ids=tids, date_from=date_from,
                                         date_to=date_to)
    return _with_busy(session, settings=settings, service=service, tids=tids,
                      schedules=schedules, closures=closures, date_from=date_from,
                      date_to=date_to, exclude_booking_id=exclude_booking_id, now=now)


def _with_busy(
    session: Session,
    *,
    settings: ClinicSettings,
    service: ServiceInfo,
    tids: list[int],
    schedules: tuple[pure.TherapistSchedule, ...],
    closures: tuple[tuple[date, date], ...],
    date_from: date,
    date_to: date,
    exclude_booking_id: int | None,
    now: datetime | None,
) -> SearchData:
    """The :class:`SearchData` of these schedules, with the busy time read (one statement)."""
    rules = rules_from(settings)
    conn = session.connection()

    # Busy time that can touch a slot of these dates: a slot's blocked interval reaches
    # buffer_before before the first local midnight and duration + buffer_after past the last.
    lo = _local_midnight(date_from, rules.tz) - timedelta(minutes=service.buffer_before_minutes)
    hi = _local_midnight(date_to + timedelta(days=1), rules.tz) + timedelta(
        minutes=service.duration_minutes + service.buffer_after_minutes
    )
    rids = list(service.room_ids)
    busy_rows = conn.execute(
        _busy_statement(conn.dialect.name),
        {"tids": tids, "rids": rids, "lo": lo, "hi": hi, "lo_bound": lo - MAX_BLOCKED,
         "exclude_id": exclude_booking_id or 0,
         "hold_alive_at": now if now is not None else datetime.min.replace(tzinfo=UTC)},
    ).all()  # one fetchall: iterating the result would fetch row by row
    therapist_busy: dict[int, list[Interval]] = {}
    room_busy: dict[int, list[Interval]] = {}
    tset = set(tids)
    rset = set(rids)
    expired: list[tuple[int | None, int | None, Interval]] = []
    for tid, rid, b_start, b_end, hold_expired in busy_rows:
        interval = Interval(utc_from_raw(b_start), utc_from_raw(b_end))
        if hold_expired:
            expired.append((tid, rid, interval))
            continue
        if tid in tset:
            therapist_busy.setdefault(tid, []).append(interval)
        if rid in rset:
            room_busy.setdefault(rid, []).append(interval)
    return SearchData(
        rules=rules,
        service=service,
        therapists=schedules,
        closures=closures,
        therapist_busy=therapist_busy,
        room_busy=room_busy,
        expired_holds=tuple(expired),
    )


def bookable_service(session: Session, service_id: int, therapist_id: int | None) -> ServiceInfo:
    """The service, checked active and (when given) offered by ``therapist_id`` (the same
    rule the cached search applies, :func:`_checked`)."""
    return _checked(load_service(session, service_id), therapist_id)


def check_range(date_from: date, date_to: date) -> None:
    """ValidationFailed (``invalid_range``, ``range_too_long``) unless ``date_from <= date_to``
    and the range has at most :data:`MAX_RANGE_DAYS` local dates (the slot search and the
    staff calendar share this limit)."""
    if date_from > date_to:
        raise ValidationFailed(
            "'from' must not be after 'to'.",
            code="invalid_range",
            fields={"to": "Must not be before 'from'."},
        )
    if (date_to - date_from).days + 1 > MAX_RANGE_DAYS:
        raise ValidationFailed(
            f"Ask for at most {MAX_RANGE_DAYS} days at a time.",
            code="range_too_long",
            fields={"to": f"At most {MAX_RANGE_DAYS} days after 'from'."},
        )


def _check_window(now: datetime, tz: ZoneInfo, date_from: date, date_to: date) -> None:
    """Far-off dates are typos, and near years 1 and 9999 the day arithmetic overflows."""
    check_dates(now.astimezone(tz).date(), "Search dates are out of range.",
                **{"from": date_from, "to": date_to})


# --------------------------------------------------------------------------------------------
# The search's fast path: catalogue cached per process, one statement per search on a hit.


@dataclass(frozen=True)
class Catalog:
    """Settings, services and hours as of one catalogue stamp (see models/catalog_stamp.py)."""

    stamp: int | None  # None: no stamp row, so this catalogue is never reused
    rules: pure.Rules
    services: dict[int, ServiceInfo]
    schedules: dict[int, pure.TherapistSchedule]  # every therapist's hours, all dates
    closures: tuple[tuple[date, date], ...]
    # pure.working_micros of these schedules in this zone, per therapist id and local date,
    # filled as searches need them (_working): they depend on nothing else, so they stay
    # right while this catalogue is used, and a changed catalogue starts an empty memo.
    working: dict[int, dict[date, tuple[pure.Triple, ...]]] = field(
        default_factory=dict, compare=False, repr=False)


# One catalogue per engine (a process may serve several databases: tests, benchmarks). Only
# reused while the stamp read in the same statement as the bookings is the one it was loaded
# with; a stale entry is replaced, never patched.
_CATALOGS: WeakKeyDictionary[Any, Catalog] = WeakKeyDictionary()

# On PostgreSQL the stamp is the writing transaction's id, the same for every change that
# one transaction makes: a catalogue loaded by the transaction that wrote the stamp could
# change again under the same stamp, so it is labelled with no stamp (NULL) and not kept.
_SETTINGS_SQL = {
    dialect: "SELECT (SELECT " + stamp + " FROM catalog_stamp WHERE id = 1), timezone,"  # noqa: S608
    " min_notice_minutes, horizon_days, slot_step_minutes FROM clinic_settings"
    " ORDER BY id LIMIT 1"
    for dialect, stamp in (("sqlite", "stamp"),
                           ("postgresql", "NULLIF(stamp, txid_current_if_assigned())"))
}


def _all_services_statement() -> Any:
    """``_SERVICE_STMT`` without its ``service_id`` filter and the stamp: every service in
    one query."""
    return (
        select(*_SERVICE_COLUMNS)
        .select_from(Service)
        .outerjoin(service_therapists, service_therapists.c.service_id == Service.id)
        .outerjoin(
            Therapist,
            and_(Therapist.id == service_therapists.c.therapist_id, Therapist.active.is_(True)),
        )
        .outerjoin(service_rooms, service_rooms.c.service_id == Service.id)
        .outerjoin(Room, and_(Room.id == service_rooms.c.room_id, Room.active.is_(True)))
    )


_ALL_SERVICES_STMT = _all_services_statement()
_ALL_SCHEDULES_SQL = (
    "SELECT 'w', therapist_id, weekday, effective_from, NULL, NULL, start_time, end_time"
    " FROM weekly_hours"
    " UNION ALL SELECT 'o', therapist_id, NULL, start_date, end_date, kind, start_time, end_time"
    " FROM hours_overrides"
    " UNION ALL SELECT 'c', NULL, NULL, start_date, end_date, NULL, NULL, NULL FROM closures"
)


def _as_date(value: Any) -> date:
    return date.fromisoformat(value) if isinstance(value, str) else value


def _as_time(value: Any) -> time | None:
    if value is None or isinstance(value, time):
        return value
    return time.fromisoformat(value)


def _load_catalog(session: Session) -> Catalog:
    """Settings (with the stamp, in one statement), every service, every schedule: 3 reads.

    The stamp is read first, so a change committed while the rest is read makes the stored
    stamp stale (the next search reloads) and never labels old rows with a new stamp.
    """
    conn = session.connection()
    sql = _SETTINGS_SQL[conn.dialect.name]
    row = conn.exec_driver_sql(sql).first()
    if row is None:  # first use of a new database: create the settings row (a write)
        get_settings(session)
        row = conn.exec_driver_sql(sql).first()
    stamp, zone, notice, horizon, step = row
    rules = pure.Rules(tz=ZoneInfo(zone), min_notice=timedelta(minutes=notice),
                       horizon=timedelta(days=horizon), step=timedelta(minutes=step))
    by_service: dict[int, list[Any]] = {}
    for r in conn.execute(_ALL_SERVICES_STMT).all():
        by_service.setdefault(r[0], []).append(r)
    services = {
        sid: ServiceInfo(
            id=sid, name=rows[0][1], active=bool(rows[0][2]), duration_minutes=rows[0][3],
            buffer_before_minutes=rows[0][4], buffer_after_minutes=rows[0][5],
            price_cents=rows[0][6],
            therapist_ids=tuple(sorted({r[7] for r in rows if r[7] is not None})),
            room_ids=tuple(sorted({r[8] for r in rows if r[8] is not None})),
        )
        for sid, rows in by_service.items()
    }
    weekly: dict[int, list[pure.WeeklyRange]] = {}
    overrides: dict[int, list[pure.HoursOverride]] = {}
    closures: list[tuple[date, date]] = []
    for src, tid, weekday, d1, d2, kind, t1, t2 in conn.exec_driver_sql(_ALL_SCHEDULES_SQL):
        if src == "w":
            weekly.setdefault(tid, []).append(
                pure.WeeklyRange(weekday, _as_time(t1), _as_time(t2), _as_date(d1)))
        elif src == "o":
            overrides.setdefault(tid, []).append(pure.HoursOverride(
                _as_date(d1), _as_date(d2), kind, _as_time(t1), _as_time(t2)))
        else:
            closures.append((_as_date(d1), _as_date(d2)))
    schedules = {
        tid: pure.TherapistSchedule(tid, tuple(weekly.get(tid, ())), tuple(overrides.get(tid, ())))
        for tid in set(weekly) | set(overrides)
    }
    return Catalog(stamp=stamp, rules=rules, services=services, schedules=schedules,
                   closures=tuple(sorted(closures)))


_BUSY_SQL: dict[tuple[str, int, int, bool], str] = {}


def _busy_sql(dialect: str, n_tids: int, n_rids: int, with_stamp: bool) -> str:
    """The bookings range query (plus, first, the catalogue stamp row) as driver SQL.

    Same filter as :func:`_busy_statement`; times come back as epoch microseconds computed
    by the database (exact: SQLAlchemy stores SQLite times with six fractional digits), so no
    datetime is made per row.
    """
    key = (dialect, n_tids, n_rids, with_stamp)
    sql = _BUSY_SQL.get(key)
    if sql is None:
        mark = "?" if dialect == "sqlite" else "%s"
        if dialect == "sqlite":
            def micros(col: str) -> str:
                return (f"(CAST(strftime('%s', {col}) AS INTEGER) * 1000000"
                        f" + CAST(substr({col}, 21, 6) AS INTEGER))")
        else:
            def micros(col: str) -> str:
                return f"CAST(EXTRACT(EPOCH FROM {col}) * 1000000 AS BIGINT)"
        who = " OR ".join(part for part in (
            f"therapist_id IN ({', '.join([mark] * n_tids)})" if n_tids else "",
            f"room_id IN ({', '.join([mark] * n_rids)})" if n_rids else "") if part) or "1 = 0"
        # Only fixed column names and placeholders are interpolated: no value reaches the SQL.
        sql = (
            f"SELECT therapist_id, room_id, {micros('blocked_start')}, {micros('blocked_end')}"  # noqa: S608
            f" FROM bookings WHERE status != 'cancelled' AND blocked_start > {mark}"
            f" AND blocked_start < {mark} AND blocked_end > {mark} AND ({who})"
            f" AND id != {mark}"
            # A hold blocks until it expires; an expired one never does (issue 12.1).
            f" AND (status != 'held' OR expires_at > {mark})"
        )
        if with_stamp:
            sql = f"SELECT NULL, NULL, stamp, NULL FROM catalog_stamp WHERE id = 1 UNION ALL {sql}"  # noqa: S608, E501
        _BUSY_SQL[key] = sql
    return sql


def _db_time(value: datetime, dialect: str) -> Any:
    """A bound timestamp as the column stores it (naive UTC text on SQLite)."""
    value = value.astimezone(UTC)
    if dialect == "sqlite":
        # Always six fractional digits, as SQLAlchemy stores them: the columns compare as
        # text, and "08:10:00" sorts before "08:10:00.000000" (the same instant).
        return value.replace(tzinfo=None).isoformat(" ", timespec="microseconds")
    return value


# Dates one therapist's memo may hold before it starts afresh (a long-lived process walks
# into new dates; 400 of them are about 100 KiB per therapist).
_WORKING_MEMO_DAYS = 400


def _working(catalog: Catalog, schedules: tuple[pure.TherapistSchedule, ...],
             date_from: date, date_to: date) -> dict[int, dict[date, tuple[pure.Triple, ...]]]:
    """The working intervals of ``schedules`` on every date of ``date_from..date_to``, from
    the catalogue's memo, computing (and keeping) what it lacks.

    Each therapist's dict only ever grows (a full one is replaced, never emptied), so the
    dicts handed out stay complete for their dates even if another thread adds to the memo.
    """
    memo = catalog.working
    days = [date_from + timedelta(days=k) for k in range((date_to - date_from).days + 1)]
    out: dict[int, dict[date, tuple[pure.Triple, ...]]] = {}
    missing = []
    for schedule in schedules:
        known = memo.get(schedule.therapist_id)
        if known is not None and all(map(known.__contains__, days)):
            out[schedule.therapist_id] = known
        else:
            missing.append(schedule)
    if missing:
        for tid, by_day in pure.working_micros(missing, days, catalog.rules.tz).items():
            known = memo.get(tid)
            if known is None or len(known) > _WORKING_MEMO_DAYS:
                known = memo[tid] = by_day
            else:
                known.update(by_day)
            out[tid] = known
    return out


def _read_busy(
    session: Session,
    rules: pure.Rules,
    service: ServiceInfo,
    tids: tuple[int, ...],
    date_from: date,
    date_to: date,
    exclude_booking_id: int | None,
    now: datetime,
    with_stamp: bool,
) -> tuple[int | None, dict[int, list[tuple[int, int]]], dict[int, list[tuple[int, int]]]]:
    """(stamp or None, busy per therapist, busy per room) in epoch microseconds: 1 statement."""
    conn = session.connection()
    dialect = conn.dialect.name
    rids = service.room_ids
    lo = _local_midnight(date_from, rules.tz) - timedelta(minutes=service.buffer_before_minutes)
    hi = _local_midnight(date_to + timedelta(days=1), rules.tz) + timedelta(
        minutes=service.duration_minutes + service.buffer_after_minutes)
    params = (_db_time(lo - MAX_BLOCKED, dialect), _db_time(hi, dialect),
              _db_time(lo, dialect), *tids, *rids, exclude_booking_id or 0,
              _db_time(now, dialect))
    rows = conn.exec_driver_sql(
        _busy_sql(dialect, len(tids), len(rids), with_stamp), params).fetchall()
    stamp = None
    # One list per id up front: a row then costs two look-ups, and its pair is made once.
    therapist_busy: dict[int, list[tuple[int, int]]] = {tid: [] for tid in tids}
    room_busy: dict[int, list[tuple[int, int]]] = {rid: [] for rid in rids}
    of_therapist = therapist_busy.get
    of_room = room_busy.get
    for tid, rid, start, end in rows:
        if end is None:  # the stamp row
            stamp = start
            continue
        pair = (start, end)
        busy = of_therapist(tid)
        if busy is not None:
            busy.append(pair)
        busy = of_room(rid)
        if busy is not None:
            busy.append(pair)
    return stamp, therapist_busy, room_busy


def _checked(service: ServiceInfo | None, therapist_id: int | None) -> ServiceInfo:
    """``service`` if it can be booked (with ``therapist_id``), else the domain error."""
    if service is None:
        raise NotFound("There is no such service.", fields={"service_id": "No such service."})
    if not service.active:
        raise ValidationFailed(
            "This service is not offered any more.",
            code="inactive_service",
            fields={"service_id": "This service is not offered any more."},
        )
    if therapist_id is not None and therapist_id not in service.therapist_ids:
        raise ValidationFailed(
            "That therapist does not offer this service.",
            code="not_offered",
            fields={"therapist_id": "That therapist does not offer this service."},
        )
    return service


def search_slots(
    session: Session,
    *,
    service_id: int,
    date_from: date,
    date_to: date,
    therapist_id: int | None = None,
    now: datetime,
    exclude_booking_id: int | None = None,
) -> tuple[ZoneInfo, list[pure.Slot]]:
    """Bookable slots of a service on local dates ``date_from..date_to`` (inclusive).

    Returns the clinic's zone and the slots (UTC, sorted by start then therapist). Raises
    ValidationFailed (``invalid_range``, ``range_too_long``, ``inactive_service``,
    ``not_offered``) or NotFound (unknown service).

    Statements: one (catalogue stamp + bookings) while this process's cached catalogue is
    current; otherwise three to load it (settings with the stamp, services, schedules) and
    the bookings query: four, five when the change touched the searched service.
    """
    tz, duration, found = search_slot_starts(
        session, service_id=service_id, date_from=date_from, date_to=date_to,
        therapist_id=therapist_id, now=now, exclude_booking_id=exclude_booking_id)
    return tz, pure.slots_from_starts(found, duration)


def search_slot_starts(
    session: Session,
    *,
    service_id: int,
    date_from: date,
    date_to: date,
    therapist_id: int | None = None,
    now: datetime,
    exclude_booking_id: int | None = None,
) -> tuple[ZoneInfo, int, list[tuple[int, int, int]]]:
    """:func:`search_slots` before any datetime is made, for callers that only format the
    slots (the API): the zone, the service's duration in microseconds and the sorted
    ``(start in epoch microseconds, therapist_id, room_id)`` of
    :func:`clinic_app.scheduling.availability.find_slot_starts`.
    """
    check_range(date_from, date_to)
    engine = session.get_bind()
    catalog = _CATALOGS.get(engine)
    busy = None
    stale_service, stale_tz = None, None
    if catalog is not None and catalog.stamp is not None and service_id in catalog.services:
        try:
            service = _checked(catalog.services[service_id], therapist_id)
        except DomainError:
            catalog = None  # maybe stale: only a current catalogue may refuse the search
        else:
            _check_window(now, catalog.rules.tz, date_from, date_to)
            tids = (therapist_id,) if therapist_id is not None else service.therapist_ids
            stamp, *busy = _read_busy(session, catalog.rules, service, tids, date_from,
                                      date_to, exclude_booking_id, now, with_stamp=True)
            if stamp != catalog.stamp:
                stale_service, stale_tz = service, catalog.rules.tz
                catalog = None
    if catalog is None or busy is None:
        catalog = _load_catalog(session)
        if catalog.stamp is not None:
            _CATALOGS[engine] = catalog
        else:
            _CATALOGS.pop(engine, None)
        _check_window(now, catalog.rules.tz, date_from, date_to)
        service = _checked(catalog.services.get(service_id), therapist_id)
        tids = (therapist_id,) if therapist_id is not None else service.therapist_ids
        # Bookings read under the old catalogue stay right if this service and the zone
        # (which fix the query's window and ids) did not change.
        if busy is not None and (stale_service, stale_tz) != (service, catalog.rules.tz):
            busy = None
        if busy is None:
            _, *busy = _read_busy(session, catalog.rules, service, tids, date_from, date_to,
                                  exclude_booking_id, now, with_stamp=False)
    therapist_busy, room_busy = busy
    rules = catalog.rules
    schedules = tuple(catalog.schedules.get(t) or pure.TherapistSchedule(t, ()) for t in tids)
    spec = service.spec
    found = pure.find_slot_starts(
        service=spec,
        rules=rules,
        now=now,
        date_from=date_from,
        date_to=date_to,
        therapists=schedules,
        closures=catalog.closures,
        therapist_busy=therapist_busy,
        room_busy=room_busy,
        working=_working(catalog, schedules, date_from, date_to),
    )
    return rules.tz, spec.duration // timedelta(microseconds=1), found


def load_booking_data(
    session: Session,
    *,
    settings: ClinicSettings,
    service: ServiceInfo,
    therapist_ids: Iterable[int],
    day: date,
    exclude_booking_id: int | None = None,
    now: datetime,
) -> SearchData:
    """:func:`load_search_data` for the one local ``day`` a booking re-checks, inside its
    write transaction, with the schedules and closures from this process's catalogue.

    The catalogue is used while ``service.stamp`` -- read in the same statement as the
    service (:func:`load_service`) -- is the one it was loaded with: the re-check then costs
    one statement, the busy time. A stale or missing catalogue is reloaded and kept (three
    statements); without a stamp (no stamp row) the day's schedules are read (one).
    """
    tids = sorted(set(therapist_ids))
    if service.stamp is None:
        schedules, closures = load_schedules(session, therapist_ids=tids, date_from=day,
                                             date_to=day)
    else:
        engine = session.get_bind()
        catalog = _CATALOGS.get(engine)
        if catalog is None or catalog.stamp != service.stamp:
            catalog = _load_catalog(session)
            if catalog.stamp is not None:
                _CATALOGS[engine] = catalog
        schedules = tuple(catalog.schedules.get(t) or pure.TherapistSchedule(t, ())
                          for t in tids)
        closures = catalog.closures
    return _with_busy(session, settings=settings, service=service, tids=tids,
                      schedules=schedules, closures=closures, date_from=day, date_to=day,
                      exclude_booking_id=exclude_booking_id, now=now)
