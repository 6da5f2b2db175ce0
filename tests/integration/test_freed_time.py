"""Freed time is queued in the transaction that frees it (issue 13.2): one row per change,
exactly the time given back, nothing for time already past or a change that frees nothing."""

from __future__ import annotations

from datetime import UTC
from datetime import date
from datetime import datetime
from datetime import time
from datetime import timedelta

import pytest
from sqlalchemy import select

from clinic_app.errors import SlotTaken
from clinic_app.models import Closure
from clinic_app.models import FreedTime
from clinic_app.services import admin
from clinic_app.services import booking as booking_service
from clinic_app.services import holds
from clinic_app.services import schedule
from tests.factories import make_booking
from tests.factories.booking import make_clinic
from tests.factories.schedule import local

NOW = datetime(2026, 11, 23, 8, tzinfo=UTC)  # the frozen clock: Mon 08:00 GMT
TUE_10 = local(2026, 11, 24, 10)


@pytest.fixture
def clinic(app):
    return make_clinic(app)


def freed(db) -> list[tuple[int, datetime, datetime, str]]:
    db.session.flush()
    return [(r.therapist_id, r.start_at, r.end_at, r.reason) for r in db.session.scalars(
        select(FreedTime).order_by(FreedTime.start_at, FreedTime.id))]


def test_a_cancellation_queues_the_blocked_time(app, db, clinic):
    booking = make_booking(app, clinic, TUE_10)
    assert freed(db) == []
    booking_service.cancel(db.session, booking, actor=clinic.client, now=NOW)
    db.session.commit()
    # 60 minutes plus the 15-minute buffer after: the time the booking blocked.
    assert freed(db) == [(clinic.t1.id, TUE_10, TUE_10 + timedelta(minutes=75), "cancelled")]
    row = db.session.scalar(select(FreedTime))
    assert row.source_booking_id == booking.id and row.processed_at is None
    assert row.created_at == NOW


def test_a_past_booking_cancelled_by_staff_frees_nothing(app, db, clinic):
    booking = make_booking(app, clinic, local(2026, 11, 20, 10))
    booking_service.cancel(db.session, booking, actor=clinic.admin, now=NOW)
    db.session.commit()
    assert booking.status == "cancelled" and freed(db) == []


def test_a_move_queues_the_old_time_only_when_it_succeeds(app, db, clinic):
    booking = make_booking(app, clinic, TUE_10)
    other = make_booking(app, clinic, local(2026, 11, 24, 14), client=clinic.admin)
    with pytest.raises(SlotTaken):
        booking_service.reschedule(db.session, booking, new_start=other.start_at,
                                   actor=clinic.client, now=NOW)
    db.session.rollback()
    assert freed(db) == []
    booking_service.reschedule(db.session, booking, new_start=local(2026, 11, 25, 9),
                               actor=clinic.client, now=NOW)
    db.session.commit()
    assert freed(db) == [(clinic.t1.id, TUE_10, TUE_10 + timedelta(minutes=75), "moved")]


def test_a_released_hold_is_queued_once(app, db, clinic):
    hold = holds.place_hold(db.session, service_id=clinic.service.id, start=TUE_10,
                            therapist_id=clinic.t2.id, purpose="signup", minutes=10, now=NOW)
    db.session.commit()
    assert freed(db) == []
    assert holds.release_hold(db.session, hold, NOW) is True
    assert holds.release_hold(db.session, hold, NOW) is False
    db.session.commit()
    assert freed(db) == [(clinic.t2.id, TUE_10, TUE_10 + timedelta(minutes=75),
                          "hold_released")]


def test_removed_time_off_queues_the_working_time_it_gave_back(app, db, clinic):
    t = clinic.t1
    whole = schedule.add_time_off(db.session, t, date(2026, 11, 24), date(2026, 11, 25),
                                  reason="Course", now=NOW)
    part = schedule.add_time_off(db.session, t, date(2026, 11, 26), date(2026, 11, 26),
                                 time(10), time(11), now=NOW)
    db.session.commit()
    schedule.delete_time_off(db.session, t, whole.id, now=NOW)
    db.session.commit()
    # Each day's working hours (09-12, 13-17), not the nights and not the lunch break.
    assert freed(db) == [
        (t.id, local(2026, 11, 24, 9), local(2026, 11, 24, 12), "time_off_removed"),
        (t.id, local(2026, 11, 24, 13), local(2026, 11, 24, 17), "time_off_removed"),
        (t.id, local(2026, 11, 25, 9), local(2026, 11, 25, 12), "time_off_removed"),
        (t.id, local(2026, 11, 25, 13), local(2026, 11, 25, 17), "time_off_removed"),
    ]
    schedule.delete_time_off(db.session, t, part.id, now=NOW)
    db.session.commit()
    assert freed(db)[-1] == (t.id, local(2026, 11, 26, 10), local(2026, 11, 26, 11),
                             "time_off_removed")


def test_time_off_in_the_past_frees_nothing(app, db, clinic):
    row = schedule.add_time_off(db.session, clinic.t1, date(2026, 11, 16), date(2026, 11, 20))
    db.session.commit()
    schedule.delete_time_off(db.session, clinic.t1, row.id, now=NOW)
    db.session.commit()
    assert freed(db) == []


def test_hours_that_add_time_queue_exactly_the_added_time(app, db, clinic):
    t = clinic.t1
    week = [(d, time(9), time(12)) for d in range(6)] + [(d, time(13), time(17))
                                                          for d in range(6)]
    # Friday runs to 18:00 from Monday 30 November; every other range stays.
    schedule.replace_weekly_hours(db.session, t, [*week[:-1], (5, time(13), time(18))],
                                  date(2026, 11, 30), NOW)
    db.session.commit()
    rows = freed(db)
    # Saturdays (weekday 5) from 5 Dec to the horizon (90 days after Mon 23 Nov: 21 Feb).
    saturdays = [date(2026, 12, 5) + timedelta(weeks=n) for n in range(12)]
    assert [(r[1], r[2]) for r in rows] == [
        (local(d.year, d.month, d.day, 17), local(d.year, d.month, d.day, 18))
        for d in saturdays]
    assert {r[0] for r in rows} == {t.id} and {r[3] for r in rows} == {"hours_added"}


def test_hours_that_only_take_time_away_queue_nothing(app, db, clinic):
    schedule.replace_weekly_hours(db.session, clinic.t1,
                                  [(d, time(9), time(12)) for d in range(6)],
                                  date(2026, 11, 30), NOW)
    db.session.commit()
    assert freed(db) == []


def test_a_reopened_closure_queues_its_days_for_every_active_therapist(app, db, clinic):
    closure = admin.add_closure(db.session, start_date=date(2026, 11, 25),
                                end_date=date(2026, 11, 25), today=date(2026, 11, 23))
    db.session.commit()
    admin.delete_closure(db.session, closure.id, now=NOW)
    db.session.commit()
    day = (local(2026, 11, 25, 0), local(2026, 11, 26, 0))
    assert freed(db) == [(clinic.t1.id, *day, "closure_removed"),
                         (clinic.t2.id, *day, "closure_removed")]
    assert db.session.scalar(select(Closure)) is None
