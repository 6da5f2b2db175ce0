"""search_slots against the database: validation, statement count, booking properties."""

from __future__ import annotations

from contextlib import contextmanager
from datetime import UTC
from datetime import date
from datetime import datetime
from datetime import time
from datetime import timedelta

import pytest
from hypothesis import HealthCheck
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
from sqlalchemy import event

from clinic_app.errors import NotFound
from clinic_app.errors import ValidationFailed
from clinic_app.models import Closure
from clinic_app.models import HoursOverride
from clinic_app.services import booking as booking_service
from clinic_app.services.availability import search_slots
from clinic_app.services.settings import get_settings
from tests.factories import make_service
from tests.factories import make_therapist
from tests.factories import make_user
from tests.factories.booking import make_clinic
from tests.factories.booking import raw_booking
from tests.factories.schedule import local

NOW = datetime(2026, 11, 23, 8, tzinfo=UTC)
TUE = date(2026, 11, 24)


@contextmanager
def statements(engine):
    """Collect every SQL statement sent while the block runs."""
    seen: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany):  # noqa: ANN001
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", count)


@pytest.fixture
def clinic(app, db):
    clinic = make_clinic(app)
    get_settings(db.session)
    db.session.commit()
    return clinic


def search(db, clinic, first=TUE, last=TUE, **kw):
    return search_slots(db.session, service_id=clinic.service.id, date_from=first,
                        date_to=last, now=NOW, **kw)[1]


def test_slots_follow_hours_buffers_and_rooms(app, db, clinic):
    slots = search(db, clinic, therapist_id=clinic.t1.id)
    starts = [s.start.astimezone(local(2026, 1, 1, 0).tzinfo).time() for s in slots]
    # 60 min on a 15-minute grid inside 09-12 and 13-17.
    assert starts[0] == time(9) and time(11) in starts and time(11, 15) not in starts
    assert time(13) in starts and starts[-1] == time(16)
    raw_booking(app, client=clinic.client, therapist=clinic.t1, room=clinic.rooms[0],
                service=clinic.service, start=local(2026, 11, 24, 9))
    after = search(db, clinic, therapist_id=clinic.t1.id)
    busy_from, busy_to = local(2026, 11, 24, 9), local(2026, 11, 24, 10, 15)
    assert all(s.end + timedelta(minutes=15) <= busy_from or s.start >= busy_to for s in after)
    assert after[0].start == local(2026, 11, 24, 10, 15)
    # t2 is still free at 09:00 and gets the other room.
    both = search(db, clinic)
    at_ten = [s for s in both if s.start == local(2026, 11, 24, 9)]
    assert [(s.therapist_id, s.room_id) for s in at_ten] == [(clinic.t2.id, clinic.rooms[1].id)]


def test_closures_overrides_and_exclude_booking(app, db, clinic):
    db.session.add(Closure(start_date=TUE, end_date=TUE))
    db.session.add(HoursOverride(therapist_id=clinic.t1.id, start_date=TUE + timedelta(1),
                                 end_date=TUE + timedelta(1), kind="off"))
    db.session.commit()
    slots = search(db, clinic, last=TUE + timedelta(1))
    assert all(s.start.date() != TUE for s in slots)
    assert {s.therapist_id for s in slots} == {clinic.t2.id}
    mine = raw_booking(app, client=clinic.client, therapist=clinic.t2, room=clinic.rooms[0],
                       service=clinic.service, start=local(2026, 11, 25, 9))
    starts = [s.start for s in search(db, clinic, first=TUE + timedelta(1),
                                      last=TUE + timedelta(1))]
    assert local(2026, 11, 25, 9) not in starts
    again = search(db, clinic, first=TUE + timedelta(1), last=TUE + timedelta(1),
                   exclude_booking_id=mine.id)
    assert local(2026, 11, 25, 9) in [s.start for s in again]


def test_search_validation(app, db, clinic):
    cases = [
        (dict(date_from=TUE, date_to=TUE - timedelta(1)), "invalid_range"),
        (dict(date_from=TUE, date_to=TUE + timedelta(62)), "range_too_long"),
    ]
    for kwargs, code in cases:
        with pytest.raises(ValidationFailed) as exc:
            search_slots(db.session, service_id=clinic.service.id, now=NOW, **kwargs)
        assert exc.value.code == code
    assert search(db, clinic, last=TUE + timedelta(61))  # 62 days is allowed
    with pytest.raises(NotFound):
        search_slots(db.session, service_id=999, date_from=TUE, date_to=TUE, now=NOW)
    retired = make_service(app, therapists=clinic.therapists, rooms=clinic.rooms, active=False)
    with pytest.raises(ValidationFailed) as exc:
        search_slots(db.session, service_id=retired.id, date_from=TUE, date_to=TUE, now=NOW)
    assert exc.value.code == "inactive_service"
    outsider = make_therapist(app)
    with pytest.raises(ValidationFailed) as exc:
        search(db, clinic, therapist_id=outsider.id)
    assert exc.value.code == "not_offered"


@pytest.mark.real_db  # counts every statement: the savepoint mode would add SAVEPOINTs
def test_statement_count_does_not_grow_with_range_or_bookings(app, db, clinic):
    service_id = clinic.service.id

    def count(first, last, **kw):
        db.session.commit()
        with statements(db.engine) as seen:
            search_slots(db.session, service_id=service_id, date_from=first, date_to=last,
                         now=NOW, **kw)
        # SQLite's BEGIN IMMEDIATE (clinic_app/db.py) is transaction control, not a query.
        return len([s for s in seen if not s.startswith("BEGIN")])

    one_day = count(TUE, TUE)
    assert one_day <= 4, "settings, service+ids, schedules+closures, bookings"
    assert count(TUE, TUE + timedelta(61)) == one_day
    assert count(TUE, TUE, therapist_id=clinic.therapists[0].id) == one_day
    client = make_user(app)
    for day in range(30):
        for hour in (9, 13, 15):
            raw_booking(app, client=client, therapist=clinic.therapists[day % 2],
                        room=clinic.rooms[0], service=clinic.service,
                        start=local(2026, 11, 24, hour) + timedelta(days=day))
    assert count(TUE, TUE + timedelta(61)) == one_day
    assert count(TUE, TUE) == one_day


@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_booking_removes_the_slot_and_cancelling_brings_it_back(app, db, clinic, data):
    first = TUE + timedelta(days=data.draw(st.integers(0, 5), label="day"))
    before = search(db, clinic, first=first, last=first)
    if not before:
        return  # Sunday: nothing to book
    slot = data.draw(st.sampled_from(before), label="slot")
    booking = booking_service.book(db.session, client=clinic.client,
                                   service_id=clinic.service.id, start=slot.start,
                                   therapist_id=slot.therapist_id, now=NOW)
    db.session.commit()
    after = search(db, clinic, first=first, last=first)
    assert (slot.start, slot.therapist_id) not in {(s.start, s.therapist_id) for s in after}
    blocked = (booking.blocked_start, booking.blocked_end)
    for s in after:
        if s.therapist_id == slot.therapist_id:
            assert s.end + timedelta(minutes=15) <= blocked[0] or s.start >= blocked[1]
    booking_service.cancel(db.session, booking, actor=clinic.client, now=NOW)
    db.session.commit()
    assert search(db, clinic, first=first, last=first) == before
