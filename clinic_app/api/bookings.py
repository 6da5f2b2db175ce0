"""API v1: bookings — book, list, show, cancel, reschedule, no-show.

Times in answers are ISO 8601 in the clinic's zone with their UTC offset. Times sent in must
carry an offset (or ``Z``): a bare local time is ambiguous around DST changes, so it is
refused with 422 rather than guessed.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from typing import Literal
from zoneinfo import ZoneInfo

from flask import request
from pydantic import BaseModel
from pydantic import Field
from pydantic import field_validator
from sqlalchemy import inspect
from sqlalchemy import select
from sqlalchemy.orm import selectinload
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key

from clinic_app.api.core import Id
from clinic_app.api.core import current_api_user
from clinic_app.api.core import endpoint
from clinic_app.clock import utcnow as now
from clinic_app.errors import BadRequest
from clinic_app.errors import Forbidden
from clinic_app.errors import ValidationFailed
from clinic_app.extensions import db
from clinic_app.models.accounts import Role
from clinic_app.models.accounts import User
from clinic_app.models.booking import Booking
from clinic_app.models.booking import BookingStatus
from clinic_app.models.schedule import Room
from clinic_app.models.schedule import Service
from clinic_app.models.schedule import Therapist
from clinic_app.services import booking as booking_service
from clinic_app.services.settings import clinic_zone
from clinic_app.validation import has_control_characters
from clinic_app.validation import instant_problem

NAIVE_MESSAGE = "Include the UTC offset, e.g. 2026-12-01T10:00:00+00:00 or ...T10:00:00Z."


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(NAIVE_MESSAGE)
    if problem := instant_problem(value):
        raise ValueError(problem)
    return value


class BookingIn(BaseModel):
    service_id: Id
    start: datetime = Field(description="ISO 8601 with a UTC offset")
    therapist_id: Id | None = Field(default=None, description="Omit for any free therapist")
    client_id: Id | None = Field(default=None,
                                  description="Staff only: book for this client")
    early_confirmed: bool = Field(default=False, description="Booking before the recommended "
                                                             "earliest date, knowingly")
    note: str = Field(default="", max_length=2000)
    # --- staff booking options (issue 11) ---
    notify: bool = Field(default=True, description="Staff only: false sends the client no "
                                                   "confirmation or reminders")
    override_rules: bool = Field(default=False, description="Admins only: book inside the "
                                 "minimum notice or beyond the horizon")
    override_reason: str = Field(default="", max_length=255,
                                 description="Required with override_rules; recorded")

    @field_validator("start")
    @classmethod
    def _offset_required(cls, value: datetime) -> datetime:
        return _aware(value)


STAFF_OPTIONS = frozenset({"notify", "override_rules", "override_reason"})


class RescheduleIn(BaseModel):
    start: datetime = Field(description="ISO 8601 with a UTC offset")
    therapist_id: Id | None = Field(default=None, description="Omit to keep the therapist")

    @field_validator("start")
    @classmethod
    def _offset_required(cls, value: datetime) -> datetime:
        return _aware(value)


class BookingsQuery(BaseModel):
    when: Literal["upcoming", "past", "all"] = "all"
    status: Literal["pending", "booked", "completed", "cancelled", "no_show"] | None = None
    limit: int = Field(default=100, ge=1, le=500)


class BookingOut(BaseModel):
    id: int
    status: str
    start: str = Field(json_schema_extra={"format": "date-time"})
    end: str = Field(json_schema_extra={"format": "date-time"})
    timezone: str
    service_id: int
    service_name: str
    therapist_id: int
    therapist_name: str
    room: str
    room_id: int
    client_id: int
    late: bool
    price: str
    price_cents: int
    early_confirmed: bool
    sequence: int
    notify_client: bool = True
    override_reason: str = ""
    cancelled_at: str | None = None
    created_at: str = Field(json_schema_extra={"format": "date-time"})
    updated_at: str = Field(json_schema_extra={"format": "date-time"})


class BookingsOut(BaseModel):
    bookings: list[BookingOut]


def _load_related(booking: Booking) -> tuple[Any, ...]:
    """The service, room, therapist and therapist's user of one booking, in one statement
    unless the session holds them all already (four lazy loads otherwise; lists load them
    with ``LOAD_OPTIONS``). Those not loaded yet are set on the booking as loaded values.

    A caller that goes on to change the booking keeps the returned objects until it is
    done: ``lock`` re-reads the booking, which resets its relationships, and a lazy load
    then finds them in the identity map only while someone references them (it holds
    objects weakly). Objects are found by the booking's current foreign keys, so a moved
    booking (another therapist or room) is shown with its new ones.
    """
    session = db.session
    held = session.identity_map
    therapist = held.get(identity_key(Therapist, booking.therapist_id))
    if (therapist is not None and held.get(identity_key(User, therapist.user_id)) is not None
            and held.get(identity_key(Service, booking.service_id)) is not None
            and held.get(identity_key(Room, booking.room_id)) is not None):
        return ()
    row = session.execute(
        select(Service, Room, Therapist, User)
        .select_from(Service)
        .join(Room, Room.id == booking.room_id)
        .join(Therapist, Therapist.id == booking.therapist_id)
        .join(User, User.id == Therapist.user_id)
        .where(Service.id == booking.service_id)
    ).one_or_none()
    if row is None:
        return ()
    service, room, therapist, user = row
    # Only attributes not loaded yet: a loaded one may carry a change not flushed yet.
    unloaded = inspect(booking).unloaded
    for name, value in (("service", service), ("room", room), ("therapist", therapist)):
        if name in unloaded:
            set_committed_value(booking, name, value)
    if "user" in inspect(therapist).unloaded:
        set_committed_value(therapist, "user", user)
    return tuple(row)


def booking_json(booking: Booking, tz: ZoneInfo) -> dict[str, Any]:
    """The API's JSON for one booking (reused by the therapist endpoints)."""
    _load_related(booking)
    return {
        "id": booking.id,
        "status": booking.status,
        "start": booking.start_at.astimezone(tz).isoformat(),
        "end": booking.end_at.astimezone(tz).isoformat(),
        "timezone": tz.key,
        "service_id": booking.service_id,
        "service_name": booking.service.name,
        "therapist_id": booking.therapist_id,
        "therapist_name": booking.therapist.user.name,
        "room": booking.room.name,
        "room_id": booking.room_id,
        "client_id": booking.client_id,
        "late": bool(booking.late_cancel),
        "price": f"{booking.price_cents // 100}.{booking.price_cents % 100:02d}",
        "price_cents": booking.price_cents,
        "early_confirmed": bool(booking.early_confirmed),
        "sequence": booking.sequence,
        "notify_client": booking.notify_client is not False,
        "override_reason": booking.override_reason or "",
        "cancelled_at": booking.cancelled_at.isoformat() if booking.cancelled_at else None,
        "created_at": booking.created_at.isoformat(),
        "updated_at": booking.updated_at.isoformat(),
    }


LOAD_OPTIONS = (
    selectinload(Booking.service),
    selectinload(Booking.room),
    selectinload(Booking.therapist).selectinload(Therapist.user),
)


def _client_for(actor: User, client_id: int | None) -> User:
    """The client to book for; the service decides whether ``actor`` may book for them."""
    if client_id is None or client_id == actor.id:
        return actor
    if actor.role not in (Role.ADMIN.value, Role.THERAPIST.value):
        raise booking_service.client_not_found()
    client = db.session.get(User, client_id)
    if client is None or client.role != Role.CLIENT.value or client.anonymised_at is not None:
        raise booking_service.client_not_found()
    return client


@endpoint("/bookings", "POST", summary="Book a session", tag="bookings", body=BookingIn,
          response=BookingOut, status=201, errors=(403, 404, 409))
def bookings_create(body: BookingIn) -> dict[str, Any]:
    """Clients book for themselves; staff may pass ``client_id`` to book for a client."""
    actor = current_api_user()
    if actor.role == Role.CLIENT.value and STAFF_OPTIONS & body.model_fields_set:
        raise Forbidden("notify and override_rules are for clinic staff.",
                        fields={name: "Staff only." for name in
                                sorted(STAFF_OPTIONS & body.model_fields_set)})
    client = _client_for(actor, body.client_id)
    booking = booking_service.book(
        db.session, client=client, service_id=body.service_id, start=body.start, now=now(),
        therapist_id=body.therapist_id, actor=actor, early_confirmed=body.early_confirmed,
        note=body.note, notify=body.notify, override_rules=body.override_rules,
        override_reason=body.override_reason)
    out = booking_json(booking, clinic_zone(db.session))
    db.session.commit()
    return out


@endpoint("/bookings", "GET", summary="Your bookings (staff: the ones you give / all)",
          tag="bookings", query=BookingsQuery, response=BookingsOut)
def bookings_list(query: BookingsQuery) -> dict[str, Any]:
    """Clients: their own. Therapists: the sessions they give. Admins: all.
    ``upcoming``: not yet started, soonest first; ``past``: started, latest first."""
    user = current_api_user()
    current = now()
    stmt = select(Booking).options(*LOAD_OPTIONS)
    if user.role == Role.ADMIN.value:
        pass
    elif user.role == Role.THERAPIST.value:
        therapist = booking_service.therapist_for_user(db.session, user)
        stmt = stmt.where(Booking.therapist_id == (therapist.id if therapist else -1))
    else:
        stmt = stmt.where(Booking.client_id == user.id)
    if query.status is not None:
        stmt = stmt.where(Booking.status == query.status)
    if query.when == "upcoming":
        stmt = stmt.where(Booking.start_at >= current).order_by(Booking.start_at, Booking.id)
        if query.status is None:
            stmt = stmt.where(Booking.status != BookingStatus.CANCELLED.value)
    elif query.when == "past":
        stmt = stmt.where(Booking.start_at < current).order_by(Booking.start_at.desc(),
                                                               Booking.id.desc())
    else:
        stmt = stmt.order_by(Booking.start_at.desc(), Booking.id.desc())
    tz = clinic_zone(db.session)
    rows = db.session.scalars(stmt.limit(query.limit)).all()
    return {"bookings": [booking_json(b, tz) for b in rows]}


@endpoint("/bookings/<int:booking_id>", "GET", summary="One booking", tag="bookings",
          response=BookingOut, errors=(404,))
def bookings_show(booking_id: int) -> dict[str, Any]:
    """404 for anything that is not yours."""
    booking = booking_service.get_booking_for(db.session, booking_id, current_api_user())
    return booking_json(booking, clinic_zone(db.session))


def _optional_reason() -> str:
    """The optional ``{"reason": "..."}`` body of a cancellation (an empty body is fine)."""
    raw = request.get_data(cache=True)
    if not raw.strip():
        return ""
    try:
        payload = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("The body must be JSON (or empty).", code="invalid_json") from None
    if not isinstance(payload, dict):
        raise BadRequest("The body must be a JSON object.", code="invalid_json")
    reason = payload.get("reason", "")
    if not isinstance(reason, str) or len(reason) > 255 or has_control_characters(reason):
        raise ValidationFailed("Some fields are missing or invalid.",
                               fields={"reason": "One line of at most 255 characters."})
    return reason


@endpoint("/bookings/<int:booking_id>/cancel", "POST",
          summary="Cancel a booking (optional body {\"reason\"}); late when inside the cutoff",
          tag="bookings", response=BookingOut, errors=(400, 404, 422))
def bookings_cancel(booking_id: int) -> dict[str, Any]:
    """A client cancelling inside the cutoff is allowed; ``late`` records it."""
    user = current_api_user()
    reason = _optional_reason()
    booking = booking_service.get_booking_for(db.session, booking_id, user)
    related = _load_related(booking)  # for the emails' names and the answer: one statement
    booking_service.cancel(db.session, booking, actor=user, now=now(), reason=reason)
    out = booking_json(booking, clinic_zone(db.session))
    db.session.commit()
    del related
    return out


@endpoint("/bookings/<int:booking_id>/reschedule", "POST", summary="Move a booking (same id)",
          tag="bookings", body=RescheduleIn, response=BookingOut, errors=(404, 409))
def bookings_reschedule(booking_id: int, body: RescheduleIn) -> dict[str, Any]:
    """The new time is secured before the old one is released (one transaction)."""
    user = current_api_user()
    booking = booking_service.get_booking_for(db.session, booking_id, user)
    booking_service.reschedule(db.session, booking, new_start=body.start, actor=user,
                               now=now(), therapist_id=body.therapist_id)
    out = booking_json(booking, clinic_zone(db.session))
    db.session.commit()
    return out


@endpoint("/bookings/<int:booking_id>/no-show", "POST", summary="Staff: the client did not come",
          tag="bookings", response=BookingOut, roles=("therapist", "admin"), errors=(404,))
def bookings_no_show(booking_id: int) -> dict[str, Any]:
    """Only once the session has started."""
    user = current_api_user()
    booking = booking_service.get_booking_for(db.session, booking_id, user)
    related = _load_related(booking)  # for the emails' names and the answer: one statement
    booking_service.mark_no_show(db.session, booking, actor=user, now=now())
    out = booking_json(booking, clinic_zone(db.session))
    db.session.commit()
    del related
    return out
