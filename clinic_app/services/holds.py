"""Held slots (issue 12.1): one slot reserved for one person for a few minutes.

A hold is a ``bookings`` row with status ``held`` and an ``expires_at``. It is placed through
the same re-check and flush as a booking (``services.booking``), so it blocks the therapist
and the room exactly like one: on PostgreSQL inside the exclusion constraints, on SQLite in
the serial re-check. The slot search ignores an expired hold, and a booking transaction that
reads one on the time it takes deletes those before placing (``booking.delete_expired_holds``),
so an expired hold never blocks. A hold becomes the booking on the same row
(:func:`convert_hold`, status machine ``convert``) or goes (:func:`release_hold`, expiry,
housekeeping :func:`purge_expired_holds`).

Holds are invisible to ORM queries unless they opt in (``models.booking.INCLUDE_HOLDS``):
they are never shown as appointments, emailed as bookings or counted. Services never commit.
"""

from __future__ import annotations

from datetime import datetime
from datetime import timedelta

from sqlalchemy import delete
from sqlalchemy import select
from sqlalchemy.orm import Session

from clinic_app.errors import Conflict
from clinic_app.errors import NotFound
from clinic_app.errors import SlotTaken
from clinic_app.errors import ValidationFailed
from clinic_app.models.accounts import User
from clinic_app.models.booking import INCLUDE_HOLDS
from clinic_app.models.booking import MAX_ID
from clinic_app.models.booking import Booking
from clinic_app.models.booking import BookingStatus
from clinic_app.models.booking import HoldPurpose
from clinic_app.services import booking as booking_service
from clinic_app.services import freed_time
from clinic_app.services.availability import bookable_service
from clinic_app.services.notify import events as notifications

__all__ = [
    "HOLD_GRACE",
    "MAX_HOLD_MINUTES",
    "HoldExpired",
    "claim_hold",
    "claimable_hold",
    "convert_hold",
    "get_hold",
    "place_hold",
    "purge_expired_holds",
    "release_hold",
    "signup_hold_for",
]

#: The longest a hold may last (a waitlist offer is the longest, default 30 minutes).
MAX_HOLD_MINUTES = 24 * 60
#: Expired holds are kept this long (an expired link can still say "the hold expired").
HOLD_GRACE = timedelta(days=1)


class HoldExpired(Conflict):
    """409: the hold has expired (or was released or used); the slot may be gone."""

    code = "hold_expired"


def get_hold(session: Session, hold_id: int, *, lock: bool = False) -> Booking | None:
    """The held row ``hold_id`` (expired or not), or None; ``lock`` takes its row lock and
    re-reads it, so the status checked is the one changed."""
    if not 0 < hold_id <= MAX_ID:
        return None
    stmt = (select(Booking)
            .where(Booking.id == hold_id, Booking.status == BookingStatus.HELD.value)
            .execution_options(**{INCLUDE_HOLDS: True}, populate_existing=lock))
    if lock:
        stmt = stmt.with_for_update()
    return session.scalar(stmt)


def place_hold(
    session: Session,
    *,
    service_id: int,
    start: datetime,
    therapist_id: int | None = None,
    client_id: int | None = None,
    purpose: str,
    minutes: int,
    now: datetime,
) -> Booking:
    """Hold ``service_id`` at ``start`` for ``minutes`` (first free therapist when none given).

    ``client_id`` is who the hold is for, when known (a waitlist offer; a visitor signing up
    has none yet). Raises NotFound, ValidationFailed (the booking codes: in_past, too_soon,
    beyond_horizon, closed, outside_hours, not_on_step, not_offered, inactive_service,
    naive_datetime; and invalid_purpose, invalid_minutes) or SlotTaken (409).
    """
    if purpose not in {p.value for p in HoldPurpose}:
        raise ValidationFailed("Unknown hold purpose.", code="invalid_purpose",
                               fields={"purpose": "One of: signup, offer."})
    if not 0 < minutes <= MAX_HOLD_MINUTES:
        raise ValidationFailed("A hold lasts between 1 minute and a day.",
                               code="invalid_minutes", fields={"minutes": "1 to 1440."})
    booking_service.require_aware(start, "start")
    service = bookable_service(session, service_id, therapist_id)
    candidates = (therapist_id,) if therapist_id is not None else service.therapist_ids
    hold = Booking(
        client_id=client_id,
        service_id=service.id,
        status=BookingStatus.HELD.value,
        price_cents=service.price_cents,
        early_confirmed=False,
        booked_by_id=None,
        note="",
        sequence=0,
        late_cancel=False,
        cancel_reason="",
        created_at=now,
        updated_at=now,
        expires_at=now + timedelta(minutes=minutes),
        hold_purpose=purpose,
    )
    for _ in range(booking_service.ATTEMPTS):
        slot, expired_in_way = booking_service.find_slot(
            session, service=service, therapist_ids=candidates, start=start, now=now)
        if booking_service.place_on_slot(session, hold, slot, service, now,
                                         expired_in_way=expired_in_way):
            return hold
    raise SlotTaken("That time has just been taken. Please pick another.",
                    fields={"start": "No longer available."})


def release_hold(session: Session, hold: Booking, now: datetime, *,
                 reason: str = freed_time.FreedReason.HOLD_RELEASED) -> bool:
    """Give the held slot back at once (declined offer, visitor gone) and queue it for the
    waitlist (``reason``). True when a hold was released; False when it had already become
    a booking or gone (nothing to do)."""
    locked = get_hold(session, hold.id, lock=True)
    if locked is None:
        return False
    freed_time.booking_freed(session, locked, reason, now)
    session.delete(locked)
    session.flush()
    return True


def convert_hold(session: Session, hold: Booking, *, client: User, actor: User,
                 now: datetime) -> Booking:
    """The hold becomes ``client``'s booking (same row and slot, status pending or booked as
    for any new booking), the confirmation goes out. Every check of a new booking applies
    (``booking.admit_client``: who for whom, client account, early rule, cap).

    Raises HoldExpired (409 ``hold_expired``) when the hold has expired, was released or was
    used; NotFound when the hold is for another client.
    """
    locked = get_hold(session, hold.id, lock=True)
    if locked is None or not locked.hold_lives(now):
        raise HoldExpired("The time held for you has expired. Please pick another time.")
    if locked.client_id is not None and locked.client_id != client.id:
        raise NotFound("There is no such hold.", code="not_found")
    early, status = booking_service.admit_client(session, client=client, actor=actor,
                                                 start=locked.start_at, early_confirmed=False,
                                                 now=now)
    locked.convert(now, client_id=client.id, status=status, booked_by_id=actor.id,
                   early_confirmed=early)
    session.flush()
    notifications.booking_created(session, locked, now)
    return locked


def claimable_hold(session: Session, hold_id: int, *, client_id: int | None,
                   now: datetime, purpose: str = HoldPurpose.SIGNUP.value) -> Booking:
    """The live hold ``hold_id`` of ``purpose``, locked, if it is free to attach to
    ``client_id`` (unattached, or already theirs). A hold attached to someone else is not
    theirs to take (NotFound ``hold_not_found``, as for no hold); an expired one raises
    HoldExpired."""
    hold = get_hold(session, hold_id, lock=True)
    if hold is None or hold.hold_purpose != purpose or hold.client_id not in (None, client_id):
        raise NotFound("There is no such hold.", code="hold_not_found",
                       fields={"hold_id": "No such hold."})
    if not hold.hold_lives(now):
        raise HoldExpired("The time held for you has expired. Please pick another time.",
                          fields={"hold_id": "Expired."})
    return hold


def claim_hold(session: Session, hold_id: int, *, client_id: int, purpose: str,
               now: datetime) -> Booking:
    """Attach a visitor's anonymous live hold to the account being created for them
    (errors as :func:`claimable_hold`)."""
    hold = claimable_hold(session, hold_id, client_id=client_id, now=now, purpose=purpose)
    hold.client_id = client_id
    hold.updated_at = now
    session.flush()
    return hold


def signup_hold_for(session: Session, client_id: int) -> Booking | None:
    """The newest sign-up hold attached to ``client_id`` (live or expired), or None."""
    return session.scalar(
        select(Booking)
        .where(Booking.client_id == client_id, Booking.status == BookingStatus.HELD.value,
               Booking.hold_purpose == HoldPurpose.SIGNUP.value)
        .order_by(Booking.id.desc()).limit(1)
        .execution_options(**{INCLUDE_HOLDS: True})
    )


def purge_expired_holds(session: Session, now: datetime, grace: timedelta = HOLD_GRACE) -> int:
    """Housekeeping: delete holds that expired more than ``grace`` ago. Returns the count."""
    result = session.execute(
        delete(Booking).where(Booking.status == BookingStatus.HELD.value,
                              Booking.expires_at < now - grace)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount or 0  # type: ignore[attr-defined]
