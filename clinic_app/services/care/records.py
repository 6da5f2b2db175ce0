"""Courses and session records: completing a session, the 24 h edit window, amendments."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from datetime import datetime
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from clinic_app.errors import Conflict
from clinic_app.errors import NotFound
from clinic_app.errors import ValidationFailed
from clinic_app.models.accounts import User
from clinic_app.models.booking import Booking
from clinic_app.models.care import Course
from clinic_app.models.care import SessionAmendment
from clinic_app.models.care import SessionRecord
from clinic_app.services.care.access import STAFF_ROLES
from clinic_app.services.care.access import audit_read
from clinic_app.services.care.access import is_booking_therapist
from clinic_app.services.care.access import require_booking_therapist
from clinic_app.services.care.access import require_health_access
from clinic_app.services.care.followup import recommendation_for_booking
from clinic_app.services.care.inputs import RECORD_FIELDS
from clinic_app.services.care.inputs import AmendmentIn
from clinic_app.services.care.inputs import NewCourseIn
from clinic_app.services.care.inputs import SessionRecordIn
from clinic_app.services.care.inputs import SessionRecordPatch
from clinic_app.services.care.inputs import parse
from clinic_app.services.care.lookups import current_course
from clinic_app.services.care.lookups import local_date
from clinic_app.services.care.lookups import session_record_for
from clinic_app.services.notify import events as notifications

EDIT_WINDOW = timedelta(hours=24)
RECORD_INVALID = "Some fields of the session record are missing or invalid."


def start_new_course(session: Session, client: User, actor: User, now: datetime, goal: str,
                     injury_date: date | str | None = None) -> Course:
    """A therapist (of this client) or an admin starts a new course: numbering restarts at 1."""
    if actor.role not in STAFF_ROLES:
        raise NotFound("Not found.")
    require_health_access(session, actor, client.id)
    data = parse(NewCourseIn, {"goal": goal, "injury_date": injury_date},
                 message="Some fields are missing or invalid.")
    if data.injury_date is not None and data.injury_date > local_date(session, now):
        raise ValidationFailed("Some fields are missing or invalid.", fields={
            "injury_date": "The injury date cannot be in the future."})
    course = Course(client_id=client.id, started_at=now, started_by_id=actor.id,
                    goal=data.goal,
                    injury_date=data.injury_date if data.goal == "acute" else None)
    session.add(course)
    session.flush()
    return course


def complete_session(session: Session, booking: Booking, *, actor: User, now: datetime,
                     record: Mapping[str, Any] | SessionRecordIn) -> SessionRecord:
    """The booking's therapist (or an admin) completes it with the session record
    (a :class:`SessionRecordIn`, or a dict of its fields from a page).

    Conflict ``not_started`` before the booking's start, ``not_completable`` unless it is
    booked. The session is numbered within the client's current course (a course is
    started if there is none), the recommendation recomputed and the completion emails
    planned (``notifications.booking_completed``).
    """
    require_booking_therapist(session, actor, booking)
    # Lock and re-read: two completions of one booking must not both write a record.
    session.refresh(booking, with_for_update=True)
    if now < booking.start_at:
        raise Conflict("The session has not started yet.", code="not_started")
    booking.require("complete")
    course = current_course(session, booking.client_id)
    data = parse(SessionRecordIn, dict(record) if isinstance(record, Mapping) else record,
                 message=RECORD_INVALID)
    clean = data.finish(default_goal=course.goal if course else None,
                        session_day=local_date(session, booking.start_at))
    if course is None:
        course = Course(client_id=booking.client_id, started_at=now, started_by_id=actor.id,
                        goal=clean["goal"], injury_date=clean["injury_date"])
        session.add(course)
        session.flush()
    number = len(session.scalars(
        select(SessionRecord.id).where(SessionRecord.course_id == course.id)
    ).all()) + 1
    row = SessionRecord(booking_id=booking.id, course_id=course.id, session_number=number,
                        author_id=actor.id, created_at=now, updated_at=now, **clean)
    session.add(row)
    booking.complete(now)
    session.flush()
    recommendation_for_booking(session, booking, now)
    notifications.booking_completed(session, booking, now)
    return row


def edit_session_record(session: Session, record: SessionRecord, *, actor: User, now: datetime,
                        changes: Mapping[str, Any] | SessionRecordPatch) -> SessionRecord:
    """Its author changes a record within 24 h of writing it (Conflict
    ``edit_window_closed`` afterwards: append an amendment instead). ``changes`` holds
    only the fields to change (a :class:`SessionRecordPatch` or a dict of its fields)."""
    if actor.id != record.author_id:
        raise NotFound("Not found.")
    if now - record.created_at > EDIT_WINDOW:
        raise Conflict("Records can be edited for 24 hours; add an amendment instead.",
                       code="edit_window_closed")
    patch = parse(SessionRecordPatch, dict(changes) if isinstance(changes, Mapping)
                  else changes, message=RECORD_INVALID)
    merged = {name: getattr(record, name) for name in RECORD_FIELDS}
    merged.update(patch.model_dump(exclude_unset=True))
    booking = record.booking
    data = parse(SessionRecordIn, merged, message=RECORD_INVALID)
    clean = data.finish(default_goal=None, session_day=local_date(session, booking.start_at))
    for name, value in clean.items():
        setattr(record, name, value)
    record.updated_at = now
    session.flush()
    recommendation_for_booking(session, booking, now)
    return record


def amend_session_record(session: Session, record: SessionRecord, *, actor: User,
                         now: datetime, text: str) -> SessionAmendment:
    """Append an amendment (its time and author kept); the record itself never changes."""
    booking = record.booking
    if not (actor.id == record.author_id or actor.role == "admin"
            or is_booking_therapist(session, actor, booking)):
        raise NotFound("Not found.")
    data = parse(AmendmentIn, {"text": text}, message="The amendment is missing or too long.")
    amendment = SessionAmendment(session_record_id=record.id, author_id=actor.id,
                                 created_at=now, text=data.text)
    session.add(amendment)
    session.flush()
    session.refresh(record, ["amendments"])
    return amendment


def get_session_record(session: Session, booking: Booking, viewer: User,
                       now: datetime) -> SessionRecord | None:
    """A booking's record for someone allowed to see it; staff reads are audited."""
    require_health_access(session, viewer, booking.client_id)
    row = session_record_for(session, booking.id)
    if row is not None:
        audit_read(session, viewer, "session_record", booking.client_id, row.id, now)
    return row
