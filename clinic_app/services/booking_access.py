"""THE booking access rule: who may see (and act on) a booking.

Clients see their own bookings, therapists the ones they give, admins all; anything else,
and any id that cannot be a row (out of the 32-bit range), is NotFound, so nobody learns
that someone else's booking exists. Every page and endpoint that takes a booking id goes
through :func:`get_booking_for`; the health-data rule (``services.care.access``) builds on it.
It sits below both the booking and the care services (it needs only the models).
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from clinic_app.errors import NotFound
from clinic_app.models.accounts import Role
from clinic_app.models.accounts import User
from clinic_app.models.booking import MAX_ID
from clinic_app.models.booking import Booking
from clinic_app.models.schedule import Therapist

__all__ = ["MAX_ID", "find_booking", "get_booking_for", "is_staff", "may_see_booking",
           "therapist_for_user"]


def therapist_for_user(session: Session, user: User) -> Therapist | None:
    """The therapist profile of a therapist user (None for anyone else)."""
    if user.role != Role.THERAPIST.value:
        return None
    return session.scalar(select(Therapist).where(Therapist.user_id == user.id))


def is_staff(user: User) -> bool:
    """Therapists and admins."""
    return user.role in (Role.ADMIN.value, Role.THERAPIST.value)


def find_booking(session: Session, booking_id: int) -> Booking | None:
    """The booking with that id, without any access check; None for an id that cannot
    exist (the driver would overflow on it: a 500 instead of a 404)."""
    if not 0 < booking_id <= MAX_ID:
        return None
    return session.get(Booking, booking_id)


def may_see_booking(session: Session, booking: Booking, user: User) -> bool:
    """Clients their own, therapists the bookings they give, admins all."""
    if user.role == Role.ADMIN.value:
        return True
    if user.role == Role.THERAPIST.value:
        therapist = therapist_for_user(session, user)
        return therapist is not None and booking.therapist_id == therapist.id
    return booking.client_id == user.id


def get_booking_for(session: Session, booking_id: int, user: User) -> Booking:
    """The booking if ``user`` may see it, else NotFound (also for "not yours")."""
    booking = find_booking(session, booking_id)
    if booking is None or not may_see_booking(session, booking, user):
        raise NotFound("There is no such booking.")
    return booking
