"""API v1: what can be booked (services, therapists) and when (availability).

These three are public: anyone may browse before signing up, and nothing here is private.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

from flask import Response
from flask import current_app
from pydantic import BaseModel
from pydantic import ConfigDict
from pydantic import Field
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from clinic_app.api.bookings import Id
from clinic_app.api.core import endpoint
from clinic_app.clock import utcnow as now
from clinic_app.extensions import db
from clinic_app.models.accounts import User
from clinic_app.models.schedule import Service
from clinic_app.models.schedule import Therapist
from clinic_app.models.schedule import service_therapists
from clinic_app.scheduling.availability import from_micros
from clinic_app.services.availability import MAX_RANGE_DAYS
from clinic_app.services.availability import search_slot_starts


class ServiceOut(BaseModel):
    id: int
    name: str
    description: str
    duration_minutes: int
    buffer_before_minutes: int
    buffer_after_minutes: int
    price: str = Field(description="Decimal string in the clinic's currency, e.g. '65.00'")
    price_cents: int
    is_first_visit: bool
    therapist_ids: list[int]


class ServicesOut(BaseModel):
    services: list[ServiceOut]


class TherapistOut(BaseModel):
    id: int
    name: str
    bio: str
    service_ids: list[int]


class TherapistsOut(BaseModel):
    therapists: list[TherapistOut]


class TherapistsQuery(BaseModel):
    service_id: Id | None = None


class AvailabilityQuery(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    service_id: Id
    date_from: date = Field(alias="from", description="First local date (inclusive)")
    date_to: date = Field(alias="to", description=f"Last local date (inclusive), at most "
                                                 f"{MAX_RANGE_DAYS} days in all")
    therapist_id: Id | None = None


class SlotOut(BaseModel):
    start: str = Field(description="ISO 8601 in the clinic's zone, with its UTC offset",
                       json_schema_extra={"format": "date-time"})
    end: str = Field(json_schema_extra={"format": "date-time"})
    therapist_id: int


class AvailabilityOut(BaseModel):
    timezone: str
    service_id: int
    slots: list[SlotOut]


@endpoint("/services", "GET", summary="Bookable services", tag="catalog",
          response=ServicesOut, auth=False)
def catalog_services() -> ServicesOut:
    """Active services, shortest first, with the active therapists who offer them."""
    services = db.session.scalars(
        select(Service)
        .where(Service.active.is_(True))
        .options(selectinload(Service.therapists))
        .order_by(Service.is_first_visit.desc(), Service.duration_minutes, Service.id)
    ).all()
    return ServicesOut(services=[
        ServiceOut(
            id=s.id, name=s.name, description=s.description,
            duration_minutes=s.duration_minutes,
            buffer_before_minutes=s.buffer_before_minutes,
            buffer_after_minutes=s.buffer_after_minutes,
            price=s.price, price_cents=s.price_cents, is_first_visit=s.is_first_visit,
            therapist_ids=sorted(t.id for t in s.therapists if t.active),
        )
        for s in services
    ])


@endpoint("/therapists", "GET", summary="Therapists (optionally those offering a service)",
          tag="catalog", query=TherapistsQuery, response=TherapistsOut, auth=False)
def catalog_therapists(query: TherapistsQuery) -> TherapistsOut:
    """Active therapists with the active services they offer, by name."""
    stmt = (
        select(Therapist)
        .join(User, User.id == Therapist.user_id)
        .where(Therapist.active.is_(True), User.is_active.is_(True))
        .options(selectinload(Therapist.services), selectinload(Therapist.user))
        .order_by(User.name, Therapist.id)
    )
    if query.service_id is not None:
        stmt = stmt.where(Therapist.id.in_(
            select(service_therapists.c.therapist_id)
            .where(service_therapists.c.service_id == query.service_id)))
    therapists = db.session.scalars(stmt).all()
    return TherapistsOut(therapists=[
        TherapistOut(id=t.id, name=t.name, bio=t.bio,
                     service_ids=sorted(s.id for s in t.services if s.active))
        for t in therapists
    ])


@endpoint("/availability", "GET", summary="Free slots of a service between two local dates",
          tag="catalog", query=AvailabilityQuery, response=AvailabilityOut, auth=False,
          errors=(404,))
def catalog_availability(query: AvailabilityQuery) -> dict[str, Any] | Response:
    """Slots in the clinic's zone (each time carries its UTC offset, right on DST days)."""
    tz, duration, found = search_slot_starts(
        db.session, service_id=query.service_id, date_from=query.date_from,
        date_to=query.date_to, therapist_id=query.therapist_id, now=now())
    if not _compact_sorted_json():  # debug: jsonify indents
        quoted = _quoted_local_iso(tz)
        return {
            "timezone": tz.key,
            "service_id": query.service_id,
            "slots": [{"start": quoted[s][1:-1], "end": quoted[s + duration][1:-1],
                       "therapist_id": tid} for s, tid, _ in found],
        }
    # The hot path of the load run: the JSON text is built directly, byte for byte what
    # jsonify makes of the dict above in production (sorted keys, compact separators, a
    # final newline; tests compare both), without the intermediate dicts and the encoder.
    head = _slot_heads(tz, duration)
    items = ",".join([f"{head[s]}{tid}}}" for s, tid, _ in found])
    body = (f'{{"service_id":{int(query.service_id)},"slots":[{items}],'
            f'"timezone":{json.dumps(tz.key)}}}\n')
    return current_app.response_class(body, mimetype=current_app.json.mimetype)


class _QuotedIso(dict[int, str]):
    """Epoch microseconds -> their local ISO 8601 text quoted for JSON, made on first use."""

    __slots__ = ("tz",)

    def __init__(self, tz: ZoneInfo) -> None:
        super().__init__()
        self.tz = tz

    def __missing__(self, micros: int) -> str:
        # isoformat() is digits, "-", ":", "T", "." and "+": nothing to escape.
        text = self[micros] = f'"{from_micros(micros).astimezone(self.tz).isoformat()}"'
        return text


# An instant's quoted local ISO text per zone, shared by the requests of this process: slot
# boundaries lie on a grid and recur in search after search, and astimezone + isoformat was
# most of what encoding a slot cost. The text depends on the instant and the zone alone, so
# the cache cannot go stale; it is emptied when it grows past _ISO_CACHE_MAX entries (months
# of quarter-hours), so it stays a few MiB at most. Keyed by integers: hashing an aware
# datetime computes its UTC offset.
_ISO_CACHE: dict[ZoneInfo, _QuotedIso] = {}
_ISO_CACHE_MAX = 20_000


def _quoted_local_iso(tz: ZoneInfo) -> _QuotedIso:
    """``micros -> '"2026-11-24T09:00:00+00:00"'`` in ``tz`` (index it: ``quoted[micros]``)."""
    cache = _ISO_CACHE.get(tz)
    if cache is None or len(cache) > _ISO_CACHE_MAX:
        cache = _ISO_CACHE[tz] = _QuotedIso(tz)
    return cache


class _SlotHeads(dict[int, str]):
    """Start micros -> ``{"end":"…","start":"…","therapist_id":`` for one zone and duration:
    a slot's JSON is then its head and its therapist id (sorted keys, as jsonify writes)."""

    __slots__ = ("quoted", "duration")

    def __init__(self, quoted: _QuotedIso, duration: int) -> None:
        super().__init__()
        self.quoted = quoted
        self.duration = duration

    def __missing__(self, start: int) -> str:
        quoted = self.quoted
        text = self[start] = (f'{{"end":{quoted[start + self.duration]},'
                              f'"start":{quoted[start]},"therapist_id":')
        return text


# Per zone and service duration, shared by the requests of this process like _ISO_CACHE (a
# slot's start recurs across therapists and searches) and emptied past the same size.
_HEADS: dict[tuple[ZoneInfo, int], _SlotHeads] = {}


def _slot_heads(tz: ZoneInfo, duration: int) -> _SlotHeads:
    """The :class:`_SlotHeads` of ``tz`` and ``duration`` (microseconds)."""
    key = (tz, duration)
    heads = _HEADS.get(key)
    if heads is None or len(heads) > _ISO_CACHE_MAX or heads.quoted is not _ISO_CACHE.get(tz):
        heads = _HEADS[key] = _SlotHeads(_quoted_local_iso(tz), duration)
    return heads


def _compact_sorted_json() -> bool:
    """True when jsonify would write sorted keys without spaces (production; not debug)."""
    provider = current_app.json
    pretty = (getattr(provider, "compact", None) is None and current_app.debug) or getattr(
        provider, "compact", None) is False
    return not pretty and bool(getattr(provider, "sort_keys", False))
