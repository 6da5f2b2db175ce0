"""Absolute links for emails: the signed unsubscribe token, a booking's view/cancel links,
a waitlist offer's accept/decline links."""

from __future__ import annotations

from typing import Any

from flask import current_app
from flask import url_for
from itsdangerous import BadSignature
from itsdangerous import URLSafeSerializer
from sqlalchemy.orm import Session
from werkzeug.routing import BuildError

from clinic_app.models.accounts import User
from clinic_app.models.booking import Booking
from clinic_app.models.booking import BookingStatus
from clinic_app.models.schedule import ClinicSettings
from clinic_app.models.waitlist import WaitlistOffer
from clinic_app.services import booking_links
from clinic_app.services import offer_links

_UNSUBSCRIBE_SALT = "notify-unsubscribe"


def absolute(endpoint: str, fallback: str = "/", **values: Any) -> str:
    """An absolute link to ``endpoint``, or to ``fallback`` if that page does not exist."""
    base = current_app.config["BASE_URL"]
    try:
        with current_app.test_request_context("/", base_url=base):
            return base + url_for(endpoint, **values)
    except BuildError:
        return base + fallback


def unsubscribe_token(user_id: int) -> str:
    """A signed, non-expiring token naming the user (the unsubscribe link needs no login)."""
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt=_UNSUBSCRIBE_SALT).dumps(
        {"u": user_id}
    )


def user_from_unsubscribe_token(session: Session, token: str) -> User | None:
    """The user an unsubscribe token names, or None if it is forged or unknown."""
    try:
        data = URLSafeSerializer(current_app.config["SECRET_KEY"], salt=_UNSUBSCRIBE_SALT).loads(
            token
        )
    except BadSignature:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("u"), int):
        return None
    return session.get(User, data["u"])


def unsubscribe(session: Session, user: User) -> None:
    """Turn off non-essential messages (the same switch as the preferences page)."""
    user.wants_prompts = False


def unsubscribe_bits(user: User) -> tuple[str, dict[str, str]]:
    """The unsubscribe URL and the RFC 8058 one-click headers for ``user``."""
    url = current_app.config["BASE_URL"] + f"/unsubscribe/{unsubscribe_token(user.id)}"
    headers = {
        "List-Unsubscribe": f"<{url}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }
    return url, headers


def client_links(booking: Booking, clinic: ClinicSettings) -> dict[str, str] | None:
    """The signed view/cancel/reschedule links and the add-to-calendar links of a client's
    booking email (issue 12.3), made at send time; None once the booking is not pending or
    booked."""
    if booking.status not in (BookingStatus.PENDING.value, BookingStatus.BOOKED.value):
        return None
    secret = current_app.config["SECRET_KEY"]
    where = clinic.name + (f", {clinic.address}" if clinic.address else "")
    event = {"title": f"{booking.service.name} at {clinic.name}", "start": booking.start_at,
             "end": booking.end_at, "location": where}
    return {
        "view": absolute("links.booking",
                         token=booking_links.make_token(secret, booking, "view")),
        "cancel": absolute("links.booking",
                           token=booking_links.make_token(secret, booking, "cancel")),
        "reschedule": absolute("links.reschedule",
                               token=booking_links.make_token(secret, booking, "reschedule")),
        "google": booking_links.google_calendar_url(**event),
        "outlook": booking_links.outlook_calendar_url(**event),
    }


def report_link(booking: Booking) -> str:
    """The signed "report a problem" link of a post-session email (issue 12.4): no log-in
    needed; the page applies the care service's 14-day window."""
    token = booking_links.make_token(current_app.config["SECRET_KEY"], booking, "report")
    return absolute("links.report", token=token)


def waitlist_offer_links(offer: WaitlistOffer) -> dict[str, str]:
    """The signed accept and decline links of a waitlist offer email (issue 13.2); each
    opens the offer's page, whose button does that one thing."""
    secret = current_app.config["SECRET_KEY"]
    return {purpose: absolute("waitlist.offer_link",
                              token=offer_links.make_token(secret, offer, purpose))
            for purpose in offer_links.PURPOSES}
