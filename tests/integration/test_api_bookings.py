"""API: book, list, show, cancel, reschedule, no-show; errors and authorization."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from clinic_app.models import Booking
from clinic_app.services.settings import get_settings
from tests.factories import make_service
from tests.factories import make_therapist
from tests.factories import make_user
from tests.factories.accounts import token_for
from tests.factories.booking import make_clinic

TUE_10 = "2026-11-24T10:00:00+00:00"


@pytest.fixture
def clinic(app):
    return make_clinic(app)


@pytest.fixture
def auth(app, clinic):
    return token_for(app, clinic.client)


def post_booking(client, headers, clinic, start=TUE_10, **extra):
    return client.post("/api/v1/bookings", headers=headers,
                       json={"service_id": clinic.service.id, "start": start, **extra})


def test_book_show_list_cancel(client, clinic, auth, db):
    response = post_booking(client, auth, clinic)
    assert response.status_code == 201
    booking = response.get_json()
    assert booking["status"] == "booked" and booking["start"] == TUE_10
    assert booking["end"] == "2026-11-24T11:00:00+00:00"
    assert booking["therapist_id"] == clinic.t1.id and booking["room"] == clinic.rooms[0].name
    assert booking["service_id"] == clinic.service.id and booking["late"] is False
    assert booking["price"] == "65.00" and booking["created_at"].startswith("2026-11-23")

    shown = client.get(f"/api/v1/bookings/{booking['id']}", headers=auth)
    assert shown.status_code == 200 and shown.get_json()["id"] == booking["id"]
    upcoming = client.get("/api/v1/bookings?when=upcoming", headers=auth).get_json()
    assert [b["id"] for b in upcoming["bookings"]] == [booking["id"]]
    assert client.get("/api/v1/bookings?when=past", headers=auth).get_json()["bookings"] == []
    assert client.get("/api/v1/bookings?when=later", headers=auth).status_code == 422

    cancelled = client.post(f"/api/v1/bookings/{booking['id']}/cancel", headers=auth)
    assert cancelled.status_code == 200
    assert cancelled.get_json()["status"] == "cancelled"
    assert cancelled.get_json()["late"] is False
    again = client.post(f"/api/v1/bookings/{booking['id']}/cancel", headers=auth)
    assert again.status_code == 422 and again.get_json()["error"]["code"] == "not_cancellable"
    # Upcoming hides cancelled bookings; the full list keeps them.
    assert client.get("/api/v1/bookings?when=upcoming", headers=auth).get_json() == {
        "bookings": []}
    assert len(client.get("/api/v1/bookings", headers=auth).get_json()["bookings"]) == 1


def test_late_cancel_with_reason(client, clinic, auth, clock, db):
    booking = post_booking(client, auth, clinic).get_json()
    clock.advance(timedelta(hours=3))  # 23 h before the start: inside the 24 h cutoff
    bad = client.post(f"/api/v1/bookings/{booking['id']}/cancel", headers=auth,
                      data="{nope", content_type="application/json")
    assert bad.status_code == 400 and bad.get_json()["error"]["code"] == "invalid_json"
    response = client.post(f"/api/v1/bookings/{booking['id']}/cancel", headers=auth,
                           json={"reason": "Sick"})
    assert response.status_code == 200 and response.get_json()["late"] is True
    assert db.session.get(Booking, booking["id"]).cancel_reason == "Sick"


def test_reschedule_same_id_and_conflict(app, client, clinic, auth, db):
    booking = post_booking(client, auth, clinic, therapist_id=clinic.t1.id).get_json()
    moved = client.post(f"/api/v1/bookings/{booking['id']}/reschedule", headers=auth,
                        json={"start": "2026-11-25T14:00:00Z"})
    assert moved.status_code == 200
    body = moved.get_json()
    assert body["id"] == booking["id"] and body["start"] == "2026-11-25T14:00:00+00:00"
    assert body["sequence"] == 1 and body["therapist_id"] == clinic.t1.id

    other = token_for(app, make_user(app))
    taken = post_booking(client, other, clinic, start="2026-11-26T10:00:00+00:00",
                         therapist_id=clinic.t1.id)
    assert taken.status_code == 201
    clash = client.post(f"/api/v1/bookings/{booking['id']}/reschedule", headers=auth,
                        json={"start": "2026-11-26T10:30:00+00:00"})
    assert clash.status_code == 409 and clash.get_json()["error"]["code"] == "slot_taken"
    still = client.get(f"/api/v1/bookings/{booking['id']}", headers=auth).get_json()
    assert still["start"] == "2026-11-25T14:00:00+00:00" and still["status"] == "booked"
    naive = client.post(f"/api/v1/bookings/{booking['id']}/reschedule", headers=auth,
                        json={"start": "2026-11-26T12:00:00"})
    assert naive.status_code == 422 and "start" in naive.get_json()["error"]["fields"]


@pytest.mark.parametrize(("start", "code"), [
    ("2026-11-22T10:00:00+00:00", "in_past"),
    ("2026-11-23T10:00:00+00:00", "too_soon"),
    ("2027-03-01T10:00:00+00:00", "beyond_horizon"),
    ("2026-11-24T18:00:00+00:00", "outside_hours"),
    ("2026-11-24T10:05:00+00:00", "not_on_step"),
])
def test_refused_times(client, clinic, auth, start, code):
    response = post_booking(client, auth, clinic, start=start)
    assert response.status_code == 422
    assert response.get_json()["error"]["code"] == code
    assert "start" in response.get_json()["error"]["fields"]


def test_other_error_codes(app, client, clinic, auth, db):
    from datetime import date

    from clinic_app.models import Closure

    db.session.add(Closure(start_date=date(2026, 12, 25), end_date=date(2026, 12, 26)))
    get_settings(db.session).max_upcoming_per_client = 1
    db.session.commit()
    closed = post_booking(client, auth, clinic, start="2026-12-25T10:00:00+00:00")
    assert closed.get_json()["error"]["code"] == "closed"
    outsider = make_therapist(app)
    not_offered = post_booking(client, auth, clinic, therapist_id=outsider.id)
    assert not_offered.status_code == 422
    assert not_offered.get_json()["error"]["code"] == "not_offered"
    retired = make_service(app, therapists=clinic.therapists, rooms=clinic.rooms, active=False)
    inactive = client.post("/api/v1/bookings", headers=auth,
                           json={"service_id": retired.id, "start": TUE_10})
    assert inactive.get_json()["error"]["code"] == "inactive_service"
    unknown = client.post("/api/v1/bookings", headers=auth,
                          json={"service_id": 999, "start": TUE_10})
    assert unknown.status_code == 404
    assert post_booking(client, auth, clinic).status_code == 201
    capped = post_booking(client, auth, clinic, start="2026-11-25T10:00:00+00:00")
    assert capped.status_code == 422 and capped.get_json()["error"]["code"] == "over_cap"


def test_slot_taken_is_409(app, client, clinic, auth):
    assert post_booking(client, auth, clinic).status_code == 201
    assert post_booking(client, auth, clinic, start="2026-11-25T10:00:00+00:00").status_code \
        == 201
    other = token_for(app, make_user(app))
    assert post_booking(client, other, clinic).status_code == 201  # the second therapist
    third = post_booking(client, token_for(app, make_user(app)), clinic)
    assert third.status_code == 409 and third.get_json()["error"]["code"] == "slot_taken"


def test_bad_input_never_500(client, clinic, auth):
    cases = [
        dict(data="{bad json", content_type="application/json"),
        dict(data="[1, 2]", content_type="application/json"),
        dict(json={"service_id": "one", "start": TUE_10}),
        dict(json={"service_id": clinic.service.id}),
        dict(json={"service_id": clinic.service.id, "start": "tomorrow"}),
        dict(json={"service_id": clinic.service.id, "start": "2026-11-24T10:00:00"}),
        dict(json={"service_id": clinic.service.id, "start": TUE_10, "therapist_id": "x"}),
        dict(json={"service_id": 2**70, "start": TUE_10}),
    ]
    for kwargs in cases:
        response = client.post("/api/v1/bookings", headers=auth, **kwargs)
        assert response.status_code in (400, 404, 422), kwargs
        assert "error" in response.get_json()
    naive = client.post("/api/v1/bookings", headers=auth,
                        json={"service_id": clinic.service.id, "start": "2026-11-24T10:00:00"})
    assert "offset" in naive.get_json()["error"]["fields"]["start"]


def test_authentication_and_not_yours(app, client, clinic, auth):
    assert client.post("/api/v1/bookings", json={}).status_code == 401
    assert client.get("/api/v1/bookings").status_code == 401
    bad = client.get("/api/v1/bookings", headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 401 and bad.get_json()["error"]["code"] == "invalid_token"
    booking = post_booking(client, auth, clinic, therapist_id=clinic.t1.id).get_json()
    stranger = token_for(app, make_user(app))
    bid = booking["id"]
    for method, path, body in [
        ("get", f"/api/v1/bookings/{bid}", None),
        ("post", f"/api/v1/bookings/{bid}/cancel", None),
        ("post", f"/api/v1/bookings/{bid}/reschedule", {"start": "2026-11-25T10:00:00Z"}),
        ("post", f"/api/v1/bookings/{bid}/no-show", None),
        ("get", "/api/v1/bookings/999", None),
        ("get", "/api/v1/bookings/99999999999999999999", None),
    ]:
        response = getattr(client, method)(path, headers=stranger, json=body)
        assert response.status_code == 404, path
    assert client.get("/api/v1/bookings", headers=stranger).get_json() == {"bookings": []}
    other_therapist = token_for(app, clinic.t2.user)
    assert client.get(f"/api/v1/bookings/{bid}", headers=other_therapist).status_code == 404
    own_therapist = token_for(app, clinic.t1.user)
    assert client.get(f"/api/v1/bookings/{bid}", headers=own_therapist).status_code == 200
    mine = client.get("/api/v1/bookings", headers=own_therapist).get_json()["bookings"]
    assert [b["id"] for b in mine] == [bid]


def test_staff_book_for_a_client_and_mark_no_show(app, client, clinic, clock, db):
    admin = token_for(app, clinic.admin)
    response = post_booking(client, admin, clinic, client_id=clinic.client.id)
    assert response.status_code == 201
    booking = response.get_json()
    assert booking["client_id"] == clinic.client.id
    row = db.session.get(Booking, booking["id"])
    assert row.booked_by_id == clinic.admin.id
    # A client cannot book for someone else; staff cannot book for a non-client.
    client_auth = token_for(app, clinic.client)
    other = make_user(app)
    refused = post_booking(client, client_auth, clinic, client_id=other.id,
                           start="2026-11-25T10:00:00+00:00")
    assert refused.status_code == 404
    assert post_booking(client, admin, clinic, client_id=clinic.t1.user.id,
                        start="2026-11-25T10:00:00+00:00").status_code == 404
    therapist = token_for(app, clinic.t1.user)
    early = client.post(f"/api/v1/bookings/{booking['id']}/no-show", headers=therapist)
    assert early.status_code == 422 and early.get_json()["error"]["code"] == "not_started"
    assert client.post(f"/api/v1/bookings/{booking['id']}/no-show",
                       headers=client_auth).status_code == 404
    clock.advance(timedelta(hours=27))
    done = client.post(f"/api/v1/bookings/{booking['id']}/no-show", headers=therapist)
    assert done.status_code == 200 and done.get_json()["status"] == "no_show"
    assert db.session.scalar(select(Booking.status).where(Booking.id == booking["id"])) \
        == "no_show"
