"""Reporting a problem after a session: a warning sign from the red-flag checklist, at any
time in the 14 days after the session and as often as needed (the check-ins are once each).

A report acts exactly like a red-flag check-in: the treating therapist is alerted at once,
the recommendation is recomputed (a red flag means ``refer``) and online booking is paused
until a therapist sets a new window.
"""

from __future__ import annotations

from datetime import datetime
from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session

from clinic_app.errors import Conflict
from clinic_app.models.booking import Booking
from clinic_app.models.booking import BookingStatus
from clinic_app.models.care import ProblemReport
from clinic_app.services.care.followup import recommendation_for_booking
from clinic_app.services.care.inputs import ProblemReportIn
from clinic_app.services.care.inputs import parse
from clinic_app.services.care.lookups import session_record_for
from clinic_app.services.notify import events as notifications

#: How long after a session's end a problem can be reported from the app.
REPORT_WINDOW = timedelta(days=14)

# The same sessions a check-in may be about: one that took place (completed, or not yet
# marked as completed by the therapist).
_REPORTABLE = (BookingStatus.BOOKED.value, BookingStatus.COMPLETED.value)


def report_window_open(booking: Booking, now: datetime) -> bool:
    """Whether ``booking``'s client may report a problem about it ``now``."""
    return (booking.status in _REPORTABLE and booking.start_at <= now
            and now <= booking.end_at + REPORT_WINDOW)


def report_problem(session: Session, booking: Booking, *, red_flags: Any,
                   now: datetime) -> ProblemReport:
    """Store a problem report (``red_flags``: one or more checklist codes) and act on it.

    Conflict ``not_reportable`` for a cancelled or missed booking, ``not_started`` before
    the session, ``report_window_closed`` more than 14 days after it; ValidationFailed for
    no flag or an unknown one.
    """
    if booking.status not in _REPORTABLE:
        raise Conflict("There is no session to report a problem about.", code="not_reportable")
    if now < booking.start_at:
        raise Conflict("The session has not taken place yet.", code="not_started")
    if now > booking.end_at + REPORT_WINDOW:
        raise Conflict("This session was more than 14 days ago. If you are worried, contact "
                       "your doctor (GP) or call NHS 111, and let the clinic know.",
                       code="report_window_closed")
    answers = parse(ProblemReportIn, {"red_flags": red_flags},
                    message="Tick at least one of the warning signs.")
    row = ProblemReport(booking_id=booking.id, red_flags=answers.red_flags, submitted_at=now)
    session.add(row)
    session.flush()
    notifications.problem_reported(session, booking, row, now)
    if session_record_for(session, booking.id) is not None:
        recommendation_for_booking(session, booking, now)
    return row
