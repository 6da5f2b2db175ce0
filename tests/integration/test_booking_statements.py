"""SQL statements of one booking through the API (``POST /api/v1/bookings``), pinned so that
they do not creep back (issue 10 item 7; bench/booking.py measures the time).

Eight on PostgreSQL, nine on SQLite (its ``BEGIN IMMEDIATE`` aside): the token with its user;
the client's current recommendation (the early rule) with their intake (confirm first), their
row lock, the settings row with the cap count; the service with the catalogue stamp; the busy
time of the day (with the expired holds on it); the INSERT (``ON CONFLICT DO NOTHING``); the
therapist, their user, the room and the service for the answer and the messages (on
PostgreSQL in the INSERT's statement, a CTE; SQLite has no INSERT in a CTE); the outbox
intents in one INSERT. An expired hold in the booking's way adds its DELETE.
"""

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

from clinic_app.models import Booking
from clinic_app.models import CatalogStamp
from clinic_app.models import Closure
from clinic_app.models import OutboxMessage
from clinic_app.services import holds
from clinic_app.services.availability import search_slots
from clinic_app.services.settings import get_settings
from tests.factories import make_user
from tests.factories.accounts import token_for
from tests.factories.booking import make_clinic

NOW = datetime(2026, 11, 23, 8, tzinfo=UTC)
TUE = date(2026, 11, 24)
PER_BOOKING = {"postgresql": 8, "sqlite": 9}
# A stale catalogue is reloaded once (settings with the stamp, services, schedules).
RELOAD = 3


@contextmanager
def statements(engine):
    """The SQL statements sent while the block runs (transaction control left out)."""
    seen: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany):  # noqa: ANN001
        if not statement.startswith("BEGIN"):
            seen.append(" ".join(statement.split())[:120])

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", count)


@pytest.fixture
def clinic(app, db):
    clinic = make_clinic(app)
    get_settings(db.session)
    # The stamp row (real-mode tests on PostgreSQL start from emptied tables).
    if db.session.scalar(select(func.count()).select_from(CatalogStamp)) == 0:
        db.session.add(CatalogStamp(id=1, stamp=4242))
    db.session.commit()
    # A search fills this process's catalogue, as the booking pages and the API's slots do.
    search_slots(db.session, service_id=clinic.service.id, date_from=TUE, date_to=TUE,
                 now=NOW)
    db.session.commit()
    return clinic


@pytest.fixture
def service_id(clinic):
    """Read before counting: the test's own objects expire at each commit."""
    return clinic.service.id


def post(client, headers, service_id, start):
    return client.post("/api/v1/bookings", headers=headers,
                       json={"service_id": service_id, "start": start})


def new_client(app):
    """A client's API headers (made before counting: their setup is not the booking's)."""
    return token_for(app, make_user(app))


@pytest.mark.real_db  # counts every statement: the savepoint mode would add SAVEPOINTs
def test_one_booking_costs_eight_or_nine_statements(app, client, db, service_id):
    for hour in (9, 10, 11):
        headers = new_client(app)
        with statements(db.engine) as seen:
            response = post(client, headers, service_id, f"2026-11-24T{hour:02d}:00:00+00:00")
        assert response.status_code == 201, response.get_json()
        assert len(seen) == PER_BOOKING[db.engine.dialect.name], "\n".join(seen)
    # The same rows as ever: two confirmations and the 24 h reminder (the 48 h one's time
    # has passed), nothing else.
    booking_id = response.get_json()["id"]
    kinds = db.session.scalars(select(OutboxMessage.kind).where(
        OutboxMessage.booking_id == booking_id).order_by(OutboxMessage.kind)).all()
    assert kinds == ["booking_confirmation", "booking_confirmation", "reminder"]
    assert db.session.scalar(select(func.count()).select_from(Booking)) == 3


@pytest.mark.real_db
def test_a_catalogue_change_costs_one_reload_then_as_few_again(app, client, db, service_id):
    db.session.add(Closure(start_date=date(2026, 12, 24), end_date=date(2026, 12, 24),
                           reason="Christmas Eve"))
    db.session.commit()
    first, second = new_client(app), new_client(app)
    with statements(db.engine) as seen:
        assert post(client, first, service_id, "2026-11-24T09:00:00+00:00").status_code == 201
    assert len(seen) == PER_BOOKING[db.engine.dialect.name] + RELOAD, "\n".join(seen)
    with statements(db.engine) as seen:
        assert post(client, second, service_id, "2026-11-24T10:00:00+00:00").status_code == 201
    assert len(seen) == PER_BOOKING[db.engine.dialect.name], "\n".join(seen)


@pytest.mark.real_db
def test_a_refused_booking_writes_nothing_and_costs_no_more(app, client, db, service_id):
    nine = "2026-11-24T09:00:00+00:00"
    assert post(client, new_client(app), service_id, nine).status_code == 201
    assert post(client, new_client(app), service_id, nine).status_code == 201  # the other one
    headers = new_client(app)
    with statements(db.engine) as seen:
        taken = post(client, headers, service_id, nine)
    assert taken.status_code == 409 and taken.get_json()["error"]["code"] == "slot_taken"
    # Refused at the re-check, before anything is written: the six statements up to and
    # including the busy time.
    assert len(seen) <= 6, "\n".join(seen)
    assert not any(s.startswith(("INSERT", "DELETE")) for s in seen), "\n".join(seen)
    assert db.session.scalar(select(func.count()).select_from(Booking)) == 2


@pytest.mark.real_db
def test_an_expired_hold_in_the_way_costs_its_delete(app, client, db, service_id, clinic):
    nine = "2026-11-24T09:00:00+00:00"
    placed = holds.place_hold(db.session, service_id=service_id, therapist_id=clinic.t1.id,
                              start=datetime(2026, 11, 24, 9, tzinfo=UTC), purpose="signup",
                              minutes=1, now=NOW - timedelta(minutes=1))  # expired at NOW
    db.session.commit()
    hold_id, therapist_id = placed.id, placed.therapist_id
    headers = new_client(app)
    with statements(db.engine) as seen:
        response = client.post("/api/v1/bookings", headers=headers,
                               json={"service_id": service_id, "start": nine,
                                     "therapist_id": therapist_id})
    assert response.status_code == 201, response.get_json()
    assert len(seen) == PER_BOOKING[db.engine.dialect.name] + 1, "\n".join(seen)
    assert [s for s in seen if s.startswith("DELETE")], "\n".join(seen)
    assert holds.get_hold(db.session, hold_id) is None
