"""API v1: the staff calendar (``GET /calendar``): hours, time off, closures and bookings.

A therapist gets their own calendar, an admin every active therapist's or one; a client gets
404 like any other staff endpoint. Times carry the clinic zone's offset.
"""

from __future__ import annotations

from datetime import date
from typing import Any
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel
from pydantic import ConfigDict
from pydantic import Field

from clinic_app.api.bookings import Id
from clinic_app.api.core import current_api_user
from clinic_app.api.core import endpoint
from clinic_app.clock import utcnow
from clinic_app.extensions import db
from clinic_app.services.availability import MAX_RANGE_DAYS
from clinic_app.services.staff_calendar import CalendarEvent
from clinic_app.services.staff_calendar import calendar_events


class CalendarQuery(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    date_from: date = Field(alias="from", description="First local date (inclusive)")
    date_to: date = Field(alias="to", description=f"Last local date (inclusive), at most "
                                                 f"{MAX_RANGE_DAYS} days in all")
    therapist_id: Id | None = Field(default=None, description="Admins: one therapist only; "
                                                              "therapists: their own id only")


class EventOut(BaseModel):
    kind: Literal["booking", "time_off", "closure", "working"]
    start: str = Field(json_schema_extra={"format": "date-time"})
    end: str = Field(json_schema_extra={"format": "date-time"})
    therapist_id: int | None = Field(description="None for a closure (the whole clinic)")
    booking_id: int | None = None
    status: str | None = None
    conflict: bool = Field(description="A booking overlapping time off or a closure")
    room_id: int | None = None
    service_id: int | None = None
    label: str = ""


class CalendarOut(BaseModel):
    events: list[EventOut]


def event_json(event: CalendarEvent, tz: ZoneInfo) -> dict[str, Any]:
    """One event as the API shows it (no client name or health flags)."""
    return {
        "kind": event.kind,
        "start": event.start.astimezone(tz).isoformat(),
        "end": event.end.astimezone(tz).isoformat(),
        "therapist_id": event.therapist_id,
        "booking_id": event.booking_id,
        "status": event.status,
        "conflict": event.conflict,
        "room_id": event.room_id,
        "service_id": event.service_id,
        "label": event.service_name if event.kind == "booking" else event.label,
    }


@endpoint("/calendar", "GET", summary="Staff calendar: hours, time off, closures, bookings",
          tag="calendar", query=CalendarQuery, response=CalendarOut,
          roles=("therapist", "admin"), errors=(404,))
def calendar(query: CalendarQuery) -> dict[str, Any]:
    """Therapists: their own. Admins: every active therapist, or ``therapist_id``. At most
    62 days per call (422 ``range_too_long``); another therapist's calendar is 404."""
    data = calendar_events(db.session, current_api_user(), date_from=query.date_from,
                           date_to=query.date_to, therapist_id=query.therapist_id,
                           now=utcnow(), with_flags=False)
    return {"events": [event_json(e, data.tz) for e in data.events]}
