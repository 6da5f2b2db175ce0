"""The test factories write what the services write (they call them), not a copy."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime
from datetime import timedelta

import pytest

from tests.factories import make_booking
from tests.factories.booking import make_clinic
from tests.factories.care import complete
from tests.factories.notify import cancel
from tests.factories.notify import make_booking as make_booking_with_messages
from tests.factories.notify import make_clinic as make_notify_clinic
from tests.factories.notify import move
from tests.factories.notify import rows

WED_10 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


def test_make_booking_blocks_the_services_buffers(app, db):
    clinic = make_clinic(app, before=10, after=20, minutes=45)
    booking = make_booking(app, clinic, WED_10)
    assert (booking.start_at, booking.end_at) == (WED_10, WED_10 + timedelta(minutes=45))
    assert booking.blocked_start == WED_10 - timedelta(minutes=10)
    assert booking.blocked_end == WED_10 + timedelta(minutes=65)
    assert (booking.therapist_id, booking.room_id) == (clinic.t1.id, clinic.rooms[0].id)
    assert booking.price_cents == clinic.service.price_cents and booking.status == "booked"
    assert rows() == []  # no messages unless asked for


def test_make_booking_refuses_an_overlap_on_postgresql_and_takes_any_fields(app, db):
    clinic = make_clinic(app)
    other = make_booking(app, start=WED_10, client=clinic.client, therapist=clinic.t2,
                         service=clinic.service, room=clinic.rooms[1], status="cancelled")
    assert other.cancelled_at is not None and other.therapist_id == clinic.t2.id
    make_booking(app, clinic, WED_10)
    if db.engine.dialect.name == "postgresql":
        with pytest.raises(AssertionError, match="overlapping"):
            make_booking(app, clinic, WED_10 + timedelta(minutes=30))


def test_notify_factories_go_through_the_booking_service(app, db):
    clinic = make_notify_clinic(app)
    booking = make_booking_with_messages(app, clinic, WED_10)
    assert {r.kind for r in rows()} >= {"booking_confirmation", "reminder"}
    move(app, booking, WED_10 + timedelta(days=1))
    assert booking.sequence == 1 and booking.start_at == WED_10 + timedelta(days=1)
    cancel(app, booking)
    assert booking.status == "cancelled" and booking.sequence == 2
    assert not booking.late_cancel  # the therapist cancelled
    assert any(r.kind == "booking_cancellation" for r in rows())


def test_a_late_cancel_needs_a_booking_inside_the_cutoff(app, db):
    clinic = make_notify_clinic(app)
    booking = make_booking_with_messages(app, clinic, WED_10 + timedelta(days=7))
    with pytest.raises(AssertionError, match="inside the cutoff"):
        cancel(app, booking, late=True)


def test_complete_records_the_session_through_care(app, db, clock):
    clinic = make_notify_clinic(app)
    booking = make_booking_with_messages(app, clinic, WED_10)
    clock.set(WED_10 + timedelta(hours=1, minutes=5))
    record = complete(app, booking)
    assert booking.status == "completed" and record.booking_id == booking.id
    assert record.session_number == 1 and record.author_id == clinic.therapist.user_id
    assert [r.kind for r in rows("checkin_24h")] == ["checkin_24h"]
