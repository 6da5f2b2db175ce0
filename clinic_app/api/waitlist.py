"""API v1: the waitlist (issue 13, fixed paths and fields).

``POST /waitlist`` joins (staff may pass ``client_id`` to join for a client), ``GET
/waitlist`` lists the caller's live entries, ``DELETE /waitlist/{id}`` leaves one. Dates are
local dates in the clinic's zone.

Offers of freed slots: ``GET /waitlist/offers`` lists the caller's open ones, ``POST
/waitlist/offers/{id}/accept`` books the held slot (201, the booking as ``POST /bookings``
answers it), ``POST /waitlist/offers/{id}/decline`` passes it on (204). An expired or
answered offer is 409 ``offer_expired``; somebody else's is 404.
"""

from __future__ import annotations

from datetime import date
from typing import Any
from typing import Literal

from pydantic import BaseModel
from pydantic import ConfigDict
from pydantic import Field

from clinic_app.api.bookings import BookingOut
from clinic_app.api.bookings import Id
from clinic_app.api.bookings import _client_for as client_for
from clinic_app.api.bookings import booking_json
from clinic_app.api.core import current_api_user
from clinic_app.api.core import endpoint
from clinic_app.clock import utcnow as now
from clinic_app.extensions import db
from clinic_app.models.waitlist import WaitlistEntry
from clinic_app.models.waitlist import WaitlistOffer
from clinic_app.services import waitlist as waitlist_service
from clinic_app.services import waitlist_offers as offer_service
from clinic_app.services.settings import clinic_zone

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


# --- offers of freed slots ---------------------------------------------------------------------


class OfferOut(BaseModel):
    id: int
    start: str = Field(json_schema_extra={"format": "date-time"})
    end: str = Field(json_schema_extra={"format": "date-time"})
    therapist_id: int
    service_id: int
    expires_at: str = Field(json_schema_extra={"format": "date-time"},
                            description="The slot is held for you until then")


class OffersOut(BaseModel):
    offers: list[OfferOut]


def offer_json(offer: WaitlistOffer) -> dict[str, Any]:
    """The API's JSON for one offer (times in the clinic's zone, with their offset)."""
    tz = clinic_zone(db.session)
    return {
        "id": offer.id,
        "start": offer.start_at.astimezone(tz).isoformat(),
        "end": offer.end_at.astimezone(tz).isoformat(),
        "therapist_id": offer.therapist_id,
        "service_id": offer.service_id,
        "expires_at": offer.expires_at.astimezone(tz).isoformat(),
    }


@endpoint("/waitlist/offers", "GET", summary="Your open offers of freed slots", tag="waitlist",
          response=OffersOut)
def waitlist_offers() -> dict[str, Any]:
    """Slots held for you (open and not yet expired), soonest first."""
    offers = offer_service.open_offers_for(db.session, current_api_user(), now())
    return {"offers": [offer_json(o) for o in offers]}


@endpoint("/waitlist/offers/<int:offer_id>/accept", "POST", summary="Accept an offer: book it",
          tag="waitlist", response=BookingOut, status=201, errors=(404, 409, 422))
def waitlist_offer_accept(offer_id: int) -> dict[str, Any]:
    """The held slot becomes your booking (every booking check applies: 422 ``over_cap``
    and the like). 409 ``offer_expired`` once it has expired or was answered."""
    user = current_api_user()
    offer = offer_service.get_offer_for(db.session, offer_id, user)
    booking = offer_service.accept(db.session, offer, client=user, now=now())
    out = booking_json(booking, clinic_zone(db.session))
    db.session.commit()
    return out


@endpoint("/waitlist/offers/<int:offer_id>/decline", "POST",
          summary="Decline an offer: pass it on", tag="waitlist", status=204,
          errors=(404, 409))
def waitlist_offer_decline(offer_id: int) -> tuple[str, int]:
    """The slot goes to the next person waiting; you stay on the waitlist. 409
    ``offer_expired`` once it has expired or was answered."""
    user = current_api_user()
    offer = offer_service.get_offer_for(db.session, offer_id, user)
    offer_service.decline(db.session, offer, client=user, now=now())
    db.session.commit()
    return "", 204
