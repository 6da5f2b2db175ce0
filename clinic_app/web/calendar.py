"""Calendar files: one booking's ``.ics`` download and each therapist's subscription feed."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from flask import Blueprint
from flask import Response
from flask_login import current_user
from flask_login import login_required

from clinic_app.extensions import db
from clinic_app.extensions import limiter
from clinic_app.mail.ics import CONTENT_TYPE
from clinic_app.mail.ics import booking_calendar
from clinic_app.mail.ics import feed_calendar
from clinic_app.services import calendar as calendar_service
from clinic_app.services.booking import get_booking_for
from clinic_app.services.settings import get_settings
from clinic_app.web.util import now

bp = Blueprint("calendar", __name__)


def _ics(data: bytes, filename: str, *, attachment: bool) -> Response:
    response = Response(data, mimetype="text/calendar")
    response.headers["Content-Type"] = CONTENT_TYPE
    disposition = "attachment" if attachment else "inline"
    response.headers["Content-Disposition"] = f'{disposition}; filename="{filename}"'
    return response


@bp.get("/bookings/<int:booking_id>.ics")
@login_required
def booking_ics(booking_id: int) -> Response:
    """The booking as a calendar file, for its client, its therapist or an admin (404 else)."""
    booking = get_booking_for(db.session, booking_id, current_user)
    settings = get_settings(db.session)
    data = booking_calendar(booking, zone=ZoneInfo(settings.timezone), method="PUBLISH",
                            clinic=settings)
    db.session.commit()  # end the read transaction promptly (SQLite's write lock)
    return _ics(data, f"booking-{booking.id}.ics", attachment=True)


@bp.get("/calendar/<token>.ics")
@limiter.limit("120 per minute")
def therapist_feed(token: str) -> Response:
    """A therapist's feed, found by the secret token in the URL (no log-in: calendar apps
    cannot log in). Unknown or revoked tokens get 404."""
    therapist = calendar_service.therapist_for_feed(db.session, token)
    bookings = calendar_service.feed_bookings(db.session, therapist, now())
    settings = get_settings(db.session)
    data = feed_calendar(bookings, zone=ZoneInfo(settings.timezone), clinic=settings,
                         name=f"{settings.name}: {therapist.user.name}")
    db.session.commit()
    return _ics(data, "bookings.ics", attachment=False)
