"""API: a therapist's hours, time off and bookings (/therapists/me/...)."""

from __future__ import annotations

import pytest

from tests.factories import make_user
from tests.factories.accounts import token_for
from tests.factories.booking import make_clinic


@pytest.fixture
def clinic(app):
    return make_clinic(app)


@pytest.fixture
def me(app, clinic):
    return token_for(app, clinic.t1.user)


def test_hours_get_and_put(client, clinic, me):
    body = client.get("/api/v1/therapists/me/hours", headers=me).get_json()
    assert body["timezone"] == "Europe/London"
    assert body["current"]["effective_from"] == "2026-01-01"
    assert body["current"]["hours"][0] == {"weekday": 0, "start": "09:00", "end": "12:00"}
    assert body["scheduled"] == [] and body["time_off"] == []

    new = {"effective_from": "2026-12-07", "hours": [
        {"weekday": 0, "start": "08:00", "end": "12:00"},
        {"weekday": 0, "start": "13:00", "end": "16:30"},
        {"weekday": 6, "start": "10:00", "end": "14:00"},
    ]}
    response = client.put("/api/v1/therapists/me/hours", headers=me, json=new)
    assert response.status_code == 200
    scheduled = response.get_json()["scheduled"]
    assert scheduled[0]["effective_from"] == "2026-12-07" and len(scheduled[0]["hours"]) == 3
    sid = clinic.service.id
    slots = client.get(f"/api/v1/availability?service_id={sid}&from=2026-12-13&to=2026-12-14"
                       f"&therapist_id={clinic.t1.id}").get_json()["slots"]
    assert slots[0]["start"] == "2026-12-13T10:00:00+00:00"  # Sunday now works
    assert slots[-1]["start"] == "2026-12-14T15:30:00+00:00"

    overlap = client.put("/api/v1/therapists/me/hours", headers=me, json={"hours": [
        {"weekday": 1, "start": "09:00", "end": "12:00"},
        {"weekday": 1, "start": "11:00", "end": "13:00"}]})
    assert overlap.status_code == 422 and "hours.1" in overlap.get_json()["error"]["fields"]
    reversed_ = client.put("/api/v1/therapists/me/hours", headers=me, json={"hours": [
        {"weekday": 1, "start": "12:00", "end": "09:00"}]})
    assert reversed_.status_code == 422
    for bad in ({"hours": [{"weekday": 9, "start": "09:00", "end": "10:00"}]},
                {"hours": [{"weekday": 1, "start": "25:00", "end": "26:00"}]},
                {"hours": "all day"}, {}):
        assert client.put("/api/v1/therapists/me/hours", headers=me,
                          json=bad).status_code == 422, bad


def test_time_off_add_list_delete(app, client, clinic, me):
    response = client.post("/api/v1/therapists/me/time-off", headers=me, json={
        "start_date": "2026-11-24", "end_date": "2026-11-25", "reason": "Conference"})
    assert response.status_code == 201
    row = response.get_json()
    assert row["kind"] == "off" and row["start_time"] is None
    listed = client.get("/api/v1/therapists/me/hours", headers=me).get_json()["time_off"]
    assert [r["id"] for r in listed] == [row["id"]]
    sid = clinic.service.id
    slots = client.get(f"/api/v1/availability?service_id={sid}&from=2026-11-24&to=2026-11-25"
                       ).get_json()["slots"]
    assert {s["therapist_id"] for s in slots} == {clinic.t2.id}

    part = client.post("/api/v1/therapists/me/time-off", headers=me, json={
        "start_date": "2026-11-26", "start_time": "13:00", "end_time": "17:00"})
    assert part.status_code == 201 and part.get_json()["end_date"] == "2026-11-26"
    past = client.post("/api/v1/therapists/me/time-off", headers=me,
                       json={"start_date": "2026-11-01", "end_date": "2026-11-02"})
    assert past.status_code == 422 and "end_date" in past.get_json()["error"]["fields"]
    half = client.post("/api/v1/therapists/me/time-off", headers=me,
                       json={"start_date": "2026-11-26", "start_time": "13:00"})
    assert half.status_code == 422

    other = token_for(app, clinic.t2.user)
    assert client.delete(f"/api/v1/therapists/me/time-off/{row['id']}",
                         headers=other).status_code == 404
    assert client.delete(f"/api/v1/therapists/me/time-off/{row['id']}",
                         headers=me).status_code == 204
    assert client.delete(f"/api/v1/therapists/me/time-off/{row['id']}",
                         headers=me).status_code == 404


def test_my_bookings(app, client, clinic, me):
    patient = make_user(app, name="Pat Client", phone="0117 000")
    patient_auth = token_for(app, patient)
    booked = client.post("/api/v1/bookings", headers=patient_auth, json={
        "service_id": clinic.service.id, "start": "2026-11-24T10:00:00Z",
        "therapist_id": clinic.t1.id}).get_json()
    client.post("/api/v1/bookings", headers=patient_auth, json={
        "service_id": clinic.service.id, "start": "2026-11-25T10:00:00Z",
        "therapist_id": clinic.t2.id})
    body = client.get("/api/v1/therapists/me/bookings?from=2026-11-23&to=2026-11-30",
                      headers=me).get_json()
    assert [b["id"] for b in body["bookings"]] == [booked["id"]]
    assert body["bookings"][0]["client_name"] == "Pat Client"
    assert body["bookings"][0]["client_phone"] == "0117 000"
    default = client.get("/api/v1/therapists/me/bookings", headers=me).get_json()
    assert [b["id"] for b in default["bookings"]] == [booked["id"]]
    empty = client.get("/api/v1/therapists/me/bookings?from=2026-11-25&to=2026-11-25",
                       headers=me).get_json()
    assert empty["bookings"] == []
    for query, code in [("from=2026-11-25&to=2026-11-24", "invalid_range"),
                        ("from=2026-11-01&to=2027-01-30", "range_too_long"),
                        ("from=yesterday", "validation_failed")]:
        response = client.get(f"/api/v1/therapists/me/bookings?{query}", headers=me)
        assert response.status_code == 422 and response.get_json()["error"]["code"] == code


def test_therapist_endpoints_are_for_therapists(app, client, clinic):
    client_auth = token_for(app, clinic.client)
    admin = token_for(app, clinic.admin)
    for headers in (client_auth, admin):
        assert client.get("/api/v1/therapists/me/hours", headers=headers).status_code == 404
        assert client.get("/api/v1/therapists/me/bookings", headers=headers).status_code == 404
    assert client.get("/api/v1/therapists/me/hours").status_code == 401
    assert client.post("/api/v1/therapists/me/time-off", json={}).status_code == 401
