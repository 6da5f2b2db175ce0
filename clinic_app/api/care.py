"""API v1: treatment continuity (registered on the api blueprint through @endpoint).

The bodies are the service layer's input models (``services/care/inputs.py``), the same
ones the pages' input goes through: one validation per input.

Fixed contract (outside clients depend on it): complete a booking, check in, read a
booking's follow-up window and the client's current recommendation. The rest (intake,
session record, override) are extras in the same style. Health data: the client, their
therapists and admins only; everyone else gets 404; staff reads are audited.
"""

from __future__ import annotations

from datetime import date
from datetime import datetime

from pydantic import BaseModel
from pydantic import Field

from clinic_app.api import bp  # noqa: F401
from clinic_app.api.core import current_api_user
from clinic_app.api.core import endpoint
from clinic_app.clock import utcnow as now
from clinic_app.errors import NotFound
from clinic_app.extensions import db
from clinic_app.models.booking import Booking
from clinic_app.models.care import CheckIn
from clinic_app.models.care import Intake
from clinic_app.models.care import ProblemReport
from clinic_app.models.care import Recommendation
from clinic_app.models.care import SessionRecord
from clinic_app.services import care
from clinic_app.services.booking_access import get_booking_for
from clinic_app.services.care.inputs import AmendmentIn
from clinic_app.services.care.inputs import CheckInIn
from clinic_app.services.care.inputs import IntakeIn
from clinic_app.services.care.inputs import OverrideIn
from clinic_app.services.care.inputs import ProblemReportIn
from clinic_app.services.care.inputs import SessionRecordIn
from clinic_app.services.care.inputs import SessionRecordPatch


class AmendmentOut(BaseModel):
    created_at: datetime
    author_id: int
    text: str


class SessionRecordOut(BaseModel):
    id: int
    booking_id: int
    course_id: int
    session_number: int
    regions: list[str]
    muscles: list[str]
    techniques: list[str]
    intensity: int
    notes: str
    goal: str
    injury_date: date | None
    progress: str | None
    author_id: int
    created_at: datetime
    updated_at: datetime
    editable_until: datetime
    amendments: list[AmendmentOut]


class ReasonOut(BaseModel):
    rule: str
    code: str
    text: str


class FollowUpOut(BaseModel):
    """The window for the next session: dates YYYY-MM-DD in the clinic's zone, null when
    there are none (after a referral, or before the session is recorded)."""

    earliest: str | None
    ideal: str | None
    latest: str | None
    action: str | None
    intensity_advice: str | None
    reasons: list[ReasonOut]
    booking_id: int | None = None
    source: str | None = None


class CompleteOut(BaseModel):
    booking_id: int
    status: str
    session_record: SessionRecordOut
    follow_up: FollowUpOut


class CheckInOut(BaseModel):
    id: int
    booking_id: int
    kind: str
    soreness: int | None
    red_flags: list[str]
    progress: str | None
    still_sore: bool | None
    submitted_at: datetime
    seek_care: str | None = Field(
        description="Shown to the client when a red flag was reported: contact a doctor.")
    follow_up: FollowUpOut


class ProblemReportOut(BaseModel):
    id: int
    booking_id: int
    red_flags: list[str]
    submitted_at: datetime
    seek_care: str = Field(description="Shown to the client: contact a doctor.")
    follow_up: FollowUpOut = Field(
        description="The client's current recommendation (``refer`` once the session is "
                    "recorded: booking is paused until a therapist sets a new window).")


class IntakeOut(BaseModel):
    answers: dict[str, bool | str]
    flags: list[str]
    needs_confirmation: bool
    confirmed_at: datetime | None
    updated_at: datetime | None


def _record_out(row: SessionRecord) -> SessionRecordOut:
    return SessionRecordOut(
        id=row.id, booking_id=row.booking_id, course_id=row.course_id,
        session_number=row.session_number, regions=list(row.regions or []),
        muscles=list(row.muscles or []), techniques=list(row.techniques or []),
        intensity=row.intensity, notes=row.notes, goal=row.goal, injury_date=row.injury_date,
        progress=row.progress, author_id=row.author_id, created_at=row.created_at,
        updated_at=row.updated_at, editable_until=row.created_at + care.EDIT_WINDOW,
        amendments=[AmendmentOut(created_at=a.created_at, author_id=a.author_id, text=a.text)
                    for a in row.amendments],
    )


def _follow_up_out(row: Recommendation | None) -> FollowUpOut:
    data = care.recommendation_dict(row)
    return FollowUpOut(**data, booking_id=row.booking_id if row else None,
                       source=row.source if row else None)


def _checkin_out(row: CheckIn, rec: Recommendation | None) -> CheckInOut:
    return CheckInOut(
        id=row.id, booking_id=row.booking_id, kind=row.kind, soreness=row.soreness,
        red_flags=list(row.red_flags or []), progress=row.progress, still_sore=row.still_sore,
        submitted_at=row.submitted_at, seek_care=care.SEEK_CARE_TEXT if row.red_flags else None,
        follow_up=_follow_up_out(rec),
    )


def _intake_out(row: Intake | None) -> IntakeOut:
    if row is None:
        return IntakeOut(answers={}, flags=[], needs_confirmation=False, confirmed_at=None,
                         updated_at=None)
    return IntakeOut(answers=dict(row.answers or {}), flags=list(row.flags or []),
                     needs_confirmation=care.FLAG_CONFIRM_FIRST in (row.flags or [])
                     and row.confirmed_at is None,
                     confirmed_at=row.confirmed_at, updated_at=row.updated_at)


def _visible_booking(booking_id: int) -> Booking:
    """A booking whose health data the caller may see (THE health rule, id guard included)."""
    return care.booking_for_health(db.session, booking_id, current_api_user())


_NO_RECORD = "This session has no record yet."


def _record_to_change(booking_id: int) -> SessionRecord:
    """The session record of a booking the caller may see, to edit or amend (the service
    checks who may change it); NotFound when the session has none."""
    row = care.session_record_for(db.session, _visible_booking(booking_id).id)
    if row is None:
        raise NotFound(_NO_RECORD)
    return row


@endpoint("/bookings/<int:booking_id>/complete", "POST", tag="care",
          summary="Complete a booking with the session record (the booking's therapist)",
          body=SessionRecordIn, response=CompleteOut, status=201, roles=("therapist", "admin"),
          errors=(401, 404, 409, 422))
def care_complete_booking(booking_id: int, body: SessionRecordIn) -> CompleteOut:
    booking = _visible_booking(booking_id)
    at = now()
    row = care.complete_session(db.session, booking, actor=current_api_user(), now=at,
                                record=body)
    rec = care.current_recommendation(db.session, booking.client_id)
    out = CompleteOut(booking_id=booking.id, status=booking.status,
                      session_record=_record_out(row), follow_up=_follow_up_out(rec))
    db.session.commit()
    return out


@endpoint("/bookings/<int:booking_id>/session-record", "GET", tag="care",
          summary="A booking's session record (the client, their therapists, admins)",
          response=SessionRecordOut, errors=(401, 404))
def care_get_session_record(booking_id: int) -> SessionRecordOut:
    booking = _visible_booking(booking_id)
    row = care.get_session_record(db.session, booking, current_api_user(), now())
    if row is None:
        raise NotFound(_NO_RECORD)
    out = _record_out(row)
    db.session.commit()  # the audit entry
    return out


@endpoint("/bookings/<int:booking_id>/session-record", "PATCH", tag="care",
          summary="Edit a session record (its author, within 24 hours)",
          body=SessionRecordPatch, response=SessionRecordOut, roles=("therapist", "admin"),
          errors=(401, 404, 409, 422))
def care_edit_session_record(booking_id: int, body: SessionRecordPatch) -> SessionRecordOut:
    row = _record_to_change(booking_id)
    care.edit_session_record(db.session, row, actor=current_api_user(), now=now(),
                             changes=body)
    out = _record_out(row)
    db.session.commit()
    return out


@endpoint("/bookings/<int:booking_id>/session-record/amendments", "POST", tag="care",
          summary="Append an amendment to a session record", body=AmendmentIn,
          response=SessionRecordOut, status=201, roles=("therapist", "admin"),
          errors=(401, 404, 422))
def care_amend_session_record(booking_id: int, body: AmendmentIn) -> SessionRecordOut:
    row = _record_to_change(booking_id)
    care.amend_session_record(db.session, row, actor=current_api_user(), now=now(),
                              text=body.text)
    out = _record_out(row)
    db.session.commit()
    return out


@endpoint("/bookings/<int:booking_id>/check-in", "POST", tag="care",
          summary="The client's soreness check-in after a session", body=CheckInIn,
          response=CheckInOut, status=201, roles=("client",), errors=(401, 404, 409, 422))
def care_check_in(booking_id: int, body: CheckInIn) -> CheckInOut:
    # Clients only (the endpoint's roles): the booking rule gives a client their own.
    booking = get_booking_for(db.session, booking_id, current_api_user())
    row = care.submit_checkin(db.session, booking, kind=body.kind, soreness=body.soreness,
                              red_flags=body.red_flags, progress=body.progress,
                              still_sore=body.still_sore, now=now())
    out = _checkin_out(row, care.current_recommendation(db.session, booking.client_id))
    db.session.commit()
    return out


def _report_out(row: ProblemReport, rec: Recommendation | None) -> ProblemReportOut:
    return ProblemReportOut(id=row.id, booking_id=row.booking_id,
                            red_flags=list(row.red_flags), submitted_at=row.submitted_at,
                            seek_care=care.SEEK_CARE_TEXT, follow_up=_follow_up_out(rec))


@endpoint("/bookings/<int:booking_id>/report", "POST", tag="care",
          summary="Report a problem (warning signs) up to 14 days after a session",
          body=ProblemReportIn, response=ProblemReportOut, status=201, roles=("client",),
          errors=(401, 404, 409, 422))
def care_report_problem(booking_id: int, body: ProblemReportIn) -> ProblemReportOut:
    # Clients only (the endpoint's roles): the booking rule gives a client their own.
    booking = get_booking_for(db.session, booking_id, current_api_user())
    row = care.report_problem(db.session, booking, red_flags=body.red_flags, now=now())
    out = _report_out(row, care.current_recommendation(db.session, booking.client_id))
    db.session.commit()
    return out


@endpoint("/bookings/<int:booking_id>/follow-up", "GET", tag="care",
          summary="The follow-up window recommended after a booking", response=FollowUpOut,
          errors=(401, 404))
def care_booking_follow_up(booking_id: int) -> FollowUpOut:
    booking = _visible_booking(booking_id)
    row = care.followup_for_booking(db.session, booking, current_api_user(), now())
    out = _follow_up_out(row)
    db.session.commit()  # the audit entry
    return out


@endpoint("/bookings/<int:booking_id>/follow-up/override", "POST", tag="care",
          summary="Set the therapist's own follow-up window, with a reason", body=OverrideIn,
          response=FollowUpOut, status=201, roles=("therapist", "admin"),
          errors=(401, 404, 409, 422))
def care_override_follow_up(booking_id: int, body: OverrideIn) -> FollowUpOut:
    booking = _visible_booking(booking_id)
    row = care.override_recommendation(db.session, booking, actor=current_api_user(),
                                       earliest=body.earliest, ideal=body.ideal,
                                       latest=body.latest, reason=body.reason, now=now())
    out = _follow_up_out(row)
    db.session.commit()
    return out


@endpoint("/clients/me/recommendation", "GET", tag="care",
          summary="Your current recommendation for the next session", response=FollowUpOut,
          roles=("client",), errors=(401, 404))
def care_my_recommendation() -> FollowUpOut:
    return _follow_up_out(care.current_recommendation(db.session, current_api_user()))


@endpoint("/clients/me/intake", "GET", tag="care", summary="Your health intake answers",
          response=IntakeOut, roles=("client",), errors=(401, 404))
def care_my_intake() -> IntakeOut:
    user = current_api_user()
    return _intake_out(care.get_intake(db.session, user, user, now()))


@endpoint("/clients/me/intake", "PUT", tag="care", summary="Save your health intake answers",
          body=IntakeIn, response=IntakeOut, roles=("client",), errors=(401, 404, 422))
def care_save_my_intake(body: BaseModel) -> IntakeOut:
    row = care.save_intake(db.session, current_api_user(), body, now())
    out = _intake_out(row)
    db.session.commit()
    return out
