"""search_slots against the database: validation, statement count, booking properties."""

from __future__ import annotations

import random
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
from sqlalchemy import func
from sqlalchemy import select

from clinic_app.errors import NotFound
from clinic_app.errors import ValidationFailed
from clinic_app.models import Booking
from clinic_app.models import CatalogStamp
from clinic_app.models import Closure
from clinic_app.models import HoursOverride
from clinic_app.models import Service
from clinic_app.models import Therapist
from clinic_app.models import WeeklyHours
from clinic_app.services import availability as availability_service
from clinic_app.services import booking as booking_service
from clinic_app.services.availability import bookable_service
from clinic_app.services.availability import load_search_data
from clinic_app.services.availability import search_slots
from clinic_app.services.settings import get_settings
from tests.factories import make_service
from tests.factories import make_therapist
from tests.factories import make_user
from tests.factories.booking import make_clinic
from tests.factories.booking import raw_booking
from tests.factories.schedule import local
from tests.reference_availability import reference_find_slots

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


def ensure_stamp_row(db):
    """The catalogue stamp row (tests empty every table between tests on PostgreSQL)."""
    if db.session.scalar(select(func.count()).select_from(CatalogStamp)) == 0:
        db.session.add(CatalogStamp(id=1, stamp=12345))
    db.session.commit()


@pytest.mark.real_db  # counts every statement: the savepoint mode would add SAVEPOINTs
def test_statement_count_does_not_grow_with_range_or_bookings(app, db, clinic):
    service_id = clinic.service.id
    ensure_stamp_row(db)

    def count(first, last, **kw):
        db.session.commit()
        with statements(db.engine) as seen:
            search_slots(db.session, service_id=service_id, date_from=first, date_to=last,
                         now=NOW, **kw)
        # SQLite's BEGIN IMMEDIATE (clinic_app/db.py) is transaction control, not a query.
        return len([s for s in seen if not s.startswith("BEGIN")])

    cold = count(TUE, TUE)
    assert cold <= 4, "settings+stamp, services+ids, schedules+closures, bookings"
    # The catalogue is cached now: one statement (stamp + bookings) whatever the range.
    assert count(TUE, TUE + timedelta(61)) == 1
    assert count(TUE, TUE, therapist_id=clinic.therapists[0].id) == 1
    client = make_user(app)
    for day in range(30):
        for hour in (9, 13, 15):
            raw_booking(app, client=client, therapist=clinic.therapists[day % 2],
                        room=clinic.rooms[0], service=clinic.service,
                        start=local(2026, 11, 24, hour) + timedelta(days=day))
    assert count(TUE, TUE + timedelta(61)) == 1
    assert count(TUE, TUE) == 1
    # A catalogue change (here a closure) is seen at once and reloads: at most 5 statements.
    db.session.add(Closure(start_date=TUE + timedelta(1), end_date=TUE + timedelta(1),
                           reason="Inventory"))
    db.session.commit()
    assert 1 < count(TUE, TUE + timedelta(3)) <= 5
    assert count(TUE, TUE + timedelta(3)) == 1


@pytest.mark.real_db  # counts every statement: the savepoint mode would add SAVEPOINTs
def test_without_a_stamp_row_nothing_is_cached(app, db, clinic):
    service_id = clinic.service.id
    db.session.execute(CatalogStamp.__table__.delete())
    db.session.commit()
    for _ in range(2):
        with statements(db.engine) as seen:
            search_slots(db.session, service_id=service_id, date_from=TUE, date_to=TUE,
                         now=NOW)
        db.session.commit()
        assert len([s for s in seen if not s.startswith("BEGIN")]) == 4


def test_the_booking_recheck_uses_the_current_catalogue_only(app, db, clinic):
    """The booking path takes the schedules from the cached catalogue only while the stamp
    read with the service is the catalogue's: a change committed since, and a change made
    again by the same transaction (PostgreSQL stamps both with one transaction id), are
    seen; an unchanged catalogue is reused."""
    ensure_stamp_row(db)
    t1 = clinic.therapists[0]
    nine = local(2026, 11, 24, 9)
    assert nine in [s.start for s in search(db, clinic, therapist_id=t1.id)]  # cached now
    db.session.commit()
    off = HoursOverride(therapist_id=t1.id, start_date=TUE, end_date=TUE, kind="off")
    db.session.add(off)
    db.session.commit()

    def book(start):
        return booking_service.book(db.session, client=clinic.client,
                                    service_id=clinic.service.id, start=start,
                                    therapist_id=t1.id, now=NOW)

    with pytest.raises(ValidationFailed) as exc:
        book(nine)
    assert exc.value.code == "outside_hours"
    db.session.rollback()
    # One transaction: the day off goes, a booking is re-checked, the day off comes back.
    db.session.delete(db.session.get(HoursOverride, off.id))
    db.session.flush()
    assert book(nine).start_at == nine
    db.session.add(HoursOverride(therapist_id=t1.id, start_date=TUE, end_date=TUE, kind="off"))
    db.session.flush()
    with pytest.raises(ValidationFailed) as exc:
        book(local(2026, 11, 24, 11))
    assert exc.value.code == "outside_hours"


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


def reference_search(db, *, service_id, date_from, date_to, therapist_id=None,
                     exclude_booking_id=None):
    """The search as it was before the cache and the epoch path: four ORM/Core reads and
    the reference walk (tests/reference_availability.py)."""
    settings_row = get_settings(db.session)
    service = bookable_service(db.session, service_id, therapist_id)
    tids = (therapist_id,) if therapist_id is not None else service.therapist_ids
    data = load_search_data(db.session, settings=settings_row, service=service,
                            therapist_ids=tids, date_from=date_from, date_to=date_to,
                            exclude_booking_id=exclude_booking_id)
    return reference_find_slots(service=service.spec, rules=data.rules, now=NOW,
                                date_from=date_from, date_to=date_to,
                                therapists=data.therapists, closures=data.closures,
                                therapist_busy=data.therapist_busy, room_busy=data.room_busy)


def _random_bookings(app, rng, clinic, service, first_day, days, count):
    """``count`` tries at random bookings (some cancelled) that overlap no active booking of
    the same therapist or room (PostgreSQL's exclusion constraints would refuse them)."""
    taken: list[tuple[int, int, datetime, datetime]] = []
    made = []
    for _ in range(count):
        therapist = rng.choice(clinic.therapists)
        room = rng.choice(clinic.rooms)
        day = first_day + timedelta(days=rng.randrange(days))
        start = local(day.year, day.month, day.day, rng.randrange(8, 17), rng.randrange(12) * 5)
        blocked = (start - timedelta(minutes=service.buffer_before_minutes),
                   start + timedelta(minutes=service.duration_minutes
                                     + service.buffer_after_minutes))
        if any((t == therapist.id or r == room.id) and a < blocked[1] and blocked[0] < b
               for t, r, a, b in taken):
            continue
        status = "cancelled" if rng.random() < 0.15 else "booked"
        if status != "cancelled":
            taken.append((therapist.id, room.id, *blocked))
        made.append(raw_booking(app, client=clinic.client, therapist=therapist, room=room,
                                service=service, start=start, status=status))
    return made


def test_cached_epoch_search_equals_the_reference_on_random_data(app, db):
    """Random clinics (buffers, shared rooms, overrides, closures, cancelled rows, settings
    changes) searched over ordinary days and the 2027-03-28 spring-forward day: the new
    search, cold and cached, returns exactly the reference's slots."""
    ensure_stamp_row(db)
    rng = random.Random(20261201)
    settings_row = get_settings(db.session)
    settings_row.horizon_days = 200  # reach the March 2027 clock change
    db.session.commit()
    checked = 0
    for round_ in range(4):
        clinic = make_clinic(app, therapists=rng.randint(1, 3), rooms=rng.randint(1, 2),
                             minutes=rng.choice([30, 45, 60, 90]), before=rng.choice([0, 10]),
                             after=rng.choice([0, 15]))
        service = clinic.service
        spans = [(TUE, 6), (date(2027, 3, 25), 6)]
        for first_day, days in spans:
            _random_bookings(app, rng, clinic, service, first_day, days, 25)
        therapist = clinic.therapists[0]
        db.session.add(HoursOverride(therapist_id=therapist.id, start_date=TUE + timedelta(1),
                                     end_date=TUE + timedelta(1), kind="off",
                                     start_time=time(10, 10), end_time=time(11, 20)))
        if round_ % 2:
            db.session.add(Closure(start_date=date(2027, 3, 26), end_date=date(2027, 3, 26),
                                   reason="Training"))
        settings_row = get_settings(db.session)
        settings_row.slot_step_minutes = rng.choice([5, 15, 30])
        settings_row.min_notice_minutes = rng.choice([0, 240, 60 * 30])
        db.session.commit()
        some_booking = db.session.scalar(select(Booking.id).where(
            Booking.service_id == service.id).order_by(Booking.id))
        for first_day, days in spans:
            for kw in ({}, {"therapist_id": therapist.id},
                       {"exclude_booking_id": some_booking}):
                last = first_day + timedelta(days=days - 1)
                expected = reference_search(db, service_id=service.id, date_from=first_day,
                                            date_to=last, **kw)
                db.session.commit()
                for _ in range(2):  # cold (or stale) cache, then cached
                    got = search_slots(db.session, service_id=service.id, date_from=first_day,
                                       date_to=last, now=NOW, **kw)[1]
                    db.session.commit()
                    assert got == expected, (round_, first_day, kw)
                checked += len(expected)
    assert checked > 100  # the comparison saw real slots, not empty lists


@pytest.mark.real_db  # real commits: the stamp triggers and the cache across transactions
def test_catalogue_changes_are_seen_by_the_cached_search(app, db, clinic):
    """Every kind of catalogue change renews the stamp: the next search sees it."""
    ensure_stamp_row(db)
    service_id = clinic.service.id
    t1 = clinic.therapists[0]

    def starts(**kw):
        db.session.commit()
        out = search_slots(db.session, service_id=service_id, date_from=TUE, date_to=TUE,
                           now=NOW, **kw)[1]
        db.session.commit()
        return out

    base = starts()
    assert base and starts() == base  # cached
    db.session.add(Closure(start_date=TUE, end_date=TUE, reason="Flood"))
    db.session.commit()
    assert starts() == []
    db.session.execute(Closure.__table__.delete())
    get_settings(db.session).slot_step_minutes = 30
    db.session.commit()
    assert len(starts()) < len(base)
    get_settings(db.session).slot_step_minutes = 15
    db.session.execute(WeeklyHours.__table__.update().where(
        WeeklyHours.therapist_id == t1.id, WeeklyHours.start_time == time(9)
    ).values(end_time=time(11)))
    db.session.commit()
    assert max(s.end for s in starts(therapist_id=t1.id)).astimezone(
        local(2026, 1, 1, 0).tzinfo).time() == time(17)  # afternoon range untouched
    mine = starts(therapist_id=t1.id)
    assert not any(local(2026, 11, 24, 10, 15) <= s.start < local(2026, 11, 24, 13)
                   for s in mine)
    db.session.get(Therapist, t1.id).active = False
    db.session.commit()
    assert {s.therapist_id for s in starts()} == {clinic.therapists[1].id}
    with pytest.raises(ValidationFailed):
        starts(therapist_id=t1.id)
    db.session.get(Service, service_id).active = False
    db.session.commit()
    with pytest.raises(ValidationFailed) as exc:
        starts()
    assert exc.value.code == "inactive_service"
    # Offered again (here through a plain connection, as another process would): the cached
    # "inactive" is not trusted, the current catalogue is.
    db.session.rollback()  # the refused search's transaction (SQLite: the write lock)
    with db.engine.begin() as conn:
        conn.execute(Service.__table__.update().where(Service.id == service_id)
                     .values(active=True))
    assert {s.therapist_id for s in starts()} == {clinic.therapists[1].id}
    with pytest.raises(NotFound):
        search_slots(db.session, service_id=service_id + 999, date_from=TUE, date_to=TUE,
                     now=NOW)


# Committed for real: on PostgreSQL a catalogue read by the transaction that changed it is not
# kept (services/availability.py), and the savepoint mode runs the whole test in one.
@pytest.mark.real_db
def test_the_working_memo_is_kept_per_catalogue_and_never_outlives_it(app, db, clinic,
                                                                     monkeypatch):
    """The cached search computes a therapist-day's working intervals once per catalogue:
    a repeated search computes none, a wider range only its new dates, and every catalogue
    change (an "hours" override, part-day time off, weekly hours, the zone) starts a new
    memo, so the search still equals the reference (tests/reference_availability.py)."""
    ensure_stamp_row(db)
    service_id = clinic.service.id
    t1, t2 = clinic.therapists
    computed: list[tuple[tuple[int, ...], int]] = []
    real = availability_service.pure.working_micros

    def counting(schedules, days, tz):  # noqa: ANN001, ANN202
        schedules = list(schedules)
        computed.append((tuple(s.therapist_id for s in schedules), len(days)))
        return real(schedules, days, tz)

    monkeypatch.setattr(availability_service.pure, "working_micros", counting)

    def check(first=TUE, last=TUE + timedelta(days=6)):
        db.session.commit()
        expected = reference_search(db, service_id=service_id, date_from=first, date_to=last)
        db.session.commit()
        got = search_slots(db.session, service_id=service_id, date_from=first, date_to=last,
                           now=NOW)[1]
        db.session.commit()
        assert got == expected
        return got, availability_service._CATALOGS[db.session.get_bind()]

    base, catalog = check()
    assert base and computed == [((t1.id, t2.id), 7)]
    assert check() == (base, catalog) and len(computed) == 1  # a cached hit computes nothing
    check(TUE + timedelta(days=3), TUE + timedelta(days=8))  # two new dates: recomputed once
    assert len(computed) == 2
    assert set(catalog.working[t1.id]) == {TUE + timedelta(days=k) for k in range(9)}

    wed = TUE + timedelta(days=1)
    db.session.add(HoursOverride(therapist_id=t1.id, start_date=wed, end_date=wed,
                                 kind="hours", start_time=time(7), end_time=time(8, 30)))
    got, renewed = check()
    assert renewed is not catalog and len(computed) == 3
    assert any(s.start == local(2026, 11, 25, 7) and s.therapist_id == t1.id for s in got)
    db.session.add(HoursOverride(therapist_id=t2.id, start_date=TUE, end_date=TUE,
                                 kind="off", start_time=time(10), end_time=time(11, 30)))
    got, catalog = check()
    assert not any(local(2026, 11, 24, 10) <= s.start < local(2026, 11, 24, 11, 30)
                   and s.therapist_id == t2.id for s in got)
    db.session.execute(WeeklyHours.__table__.update().where(
        WeeklyHours.therapist_id == t2.id).values(start_time=time(8)))
    check()
    get_settings(db.session).timezone = "America/New_York"
    got, catalog = check()
    assert got and catalog.rules.tz.key == "America/New_York"
    assert len(computed) == 6  # one computation per catalogue


@pytest.mark.real_db
def test_a_full_working_memo_starts_afresh(app, db, clinic, monkeypatch):
    """A long-lived process walks into new dates: past the memo's size a therapist's dates
    are replaced by the searched ones, and searches stay right."""
    ensure_stamp_row(db)
    monkeypatch.setattr(availability_service, "_WORKING_MEMO_DAYS", 10)
    for week in range(4):
        first = TUE + timedelta(days=7 * week)
        last = first + timedelta(days=6)
        expected = reference_search(db, service_id=clinic.service.id, date_from=first,
                                    date_to=last)
        db.session.commit()
        assert search(db, clinic, first=first, last=last) == expected
        db.session.commit()
        memo = availability_service._CATALOGS[db.session.get_bind()].working
        assert all(len(by_day) <= 10 + 7 for by_day in memo.values())
        assert set(memo[clinic.therapists[0].id]) >= {first + timedelta(days=k)
                                                      for k in range(7)}
