"""The client's privacy rights: export all their data, close their account, and the
purge of health records once the clinic's retention period has passed.

Closing an account anonymises the user at once (no name, email, phone or password is
left; every session and API token stops working) but keeps the health records: the
clinic must keep them for ``ClinicSettings.retention_years``. The worker's housekeeping
calls :func:`purge_expired_health_records` to delete them afterwards. Audit entries
stay: they name kinds of records, never their contents.
"""

from __future__ import annotations

from datetime import date
from datetime import datetime
from typing import Any

from sqlalchemy import delete
from sqlalchemy import false
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.orm import Session

from clinic_app.errors import Forbidden
from clinic_app.models.accounts import ApiToken
from clinic_app.models.accounts import OneTimeToken
from clinic_app.models.accounts import Role
from clinic_app.models.accounts import User
from clinic_app.models.booking import Booking
from clinic_app.models.care import CheckIn
from clinic_app.models.care import Course
from clinic_app.models.care import Intake
from clinic_app.models.care import ProblemReport
from clinic_app.models.care import Recommendation
from clinic_app.models.care import SessionAmendment
from clinic_app.models.care import SessionRecord
from clinic_app.models.outbox import OutboxMessage
from clinic_app.models.outbox import OutboxStatus
from clinic_app.models.waitlist import OfferStatus
from clinic_app.models.waitlist import WaitlistEntry
from clinic_app.models.waitlist import WaitlistOffer
from clinic_app.services import accounts
from clinic_app.services import audit
from clinic_app.services import booking as booking_service
from clinic_app.services import waitlist
from clinic_app.services import waitlist_offers
from clinic_app.services.notify import events as notifications
from clinic_app.services.settings import clinic_zone
from clinic_app.services.settings import get_settings

__all__ = ["CLOSED_NAME", "close_account", "export_client_data",
           "purge_expired_health_records"]

CLOSED_NAME = "Closed account"
EXPORT_FORMAT = 1


def _iso(value: datetime | date | None) -> str | None:
    return value.isoformat() if value is not None else None


def _require_client(user: User) -> None:
    if user.role != Role.CLIENT.value:
        raise Forbidden(
            "Only client accounts can be exported or closed here. Staff accounts are "
            "deactivated by a clinic admin.", code="not_a_client")


def export_client_data(session: Session, client: User, now: datetime) -> dict[str, Any]:
    """Everything the clinic holds about ``client``, as JSON-serialisable data.

    Times are ISO 8601 with their offset (UTC, and the clinic's local time for bookings);
    dates are YYYY-MM-DD. Only rows of this client are read. Forbidden for staff.
    """
    _require_client(client)
    zone = clinic_zone(session)
    names = dict(session.execute(select(User.id, User.name)).all())
    bookings = list(session.scalars(
        select(Booking).where(Booking.client_id == client.id).order_by(Booking.start_at)))
    booking_ids = [b.id for b in bookings]
    records = list(session.scalars(
        select(SessionRecord).where(SessionRecord.booking_id.in_(booking_ids))
        .order_by(SessionRecord.created_at))) if booking_ids else []
    checkins = list(session.scalars(
        select(CheckIn).where(CheckIn.booking_id.in_(booking_ids))
        .order_by(CheckIn.submitted_at))) if booking_ids else []
    reports = list(session.scalars(
        select(ProblemReport).where(ProblemReport.booking_id.in_(booking_ids))
        .order_by(ProblemReport.submitted_at, ProblemReport.id))) if booking_ids else []
    intake = session.scalar(select(Intake).where(Intake.client_id == client.id))
    courses = list(session.scalars(
        select(Course).where(Course.client_id == client.id).order_by(Course.started_at)))
    recs = list(session.scalars(
        select(Recommendation).where(Recommendation.client_id == client.id)
        .order_by(Recommendation.created_at, Recommendation.id)))
    entries = list(session.scalars(
        select(WaitlistEntry).where(WaitlistEntry.client_id == client.id)
        .order_by(WaitlistEntry.created_at, WaitlistEntry.id)))
    offers = list(session.scalars(
        select(WaitlistOffer).where(WaitlistOffer.client_id == client.id)
        .order_by(WaitlistOffer.created_at, WaitlistOffer.id)))
    # Emails addressed to this client (the therapist's copies of booking emails are not theirs).
    emails = [m for m in session.scalars(
        select(OutboxMessage).where(
            or_(OutboxMessage.user_id == client.id,
                OutboxMessage.booking_id.in_(booking_ids) if booking_ids else false()))
        .order_by(OutboxMessage.created_at, OutboxMessage.id))
        if client.email and client.email.lower() in m.to_addr.lower()]  # None: phone only

    return {
        "format": EXPORT_FORMAT,
        "exported_at": _iso(now),
        "clinic_timezone": str(zone.key),
        "profile": {
            "id": client.id, "name": client.name, "email": client.email,
            "phone": client.phone, "role": client.role,
            "created_at": _iso(client.created_at),
            "email_verified_at": _iso(client.email_verified_at),
            "privacy_consent_at": _iso(client.consent_at),
            "wants_prompts": client.wants_prompts,
        },
        "bookings": [{
            "id": b.id, "service": b.service.name, "therapist": b.therapist.user.name,
            "room": b.room.name, "status": b.status,
            "start": _iso(b.start_at), "end": _iso(b.end_at),
            "start_local": _iso(b.start_at.astimezone(zone)),
            "end_local": _iso(b.end_at.astimezone(zone)),
            "price_cents": b.price_cents, "late_cancel": b.late_cancel,
            "cancelled_at": _iso(b.cancelled_at), "cancel_reason": b.cancel_reason,
            "booked_before_recommended_date": b.early_confirmed, "note": b.note,
            "created_at": _iso(b.created_at), "updated_at": _iso(b.updated_at),
        } for b in bookings],
        # Therapist null: any therapist who gives the service.
        "waitlist_entries": [{
            "id": e.id, "service": e.service.name,
            "therapist": e.therapist.user.name if e.therapist is not None else None,
            "date_from": _iso(e.date_from), "date_to": _iso(e.date_to),
            "parts_of_day": list(e.parts_of_day or []),
            "status": waitlist.status_of(session, e, now),
            "created_at": _iso(e.created_at), "updated_at": _iso(e.updated_at),
        } for e in entries],
        "waitlist_offers": [{
            "id": o.id, "entry_id": o.entry_id, "service": o.service.name,
            "therapist": o.therapist.user.name, "start": _iso(o.start_at),
            "end": _iso(o.end_at), "start_local": _iso(o.start_at.astimezone(zone)),
            "end_local": _iso(o.end_at.astimezone(zone)),
            # An open offer past its expiry is expired, before the job marks it.
            "status": (OfferStatus.EXPIRED.value
                       if o.status == OfferStatus.OPEN.value and not o.lives(now)
                       else o.status),
            "offered_at": _iso(o.created_at), "expires_at": _iso(o.expires_at),
            "answered_at": _iso(o.responded_at), "booking_id": o.booking_id,
        } for o in offers],
        "intake": None if intake is None else {
            "answers": intake.answers, "flags": intake.flags,
            "updated_at": _iso(intake.updated_at), "confirmed_at": _iso(intake.confirmed_at),
        },
        "courses": [{
            "id": c.id, "started_at": _iso(c.started_at), "goal": c.goal,
            "injury_date": _iso(c.injury_date),
        } for c in courses],
        "session_records": [{
            "id": r.id, "booking_id": r.booking_id, "course_id": r.course_id,
            "session_number": r.session_number, "regions": r.regions, "muscles": r.muscles,
            "techniques": r.techniques, "intensity": r.intensity, "notes": r.notes,
            "goal": r.goal, "injury_date": _iso(r.injury_date), "progress": r.progress,
            "therapist": names.get(r.author_id), "created_at": _iso(r.created_at),
            "updated_at": _iso(r.updated_at),
            "amendments": [{
                "created_at": _iso(a.created_at), "author": names.get(a.author_id),
                "text": a.text,
            } for a in r.amendments],
        } for r in records],
        "check_ins": [{
            "booking_id": c.booking_id, "kind": c.kind, "soreness": c.soreness,
            "red_flags": c.red_flags, "progress": c.progress, "still_sore": c.still_sore,
            "submitted_at": _iso(c.submitted_at),
        } for c in checkins],
        "problem_reports": [{
            "booking_id": p.booking_id, "red_flags": p.red_flags,
            "submitted_at": _iso(p.submitted_at),
        } for p in reports],
        "recommendations": [{
            "booking_id": r.booking_id, "created_at": _iso(r.created_at),
            "earliest": _iso(r.earliest), "ideal": _iso(r.ideal), "latest": _iso(r.latest),
            "action": r.action, "intensity_advice": r.intensity_advice, "reasons": r.reasons,
            "source": r.source, "override_reason": r.override_reason,
        } for r in recs],
        "emails": [{
            "kind": m.kind, "subject": m.subject, "status": m.status,
            "created_at": _iso(m.created_at), "sent_at": _iso(m.sent_at),
        } for m in emails],
        # Who at the clinic read your health data, and when (oldest first).
        "access_log": [line.to_dict()
                       for line in audit.access_log(session, client.id, newest_first=False)],
    }


def close_account(session: Session, client: User, password: str,
                  now: datetime) -> list[Booking]:
    """Close ``client``'s account after re-checking their password.

    Future bookings are cancelled through the normal path (the cancellation emails go
    to the address the client had), their waitlist entries are left and open offers
    withdrawn (holds released), every other unsent email to them is retired, then the
    user is anonymised at once and every session and token revoked. Health records stay
    until :func:`purge_expired_health_records` removes them. Returns the cancelled
    bookings. Forbidden (``not_a_client``) for staff; ValidationFailed on field
    ``password`` when the password is wrong.
    """
    _require_client(client)
    accounts.require_password(client, password)
    upcoming = list(session.scalars(
        select(Booking).where(Booking.client_id == client.id,
                              Booking.status.in_(booking_service.CANCELLABLE),
                              Booking.start_at > now)
        .order_by(Booking.start_at)))
    for b in upcoming:
        booking_service.cancel(session, b, actor=client, now=now, reason="Account closed")
    # Nothing of theirs stays live on the waitlist: the entries end, and an open offer is
    # withdrawn now (its hold released and the time queued for the next match) instead of
    # keeping the slot from everyone until the offer job's next round.
    waitlist.leave_all(session, client, now)
    waitlist_offers.close_lapsed_offers(session, now, client_id=client.id)
    session.execute(
        update(OutboxMessage)
        # Everything still unsent but the cancellation notices just written: a reminder,
        # aftercare or check-in for a closed account would reach someone who left.
        .where(OutboxMessage.user_id == client.id,
               OutboxMessage.kind != notifications.CANCELLATION,
               OutboxMessage.status.in_([OutboxStatus.PENDING.value,
                                         OutboxStatus.FAILED.value]))
        .values(status=OutboxStatus.RETIRED.value,
                last_error=f"account closed at {now.isoformat()}")
        .execution_options(synchronize_session=False))
    # Links already emailed (reset, verify, change of address) must not reopen anything.
    session.execute(delete(OneTimeToken).where(OneTimeToken.user_id == client.id))
    session.execute(
        update(ApiToken).where(ApiToken.user_id == client.id, ApiToken.revoked_at.is_(None))
        .values(revoked_at=now).execution_options(synchronize_session=False))
    client.name = CLOSED_NAME
    client.email = f"closed-{client.id}@invalid"
    client.phone = None
    client.password_hash = None
    client.is_active = False
    client.wants_prompts = False
    client.anonymised_at = now
    accounts.revoke_sessions(client)
    session.flush()
    return upcoming


def _years_before(moment: datetime, years: int) -> datetime:
    try:
        return moment.replace(year=moment.year - years)
    except ValueError:  # 29 February
        return moment.replace(year=moment.year - years, day=28)


def purge_expired_health_records(session: Session, now: datetime) -> int:
    """Delete the health records (intake, courses, session records with amendments,
    check-ins, recommendations) of clients anonymised more than the clinic's retention
    period ago. Bookings and audit entries stay. Returns the number of rows deleted."""
    cutoff = _years_before(now, get_settings(session).retention_years)
    clients = select(User.id).where(User.role == Role.CLIENT.value,
                                    User.anonymised_at.is_not(None),
                                    User.anonymised_at < cutoff)
    bookings = select(Booking.id).where(Booking.client_id.in_(clients))
    records = select(SessionRecord.id).where(SessionRecord.booking_id.in_(bookings))
    # Children first: the foreign keys have no ON DELETE CASCADE.
    statements = [
        delete(SessionAmendment).where(SessionAmendment.session_record_id.in_(records)),
        delete(CheckIn).where(CheckIn.booking_id.in_(bookings)),
        delete(ProblemReport).where(ProblemReport.booking_id.in_(bookings)),
        delete(Recommendation).where(or_(Recommendation.client_id.in_(clients),
                                         Recommendation.booking_id.in_(bookings))),
        delete(SessionRecord).where(SessionRecord.booking_id.in_(bookings)),
        delete(Course).where(Course.client_id.in_(clients)),
        delete(Intake).where(Intake.client_id.in_(clients)),
    ]
    total = 0
    for stmt in statements:
        total += session.execute(stmt.execution_options(synchronize_session=False)).rowcount or 0
    return total
