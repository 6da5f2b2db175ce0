"""API v1: plan and book a course of sessions (issue 13, fixed paths and fields).

``POST /courses/plan`` proposes the next N sessions, each inside its projected window;
``POST /courses/book`` books them all or nothing (409 ``slot_taken`` naming each session that
could not be booked, ``sessions.N``, with nothing booked).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel
from pydantic import Field
from pydantic import field_validator
from sqlalchemy import select

from clinic_app.api.bookings import LOAD_OPTIONS
from clinic_app.api.bookings import BookingOut
from clinic_app.api.bookings import Id
from clinic_app.api.bookings import _aware as aware
from clinic_app.api.bookings import _client_for as client_for
from clinic_app.api.bookings import booking_json
from clinic_app.api.core import current_api_user
from clinic_app.api.core import endpoint
from clinic_app.clock import utcnow as now
from clinic_app.extensions import db
from clinic_app.models.booking import Booking
from clinic_app.services import booking as booking_service
from clinic_app.services import courses as course_service
from clinic_app.services.settings import clinic_zone


class PlanIn(BaseModel):
    sessions: int = Field(ge=1, le=course_service.MAX_PLANNED,
                          description="How many sessions to plan")
    therapist_id: Id | None = Field(default=None, description="Omit for your usual therapist "
                                                              "first, then anyone")
    client_id: Id | None = Field(default=None, description="Staff only: plan for this client")


class PlannedOut(BaseModel):
    start: str = Field(json_schema_extra={"format": "date-time"})
    end: str = Field(json_schema_extra={"format": "date-time"})
    therapist_id: int
    earliest: str = Field(json_schema_extra={"format": "date"})
    ideal: str = Field(json_schema_extra={"format": "date"})
    latest: str = Field(json_schema_extra={"format": "date"})


class PlanOut(BaseModel):
    sessions: list[PlannedOut]


class SessionIn(BaseModel):
    start: datetime = Field(description="ISO 8601 with a UTC offset")
    therapist_id: Id | None = None

    @field_validator("start")
    @classmethod
    def _offset_required(cls, value: datetime) -> datetime:
        return aware(value)


class BookCourseIn(BaseModel):
    service_id: Id
    sessions: list[SessionIn] = Field(min_length=1, max_length=course_service.MAX_PLANNED)
    client_id: Id | None = Field(default=None, description="Staff only: book for this client")


class BookCourseOut(BaseModel):
    bookings: list[BookingOut]


def planned_json(planned: course_service.PlannedSession, tz: Any) -> dict[str, Any]:
    return {
        "start": planned.start.astimezone(tz).isoformat(),
        "end": planned.end.astimezone(tz).isoformat(),
        "therapist_id": planned.therapist_id,
        "earliest": planned.earliest.isoformat(),
        "ideal": planned.ideal.isoformat(),
        "latest": planned.latest.isoformat(),
    }


@endpoint("/courses/plan", "POST", summary="Propose the next N sessions inside their windows",
          tag="courses", body=PlanIn, response=PlanOut, errors=(404, 422))
def courses_plan(body: PlanIn) -> dict[str, Any]:
    """Usual therapist first; each session inside the window projected from the one before."""
    actor = current_api_user()
    client = client_for(actor, body.client_id)
    if client.id != actor.id and not booking_service.may_book_for(
            db.session, actor, client):
        raise booking_service.client_not_found()
    planned = course_service.plan_course(db.session, client, sessions=body.sessions,
                                         therapist_id=body.therapist_id, now=now())
    tz = clinic_zone(db.session)
    return {"sessions": [planned_json(p, tz) for p in planned]}


@endpoint("/courses/book", "POST", summary="Book several sessions at once, all or nothing",
          tag="courses", body=BookCourseIn, response=BookCourseOut, status=201,
          errors=(404, 409, 422))
def courses_book(body: BookCourseIn) -> dict[str, Any]:
    """One transaction: 409 ``slot_taken`` with ``fields["sessions.N"]`` and nothing booked."""
    actor = current_api_user()
    client = client_for(actor, body.client_id)
    booked = course_service.book_course(
        db.session, client=client, actor=actor, service_id=body.service_id,
        sessions=[(s.start, s.therapist_id) for s in body.sessions], now=now())
    ids = [b.id for b in booked]
    db.session.commit()
    tz = clinic_zone(db.session)
    rows = {b.id: b for b in db.session.scalars(
        select(Booking).options(*LOAD_OPTIONS).where(Booking.id.in_(ids)))}
    return {"bookings": [booking_json(rows[i], tz) for i in ids]}
