"""THE health-data rule and the audit of staff reads.

A client sees their own health data; an admin sees everyone's; a therapist sees a
client's while they are that client's *treating* therapist: they gave the client a
completed session, or they hold a non-cancelled booking with the client that the client
or an admin made. Everyone else gets NotFound (no existence leak). Writes on one booking's
clinical record stay with that booking's own therapist (or an admin): the booking access
rule of ``services.booking_access``. Every staff read writes an audit entry.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import ColumnElement
from sqlalchemy import and_
from sqlalchemy import exists
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy.orm import Session

from clinic_app.errors import NotFound
from clinic_app.models.accounts import User
from clinic_app.models.booking import Booking
from clinic_app.models.booking import BookingStatus
from clinic_app.services.audit import record_read
from clinic_app.services.booking_access import MAX_ID
from clinic_app.services.booking_access import find_booking
from clinic_app.services.booking_access import is_staff
from clinic_app.services.booking_access import may_see_booking
from clinic_app.services.booking_access import therapist_for_user

STAFF_ROLES = ("therapist", "admin")


def _treating_clause(therapist_id: int) -> ColumnElement[bool]:
    """Bookings that make ``therapist_id`` the client's treating therapist.

    A completed session, or a booking that is not cancelled and that the client or an
    admin made (a therapist booking a stranger must not gain access by it). ``booked_by``
    is empty only for rows written outside the booking service (imports, set-up): those
    count as the client's own.
    """
    admins = select(User.id).where(User.role == "admin").scalar_subquery()
    made_by_client_or_admin = or_(Booking.booked_by_id.is_(None),
                                  Booking.booked_by_id == Booking.client_id,
                                  Booking.booked_by_id.in_(admins))
    return and_(
        Booking.therapist_id == therapist_id,
        or_(Booking.status == BookingStatus.COMPLETED.value,
            and_(Booking.status != BookingStatus.CANCELLED.value, made_by_client_or_admin)),
    )


def treated_client_ids(session: Session, therapist_id: int,
                       client_ids: Iterable[int]) -> set[int]:
    """Which of ``client_ids`` the therapist treats (one query, for lists like the week)."""
    wanted = set(client_ids)
    if not wanted:
        return set()
    return set(session.scalars(
        select(Booking.client_id).where(Booking.client_id.in_(wanted),
                                        _treating_clause(therapist_id)).distinct()
    ))


def is_treating_therapist(session: Session, therapist_id: int, client_id: int) -> bool:
    """True while the therapist is the client's treating therapist (see _treating_clause)."""
    return bool(session.scalar(select(exists().where(Booking.client_id == client_id,
                                                     _treating_clause(therapist_id)))))


def can_see_health(session: Session, viewer: User, client_id: int) -> bool:
    """THE health-data rule: the client themself, an admin, or a treating therapist."""
    if viewer.role == "admin":
        return True
    if viewer.role == "client":
        return viewer.id == client_id
    therapist = therapist_for_user(session, viewer)
    return therapist is not None and is_treating_therapist(session, therapist.id, client_id)


def require_health_access(session: Session, viewer: User, client_id: int) -> None:
    """NotFound unless ``viewer`` may see ``client_id``'s health data (no existence leak)."""
    if not can_see_health(session, viewer, client_id):
        raise NotFound("Not found.")


def is_booking_therapist(session: Session, user: User, booking: Booking) -> bool:
    return user.role == "therapist" and may_see_booking(session, booking, user)


def require_booking_therapist(session: Session, actor: User, booking: Booking) -> None:
    """Only the booking's own therapist (or an admin) writes its clinical records: the
    booking access rule, for staff."""
    if is_staff(actor) and may_see_booking(session, booking, actor):
        return
    raise NotFound("Not found.")


def booking_for_health(session: Session, booking_id: int, viewer: User) -> Booking:
    """A booking whose health data ``viewer`` may see (THE health rule on its client), with
    the id guard of the booking rule. Anything else is NotFound."""
    booking = find_booking(session, booking_id)
    if booking is None or not can_see_health(session, viewer, booking.client_id):
        raise NotFound("Not found.")
    return booking


def audit_read(session: Session, viewer: User, what: str, client_id: int, subject_id: int | None,
           now: datetime) -> None:
    record_read(session, viewer, f"read:{what}", client_id, what, subject_id, now)


def get_client(session: Session, client_id: int, viewer: User) -> User:
    """A client account ``viewer`` may see the health data of (else NotFound)."""
    client = session.get(User, client_id) if 0 < client_id <= MAX_ID else None
    if client is None or client.role != "client":
        raise NotFound("Not found.")
    require_health_access(session, viewer, client.id)
    return client
