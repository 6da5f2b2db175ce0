"""API v1: the waitlist (issue 13, fixed paths and fields).

``POST /waitlist`` joins (staff may pass ``client_id`` to join for a client), ``GET
/waitlist`` lists the caller's live entries, ``DELETE /waitlist/{id}`` leaves one. Dates are
local dates in the clinic's zone.
"""

from __future__ import annotations

from datetime import date
from typing import Any
from typing import Literal

from pydantic import BaseModel
from pydantic import ConfigDict
from pydantic import Field

from clinic_app.api.bookings import Id
from clinic_app.api.bookings import _client_for as client_for
from clinic_app.api.core import current_api_user
from clinic_app.api.core import endpoint
from clinic_app.clock import utcnow as now
from clinic_app.extensions import db
from clinic_app.models.waitlist import WaitlistEntry
from clinic_app.services import waitlist as waitlist_service

PartOfDay = Literal["morning", "afternoon", "evening"]


class WaitlistIn(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    service_id: Id
    therapist_id: Id | None = Field(default=None, description="Omit for any therapist")
    date_from: date = Field(alias="from", description="First local date (inclusive)")
    date_to: date = Field(alias="to", description="Last local date (inclusive), at most the "
                                                  "booking horizon ahead")
    parts_of_day: list[PartOfDay] = Field(default_factory=list, max_length=3,
                                          description="Omit for any time of day")
    client_id: Id | None = Field(default=None, description="Staff only: join for this client")


class WaitlistEntryOut(BaseModel):
    # "from" is a Python keyword: the field is from_, and dumps as "from".
    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    id: int
    client_id: int
    service_id: int
    therapist_id: int | None
    from_: str = Field(alias="from", json_schema_extra={"format": "date"})
    to: str = Field(json_schema_extra={"format": "date"})
    parts_of_day: list[str]
    status: str
    created_at: str = Field(json_schema_extra={"format": "date-time"})


class WaitlistOut(BaseModel):
    entries: list[WaitlistEntryOut]


def entry_json(entry: WaitlistEntry) -> dict[str, Any]:
    """The API's JSON for one waitlist entry."""
    return {
        "id": entry.id,
        "client_id": entry.client_id,
        "service_id": entry.service_id,
        "therapist_id": entry.therapist_id,
        "from": entry.date_from.isoformat(),
        "to": entry.date_to.isoformat(),
        "parts_of_day": list(entry.parts_of_day or []),
        "status": entry.status,
        "created_at": entry.created_at.isoformat(),
    }


@endpoint("/waitlist", "POST", summary="Join the waitlist for a service", tag="waitlist",
          body=WaitlistIn, response=WaitlistEntryOut, status=201, errors=(404, 422))
def waitlist_join(body: WaitlistIn) -> dict[str, Any]:
    """Refused (422) after a referral (``see_clinician_first``) or while a therapist review is
    pending (``awaiting_review``), as booking is."""
    actor = current_api_user()
    client = client_for(actor, body.client_id)
    entry = waitlist_service.join(
        db.session, client=client, actor=actor, service_id=body.service_id,
        therapist_id=body.therapist_id, date_from=body.date_from, date_to=body.date_to,
        parts_of_day=body.parts_of_day, now=now())
    out = entry_json(entry)
    db.session.commit()
    return out


@endpoint("/waitlist", "GET", summary="Your waitlist entries", tag="waitlist",
          response=WaitlistOut)
def waitlist_list() -> dict[str, Any]:
    """The caller's live entries (waiting, range not ended), soonest range first."""
    entries = waitlist_service.entries_for(db.session, current_api_user(), now())
    return {"entries": [entry_json(e) for e in entries]}


@endpoint("/waitlist/<int:entry_id>", "DELETE", summary="Leave the waitlist", tag="waitlist",
          status=204, errors=(404,))
def waitlist_leave(entry_id: int) -> tuple[str, int]:
    """404 for an entry that is not yours (or already left / expired)."""
    current = now()
    entry = waitlist_service.get_entry_for(db.session, entry_id, current_api_user(), current)
    waitlist_service.leave(db.session, entry, current)
    db.session.commit()
    return "", 204
