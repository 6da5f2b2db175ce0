"""Calendar files (RFC 5545) for bookings, built with the ``icalendar`` package.

Two entry points, both returning the bytes of a complete ``VCALENDAR``:

* :func:`booking_calendar` -- one booking, for an email attachment (``method="REQUEST"`` for a
  new or moved booking, ``"CANCEL"`` once it is cancelled) or a download (``"PUBLISH"``);
* :func:`feed_calendar` -- a therapist's subscription feed (Google/Apple Calendar poll it).

Every event has the booking's stable UID (``event_uid``: ``booking-<id>@<host of
CLINIC_BASE_URL>``) and its ``SEQUENCE``
(``Booking.sequence``, raised by the booking services on every change), so calendar apps update
or remove the event they already hold instead of adding a second one. Times are written in UTC
(``...Z``): no VTIMEZONE block is needed and DST cannot be misread; ``zone`` (the clinic's zone)
only names local times in the human-readable description.

These functions read the booking's relationships (``service``, ``therapist.user``, ``room``,
``client``) and never touch the database or the clock themselves; ``DTSTAMP`` is the booking's
``updated_at``, so the same booking state always gives the same bytes.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from email.utils import parseaddr
from typing import Any
from typing import Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from flask import current_app
from flask import has_app_context
from icalendar import Calendar
from icalendar import Event
from icalendar import vCalAddress

from clinic_app.models.booking import Booking
from clinic_app.models.booking import BookingStatus

Method = Literal["REQUEST", "CANCEL", "PUBLISH"]
METHODS: tuple[str, ...] = ("REQUEST", "CANCEL", "PUBLISH")
PRODID = "-//Trigger Point Clinic//Bookings//EN"
# How often calendar apps should poll a feed (RFC 7986 REFRESH-INTERVAL; Outlook reads the
# older X-PUBLISHED-TTL). Google ignores both and polls every few hours whatever we say.
FEED_REFRESH = timedelta(minutes=15)
CONTENT_TYPE = "text/calendar; charset=utf-8"


def _default_organizer() -> str:
    """``MAIL_FROM`` of the running app; a neutral address outside an app context."""
    if has_app_context():
        return str(current_app.config["MAIL_FROM"])
    return "Trigger Point Clinic <bookings@clinic.localhost>"


def uid_host(base_url: str | None = None) -> str:
    """The host that makes this installation's event UIDs unique (RFC 5545 suggests a
    domain): the host of ``CLINIC_BASE_URL``, so two clinics never share a UID."""
    if base_url is None:
        # Read from the running app, like ``_default_organizer``; outside one, a neutral host.
        base_url = str(current_app.config["BASE_URL"]) if has_app_context() else ""
    return urlsplit(base_url).hostname or "clinic.localhost"


def event_uid(booking: Booking, host: str | None = None) -> str:
    """A booking's stable event UID: the same for every version of the booking (so a
    rescheduled or cancelled event replaces the first one), unique to the installation."""
    return f"booking-{booking.id}@{host or uid_host()}"


def _address(raw: str, fallback_name: str = "") -> vCalAddress:
    """``"Name <a@b>"`` or ``"a@b"`` as a ``mailto:`` calendar address with a CN."""
    name, email = parseaddr(raw)
    address = vCalAddress(f"mailto:{email or raw}")
    if name or fallback_name:
        address.params["CN"] = name or fallback_name
    return address


def _location(clinic: Any, booking: Booking) -> str:
    parts = [getattr(clinic, "name", "") or "", getattr(clinic, "address", "") or ""]
    place = ", ".join(p for p in parts if p)
    room = booking.room.name if booking.room is not None else ""
    if room:
        return f"{place} ({room})" if place else room
    return place


def _local(booking: Booking, zone: ZoneInfo) -> str:
    start = booking.start_at.astimezone(zone)
    end = booking.end_at.astimezone(zone)
    return f"{start:%a %d %b %Y, %H:%M}-{end:%H:%M} ({zone.key})"


def _status(booking: Booking, method: str) -> str:
    if method == "CANCEL" or booking.status == BookingStatus.CANCELLED.value:
        return "CANCELLED"
    if booking.status == BookingStatus.PENDING.value:
        return "TENTATIVE"
    return "CONFIRMED"


def _calendar(method: str | None) -> Calendar:
    cal = Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    if method:
        cal.add("method", method)
    return cal


def _event(booking: Booking, *, zone: ZoneInfo, clinic: Any, method: str, organizer: str,
           summary: str, description: list[str]) -> Event:
    event = Event()
    event.add("uid", event_uid(booking))
    event.add("sequence", int(booking.sequence or 0))
    event.add("dtstamp", booking.updated_at)
    event.add("created", booking.created_at)
    event.add("last-modified", booking.updated_at)
    event.add("dtstart", booking.start_at)
    event.add("dtend", booking.end_at)
    event.add("summary", summary)
    event.add("location", _location(clinic, booking))
    event.add("status", _status(booking, method))
    event.add("transp", "TRANSPARENT" if _status(booking, method) == "CANCELLED" else "OPAQUE")
    event.add("description", "\n".join([_local(booking, zone), *description]))
    event.add("organizer", _address(organizer, getattr(clinic, "name", "")))
    client = booking.client
    if client is not None and client.email:
        attendee = _address(client.email, client.name)
        attendee.params["ROLE"] = "REQ-PARTICIPANT"
        attendee.params["PARTSTAT"] = (
            "DECLINED" if _status(booking, method) == "CANCELLED" else "ACCEPTED"
        )
        attendee.params["RSVP"] = "FALSE"
        event.add("attendee", attendee)
    return event


def booking_calendar(
    booking: Booking,
    *,
    zone: ZoneInfo,
    method: Method = "REQUEST",
    clinic: Any,
    organizer: str | None = None,
) -> bytes:
    """One booking as an ICS file (bytes, UTF-8).

    ``zone``: the clinic's zone (``clinic_app.services.settings.clinic_zone(session)``), used
    for the local time in the description. ``method``: ``"REQUEST"`` for a new or rescheduled
    booking's email, ``"CANCEL"`` for the cancellation email (the event then says
    ``STATUS:CANCELLED``), ``"PUBLISH"`` for a plain download. ``clinic``: the settings row
    (``get_settings(session)``; its ``name`` and ``address`` make the LOCATION, with the room).
    ``organizer``: defaults to the app's ``MAIL_FROM``. The booking's ``sequence`` must already
    be raised by the service that changed it.

    Attach it as ``Attachment("booking.ics", f"text/calendar; method={method}", data.decode())``.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, not {method!r}")
    cal = _calendar(method)
    therapist = booking.therapist.name if booking.therapist is not None else ""
    service = booking.service.name if booking.service is not None else "Appointment"
    summary = f"{service} with {therapist}" if therapist else service
    description = []
    if getattr(clinic, "phone", ""):
        description.append(f"To change or cancel, log in or call {clinic.phone}.")
    cal.add_component(
        _event(booking, zone=zone, clinic=clinic, method=method,
               organizer=organizer or _default_organizer(), summary=summary,
               description=description)
    )
    return cal.to_ical()


def feed_calendar(
    bookings: Iterable[Booking],
    *,
    zone: ZoneInfo,
    clinic: Any,
    name: str,
    organizer: str | None = None,
) -> bytes:
    """A therapist's subscription feed: every booking given, cancelled ones included with
    ``STATUS:CANCELLED`` so that subscribed calendars drop or strike them.

    ``name`` becomes ``X-WR-CALNAME`` (the calendar's title in the app). The feed asks to be
    refreshed every 15 minutes. Events carry the client's name (the therapist needs it) but no
    health data: the feed URL is a bearer secret that ends up in third-party calendar services.
    """
    cal = _calendar("PUBLISH")
    cal.add("x-wr-calname", name)
    cal.add("name", name)
    cal.add("x-wr-timezone", zone.key)
    cal.add("refresh-interval", FEED_REFRESH, parameters={"VALUE": "DURATION"})
    cal.add("x-published-ttl", "PT15M")
    org = organizer or _default_organizer()
    for booking in bookings:
        service = booking.service.name if booking.service is not None else "Appointment"
        client = booking.client.name if booking.client is not None else ""
        summary = f"{service}: {client}" if client else service
        if booking.status == BookingStatus.CANCELLED.value:
            summary = f"Cancelled: {summary}"
        description = [f"Status: {booking.status.replace('_', ' ')}"]
        cal.add_component(
            _event(booking, zone=zone, clinic=clinic, method="PUBLISH", organizer=org,
                   summary=summary, description=description)
        )
    return cal.to_ical()
