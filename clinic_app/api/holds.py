"""API v1: held slots (issue 12.8). No log-in: a visitor holds a time, then signs up with
``hold_id`` (``POST /auth/signup``); verifying the email books it. Throttled per address."""

from __future__ import annotations

from datetime import datetime

from flask import current_app
from pydantic import BaseModel
from pydantic import Field
from pydantic import field_validator

from clinic_app.api.bookings import Id
from clinic_app.api.bookings import _aware
from clinic_app.api.core import endpoint
from clinic_app.clock import utcnow as now
from clinic_app.extensions import db
from clinic_app.extensions import limiter
from clinic_app.models.booking import HoldPurpose
from clinic_app.services import holds
from clinic_app.services.settings import clinic_zone
from clinic_app.services.settings import get_settings


class HoldIn(BaseModel):
    service_id: Id
    start: datetime = Field(description="ISO 8601 with a UTC offset")
    therapist_id: Id | None = Field(default=None, description="Omit for any free therapist")

    @field_validator("start")
    @classmethod
    def _offset_required(cls, value: datetime) -> datetime:
        return _aware(value)


class HoldOut(BaseModel):
    hold_id: int
    expires_at: str = Field(json_schema_extra={"format": "date-time"})
    therapist_id: int
    start: str = Field(json_schema_extra={"format": "date-time"})
    end: str = Field(json_schema_extra={"format": "date-time"})


def _hold_limit() -> str:
    return current_app.config["HOLD_LIMIT_PER_IP"]


@endpoint("/holds", "POST", summary="Hold a slot for a few minutes (then sign up with hold_id)",
          tag="bookings", body=HoldIn, response=HoldOut, status=201, auth=False,
          errors=(404, 409, 422, 429))
@limiter.limit(_hold_limit)
def create_hold(body: HoldIn) -> HoldOut:
    at = now()
    session = db.session
    settings = get_settings(session)
    hold = holds.place_hold(session, service_id=body.service_id, start=body.start,
                            therapist_id=body.therapist_id, purpose=HoldPurpose.SIGNUP.value,
                            minutes=settings.hold_minutes, now=at)
    tz = clinic_zone(session)
    assert hold.expires_at is not None  # every hold has one (CHECK hold_expires)
    out = HoldOut(hold_id=hold.id, expires_at=hold.expires_at.astimezone(tz).isoformat(),
                  therapist_id=hold.therapist_id,
                  start=hold.start_at.astimezone(tz).isoformat(),
                  end=hold.end_at.astimezone(tz).isoformat())
    session.commit()
    return out
