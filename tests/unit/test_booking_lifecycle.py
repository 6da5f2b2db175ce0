"""The booking status machine on the model: every allowed change, every refused one."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime
from datetime import timedelta

import pytest

from clinic_app.models.booking import TRANSITIONS
from clinic_app.models.booking import Booking
from clinic_app.models.booking import BookingStatus
from clinic_app.models.booking import InvalidTransition

NOW = datetime(2026, 12, 1, 9, tzinfo=UTC)
START = datetime(2026, 12, 2, 10, tzinfo=UTC)
ALL = [s.value for s in BookingStatus]


def booking(status: str) -> Booking:
    return Booking(status=status, sequence=0, late_cancel=False, cancel_reason="",
                   start_at=START, end_at=START + timedelta(hours=1),
                   updated_at=NOW - timedelta(days=1))


def where(**extra):
    return {"therapist_id": 2, "room_id": 3, "start": START + timedelta(days=1),
            "end": START + timedelta(days=1, hours=1), "buffer_before": timedelta(minutes=5),
            "buffer_after": timedelta(minutes=15), **extra}


def test_confirm_pending_books_and_raises_the_sequence():
    b = booking("pending")
    b.confirm(NOW)
    assert (b.status, b.sequence, b.updated_at) == ("booked", 1, NOW)


def test_cancel_records_when_why_and_lateness():
    b = booking("booked")
    b.cancel(NOW, reason="x" * 300, late=True)
    assert b.status == "cancelled" and b.late_cancel and b.cancelled_at == NOW
    assert b.cancel_reason == "x" * 255 and b.sequence == 1


def test_move_keeps_the_status_and_holds_the_buffers():
    b = booking("pending")
    b.move(NOW, **where())
    assert b.status == "pending" and b.sequence == 1 and b.therapist_id == 2
    assert b.blocked_start == b.start_at - timedelta(minutes=5)
    assert b.blocked_end == b.end_at + timedelta(minutes=15)


def test_complete_and_no_show():
    done = booking("booked")
    done.complete(NOW)
    missed = booking("pending")
    missed.mark_no_show(NOW)
    assert (done.status, missed.status) == ("completed", "no_show")
    assert done.sequence == 0  # calendars do not change on completion


@pytest.mark.parametrize("change", sorted(TRANSITIONS))
@pytest.mark.parametrize("status", ALL)
def test_every_change_from_every_status(change, status):
    b = booking(status)
    allowed = status in TRANSITIONS[change].sources
    assert b.can(change) is allowed
    call = {"confirm": lambda: b.confirm(NOW), "cancel": lambda: b.cancel(NOW),
            "move": lambda: b.move(NOW, **where()), "complete": lambda: b.complete(NOW),
            "mark_no_show": lambda: b.mark_no_show(NOW),
            "convert": lambda: b.convert(NOW, client_id=7, status="booked", booked_by_id=7,
                                         early_confirmed=False)}[change]
    if allowed:
        call()
        assert b.updated_at == NOW
    else:
        with pytest.raises(InvalidTransition) as caught:
            call()
        # Nothing changed on a refused transition.
        assert b.status == status and b.sequence == 0 and b.updated_at < NOW
        assert caught.value.code == TRANSITIONS[change].code
        assert isinstance(caught.value, TRANSITIONS[change].error)
        assert caught.value.status == (409 if change in ("confirm", "complete", "convert")
                                       else 422)
        assert status.replace("_", " ") in caught.value.message


def test_finished_bookings_allow_nothing():
    for status in ("cancelled", "completed", "no_show"):
        assert not any(booking(status).can(change) for change in TRANSITIONS)


def test_the_service_modules_never_assign_a_status():
    """The status machine is the only writer of ``status`` (grep-level guard)."""
    import pathlib
    import re

    root = pathlib.Path(__file__).resolve().parents[2] / "clinic_app"
    offenders = [
        str(path.relative_to(root)) for path in root.rglob("*.py")
        if path.name != "booking.py" or path.parent.name != "models"
        if re.search(r"\b(booking|b)\.status\s*=[^=]", path.read_text())
    ]
    assert offenders == []


def test_convert_makes_a_hold_the_clients_booking():
    b = booking("held")
    b.expires_at, b.hold_purpose = NOW + timedelta(minutes=10), "signup"
    b.convert(NOW, client_id=7, status="pending", booked_by_id=8, early_confirmed=True)
    assert (b.status, b.client_id, b.booked_by_id, b.early_confirmed) == ("pending", 7, 8, True)
    assert b.expires_at is None and b.hold_purpose is None and b.created_at == NOW
    with pytest.raises(ValueError):
        booking("held").convert(NOW, client_id=7, status="completed", booked_by_id=7,
                                early_confirmed=False)
