"""Signed single-purpose links in the client's emails (issue 12.3, 12.4): view, cancel or
reschedule one booking, or report a problem after it, without logging in; plus
add-to-Google-Calendar and add-to-Outlook links.

A token names the booking, its ``sequence`` and one purpose, signed with the app's secret
(itsdangerous; the purpose is the salt, so a token of one purpose is worthless for another).
Nothing is stored.

* ``view``, ``cancel``, ``reschedule`` (booking emails): valid until the booking starts and dead
  once it is cancelled or moved: both raise ``sequence``, so the old link no longer matches
  (the new email carries new links).
* ``report`` (post-session emails): names a session that took place; whether a report may
  be made about it now is the care service's rule (``care.report_window_open``), which the
  page applies, so the window is written once. This module cannot apply it itself: it is
  imported by ``services.notify``, which must not import the care layer.
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
from clinic_app.services.signed_tokens import purpose_serializer

#: The purposes of the links in booking emails: dead once the booking starts or moves.
UPCOMING = ("view", "cancel", "reschedule")
PURPOSES = (*UPCOMING, "report")
_SALT = "booking-link-v1:"
_LIVE = (BookingStatus.PENDING.value, BookingStatus.BOOKED.value)


class LinkDead(DomainError):
    """410: the link is unknown, for another purpose, or its booking moved on."""

    status = 410
    code = "link_dead"


def _serializer(secret: str, purpose: str) -> URLSafeSerializer:
    return purpose_serializer(secret, _SALT, PURPOSES, purpose)


def make_token(secret: str, booking: Booking, purpose: str) -> str:
    """The token for ``purpose`` on ``booking`` as it is now (its id and sequence)."""
    return str(_serializer(secret, purpose).dumps([booking.id, booking.sequence or 0]))


def _signed_booking(session: Session, secret: str, token: str, purpose: str,
                    dead: LinkDead) -> Booking:
    """The booking ``token`` names, as it still is (same sequence); ``dead`` otherwise."""
    try:
        booking_id, sequence = _serializer(secret, purpose).loads(token)
    except (BadSignature, ValueError, TypeError):
        raise dead from None
    if not isinstance(booking_id, int) or not 0 < booking_id <= MAX_ID:
        raise dead
    booking = session.get(Booking, booking_id)
    if booking is None or booking.sequence != sequence:
        raise dead
    return booking


def booking_for_token(session: Session, secret: str, token: str, purpose: str,
                      now: datetime) -> Booking:
    """The booking a live link of an UPCOMING purpose names; LinkDead otherwise (one answer
    for every reason)."""
    if purpose not in UPCOMING:
        raise ValueError(f"{purpose!r} links are read with booking_for_report_token")
    dead = LinkDead("This link no longer works: the appointment has started, moved or been "
                    "cancelled. The latest email about it has a working link.")
    booking = _signed_booking(session, secret, token, purpose, dead)
    if booking.status not in _LIVE or booking.start_at <= now:
        raise dead
    return booking


def booking_for_report_token(session: Session, secret: str, token: str) -> Booking:
    """The completed session a "report a problem" link names (only the post-session emails
    carry one, and only completed sessions get those); LinkDead for a forged one or any
    other booking. Whether a report may be made about it now is for the caller to ask the
    care service (``report_window_open``)."""
    dead = LinkDead("This link does not work: it is not about a session that took place. "
                    "If you are worried, contact your doctor (GP) or call NHS 111 (999 in an "
                    "emergency), and let the clinic know.")
    booking = _signed_booking(session, secret, token, "report", dead)
    if booking.status != BookingStatus.COMPLETED.value:
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
