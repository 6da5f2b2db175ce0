"""Signed single-purpose links in booking emails (issue 12.3): view or cancel one booking
without logging in, plus add-to-Google-Calendar and add-to-Outlook links.

A token names the booking, its ``sequence`` and one purpose, signed with the app's secret
(itsdangerous). It is valid until the booking starts and dead once the booking is cancelled
or moved: both raise ``sequence``, so the old link no longer matches (the new email carries
new links). Nothing is stored.
"""

from __future__ import annotations

from datetime import datetime
from urllib.parse import urlencode

from itsdangerous import BadSignature
from itsdangerous import URLSafeSerializer
from sqlalchemy.orm import Session

from clinic_app.errors import DomainError
from clinic_app.models.booking import MAX_ID
from clinic_app.models.booking import Booking
from clinic_app.models.booking import BookingStatus

PURPOSES = ("view", "cancel")
_SALT = "booking-link-v1:"
_LIVE = (BookingStatus.PENDING.value, BookingStatus.BOOKED.value)


class LinkDead(DomainError):
    """410: the link is unknown, for another purpose, or its booking moved on."""

    status = 410
    code = "link_dead"


def _serializer(secret: str, purpose: str) -> URLSafeSerializer:
    if purpose not in PURPOSES:
        raise ValueError(f"unknown booking link purpose {purpose!r}")
    return URLSafeSerializer(secret, salt=_SALT + purpose)


def make_token(secret: str, booking: Booking, purpose: str) -> str:
    """The token for ``purpose`` on ``booking`` as it is now (its id and sequence)."""
    return str(_serializer(secret, purpose).dumps([booking.id, booking.sequence or 0]))


def booking_for_token(session: Session, secret: str, token: str, purpose: str,
                      now: datetime) -> Booking:
    """The booking a live link names; LinkDead otherwise (one answer for every reason)."""
    dead = LinkDead("This link no longer works: the appointment has started, moved or been "
                    "cancelled. The latest email about it has a working link.")
    try:
        booking_id, sequence = _serializer(secret, purpose).loads(token)
    except (BadSignature, ValueError, TypeError):
        raise dead from None
    if not isinstance(booking_id, int) or not 0 < booking_id <= MAX_ID:
        raise dead
    booking = session.get(Booking, booking_id)
    if (booking is None or booking.sequence != sequence or booking.status not in _LIVE
            or booking.start_at <= now):
        raise dead
    return booking


def _utc_stamp(moment: datetime) -> str:
    return moment.strftime("%Y%m%dT%H%M%SZ")


def google_calendar_url(*, title: str, start: datetime, end: datetime, location: str,
                        details: str = "") -> str:
    """Google Calendar's "add event" page filled in (times in UTC)."""
    query = urlencode({"action": "TEMPLATE", "text": title,
                       "dates": f"{_utc_stamp(start)}/{_utc_stamp(end)}",
                       "location": location, "details": details})
    return "https://calendar.google.com/calendar/render?" + query


def outlook_calendar_url(*, title: str, start: datetime, end: datetime, location: str,
                         details: str = "") -> str:
    """Outlook.com's "new event" page filled in (ISO times with offset)."""
    query = urlencode({"path": "/calendar/action/compose", "rru": "addevent",
                       "subject": title, "startdt": start.isoformat(),
                       "enddt": end.isoformat(), "location": location, "body": details})
    return "https://outlook.live.com/calendar/0/deeplink/compose?" + query
