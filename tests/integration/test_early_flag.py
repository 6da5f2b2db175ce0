"""Issue 10: a booking is flagged "booked before the recommended date" only when it is
before the client's recommended earliest date and someone confirmed that (the admin's
page no longer flags every booking), and the client's export says the same."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime

import pytest
from sqlalchemy import select
from sqlalchemy import text

from clinic_app.models import Booking
from clinic_app.services import booking as booking_service
from clinic_app.services import privacy
from tests.factories.accounts import login
from tests.factories.accounts import token_for
from tests.factories.booking import make_clinic
from tests.factories.care import recorded_session

MON = datetime(2026, 11, 23, 13, tzinfo=UTC)  # a recorded session: earliest is later that week
EARLY = datetime(2026, 11, 24, 14, tzinfo=UTC)  # the day after: before the earliest date
LATER = datetime(2026, 12, 3, 14, tzinfo=UTC)  # inside the window


def _confirm(client, clinic, start, **extra):
    return client.post("/admin/book/confirm", data={
        "client": clinic.client.id, "service": clinic.service.id, "start": start.isoformat(),
        "therapist": clinic.t1.id, **extra})


def test_admin_booking_inside_the_window_is_not_flagged(app, db, client, clock):
    clinic = make_clinic(app)
    recorded_session(app, clinic, MON)
    login(client, clinic.admin)
    page = client.get(f"/admin/book/confirm?client={clinic.client.id}&service="
                      f"{clinic.service.id}&start={LATER.isoformat()}&therapist={clinic.t1.id}")
    assert "recommended earliest date" not in page.get_data(as_text=True)
    assert _confirm(client, clinic, LATER).status_code == 302
    made = db.session.scalar(select(Booking).where(Booking.start_at == LATER))
    assert made.early_confirmed is False
    export = privacy.export_client_data(db.session, clinic.client, clock.now())
    assert [b["booked_before_recommended_date"] for b in export["bookings"]] == [False, False]


def test_admin_booking_before_the_window_needs_the_tick_and_is_flagged(app, db, client,
                                                                       clock):
    clinic = make_clinic(app)
    recorded_session(app, clinic, MON)
    login(client, clinic.admin)
    refused = _confirm(client, clinic, EARLY)
    assert refused.status_code == 422
    text_ = refused.get_data(as_text=True)
    assert "recommended earliest date" in text_ and 'id="early_ok-error"' in text_
    assert db.session.scalar(select(Booking).where(Booking.start_at == EARLY)) is None
    assert _confirm(client, clinic, EARLY, early_ok="y").status_code == 302
    made = db.session.scalar(select(Booking).where(Booking.start_at == EARLY))
    assert made.early_confirmed is True
    export = privacy.export_client_data(db.session, clinic.client, clock.now())
    assert [b["booked_before_recommended_date"] for b in export["bookings"]] == [False, True]


def test_a_confirmation_flag_without_an_early_time_is_not_stored(app, db, client, clock):
    clinic = make_clinic(app)
    recorded_session(app, clinic, MON)
    # The client says "yes, early" for a time inside the window; staff for a client with
    # no recommendation at all: neither booking is early, so neither is flagged.
    me = token_for(app, clinic.client)
    inside = client.post("/api/v1/bookings", headers=me, json={
        "service_id": clinic.service.id, "start": LATER.isoformat(), "early_confirmed": True})
    assert inside.status_code == 201 and inside.json["early_confirmed"] is False
    fresh = make_clinic(app, therapists=1, rooms=1)
    staff = booking_service.book(db.session, client=fresh.client, service_id=fresh.service.id,
                                 start=LATER, now=clock.now(), actor=fresh.admin,
                                 early_confirmed=True)
    assert staff.early_confirmed is False


@pytest.mark.real_db  # the migration runs on its own connection
def test_the_migration_clears_flags_staff_bookings_never_earned(app, db, clock):
    """0003 resets early_confirmed on bookings someone else made; the client's own stay."""
    import importlib.util
    import pathlib

    clinic = make_clinic(app)
    own, _ = recorded_session(app, clinic, MON)
    by_admin = booking_service.book(db.session, client=clinic.client,
                                    service_id=clinic.service.id, start=LATER,
                                    now=clock.now(), actor=clinic.admin)
    db.session.execute(text("UPDATE bookings SET early_confirmed = :yes, booked_by_id = :c "
                            "WHERE id = :own"), {"yes": True, "c": clinic.client.id,
                                                 "own": own.id})
    db.session.execute(text("UPDATE bookings SET early_confirmed = :yes WHERE id = :b"),
                       {"yes": True, "b": by_admin.id})
    db.session.commit()
    path = (pathlib.Path(__file__).resolve().parents[2] / "migrations" / "versions"
            / "0003_early_flag_only_when_confirmed.py")
    spec = importlib.util.spec_from_file_location("m0003", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    from alembic.migration import MigrationContext
    from alembic.operations import Operations

    with db.engine.begin() as conn:
        with Operations.context(MigrationContext.configure(conn)):
            module.upgrade()
    db.session.expire_all()
    assert db.session.get(Booking, own.id).early_confirmed is True
    assert db.session.get(Booking, by_admin.id).early_confirmed is False
