"""API v1: the client's own data export and account closure (clients only)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pydantic import ConfigDict
from pydantic import Field

from clinic_app.api import bp  # noqa: F401
from clinic_app.api.core import current_api_user
from clinic_app.api.core import endpoint
from clinic_app.clock import utcnow as now
from clinic_app.extensions import db
from clinic_app.services import privacy


class ExportOut(BaseModel):
    """Everything the clinic holds about you: profile, bookings (ISO 8601 times with
    offset), intake, courses, session records with amendments, check-ins,
    recommendations, the emails sent to you, and who at the clinic read your health
    data and when (``access_log``)."""

    model_config = ConfigDict(extra="allow")

    format: int
    exported_at: str
    clinic_timezone: str
    profile: dict[str, Any]
    bookings: list[dict[str, Any]]
    intake: dict[str, Any] | None
    courses: list[dict[str, Any]]
    session_records: list[dict[str, Any]]
    check_ins: list[dict[str, Any]]
    recommendations: list[dict[str, Any]]
    emails: list[dict[str, Any]]
    access_log: list[AccessLogOut]


class AccessLogOut(BaseModel):
    """One read of your health data by clinic staff."""

    at: str = Field(json_schema_extra={"format": "date-time"})
    who: str
    role: str
    what: str
    action: str
    record_type: str
    record_id: int | None


class CloseIn(BaseModel):
    """Your current password, to confirm."""

    model_config = ConfigDict(extra="forbid")

    password: str = Field(min_length=1, max_length=1024)


class CloseOut(BaseModel):
    closed: bool
    cancelled_bookings: int


@endpoint("/clients/me/export", "GET", tag="privacy", summary="Export all your data",
          response=ExportOut, errors=(401, 403))
def export_me() -> dict[str, Any]:
    data = privacy.export_client_data(db.session, current_api_user(), now())
    db.session.commit()
    return data


@endpoint("/clients/me/close", "POST", tag="privacy",
          summary="Close your account (anonymised at once; future bookings cancelled)",
          body=CloseIn, response=CloseOut, errors=(401, 403, 422))
def close_me(body: CloseIn) -> dict[str, Any]:
    cancelled = privacy.close_account(db.session, current_api_user(), body.password, now())
    db.session.commit()
    return {"closed": True, "cancelled_bookings": len(cancelled)}
