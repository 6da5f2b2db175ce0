"""Booking use cases: book, cancel, reschedule, no-show, confirm and decline pending ones.

Status changes go through the status machine on the model (``Booking.cancel`` etc.): each use
case locks the row, re-reads it, calls the method and then records the messages
(``services.notify.events``). Who may see a booking is THE rule in
``services.booking_access`` (re-exported here as :func:`get_booking_for`).

Every change re-checks the requested time server-side with
:func:`clinic_app.scheduling.availability.check_start` against busy time read *inside* the
caller's transaction, then flushes. Two guards make double booking impossible:

* SQLite: every transaction begins ``IMMEDIATE`` (clinic_app/db.py), so writers are serial and
  the re-check sees every committed booking;
* PostgreSQL: the exclusion constraints on ``bookings`` refuse overlapping held time. A new
  booking is one ``INSERT ... ON CONFLICT DO NOTHING RETURNING`` (the constraints are its
  arbiters: a lost race returns no row); a moved booking or a hold is flushed inside a
  SAVEPOINT (23P01 rolls it back). Either way we then re-read busy time (READ COMMITTED sees
  the winner's row) and try the next room/therapist, or answer 409 ``slot_taken``.

Services never commit: the caller (view, API handler, worker) does.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from datetime import datetime
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam
from sqlalchemy import delete
from sqlalchemy import func
from sqlalchemy import inspect as sa_inspect
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from sqlalchemy.orm import aliased
from sqlalchemy.orm.attributes import set_committed_value

from clinic_app.db import UTCDateTime
from clinic_app.errors import Conflict
from clinic_app.errors import DomainError
from clinic_app.errors import Forbidden
from clinic_app.errors import NotFound
from clinic_app.errors import SlotTaken
from clinic_app.errors import ValidationFailed
from clinic_app.models.accounts import Role
from clinic_app.models.accounts import User
from clinic_app.models.booking import MAX_ID
from clinic_app.models.booking import Booking
from clinic_app.models.booking import BookingStatus
from clinic_app.models.booking import unfiltered
from clinic_app.models.schedule import ClinicSettings
from clinic_app.models.schedule import Room
from clinic_app.models.schedule import Service
from clinic_app.models.schedule import Therapist
from clinic_app.scheduling import availability as pure
from clinic_app.services import care
from clinic_app.services import freed_time
from clinic_app.services.availability import ServiceInfo
from clinic_app.services.availability import bookable_service
from clinic_app.services.availability import load_booking_data
from clinic_app.services.availability import load_service
from clinic_app.services.booking_access import get_booking_for
from clinic_app.services.booking_access import is_staff as _is_staff
from clinic_app.services.booking_access import may_see_booking as _may_see
from clinic_app.services.booking_access import therapist_for_user
from clinic_app.services.notify import events as notifications
from clinic_app.services.settings import get_settings
from clinic_app.services.settings import keep_settings
from clinic_app.services.settings import loaded_settings
from clinic_app.services.settings import settings_statement

__all__ = [
    "ATTEMPTS",
    "CANCELLABLE",
    "MAX_ID",
    "admit_client",
    "book",
    "delete_expired_holds",
    "find_slot",
    "place_on_slot",
    "require_aware",
    "cancel",
    "client_not_found",
    "confirm_pending",
    "decline_pending",
    "get_booking_for",
    "initial_status_for",
    "is_late",
    "lock",
    "mark_no_show",
    "may_book_for",
    "reschedule",
    "therapist_for_user",
]

#: Statuses that can still be cancelled, moved or marked as a no-show.
CANCELLABLE = (BookingStatus.PENDING.value, BookingStatus.BOOKED.value)
#: Statuses that count towards a client's cap of upcoming bookings.
UPCOMING = CANCELLABLE
#: How far ahead an admin's override may book (the horizon is lifted, not abolished).
OVERRIDE_HORIZON = timedelta(days=3 * 365)
_ATTEMPTS = 3  # flush retries on PostgreSQL after losing a race for a room
ATTEMPTS = _ATTEMPTS

_MESSAGES = {
    "in_past": "That time is in the past.",
    "too_soon": "That time is too soon: bookings need more notice.",
    "beyond_horizon": "That time is too far ahead to book yet.",
    "closed": "The clinic is closed on that day.",
    "outside_hours": "That time is outside the therapist's working hours.",
    "not_on_step": "Sessions start on the clinic's time grid; pick one of the offered times.",
}


def initial_status_for(session: Session, client: User) -> str:
    """The status a new booking of ``client`` starts in.

    The one place the intake's "confirm first" rule plugs in (a booking then starts as
    ``pending`` until a therapist confirms); the rule lives in ``services.care``.
    """
    return care.initial_status_for(session, client)


def client_not_found() -> NotFound:
    """The one answer for an unknown client and for one the actor may not book for."""
    return NotFound("There is no such client.", code="client_not_found",
                    fields={"client_id": "No such client."})


def may_book_for(session: Session, actor: User, client: User) -> bool:
    """Booking on someone's behalf: admins for any client, a therapist only for a client
    they already treat (booking a stranger would open the stranger's health data)."""
    if actor.role == Role.ADMIN.value:
        return True
    if actor.role != Role.THERAPIST.value:
        return False
    therapist = therapist_for_user(session, actor)
    return therapist is not None and care.is_treating_therapist(session, therapist.id, client.id)


def _require_aware(value: datetime, field: str) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValidationFailed(
            "Give the time with its UTC offset.",
            code="naive_datetime",
            fields={field: "Include the UTC offset, e.g. 2026-12-01T10:00:00+00:00."},
        )


def _slot_error(exc: pure.SlotError, field: str = "start") -> DomainError:
    if exc.code in ("therapist_busy", "no_room"):
        return SlotTaken("That time has just been taken. Please pick another.",
                         fields={field: "No longer available."})
    message = _MESSAGES.get(exc.code, str(exc))
    return ValidationFailed(message, code=exc.code, fields={field: message})


# The client's row lock and the cap count run on every booking: prebuilt Core statements
# on the connection (an ORM select is rebuilt, and passed through the hold filter, each time).
_USERS = User.__table__
_BOOKINGS = Booking.__table__
_LOCK_CLIENT = select(_USERS.c.id).where(_USERS.c.id == bindparam("id")).with_for_update()
_UPCOMING_COUNT = select(func.count(_BOOKINGS.c.id)).where(
    _BOOKINGS.c.client_id == bindparam("client_id"),
    _BOOKINGS.c.status.in_(UPCOMING),  # never a hold
    _BOOKINGS.c.start_at >= bindparam("now", type_=UTCDateTime()),
)


# The settings row and the cap count in one statement (the count's statement starts after the
# client's lock is held, so its snapshot sees every booking committed before).
_SETTINGS_AND_UPCOMING = unfiltered(  # the count is Core, never held (UPCOMING)
    settings_statement(_UPCOMING_COUNT.scalar_subquery()))


def _settings_and_upcoming(session: Session, client_id: int,
                           now: datetime) -> tuple[ClinicSettings, int]:
    """The settings row and the client's number of upcoming bookings: one round trip, or
    only the count when this transaction has the settings row loaded already (a row expired
    by a commit would be reloaded on first use: it is re-read here with the count)."""
    params = {"client_id": client_id, "now": now}
    settings = loaded_settings(session)
    if settings is None or sa_inspect(settings).expired:
        row = session.execute(_SETTINGS_AND_UPCOMING, params).first()
        if row is not None:
            return keep_settings(session, row[0]), row[1]
        settings = get_settings(session)  # first use of a new database: creates the row
    return settings, session.connection().execute(_UPCOMING_COUNT, params).scalar_one()


def _lock_client(session: Session, client_id: int) -> None:
    """Serialise concurrent bookings of one client (PostgreSQL; SQLite is already serial)."""
    session.connection().execute(_LOCK_CLIENT, {"id": client_id})


def lock(session: Session, booking: Booking) -> Booking:
    """Lock the booking's row and re-read it: the status checked is the one changed."""
    session.refresh(booking, with_for_update=True)
    return booking


def _find_slot(
    session: Session,
    *,
    service: ServiceInfo,
    therapist_ids: tuple[int, ...],
    start: datetime,
    now: datetime,
    exclude_booking_id: int | None = None,
    override_rules: bool = False,
) -> tuple[pure.Slot, bool]:
    """Re-check ``start`` with fresh data for each candidate therapist; the first that fits,
    and whether an expired hold lies on its held time (then :func:`_place` /
    :func:`_insert_new` delete it first: PostgreSQL's exclusion constraints count it).

    ``override_rules`` (an admin's choice, issue 11) lifts the minimum notice and the horizon
    only: hours, closures, the grid, busy time and rooms are checked as always.
    """
    settings = get_settings(session)
    day: date = start.astimezone(ZoneInfo(settings.timezone)).date()
    data = load_booking_data(
        session,
        settings=settings,
        service=service,
        therapist_ids=therapist_ids,
        day=day,
        exclude_booking_id=exclude_booking_id,
        now=now,
    )
    rules = data.rules
    if override_rules:
        rules = replace(rules, min_notice=timedelta(0), horizon=OVERRIDE_HORIZON)
    if not therapist_ids:
        raise ValidationFailed("Nobody offers this service at the moment.",
                               code="not_offered", fields={"service_id": "Not bookable now."})
    best: pure.SlotError | None = None
    order = pure.ERROR_CODES
    for tid in therapist_ids:
        try:
            slot = pure.check_start(
                start=start,
                therapist_id=tid,
                service=service.spec,
                rules=rules,
                now=now,
                therapists=data.therapists,
                closures=data.closures,
                therapist_busy=data.therapist_busy,
                room_busy=data.room_busy,
            )
        except pure.SlotError as exc:
            # Report the therapist that came closest (busy beats outside hours).
            if best is None or order.index(exc.code) > order.index(best.code):
                best = exc
        else:
            return slot, _expired_hold_in_way(data.expired_holds, slot, service)
    assert best is not None
    raise _slot_error(best)


def _held_time(slot: pure.Slot, service: ServiceInfo) -> tuple[datetime, datetime]:
    """The time ``slot`` blocks: the session with the service's buffers around it."""
    return (slot.start - timedelta(minutes=service.buffer_before_minutes),
            slot.end + timedelta(minutes=service.buffer_after_minutes))


def _expired_hold_in_way(expired_holds: tuple[tuple[int | None, int | None, Any], ...],
                         slot: pure.Slot, service: ServiceInfo) -> bool:
    """Whether one of the expired holds read with the busy time is one
    :func:`delete_expired_holds` would delete for ``slot`` (the same test, in Python).

    The busy read covers every row that test can match (the slot's therapist and room, the
    whole day with the buffers). A hold committed after that read and already expired is
    not seen: the INSERT (or the SAVEPOINT's flush) then loses to it like to any concurrent
    booking, and the retry's fresh read sees it and deletes it.
    """
    lo, hi = _held_time(slot, service)
    return any((tid == slot.therapist_id or rid == slot.room_id)
               and held.start < hi and held.end > lo
               for tid, rid, held in expired_holds)


def _is_exclusion_violation(exc: DBAPIError) -> bool:
    # 40P01: two exclusion checks waited on each other's uncommitted rows; PostgreSQL aborts one.
    return getattr(exc.orig, "sqlstate", None) in ("23P01", "40P01")


# Core, with RETURNING: the ORM's bulk DELETE with session synchronisation cost more than
# the rest of the placing (a millisecond or more per booking, bench/booking.py --profile).
_DELETE_EXPIRED_HOLDS = (
    delete(_BOOKINGS)
    .where(
        _BOOKINGS.c.status == BookingStatus.HELD.value,
        _BOOKINGS.c.expires_at <= bindparam("now", type_=UTCDateTime()),
        or_(_BOOKINGS.c.therapist_id == bindparam("therapist_id"),
            _BOOKINGS.c.room_id == bindparam("room_id")),
        _BOOKINGS.c.blocked_start < bindparam("blocked_end", type_=UTCDateTime()),
        _BOOKINGS.c.blocked_end > bindparam("blocked_start", type_=UTCDateTime()),
    )
    .returning(_BOOKINGS.c.id)
)


def delete_expired_holds(session: Session, *, therapist_id: int, room_id: int,
                         blocked_start: datetime, blocked_end: datetime, now: datetime) -> int:
    """Delete the expired holds on this therapist's or room's time ``[blocked_start,
    blocked_end)``: the slot search already ignores them, and the exclusion constraints
    must too. Returns how many went; those loaded in the session leave it."""
    session.flush()
    gone = session.connection().execute(_DELETE_EXPIRED_HOLDS, {
        "now": now, "therapist_id": therapist_id, "room_id": room_id,
        "blocked_start": blocked_start, "blocked_end": blocked_end}).scalars().all()
    for booking_id in gone:
        loaded = session.identity_map.get(session.identity_key(Booking, booking_id))
        if loaded is not None:
            session.expunge(loaded)
    return len(gone)


def _clear_way(session: Session, slot: pure.Slot, service: ServiceInfo, now: datetime,
               expired_in_way: bool) -> None:
    """Delete the expired holds on ``slot``'s time when the busy read saw one there."""
    if expired_in_way:
        blocked_start, blocked_end = _held_time(slot, service)
        delete_expired_holds(session, therapist_id=slot.therapist_id, room_id=slot.room_id,
                             blocked_start=blocked_start, blocked_end=blocked_end, now=now)


def _place(session: Session, booking: Booking, slot: pure.Slot, service: ServiceInfo,
           now: datetime, *, moving: bool = False, expired_in_way: bool = True) -> bool:
    """Put ``booking`` on ``slot`` and flush it (on PostgreSQL in a SAVEPOINT).

    Returns False when PostgreSQL's exclusion constraint refused it (a concurrent booking
    won): the SAVEPOINT is rolled back, so the transaction stays usable and the booking
    keeps its previous state (a new one is expunged, a moved one expired). SQLite has no
    such constraint and its writers are serial (the re-check saw every booking), so there
    is nothing to recover from and no SAVEPOINT (two statements fewer per booking).
    ``expired_in_way`` is :func:`_find_slot`'s answer (unknown: True, the holds are deleted).
    """
    _clear_way(session, slot, service, now, expired_in_way)
    if session.connection().dialect.name != "postgresql":
        _put_on(session, booking, slot, service, now, moving=moving)
        return True
    try:
        # begin_nested() flushes pending work first, so the change is made inside it.
        with session.begin_nested():
            _put_on(session, booking, slot, service, now, moving=moving)
    except DBAPIError as exc:
        if _is_exclusion_violation(exc):
            return False
        raise
    return True


def _where(slot: pure.Slot, service: ServiceInfo) -> dict[str, Any]:
    """The keyword arguments of ``Booking.place`` / ``Booking.move`` for ``slot``."""
    return {"therapist_id": slot.therapist_id, "room_id": slot.room_id,
            "start": slot.start, "end": slot.end,
            "buffer_before": timedelta(minutes=service.buffer_before_minutes),
            "buffer_after": timedelta(minutes=service.buffer_after_minutes)}


def _put_on(session: Session, booking: Booking, slot: pure.Slot, service: ServiceInfo,
            now: datetime, *, moving: bool) -> None:
    if moving:
        booking.move(now, **_where(slot, service))
    else:
        booking.place(now, **_where(slot, service))
    session.add(booking)
    session.flush()


_BOOKING_COLUMNS = tuple(attr.key for attr in sa_inspect(Booking).column_attrs)


def _insert_new(session: Session, draft: Booking, slot: pure.Slot, service: ServiceInfo,
                now: datetime, *, expired_in_way: bool) -> Booking | None:
    """Insert the new booking ``draft`` (never added to the session) on ``slot``: the
    persistent booking, or None when PostgreSQL's exclusion constraints refused it (a
    concurrent booking won).

    One ``INSERT ... ON CONFLICT DO NOTHING RETURNING``: without a conflict target every
    unique and exclusion constraint is an arbiter, so a lost race returns no row instead of
    an error, and the transaction stays usable without the SAVEPOINT :func:`_place` needs
    (two round trips fewer). SQLite has no exclusion constraints; its writers are serial.
    """
    _clear_way(session, slot, service, now, expired_in_way)
    draft.place(now, **_where(slot, service))
    values = {key: getattr(draft, key) for key in _BOOKING_COLUMNS if key in draft.__dict__}
    dialect = session.connection().dialect.name
    try:
        if dialect == "postgresql":
            return _insert_with_parties(session, values)
        return session.scalars(_INSERT_NEW_SQLITE, [values]).first()
    except DBAPIError as exc:
        if not _is_exclusion_violation(exc):
            raise
        # A deadlock with a concurrent writer of the same time (one moving a booking or
        # placing a hold there): PostgreSQL aborted this transaction, so no retry inside it.
        raise SlotTaken("That time has just been taken. Please pick another.",
                        fields={"start": "No longer available."}) from None


# Built once, with the row as parameters: ``.values(row)`` per call cost more than the SQL.
# (PostgreSQL's is the CTE of _insert_with_parties_statement.)
_INSERT_NEW_SQLITE = sqlite_insert(Booking).on_conflict_do_nothing().returning(Booking)


_INSERT_WITH_PARTIES: dict[tuple[str, ...], Any] = {}


def _insert_with_parties_statement(keys: tuple[str, ...]) -> Any:
    """PostgreSQL: the new booking's ``INSERT ... ON CONFLICT DO NOTHING RETURNING`` as a
    CTE, joined to the booking's therapist, their user, the room and the service (what
    :func:`_attach_parties` reads): one round trip for both. The columns the draft leaves
    unset get their Python defaults, as the ORM's INSERT would give them."""
    stmt = _INSERT_WITH_PARTIES.get(keys)
    if stmt is None:
        table = _BOOKINGS
        columns = {key: bindparam(key, type_=table.c[key].type) for key in keys}
        for column in table.c:
            default = column.default
            if (column.key not in columns and default is not None and default.is_scalar):
                columns[column.key] = default.arg
        new = (pg_insert(table).values(columns).on_conflict_do_nothing()
               .returning(*table.c).cte("new_booking"))
        booking = aliased(Booking, new)
        stmt = unfiltered(  # the one row is the new booking: never a hold
            select(booking, Therapist, User, Room, Service)
            .join(Therapist, Therapist.id == booking.therapist_id)
            .join(User, User.id == Therapist.user_id)
            .join(Room, Room.id == booking.room_id)
            .join(Service, Service.id == booking.service_id))
        _INSERT_WITH_PARTIES[keys] = stmt
    return stmt


def _insert_with_parties(session: Session, values: dict[str, Any]) -> Booking | None:
    """Insert the new booking (:func:`_insert_with_parties_statement`) and attach its
    parties; None when a concurrent booking won (no row inserted, so none joined)."""
    row = session.execute(_insert_with_parties_statement(tuple(values)), values).first()
    if row is None:
        return None
    booking, therapist, user, room, service = row
    _attach(booking, therapist, user, room, service)
    return booking


def book(
    session: Session,
    *,
    client: User,
    service_id: int,
    start: datetime,
    now: datetime,
    therapist_id: int | None = None,
    actor: User | None = None,
    early_confirmed: bool = False,
    note: str = "",
    notify: bool = True,
    override_rules: bool = False,
    override_reason: str = "",
) -> Booking:
    """Book ``service_id`` at ``start`` for ``client`` (by ``actor``, default the client).

    Without ``therapist_id`` the first therapist (lowest id) free at that time is taken; the
    lowest free suitable room is assigned. Staff options (issue 11): ``notify=False`` sends
    the client no confirmation or reminders (recorded as ``notify_client``); an admin's
    ``override_rules`` with ``override_reason`` books inside the minimum notice or beyond the
    horizon (recorded), never outside hours or over another booking. Raises NotFound,
    Forbidden (a client using staff options), ValidationFailed (codes in_past, too_soon,
    beyond_horizon, closed, outside_hours, not_on_step, over_cap, not_offered,
    inactive_service, naive_datetime, not_a_client, reason_required) or SlotTaken (409).
    """
    actor = actor or client
    # --- staff booking options (issue 11) ---
    # Checked before the access rule: whether the actor may use an option does not depend on
    # the client, so a therapist asking for an admin's override is refused (403) for any
    # client_id, without learning whether that client exists.
    if (not notify and not _is_staff(actor)) or (
            override_rules and actor.role != Role.ADMIN.value):
        raise Forbidden("Only clinic staff may use these booking options.",
                        fields={"override_rules" if override_rules else "notify":
                                "Not allowed for your account."})
    override_reason = " ".join((override_reason or "").split())[:255]
    if override_rules and not override_reason:
        raise ValidationFailed("Give a reason for booking outside the notice or horizon.",
                               code="reason_required",
                               fields={"override_reason": "Required with override_rules."})
    early, status = admit_client(session, client=client, actor=actor, start=start,
                                 early_confirmed=early_confirmed, now=now)
    service = bookable_service(session, service_id, therapist_id)
    candidates = (therapist_id,) if therapist_id is not None else service.therapist_ids
    draft = Booking(
        client_id=client.id,
        service_id=service.id,
        status=status,
        price_cents=service.price_cents,
        early_confirmed=early,
        booked_by_id=actor.id,
        note=note,
        notify_client=notify,
        override_reason=override_reason if override_rules else "",
        sequence=0,
        late_cancel=False,
        cancel_reason="",
        created_at=now,
        updated_at=now,
    )
    for _ in range(_ATTEMPTS):
        slot, expired_in_way = _find_slot(session, service=service, therapist_ids=candidates,
                                          start=start, now=now, override_rules=override_rules)
        booking = _insert_new(session, draft, slot, service, now,
                              expired_in_way=expired_in_way)
        if booking is not None:
            break
    else:
        raise SlotTaken("That time has just been taken. Please pick another.",
                        fields={"start": "No longer available."})
    if "therapist" not in booking.__dict__:  # PostgreSQL's INSERT brought them (one trip)
        _attach_parties(session, booking)
    notifications.booking_created(session, booking, now)
    return booking


# The therapist (with their user), room and service of one booking, in one statement.
_PARTIES = unfiltered(  # no booking in it
    select(Therapist, User, Room, Service)
    .join(User, User.id == Therapist.user_id)
    .join_from(Therapist, Room, Room.id == bindparam("room_id"))
    .join_from(Therapist, Service, Service.id == bindparam("service_id"))
    .where(Therapist.id == bindparam("therapist_id"))
)


def _attach_parties(session: Session, booking: Booking) -> None:
    """Load a new booking's therapist (with their user), room and service in one statement
    and attach them: its messages and the API's answer read all four, and lazy loading
    them cost a statement each."""
    row = session.execute(_PARTIES, {"therapist_id": booking.therapist_id,
                                     "room_id": booking.room_id,
                                     "service_id": booking.service_id}).first()
    if row is None:  # cannot happen (foreign keys); lazy loading would then say why
        return
    _attach(booking, *row)


def _attach(booking: Booking, therapist: Therapist, user: User, room: Room,
            service: Service) -> None:
    set_committed_value(therapist, "user", user)
    set_committed_value(booking, "therapist", therapist)
    set_committed_value(booking, "room", room)
    set_committed_value(booking, "service", service)


def admit_client(session: Session, *, client: User, actor: User, start: datetime,
                 early_confirmed: bool, now: datetime) -> tuple[bool, str]:
    """The checks every new booking of ``client`` passes (a plain one, or a hold becoming
    one): who may book for whom, a client account, an aware time, the early-booking rule,
    the cap of upcoming bookings (the client's row locked). Returns the early flag and the
    status the booking starts in (:func:`initial_status_for`, from the same read as the
    early rule's recommendation: one round trip for both)."""
    if actor.id != client.id and not may_book_for(session, actor, client):
        raise client_not_found()
    if client.role != Role.CLIENT.value or not client.is_active:
        raise ValidationFailed("Bookings are made for client accounts.", code="not_a_client",
                               fields={"client_id": "Not a client account."})
    _require_aware(start, "start")
    # Flagged only when the booking really is before the recommended earliest date and
    # someone confirmed that: the client must (R5); staff decide, but the flag still says
    # only what happened (an admin's booking used to be flagged every time).
    # One booking at a time per client, so two parallel requests cannot both pass the cap;
    # taken before the intake is read, so a confirmation of it (confirm_pending, which takes
    # the same lock) is either wholly before this booking or wholly after it.
    _lock_client(session, client.id)
    recommendation, intake = care.recommendation_and_intake(session, client.id)
    if actor.id == client.id:
        early = care.check_early_start(session, recommendation, start, early_confirmed)
    else:
        early = early_confirmed and care.earliest_before(session, recommendation,
                                                         start) is not None
    settings, upcoming = _settings_and_upcoming(session, client.id, now)
    if upcoming >= settings.max_upcoming_per_client:
        raise ValidationFailed(
            f"You already have {upcoming} upcoming sessions, the most we hold per client. "
            "Cancel one or wait until after your next visit.",
            code="over_cap",
        )
    return early, care.status_for_intake(intake)


def is_late(booking: Booking, now: datetime, cutoff_hours: int) -> bool:
    """True when ``now`` is inside the self-service cutoff before the booking's start."""
    return booking.start_at - now < timedelta(hours=cutoff_hours)


def _check_started(booking: Booking, actor: User, now: datetime, verb: str) -> None:
    """Clients cannot change a session once it has started (staff can)."""
    if booking.start_at <= now and not _is_staff(actor):
        raise ValidationFailed(f"This session has already started and cannot be {verb}.",
                               code="not_cancellable")


def cancel(session: Session, booking: Booking, *, actor: User, now: datetime,
           reason: str = "") -> Booking:
    """Cancel ``booking``; ``late_cancel`` records a client cancelling inside the cutoff.

    Staff cancellations are never recorded as late (the clinic cancelled, not the client).
    Raises NotFound (not the actor's) or ValidationFailed ``not_cancellable``.
    """
    if not _may_see(session, booking, actor):
        raise NotFound("There is no such booking.")
    lock(session, booking)
    if booking.can("cancel"):
        _check_started(booking, actor, now, "cancelled")
    settings = get_settings(session)
    booking.cancel(now, reason=reason, late=actor.id == booking.client_id and is_late(
        booking, now, settings.cancel_cutoff_hours))
    freed_time.booking_freed(session, booking, freed_time.FreedReason.CANCELLED, now)
    session.flush()
    notifications.booking_cancelled(session, booking, now)
    return booking


def reschedule(session: Session, booking: Booking, *, new_start: datetime, actor: User,
               now: datetime, therapist_id: int | None = None) -> Booking:
    """Move ``booking`` to ``new_start`` (same id, ``sequence`` raised).

    The booking row is updated in place inside the caller's transaction: the new time is
    checked and flushed (PostgreSQL's constraints judge it) before the old time is given up
    at commit, so a failure leaves the booking where it was. Without ``therapist_id`` the
    same therapist is kept. Clients may not move a booking inside the cancellation cutoff
    (code ``past_cutoff``); staff may.
    """
    if not _may_see(session, booking, actor):
        raise NotFound("There is no such booking.")
    _require_aware(new_start, "start")
    lock(session, booking)
    booking.require("move")  # the status first: a cancelled booking is not "too late"
    _check_started(booking, actor, now, "moved")
    settings = get_settings(session)
    if not _is_staff(actor) and is_late(booking, now, settings.cancel_cutoff_hours):
        raise ValidationFailed(
            f"Bookings can be moved online up to {settings.cancel_cutoff_hours} hours before "
            "they start. Please cancel (it is recorded as late) or call the clinic.",
            code="past_cutoff",
        )
    service = load_service(session, booking.service_id)
    if therapist_id is not None and therapist_id != booking.therapist_id:
        if therapist_id not in service.therapist_ids:
            raise ValidationFailed(
                "That therapist does not offer this service.", code="not_offered",
                fields={"therapist_id": "That therapist does not offer this service."})
    target = therapist_id if therapist_id is not None else booking.therapist_id
    old_start = booking.start_at
    old_span = freed_time.span_of(booking)  # the waitlist is offered the old time
    for _ in range(_ATTEMPTS):
        slot, expired_in_way = _find_slot(session, service=service, therapist_ids=(target,),
                                          start=new_start, now=now,
                                          exclude_booking_id=booking.id)
        if _place(session, booking, slot, service, now, moving=True,
                  expired_in_way=expired_in_way):
            break
    else:
        raise SlotTaken("That time has just been taken. Please pick another.",
                        fields={"start": "No longer available."})
    freed_time.record_span(session, old_span, freed_time.FreedReason.MOVED, now)
    session.flush()
    notifications.booking_changed(session, booking, old_start, now)
    return booking


def mark_no_show(session: Session, booking: Booking, *, actor: User, now: datetime) -> Booking:
    """Record that the client did not come (staff only, once the session has started)."""
    if not _is_staff(actor) or not _may_see(session, booking, actor):
        raise NotFound("There is no such booking.")
    lock(session, booking)
    booking.require("mark_no_show")
    if booking.start_at > now:
        raise ValidationFailed("A session can be marked as missed once it has started.",
                               code="not_started")
    booking.mark_no_show(now)
    session.flush()
    return booking


def decline_pending(session: Session, booking: Booking, *, actor: User,
                    now: datetime) -> Booking:
    """The booking's therapist (or an admin) declines a pending booking after reading the
    intake: it is cancelled through :func:`cancel` (row lock, not late, the client told).
    NotFound for anyone else; Conflict ``not_pending`` unless it is pending."""
    if not _is_staff(actor) or not _may_see(session, booking, actor):
        raise NotFound("There is no such booking.")
    lock(session, booking)
    if booking.status != BookingStatus.PENDING.value:
        raise Conflict("Only a pending booking can be declined.", code="not_pending")
    return cancel(session, booking, actor=actor, now=now,
                  reason="Declined by the therapist after the health intake")


def confirm_pending(session: Session, client: User, *, actor: User,
                    now: datetime) -> list[Booking]:
    """A treating therapist (or an admin) confirms the client's "confirm first" intake
    (``care.confirm_intake``); the client's pending bookings become booked and their
    confirmations go out. Returns those bookings, soonest first.

    The client's row is locked first, as every new booking of theirs locks it before reading
    the intake: a booking made meanwhile either sees the confirmed intake (and is booked) or
    is committed pending before this runs (and is confirmed here), never pending after it."""
    _lock_client(session, client.id)
    care.confirm_intake(session, client, actor, now)
    pending = list(session.scalars(
        select(Booking).where(Booking.client_id == client.id,
                              Booking.status == BookingStatus.PENDING.value)
        .order_by(Booking.start_at).with_for_update()
    ))
    for booking in pending:
        booking.confirm(now)
    session.flush()
    for booking in pending:
        notifications.booking_changed(session, booking, booking.start_at, now)
    return pending


# Public names for services.holds, which places a hold through the same re-check and flush.
find_slot = _find_slot
place_on_slot = _place
require_aware = _require_aware
