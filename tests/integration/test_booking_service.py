"""The booking use cases at the service level: book, cancel, reschedule, no-show, access."""

from __future__ import annotations

from datetime import UTC
from datetime import date
from datetime import datetime
from datetime import timedelta

import pytest
from sqlalchemy import delete
from sqlalchemy import event
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.exc import DBAPIError

from clinic_app.errors import NotFound
from clinic_app.errors import SlotTaken
from clinic_app.errors import ValidationFailed
from clinic_app.models import Booking
from clinic_app.models import ClinicSettings
from clinic_app.models import Closure
from clinic_app.scheduling.availability import Slot
from clinic_app.services import booking as svc
from clinic_app.services.settings import get_settings
from tests.factories import make_service
from tests.factories import make_therapist
from tests.factories import make_user
from tests.factories.booking import make_clinic
from tests.factories.booking import raw_booking
from tests.factories.schedule import local

TUE_10 = local(2026, 11, 24, 10)  # clock: Mon 2026-11-23 08:00 UTC (= 08:00 GMT)


@pytest.fixture
def clinic(app):
    return make_clinic(app)


@pytest.fixture
def calls(monkeypatch):
    """Record the notification hooks the services call."""
    seen = []
    from clinic_app.services.notify import events as notifications

    for name in ("booking_created", "booking_changed", "booking_cancelled"):
        monkeypatch.setattr(notifications, name,
                            lambda *a, _n=name, **k: seen.append((_n, a[1].id)))
    return seen


def book(db, clinic, start=TUE_10, client=None, now=None, **kw):
    return svc.book(db.session, client=client or clinic.client, service_id=clinic.service.id,
                    start=start, now=now or datetime(2026, 11, 23, 8, tzinfo=UTC), **kw)


def test_book_assigns_therapist_room_buffers_and_notifies(db, clinic, calls):
    booking = book(db, clinic, therapist_id=clinic.t2.id)
    db.session.commit()
    assert booking.status == "booked" and booking.therapist_id == clinic.t2.id
    assert booking.room_id == clinic.rooms[0].id  # the lowest free suitable room
    assert booking.start_at == TUE_10 and booking.end_at == TUE_10 + timedelta(hours=1)
    assert booking.blocked_start == booking.start_at
    assert booking.blocked_end == booking.end_at + timedelta(minutes=15)
    assert booking.price_cents == clinic.service.price_cents
    assert booking.booked_by_id == clinic.client.id and booking.sequence == 0
    assert calls == [("booking_created", booking.id)]


def test_book_without_therapist_takes_first_free_then_409(app, db, clinic):
    first = book(db, clinic)
    second = book(db, clinic, client=make_user(app))
    assert (first.therapist_id, second.therapist_id) == (clinic.t1.id, clinic.t2.id)
    assert {first.room_id, second.room_id} == {r.id for r in clinic.rooms}
    with pytest.raises(SlotTaken) as exc:
        book(db, clinic, client=make_user(app))
    assert exc.value.code == "slot_taken" and exc.value.status == 409


def test_room_is_part_of_the_slot(app, db):
    clinic = make_clinic(app, rooms=1)
    book(db, clinic, therapist_id=clinic.t1.id)
    with pytest.raises(SlotTaken):
        book(db, clinic, client=make_user(app), therapist_id=clinic.t2.id)


def test_buffers_block_the_next_start(db, clinic):
    book(db, clinic, start=local(2026, 11, 24, 9), therapist_id=clinic.t1.id)
    with pytest.raises(SlotTaken):  # 10:00 is inside the 15-minute buffer after 09:00-10:00
        book(db, clinic, start=local(2026, 11, 24, 10), therapist_id=clinic.t1.id)
    later = book(db, clinic, start=local(2026, 11, 24, 10, 15), therapist_id=clinic.t1.id)
    assert later.start_at == local(2026, 11, 24, 10, 15)


@pytest.mark.parametrize(("start", "code"), [
    (local(2026, 11, 22, 10), "in_past"),
    (local(2026, 11, 23, 10), "too_soon"),
    (local(2027, 3, 1, 10), "beyond_horizon"),
    (local(2026, 11, 24, 18), "outside_hours"),
    (local(2026, 11, 24, 12, 30), "outside_hours"),
    (local(2026, 11, 29, 10), "outside_hours"),  # a Sunday
    (local(2026, 11, 24, 10, 5), "not_on_step"),
])
def test_refused_times_have_stable_codes(db, clinic, start, code):
    with pytest.raises(ValidationFailed) as exc:
        book(db, clinic, start=start, therapist_id=clinic.t1.id)
    assert exc.value.code == code and exc.value.status == 422
    assert "start" in exc.value.fields
    assert db.session.scalar(select(Booking.id)) is None


def test_closed_day(db, clinic):
    db.session.add(Closure(start_date=date(2026, 11, 24), end_date=date(2026, 11, 25),
                           reason="Training"))
    db.session.commit()
    with pytest.raises(ValidationFailed) as exc:
        book(db, clinic)
    assert exc.value.code == "closed"
    assert book(db, clinic, start=local(2026, 11, 26, 10)).id


def test_naive_start_is_refused(db, clinic):
    with pytest.raises(ValidationFailed) as exc:
        book(db, clinic, start=datetime(2026, 11, 24, 10))
    assert exc.value.code == "naive_datetime"


def test_over_cap(app, db, clinic):
    get_settings(db.session).max_upcoming_per_client = 2
    db.session.commit()
    book(db, clinic)
    book(db, clinic, start=local(2026, 11, 25, 10))
    with pytest.raises(ValidationFailed) as exc:
        book(db, clinic, start=local(2026, 11, 26, 10))
    assert exc.value.code == "over_cap"
    # Past and cancelled bookings do not count; other clients are not affected.
    assert book(db, clinic, client=make_user(app), start=local(2026, 11, 26, 10)).id


def test_a_new_booking_comes_back_whole_with_its_parties_loaded(app, db, clinic, calls):
    # PostgreSQL inserts it in a CTE joined to its parties; SQLite reads them after.
    booking = book(db, clinic, therapist_id=clinic.t2.id)
    sent: list[str] = []

    def note(conn, cursor, statement, *args):  # noqa: ANN001
        sent.append(statement)

    event.listen(db.engine, "before_cursor_execute", note)
    try:
        names = (booking.therapist.user.name, booking.room.name, booking.service.name)
    finally:
        event.remove(db.engine, "before_cursor_execute", note)
    db.session.commit()
    assert sent == [] and names == (clinic.t2.user.name, booking.room.name, clinic.service.name)
    row = db.session.execute(select(Booking.__table__).where(Booking.id == booking.id)).one()
    assert (row.late_cancel, row.cancel_reason, row.private_note, row.notify_client,
            row.override_reason, row.sequence, row.expires_at, row.hold_purpose) == (
        False, "", "", True, "", 0, None, None)
    assert row.status == "booked" and row.client_id == clinic.client.id
    assert row.blocked_end == TUE_10 + timedelta(minutes=75)


def test_a_booking_on_a_database_without_settings_creates_the_row(app, db, clinic):
    # The settings row and the cap count are one read; with no row, the row is made first.
    db.session.execute(delete(ClinicSettings))
    db.session.commit()
    assert book(db, clinic).id
    assert db.session.scalar(select(func.count()).select_from(ClinicSettings)) == 1


def test_the_cap_is_read_afresh_after_a_commit(app, db, clinic):
    book(db, clinic)  # this session holds the settings row (expired by the commit below)
    db.session.commit()
    # The cap lowered behind the session's back (a Core UPDATE, not the loaded row).
    db.session.execute(update(ClinicSettings).values(max_upcoming_per_client=1)
                       .execution_options(synchronize_session=False))
    db.session.commit()
    with pytest.raises(ValidationFailed) as exc:
        book(db, clinic, start=local(2026, 11, 25, 10))
    assert exc.value.code == "over_cap"


def test_not_offered_inactive_and_unknown_service(app, db, clinic):
    outsider = make_therapist(app)
    with pytest.raises(ValidationFailed) as exc:
        book(db, clinic, therapist_id=outsider.id)
    assert exc.value.code == "not_offered" and "therapist_id" in exc.value.fields
    retired = make_service(app, therapists=clinic.therapists, rooms=clinic.rooms, active=False)
    with pytest.raises(ValidationFailed) as exc:
        svc.book(db.session, client=clinic.client, service_id=retired.id, start=TUE_10,
                 now=datetime(2026, 11, 23, 8, tzinfo=UTC))
    assert exc.value.code == "inactive_service"
    with pytest.raises(NotFound):
        svc.book(db.session, client=clinic.client, service_id=9999, start=TUE_10,
                 now=datetime(2026, 11, 23, 8, tzinfo=UTC))


def test_only_staff_book_for_someone_else(app, db, clinic):
    other = make_user(app)
    with pytest.raises(NotFound):
        book(db, clinic, client=other, actor=clinic.client)
    by_admin = book(db, clinic, client=other, actor=clinic.admin)
    assert by_admin.client_id == other.id and by_admin.booked_by_id == clinic.admin.id
    with pytest.raises(ValidationFailed) as exc:
        book(db, clinic, client=clinic.admin, actor=clinic.admin,
             start=local(2026, 11, 25, 10))
    assert exc.value.code == "not_a_client"


def test_initial_status_hook(db, clinic):
    assert svc.initial_status_for(db.session, clinic.client) == "booked"


def test_cancel_late_flag_and_not_cancellable(db, clinic, calls):
    now = datetime(2026, 11, 23, 8, tzinfo=UTC)
    early = book(db, clinic)  # Tue 10:00, 26 h ahead
    svc.cancel(db.session, early, actor=clinic.client, now=now, reason="Away")
    assert early.status == "cancelled" and early.late_cancel is False
    assert early.cancel_reason == "Away" and early.cancelled_at == now and early.sequence == 1
    with pytest.raises(ValidationFailed) as exc:
        svc.cancel(db.session, early, actor=clinic.client, now=now)
    assert exc.value.code == "not_cancellable"

    late = book(db, clinic, start=local(2026, 11, 24, 10))
    svc.cancel(db.session, late, actor=clinic.client, now=now + timedelta(hours=3))
    assert late.late_cancel is True
    assert ("booking_cancelled", late.id) in calls

    by_clinic = book(db, clinic, start=local(2026, 11, 24, 14))
    svc.cancel(db.session, by_clinic, actor=clinic.admin, now=now + timedelta(hours=3))
    assert by_clinic.late_cancel is False  # the clinic cancelled, not the client


def test_cancel_refuses_others_and_started_sessions(app, db, clinic):
    booking = book(db, clinic)
    with pytest.raises(NotFound):
        svc.cancel(db.session, booking, actor=make_user(app),
                   now=datetime(2026, 11, 23, 8, tzinfo=UTC))
    with pytest.raises(ValidationFailed) as exc:
        svc.cancel(db.session, booking, actor=clinic.client, now=TUE_10 + timedelta(minutes=5))
    assert exc.value.code == "not_cancellable"


def test_reschedule_keeps_id_and_frees_old_slot(app, db, clinic, calls):
    now = datetime(2026, 11, 23, 8, tzinfo=UTC)
    booking = book(db, clinic, therapist_id=clinic.t1.id)
    moved = svc.reschedule(db.session, booking, new_start=local(2026, 11, 25, 14),
                           actor=clinic.client, now=now)
    db.session.commit()
    assert moved.id == booking.id and moved.sequence == 1
    assert moved.start_at == local(2026, 11, 25, 14) and moved.therapist_id == clinic.t1.id
    assert moved.blocked_end == local(2026, 11, 25, 15, 15)
    assert ("booking_changed", booking.id) in calls
    # The old time is free again for the same therapist.
    other = book(db, clinic, client=make_user(app), therapist_id=clinic.t1.id)
    assert other.start_at == TUE_10
    # Moving by a few minutes overlapping its own old time is fine (it is not busy with itself).
    svc.reschedule(db.session, moved, new_start=local(2026, 11, 25, 14, 30),
                   actor=clinic.client, now=now)
    assert moved.sequence == 2


def test_reschedule_to_taken_slot_leaves_booking_in_place(app, db, clinic):
    now = datetime(2026, 11, 23, 8, tzinfo=UTC)
    mine = book(db, clinic, therapist_id=clinic.t1.id)
    book(db, clinic, client=make_user(app), start=local(2026, 11, 25, 10),
         therapist_id=clinic.t1.id)
    db.session.commit()
    with pytest.raises(SlotTaken):
        svc.reschedule(db.session, mine, new_start=local(2026, 11, 25, 10, 30),
                       actor=clinic.client, now=now)
    db.session.rollback()
    db.session.refresh(mine)
    assert mine.start_at == TUE_10 and mine.sequence == 0 and mine.status == "booked"
    with pytest.raises(ValidationFailed) as exc:
        svc.reschedule(db.session, mine, new_start=local(2026, 11, 25, 18),
                       actor=clinic.client, now=now)
    assert exc.value.code == "outside_hours"
    outsider = make_therapist(app)
    with pytest.raises(ValidationFailed) as exc:
        svc.reschedule(db.session, mine, new_start=local(2026, 11, 25, 14),
                       actor=clinic.client, now=now, therapist_id=outsider.id)
    assert exc.value.code == "not_offered"


def test_reschedule_cutoff_applies_to_clients_not_staff(db, clinic):
    now = datetime(2026, 11, 23, 12, tzinfo=UTC)
    booking = book(db, clinic, start=local(2026, 11, 24, 9))  # 21 h ahead
    with pytest.raises(ValidationFailed) as exc:
        svc.reschedule(db.session, booking, new_start=local(2026, 11, 25, 9),
                       actor=clinic.client, now=now)
    assert exc.value.code == "past_cutoff"
    svc.reschedule(db.session, booking, new_start=local(2026, 11, 25, 9), actor=clinic.admin,
                   now=now, therapist_id=clinic.t2.id)
    assert booking.therapist_id == clinic.t2.id


def test_no_show(app, db, clinic):
    booking = book(db, clinic, therapist_id=clinic.t1.id)
    therapist_user = clinic.t1.user
    with pytest.raises(ValidationFailed) as exc:
        svc.mark_no_show(db.session, booking, actor=therapist_user,
                         now=datetime(2026, 11, 23, 8, tzinfo=UTC))
    assert exc.value.code == "not_started"
    with pytest.raises(NotFound):
        svc.mark_no_show(db.session, booking, actor=clinic.client, now=TUE_10)
    with pytest.raises(NotFound):  # another therapist's booking
        svc.mark_no_show(db.session, booking, actor=clinic.t2.user, now=TUE_10)
    svc.mark_no_show(db.session, booking, actor=therapist_user, now=TUE_10)
    assert booking.status == "no_show"
    with pytest.raises(ValidationFailed) as exc:
        svc.mark_no_show(db.session, booking, actor=therapist_user, now=TUE_10)
    assert exc.value.code == "invalid_status"


def test_get_booking_for_access_matrix(app, db, clinic):
    booking = book(db, clinic, therapist_id=clinic.t1.id)
    db.session.commit()
    assert svc.get_booking_for(db.session, booking.id, clinic.client) is booking
    assert svc.get_booking_for(db.session, booking.id, clinic.t1.user) is booking
    assert svc.get_booking_for(db.session, booking.id, clinic.admin) is booking
    for outsider in (make_user(app), clinic.t2.user):
        with pytest.raises(NotFound):
            svc.get_booking_for(db.session, booking.id, outsider)
    with pytest.raises(NotFound):
        svc.get_booking_for(db.session, 9999, clinic.admin)


class _DriverError(Exception):
    def __init__(self, sqlstate):
        super().__init__(sqlstate)
        self.sqlstate = sqlstate


def test_a_deadlock_at_the_insert_is_a_409_and_other_errors_are_not(db, clinic, monkeypatch):
    """PostgreSQL may end a transaction whose INSERT deadlocked with a concurrent writer of
    the same time (40P01): the booking answers 409 ``slot_taken``, not a 500; any other
    database error is not disguised."""
    real = {"scalars": db.session.scalars, "execute": db.session.execute}

    def new_booking(statement):
        # SQLite: the INSERT itself; PostgreSQL: the SELECT over the INSERT's CTE.
        return getattr(statement, "is_insert", False) or any(
            statement is built for built in svc._INSERT_WITH_PARTIES.values())

    def fail(sqlstate):
        for name, method in real.items():
            def failing(statement, *args, _method=method, **kwargs):
                if new_booking(statement):
                    raise DBAPIError("INSERT INTO bookings", {}, _DriverError(sqlstate))
                return _method(statement, *args, **kwargs)
            monkeypatch.setattr(db.session, name, failing)

    fail("40P01")
    with pytest.raises(SlotTaken) as exc:
        book(db, clinic, therapist_id=clinic.t1.id)
    assert exc.value.fields == {"start": "No longer available."}
    db.session.rollback()
    fail("23503")
    with pytest.raises(DBAPIError):
        book(db, clinic, therapist_id=clinic.t1.id)
    db.session.rollback()
    assert db.session.scalars(select(Booking.id)).all() == []


def test_database_guard_refuses_a_lost_race(app, db, clinic, monkeypatch):
    """A booking that passed its check while another committed the same time is refused:
    on PostgreSQL by the exclusion constraint at flush (then 409 and the transaction stays
    usable); on SQLite BEGIN IMMEDIATE makes the race impossible, so the check itself wins."""
    taken = raw_booking(app, client=make_user(app), therapist=clinic.t1, room=clinic.rooms[0],
                        service=clinic.service, start=TUE_10)
    if db.engine.dialect.name == "postgresql":
        # Simulate the race: the re-check "did not see" the winner.
        monkeypatch.setattr(svc, "_find_slot", lambda *a, **k: (Slot(
            TUE_10, TUE_10 + timedelta(hours=1), clinic.t1.id, clinic.rooms[1].id), False))
    with pytest.raises(SlotTaken):
        book(db, clinic, therapist_id=clinic.t1.id)
    assert db.session.scalars(select(Booking.id)).all() == [taken.id]
