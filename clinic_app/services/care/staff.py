"""What therapists see across clients: the review queue and a client's timeline."""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field
from datetime import datetime
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from clinic_app.errors import NotFound
from clinic_app.models.accounts import User
from clinic_app.models.booking import Booking
from clinic_app.models.booking import BookingStatus
from clinic_app.models.care import CheckIn
from clinic_app.models.care import Course
from clinic_app.models.care import ProblemReport
from clinic_app.models.care import Recommendation
from clinic_app.models.care import SessionRecord
from clinic_app.models.schedule import Therapist
from clinic_app.services.audit import record_read
from clinic_app.services.booking_access import therapist_for_user
from clinic_app.services.care.access import audit_read
from clinic_app.services.care.access import require_health_access
from clinic_app.services.care.checkins import red_flag_labels
from clinic_app.services.care.followup import recommendation_dict
from clinic_app.services.care.inputs import FLAG_CONFIRM_FIRST
from clinic_app.services.care.inputs import FLAG_LABELS
from clinic_app.services.care.intake import needs_confirmation
from clinic_app.services.care.lookups import checkins_by_booking
from clinic_app.services.care.lookups import current_recommendation
from clinic_app.services.care.lookups import intake_for
from clinic_app.services.care.lookups import recommendation_history
from clinic_app.services.care.records import EDIT_WINDOW
from clinic_app.services.settings import clinic_zone

# Red-flag check-ins and problem reports stay in the therapist's review queue this long.
REVIEW_RED_FLAG_DAYS = 14


@dataclass
class ReviewItem:
    """One thing waiting for the therapist: kind is refer, therapist_review, red_flag or
    confirm_first."""

    kind: str
    client: User
    booking: Booking
    at: datetime
    recommendation: Recommendation | None = None
    checkin: CheckIn | None = None
    labels: list[str] = field(default_factory=list)


def review_queue(session: Session, therapist: Therapist | User, now: datetime) -> list[ReviewItem]:
    """What needs the therapist: current review/refer recommendations from their sessions,
    recent red-flag check-ins and problem reports, and pending "confirm first" bookings.
    Urgent first."""
    if isinstance(therapist, User):
        found = therapist_for_user(session, therapist) if therapist.role == "therapist" else None
        if found is None:
            raise NotFound("Not found.")
        therapist = found
    items: list[ReviewItem] = []
    client_ids = set(session.scalars(
        select(Booking.client_id).where(Booking.therapist_id == therapist.id).distinct()
    ))
    for client_id in sorted(client_ids):
        rec = current_recommendation(session, client_id)
        if rec is None or rec.action not in ("refer", "therapist_review"):
            continue
        booking = session.get(Booking, rec.booking_id)
        if booking is None or booking.therapist_id != therapist.id:
            continue
        items.append(ReviewItem(kind=rec.action, client=booking.client, booking=booking,
                                at=rec.created_at, recommendation=rec))
    since = now - timedelta(days=REVIEW_RED_FLAG_DAYS)
    for checkin, booking in session.execute(
        select(CheckIn, Booking).join(Booking, Booking.id == CheckIn.booking_id)
        .where(Booking.therapist_id == therapist.id, CheckIn.submitted_at >= since)
        .order_by(CheckIn.submitted_at.desc())
    ).all():
        if checkin.red_flags:
            items.append(ReviewItem(kind="red_flag", client=booking.client, booking=booking,
                                    at=checkin.submitted_at, checkin=checkin,
                                    labels=red_flag_labels(checkin.red_flags)))
    for report, booking in session.execute(
        select(ProblemReport, Booking).join(Booking, Booking.id == ProblemReport.booking_id)
        .where(Booking.therapist_id == therapist.id, ProblemReport.submitted_at >= since)
        .order_by(ProblemReport.submitted_at.desc())
    ).all():
        items.append(ReviewItem(kind="red_flag", client=booking.client, booking=booking,
                                at=report.submitted_at,
                                labels=["Reported a problem", *red_flag_labels(report.red_flags)]))
    for booking in session.scalars(
        select(Booking).where(Booking.therapist_id == therapist.id,
                              Booking.status == BookingStatus.PENDING.value,
                              Booking.end_at > now)
        .order_by(Booking.start_at)
    ):
        if needs_confirmation(session, booking.client_id):
            items.append(ReviewItem(kind="confirm_first", client=booking.client,
                                    booking=booking, at=booking.created_at,
                                    labels=[FLAG_LABELS[FLAG_CONFIRM_FIRST]]))
    order = {"red_flag": 0, "refer": 1, "confirm_first": 2, "therapist_review": 3}
    items.sort(key=lambda i: (order[i.kind], -i.at.timestamp()))
    user = therapist.user
    for client_id in sorted({i.client.id for i in items}):
        record_read(session, user, "read:review_queue", client_id, "review_queue", None, now)
    return items


@dataclass
class Timeline:
    """A client's treatment history for the therapist's page (helper pages draw it)."""

    client: User
    courses: list[dict[str, Any]]
    sessions: list[dict[str, Any]]
    soreness: list[dict[str, Any]]
    recommendations: list[dict[str, Any]]
    intake_flags: list[str]
    current: dict[str, Any]


def client_timeline(session: Session, client: User, viewer: User, now: datetime) -> Timeline:
    """Sessions (with intensity and amendments), the soreness series, every recommendation
    and the intake flags. NotFound for anyone who may not see the client; staff reads are
    audited."""
    require_health_access(session, viewer, client.id)
    zone = clinic_zone(session)
    courses = list(session.scalars(
        select(Course).where(Course.client_id == client.id).order_by(Course.started_at)
    ))
    rows = list(session.execute(
        select(SessionRecord, Booking).join(Booking, Booking.id == SessionRecord.booking_id)
        .where(Booking.client_id == client.id).order_by(Booking.start_at)
    ).all())
    checkins = checkins_by_booking(session, [b.id for _, b in rows])
    reported: dict[int, list[str]] = {}
    for booking_id, flags in session.execute(
        select(ProblemReport.booking_id, ProblemReport.red_flags)
        .where(ProblemReport.booking_id.in_([b.id for _, b in rows]))
    ).all():
        reported.setdefault(booking_id, []).extend(flags or [])
    sessions: list[dict[str, Any]] = []
    soreness: list[dict[str, Any]] = []
    for record, booking in rows:
        answers = checkins.get(booking.id, {})
        day1, day3 = answers.get("24h"), answers.get("72h")
        sessions.append({
            "booking_id": booking.id, "record_id": record.id, "course_id": record.course_id,
            "date": booking.start_at.astimezone(zone).date(), "start_at": booking.start_at,
            "therapist": booking.therapist.name, "session_number": record.session_number,
            "intensity": record.intensity, "goal": record.goal,
            "injury_date": record.injury_date, "progress": record.progress,
            "regions": list(record.regions or []), "muscles": list(record.muscles or []),
            "techniques": list(record.techniques or []), "notes": record.notes,
            "author_id": record.author_id, "created_at": record.created_at,
            "editable_until": record.created_at + EDIT_WINDOW,
            "amendments": [{"at": a.created_at, "author_id": a.author_id, "text": a.text}
                           for a in record.amendments],
            "soreness": day1.soreness if day1 else None,
            "still_sore": day3.still_sore if day3 else None,
            "red_flags": red_flag_labels(
                [*(day1.red_flags if day1 else []), *(day3.red_flags if day3 else []),
                 *reported.get(booking.id, [])]),
        })
        if day1 is not None and day1.soreness is not None:
            soreness.append({"date": booking.start_at.astimezone(zone).date(),
                             "booking_id": booking.id, "soreness": day1.soreness,
                             "intensity": record.intensity,
                             "session_number": record.session_number})
    recs = [{"id": r.id, "booking_id": r.booking_id, "created_at": r.created_at,
             "source": r.source, "author_id": r.author_id,
             "override_reason": r.override_reason, **recommendation_dict(r)}
            for r in recommendation_history(session, client.id)]
    intake = intake_for(session, client.id)
    audit_read(session, viewer, "timeline", client.id, None, now)
    return Timeline(
        client=client,
        courses=[{"id": c.id, "started_at": c.started_at, "goal": c.goal,
                  "injury_date": c.injury_date} for c in courses],
        sessions=sessions,
        soreness=soreness,
        recommendations=recs,
        intake_flags=list(intake.flags or []) if intake else [],
        current=recs[-1] if recs else recommendation_dict(None),
    )
