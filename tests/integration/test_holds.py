"""Held slots (issue 12.1): a hold blocks like a booking, expires by itself, becomes the booking."""

from __future__ import annotations

from contextlib import contextmanager
from datetime import UTC
from datetime import date
from datetime import datetime
from datetime import timedelta

import pytest
from sqlalchemy import event
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy import text

from clinic_app.errors import NotFound
from clinic_app.errors import SlotTaken
from clinic_app.errors import ValidationFailed
from clinic_app.models import Booking
from clinic_app.models.booking import INCLUDE_HOLDS
from clinic_app.services import booking as booking_service
from clinic_app.services import holds
from clinic_app.services.availability import search_slots
from clinic_app.services.notify import events as notifications
from clinic_app.services.settings import get_settings
from tests.factories import make_user
from tests.factories.booking import make_clinic
from tests.factories.schedule import local

NOW = datetime(2026, 11, 23, 8, tzinfo=UTC)  # the frozen clock: Mon 08:00 GMT
TUE_10 = local(2026, 11, 24, 10)


@pytest.fixture
def clinic(app):
    # One therapist and one room: a hold on Tuesday 10:00 takes the only slot at that time.
    return make_clinic(app, therapists=1, rooms=1)


@pytest.fixture
def created(monkeypatch):
    """The bookings the confirmation hook was called for."""
    seen: list[int] = []
    monkeypatch.setattr(notifications, "booking_created", lambda s, b, now: seen.append(b.id))
    return seen


def hold(db, clinic, *, start=TUE_10, now=NOW, minutes=10, **kw):
    kw.setdefault("purpose", "signup")
    return holds.place_hold(db.session, service_id=clinic.service.id, start=start,
                            minutes=minutes, now=now, **kw)


def book(db, clinic, client, *, start=TUE_10, now=NOW):
    return booking_service.book(db.session, client=client, service_id=clinic.service.id,
                                start=start, now=now, therapist_id=clinic.t1.id)


@contextmanager
def statements_sent(db):
    """The SQL statements sent while the block runs."""
    seen: list[str] = []

    def note(conn, cursor, statement, *args):  # noqa: ANN001
        seen.append(statement.lstrip())

    event.listen(db.engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(db.engine, "before_cursor_execute", note)


def slot_starts(db, clinic, now):
    _, slots = search_slots(db.session, service_id=clinic.service.id, date_from=date(2026, 11, 24),
                            date_to=date(2026, 11, 24), now=now)
    return {s.start for s in slots}


def test_a_live_hold_blocks_the_slot_for_everyone_else(db, clinic, created):
    placed = hold(db, clinic)
    db.session.commit()
    assert placed.status == "held" and placed.therapist_id == clinic.t1.id
    assert placed.expires_at == NOW + timedelta(minutes=10)
    assert placed.client_id is None and placed.hold_purpose == "signup"
    with pytest.raises(SlotTaken):
        book(db, clinic, clinic.client, now=NOW + timedelta(minutes=9))
    db.session.rollback()
    # The slot search does not offer it either, nor the 09:15 slot whose hour overlaps it.
    starts = slot_starts(db, clinic, NOW + timedelta(minutes=9))
    assert TUE_10 not in starts and local(2026, 11, 24, 9, 15) not in starts
    assert local(2026, 11, 24, 13) in starts
    assert created == []  # a hold is never emailed as a booking


def test_a_second_hold_on_the_same_slot_is_refused(db, clinic):
    hold(db, clinic)
    db.session.commit()
    with pytest.raises(SlotTaken):
        hold(db, clinic, purpose="offer", client_id=clinic.client.id)


def test_an_expired_hold_never_blocks_and_is_deleted_by_the_booking(db, clinic, created):
    placed = hold(db, clinic)
    db.session.commit()
    hold_id = placed.id
    after = NOW + timedelta(minutes=10)  # expires_at itself: no longer alive
    assert TUE_10 in slot_starts(db, clinic, after)
    booking = book(db, clinic, clinic.client, now=after)
    db.session.commit()
    assert booking.status == "booked" and booking.start_at == TUE_10
    assert holds.get_hold(db.session, hold_id) is None  # deleted inside the booking
    assert created == [booking.id]


def test_an_expired_hold_on_the_room_only_is_deleted_too(app, db, created):
    # Two therapists, one room: the other therapist's expired hold is in the room's way.
    clinic = make_clinic(app, therapists=2, rooms=1)
    placed = holds.place_hold(db.session, service_id=clinic.service.id, start=TUE_10,
                              therapist_id=clinic.t2.id, minutes=10, now=NOW,
                              purpose="signup")
    db.session.commit()
    hold_id = placed.id
    booking = book(db, clinic, clinic.client, now=NOW + timedelta(minutes=10))
    db.session.commit()
    assert booking.room_id == placed.room_id and booking.therapist_id == clinic.t1.id
    assert holds.get_hold(db.session, hold_id) is None


def test_an_expired_hold_out_of_the_way_is_left_for_housekeeping(db, clinic, created):
    placed = hold(db, clinic)
    db.session.commit()
    hold_id = placed.id
    with statements_sent(db) as seen:
        book(db, clinic, clinic.client, start=local(2026, 11, 24, 13),
             now=NOW + timedelta(minutes=10))
    db.session.commit()
    assert not any(s.startswith("DELETE") for s in seen), seen  # nothing in the way
    assert holds.get_hold(db.session, hold_id) is not None


def test_a_moved_booking_or_a_new_hold_deletes_the_expired_hold_in_its_way(db, clinic):
    placed = hold(db, clinic)
    moved = book(db, clinic, clinic.client, start=local(2026, 11, 24, 13))
    db.session.commit()
    hold_id, after = placed.id, NOW + timedelta(minutes=10)
    booking_service.reschedule(db.session, moved, new_start=TUE_10, actor=clinic.client,
                               now=after)
    db.session.commit()
    assert moved.start_at == TUE_10 and holds.get_hold(db.session, hold_id) is None
    # The same for a hold placed on an expired one.
    hold(db, clinic, start=local(2026, 11, 24, 15), now=after)
    db.session.commit()
    later = after + timedelta(minutes=10)
    hold(db, clinic, start=local(2026, 11, 24, 15), now=later, purpose="offer",
         client_id=clinic.client.id)
    db.session.commit()
    # (Compared by purpose: SQLite may give the new row the deleted one's id.)
    left = db.session.scalars(select(Booking.hold_purpose).where(Booking.status == "held")
                              .execution_options(**{INCLUDE_HOLDS: True})).all()
    assert left == ["offer"]


def test_convert_makes_the_hold_the_booking_on_the_same_row(db, clinic, created):
    placed = hold(db, clinic)
    db.session.commit()
    booking = holds.convert_hold(db.session, placed, client=clinic.client, actor=clinic.client,
                                 now=NOW + timedelta(minutes=5))
    db.session.commit()
    assert booking.id == placed.id and booking.status == "booked"
    assert booking.client_id == clinic.client.id and booking.booked_by_id == clinic.client.id
    assert booking.expires_at is None and booking.hold_purpose is None
    assert created == [booking.id]
    assert db.session.get(Booking, booking.id) is booking
    assert holds.get_hold(db.session, booking.id) is None
    # Converting twice: the second finds no hold.
    with pytest.raises(holds.HoldExpired):
        holds.convert_hold(db.session, booking, client=clinic.client, actor=clinic.client,
                           now=NOW + timedelta(minutes=6))


def test_convert_after_expiry_says_expired_and_books_nothing(db, clinic, created):
    placed = hold(db, clinic)
    db.session.commit()
    with pytest.raises(holds.HoldExpired) as info:
        holds.convert_hold(db.session, placed, client=clinic.client, actor=clinic.client,
                           now=NOW + timedelta(minutes=11))
    assert info.value.status == 409 and info.value.code == "hold_expired"
    db.session.rollback()
    assert created == []


def test_convert_of_a_hold_for_someone_else_is_not_found(db, app, clinic, created):
    other = make_user(app)
    placed = hold(db, clinic, purpose="offer", client_id=other.id)
    db.session.commit()
    with pytest.raises(NotFound):
        holds.convert_hold(db.session, placed, client=clinic.client, actor=clinic.client,
                           now=NOW + timedelta(minutes=1))
    db.session.rollback()
    booking = holds.convert_hold(db.session, placed, client=other, actor=other,
                                 now=NOW + timedelta(minutes=1))
    assert booking.client_id == other.id and created == [booking.id]


def test_convert_still_applies_the_cap_of_upcoming_bookings(db, clinic, created):
    get_settings(db.session).max_upcoming_per_client = 1
    book(db, clinic, clinic.client, start=local(2026, 11, 24, 14))
    placed = hold(db, clinic)
    db.session.commit()
    with pytest.raises(ValidationFailed) as info:
        holds.convert_hold(db.session, placed, client=clinic.client, actor=clinic.client,
                           now=NOW + timedelta(minutes=1))
    assert info.value.code == "over_cap"


def test_release_frees_the_slot_at_once(db, clinic, created):
    placed = hold(db, clinic)
    db.session.commit()
    assert holds.release_hold(db.session, placed, NOW + timedelta(minutes=1)) is True
    db.session.commit()
    assert holds.release_hold(db.session, placed, NOW + timedelta(minutes=2)) is False
    booking = book(db, clinic, clinic.client, now=NOW + timedelta(minutes=2))
    assert booking.start_at == TUE_10


def test_holds_are_invisible_to_ordinary_queries(db, app, clinic):
    client = make_user(app)
    client_id = client.id
    placed = hold(db, clinic, purpose="offer", client_id=client_id)
    db.session.commit()
    placed_id = placed.id
    db.session.expunge_all()  # not in the identity map: every read goes to the database
    assert db.session.scalars(select(Booking)).all() == []
    assert db.session.scalar(select(func.count(Booking.id))) == 0
    assert db.session.scalars(select(Booking).where(Booking.client_id == client_id)).all() == []
    assert db.session.get(Booking, placed_id) is None
    seen = db.session.scalars(select(Booking).execution_options(**{INCLUDE_HOLDS: True})).all()
    assert [b.id for b in seen] == [placed_id]
    # The row is really there, blocking: the raw table has it.
    assert db.session.scalar(text("SELECT count(*) FROM bookings WHERE status = 'held'")) == 1


@pytest.mark.parametrize(("kwargs", "code"), [
    ({"purpose": "lunch"}, "invalid_purpose"),
    ({"minutes": 0}, "invalid_minutes"),
    ({"minutes": 24 * 60 + 1}, "invalid_minutes"),
    ({"start": datetime(2026, 11, 24, 10)}, "naive_datetime"),  # noqa: DTZ001 (the bad input)
    ({"start": local(2026, 11, 23, 9)}, "too_soon"),
    ({"start": local(2026, 11, 24, 10, 5)}, "not_on_step"),
])
def test_place_hold_refuses_bad_input(db, clinic, kwargs, code):
    with pytest.raises(ValidationFailed) as info:
        hold(db, clinic, **kwargs)
    assert info.value.code == code


def test_unknown_service_is_not_found(db, clinic):
    with pytest.raises(NotFound):
        holds.place_hold(db.session, service_id=999_999, start=TUE_10, purpose="signup",
                         minutes=10, now=NOW)


def test_housekeeping_deletes_holds_expired_a_day_ago_only(db, clinic):
    old = hold(db, clinic)
    fresh = hold(db, clinic, start=local(2026, 11, 24, 14), minutes=30)
    db.session.commit()
    old_id, fresh_id = old.id, fresh.id
    later = NOW + timedelta(days=1, minutes=20)  # old expired > 1 day ago, fresh 23h50 ago
    assert holds.purge_expired_holds(db.session, later) == 1
    db.session.commit()
    assert holds.get_hold(db.session, old_id) is None
    assert holds.get_hold(db.session, fresh_id) is not None
