"""The send-time checks of services/notify/send_rules.py, called directly on a row: the booking
each booking kind needs (gone: retired) and the statuses each kind still goes out in."""

from __future__ import annotations

from datetime import timedelta

import pytest

from clinic_app.extensions import db
from clinic_app.models import Booking
from clinic_app.models import OutboxMessage
from clinic_app.services.notify import messages as m
from clinic_app.services.notify import send_rules
from tests.conftest import START
from tests.factories.accounts import now_of
from tests.factories.booking import make_booking
from tests.factories.notify import make_clinic

STATUSES = ("pending", "booked", "completed", "cancelled", "no_show")
BOOKING_CHECKS = {
    m.CONFIRMATION: send_rules.check_booking_mail,
    m.CANCELLATION: send_rules.check_cancellation,
    m.REMINDER: send_rules.check_reminder,
    m.AFTERCARE: send_rules.check_aftercare,
    m.CHECKIN_24H: send_rules.check_checkin,
    m.REBOOKING_PROMPT: send_rules.check_prompt,
    m.RECALL: send_rules.check_recall,
    m.RED_FLAG_ALERT: send_rules.check_red_flag_alert,
}


def _row(kind: str, booking: Booking | None, **params: object) -> OutboxMessage:
    """An unsaved outbox row of ``kind`` for ``booking`` (the checks only read it)."""
    now = booking.created_at if booking else START
    return OutboxMessage(key=f"booking:{booking.id if booking else 0}:{kind}:0", kind=kind,
                         to_addr="client@example.com", params=params or None,
                         booking_id=booking.id if booking else None, due_at=now,
                         next_attempt_at=now, created_at=now)


def _booking(app, status: str, *, days: int = 2) -> Booking:
    return make_booking(app, make_clinic(app), now_of(app) + timedelta(days=days),
                        status=status)


@pytest.mark.parametrize("kind", list(BOOKING_CHECKS))
def test_a_row_without_its_booking_is_retired(app, kind):
    now = now_of(app)
    check = BOOKING_CHECKS[kind]
    assert check(db.session, _row(kind, None), now) == "booking gone"
    missing = _row(kind, None)
    missing.booking_id = 2**31 - 1
    assert check(db.session, missing, now) == "booking gone"


@pytest.mark.parametrize("status", STATUSES)
def test_each_kind_goes_out_only_in_its_statuses(app, status):
    booking = _booking(app, status)
    now = now_of(app)
    start = booking.start_at.isoformat()

    def check(kind: str, **params: object) -> str | None:
        return BOOKING_CHECKS[kind](db.session, _row(kind, booking, **params), now)

    assert check(m.CONFIRMATION, sequence=booking.sequence) == (
        "booking cancelled" if status == "cancelled" else None)
    assert check(m.REMINDER, start=start, hours=24) == (
        None if status in ("pending", "booked") else f"booking {status}")
    not_completed = None if status == "completed" else f"booking {status}, not completed"
    assert check(m.AFTERCARE) == not_completed
    assert check(m.CHECKIN_24H) == not_completed
    # Neither the cancellation nor the red-flag alert looks at the status.
    assert check(m.CANCELLATION) is None
    assert check(m.RED_FLAG_ALERT) is None


def test_later_checks_still_apply_once_the_booking_passes(app):
    booking = _booking(app, "booked")
    now = now_of(app)
    stale = _row(m.CONFIRMATION, booking, sequence=booking.sequence - 1)
    assert send_rules.check_booking_mail(db.session, stale, now) == (
        f"superseded by sequence {booking.sequence}")
    moved = _row(m.REMINDER, booking, start=(booking.start_at + timedelta(hours=1)).isoformat(),
                 hours=24)
    assert send_rules.check_reminder(db.session, moved, now) == "booking moved"
    late = now + timedelta(days=30)
    assert send_rules.check_cancellation(db.session, _row(m.CANCELLATION, booking),
                                         late) == "the appointment's time has passed"


@pytest.mark.parametrize("kind", [m.REBOOKING_PROMPT, m.RECALL])
def test_no_invitation_to_book_while_a_booking_lies_ahead(app, kind):
    booking = _booking(app, "booked")
    row = _row(kind, booking)
    assert BOOKING_CHECKS[kind](db.session, row, now_of(app)) == "a future booking exists"
