"""API: a session record that does not exist yet is a 404 with the same words for reading,
editing and amending it; a booking the caller may not see is a 404 before that."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime
from datetime import timedelta

import pytest

from tests.factories.accounts import token_for
from tests.factories.booking import make_clinic
from tests.factories.booking import raw_booking

MON = datetime(2026, 11, 23, 13, 0, tzinfo=UTC)


@pytest.fixture
def clinic(app):
    return make_clinic(app)


def _calls(booking_id: int) -> list[tuple[str, str, dict[str, object] | None]]:
    url = f"/api/v1/bookings/{booking_id}/session-record"
    return [("get", url, None), ("patch", url, {"intensity": 3}),
            ("post", url + "/amendments", {"text": "A note."})]


def test_no_record_yet_is_404_for_read_edit_and_amend(app, db, client, clock, clinic):
    booking = raw_booking(app, client=clinic.client, therapist=clinic.t1, room=clinic.rooms[0],
                          service=clinic.service, start=MON)
    clock.set(MON + timedelta(hours=2))
    t1 = token_for(app, clinic.t1.user)
    for method, url, body in _calls(booking.id):
        response = getattr(client, method)(url, headers=t1, json=body)
        assert response.status_code == 404, (method, response.json)
        assert response.json["error"] == {"code": "not_found",
                                          "message": "This session has no record yet."}


def test_someone_elses_booking_is_404_before_its_record_is_looked_at(app, db, client, clock,
                                                                      clinic):
    booking = raw_booking(app, client=clinic.client, therapist=clinic.t1, room=clinic.rooms[0],
                          service=clinic.service, start=MON)
    clock.set(MON + timedelta(hours=2))
    t2 = token_for(app, clinic.t2.user)
    for method, url, body in _calls(booking.id) + _calls(2**31 - 1):
        response = getattr(client, method)(url, headers=t2, json=body)
        assert response.status_code == 404, (method, url, response.json)
        assert response.json["error"]["message"] != "This session has no record yet."
