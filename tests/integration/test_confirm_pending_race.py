"""A booking made while a therapist confirms the client's "confirm first" intake is never
left pending after the confirmation (both take the client's row lock before the intake)."""

from __future__ import annotations

import threading
from datetime import UTC
from datetime import datetime

import pytest

from clinic_app.errors import NotFound
from clinic_app.extensions import db as _db
from clinic_app.models import Booking
from clinic_app.services import booking as booking_service
from tests.factories.accounts import token_for
from tests.factories.booking import make_clinic

MON_10 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
TUE_10 = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)


@pytest.mark.real_db
def test_booking_during_confirmation_ends_booked_not_pending(app, db, client, clock):
    clinic = make_clinic(app)
    me = token_for(app, clinic.client)
    saved = client.put("/api/v1/clients/me/intake", headers=me, json={"blood_clot": True})
    assert saved.json["needs_confirmation"] is True
    first = client.post("/api/v1/bookings", headers=me, json={
        "service_id": clinic.service.id, "therapist_id": clinic.t1.id,
        "start": MON_10.isoformat()})
    assert first.status_code == 201 and first.json["status"] == "pending"
    client_id, service_id, t1_id = clinic.client.id, clinic.service.id, clinic.t1.id
    db.session.commit()

    # The therapist's confirmation runs and holds its transaction open ...
    confirmed = booking_service.confirm_pending(db.session, clinic.client,
                                                actor=clinic.t1.user, now=clock.now())
    assert [b.id for b in confirmed] == [first.json["id"]]
    made: dict[str, object] = {}

    def book_meanwhile() -> None:
        with app.app_context():
            try:
                session = _db.session
                user = session.get(type(clinic.client), client_id)
                booking = booking_service.book(session, client=user, service_id=service_id,
                                               start=TUE_10, therapist_id=t1_id,
                                               now=clock.now())
                session.commit()
                made["id"] = booking.id
            except Exception as exc:  # noqa: BLE001 - reported by the assert below
                made["error"] = exc
            finally:
                _db.session.remove()

    # ... while the client books another session; then the confirmation commits.
    racer = threading.Thread(target=book_meanwhile)
    racer.start()
    racer.join(timeout=0.5)  # the booking waits for the client's lock (or has finished)
    db.session.commit()
    racer.join(timeout=30)
    assert not racer.is_alive()
    assert "error" not in made, made
    db.session.expire_all()
    assert db.session.get(Booking, made["id"]).status == "booked"
    assert db.session.get(Booking, first.json["id"]).status == "booked"


def test_confirmation_by_the_client_is_refused_and_changes_nothing(app, db, client, clock):
    clinic = make_clinic(app)
    me = token_for(app, clinic.client)
    client.put("/api/v1/clients/me/intake", headers=me, json={"blood_clot": True})
    pending = client.post("/api/v1/bookings", headers=me, json={
        "service_id": clinic.service.id, "therapist_id": clinic.t1.id,
        "start": MON_10.isoformat()})
    assert pending.json["status"] == "pending"
    with pytest.raises(NotFound):
        booking_service.confirm_pending(db.session, clinic.client, actor=clinic.client,
                                        now=clock.now())
    db.session.rollback()
    assert db.session.get(Booking, pending.json["id"]).status == "pending"
