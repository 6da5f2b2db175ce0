"""API: services, therapists and availability (with the DST days of Europe/London)."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime

import pytest

from tests.factories import make_service
from tests.factories import make_therapist
from tests.factories.accounts import token_for
from tests.factories.booking import make_clinic
from tests.factories.schedule import EVERY_DAY


def test_services_and_therapists(app, client):
    clinic = make_clinic(app)
    make_service(app, therapists=clinic.therapists, rooms=clinic.rooms, active=False,
                 name="Retired")
    outsider = make_therapist(app, name="Zed Outsider")
    body = client.get("/api/v1/services").get_json()
    assert [s["id"] for s in body["services"]] == [clinic.service.id]
    service = body["services"][0]
    assert service["duration_minutes"] == 60 and service["price"] == "65.00"
    assert service["therapist_ids"] == sorted(t.id for t in clinic.therapists)

    everyone = client.get("/api/v1/therapists").get_json()["therapists"]
    assert {t["id"] for t in everyone} == {clinic.t1.id, clinic.t2.id, outsider.id}
    offering = client.get(f"/api/v1/therapists?service_id={clinic.service.id}").get_json()
    assert {t["id"] for t in offering["therapists"]} == {clinic.t1.id, clinic.t2.id}
    assert offering["therapists"][0]["service_ids"] == [clinic.service.id]
    bad = client.get("/api/v1/therapists?service_id=abc")
    assert bad.status_code == 422 and "service_id" in bad.get_json()["error"]["fields"]


def test_availability_shape_and_errors(app, client):
    clinic = make_clinic(app)
    url = f"/api/v1/availability?service_id={clinic.service.id}&from=2026-11-24&to=2026-11-24"
    body = client.get(url).get_json()
    assert body["timezone"] == "Europe/London"
    first = body["slots"][0]
    assert first == {"start": "2026-11-24T09:00:00+00:00", "end": "2026-11-24T10:00:00+00:00",
                     "therapist_id": clinic.t1.id}
    one = client.get(url + f"&therapist_id={clinic.t2.id}").get_json()["slots"]
    assert {s["therapist_id"] for s in one} == {clinic.t2.id}
    # Works with a token too (the page and the apps send one).
    headers = token_for(app, clinic.client)
    assert client.get(url, headers=headers).status_code == 200

    sid = clinic.service.id
    for query, status, code in [
        ("", 422, "validation_failed"),
        (f"service_id={sid}&from=2026-11-24", 422, "validation_failed"),
        (f"service_id={sid}&from=2026-13-01&to=2026-11-24", 422, "validation_failed"),
        ("service_id=x&from=2026-11-24&to=2026-11-24", 422, "validation_failed"),
        (f"service_id={sid}&from=2026-11-25&to=2026-11-24", 422, "invalid_range"),
        (f"service_id={sid}&from=2026-11-24&to=2027-01-30", 422, "range_too_long"),
        ("service_id=999&from=2026-11-24&to=2026-11-24", 404, "not_found"),
        (f"service_id={sid}&from=2026-11-24&to=2026-11-24&therapist_id=999", 422,
         "not_offered"),
    ]:
        response = client.get(f"/api/v1/availability?{query}")
        assert response.status_code == status, query
        assert response.get_json()["error"]["code"] == code, query


@pytest.mark.parametrize(("now", "day", "before", "on_day", "after"), [
    # Spring forward: 29 March 2026 01:00 GMT -> 02:00 BST.
    (datetime(2026, 3, 20, 8, tzinfo=UTC), "2026-03-29", "2026-03-28T09:00:00+00:00",
     "2026-03-29T09:00:00+01:00", "2026-03-30T09:00:00+01:00"),
    # Fall back: 25 October 2026 02:00 BST -> 01:00 GMT.
    (datetime(2026, 10, 16, 8, tzinfo=UTC), "2026-10-25", "2026-10-24T09:00:00+01:00",
     "2026-10-25T09:00:00+00:00", "2026-10-26T09:00:00+00:00"),
])
def test_dst_days_through_the_api(app, client, clock, now, day, before, on_day, after):
    clock.set(now)
    clinic = make_clinic(app, therapists=1, hours=EVERY_DAY)
    sid = clinic.service.id
    previous = day[:-2] + f"{int(day[-2:]) - 1:02d}"
    following = day[:-2] + f"{int(day[-2:]) + 1:02d}"
    slots = client.get(f"/api/v1/availability?service_id={sid}&from={previous}&to={following}"
                       ).get_json()["slots"]
    firsts = {}
    for slot in slots:
        firsts.setdefault(slot["start"][:10], slot["start"])
    assert list(firsts.values()) == [before, on_day, after]
    # Every slot of the day is on local wall-clock hours 09-12 and 13-17.
    on = [s for s in slots if s["start"].startswith(day)]
    assert on[-1]["start"] == on_day.replace("T09:", "T16:")
    assert all("09:00" <= s["start"][11:16] <= "16:00" for s in on)

    headers = token_for(app, clinic.client)
    response = client.post("/api/v1/bookings", headers=headers,
                           json={"service_id": sid, "start": on_day})
    assert response.status_code == 201, response.get_json()
    booking = response.get_json()
    assert booking["start"] == on_day
    assert booking["end"] == on_day.replace("T09:", "T10:")
    # The same instant written in UTC is the same (now taken) slot.
    utc = datetime.fromisoformat(on_day).astimezone(UTC).isoformat()
    again = client.post("/api/v1/bookings", headers=headers, json={"service_id": sid,
                                                                   "start": utc})
    assert again.status_code == 409 and again.get_json()["error"]["code"] == "slot_taken"
    # 08:00 local exists on both days but is outside hours.
    early = on_day.replace("T09:", "T08:")
    refused = client.post("/api/v1/bookings", headers=headers,
                          json={"service_id": sid, "start": early})
    assert refused.get_json()["error"]["code"] == "outside_hours"


def test_openapi_documents_the_scheduling_contract(client):
    document = client.get("/api/v1/openapi.json").get_json()
    paths = document["paths"]
    for path, method in [("/api/v1/services", "get"), ("/api/v1/therapists", "get"),
                         ("/api/v1/availability", "get"), ("/api/v1/bookings", "post"),
                         ("/api/v1/bookings", "get"), ("/api/v1/bookings/{booking_id}", "get"),
                         ("/api/v1/bookings/{booking_id}/cancel", "post"),
                         ("/api/v1/bookings/{booking_id}/reschedule", "post"),
                         ("/api/v1/therapists/me/hours", "put"),
                         ("/api/v1/therapists/me/time-off", "post"),
                         ("/api/v1/therapists/me/time-off/{override_id}", "delete"),
                         ("/api/v1/therapists/me/bookings", "get")]:
        assert method in paths[path], (path, method)
    assert "409" in paths["/api/v1/bookings"]["post"]["responses"]
    names = [p["name"] for p in paths["/api/v1/availability"]["get"]["parameters"]]
    assert names == ["service_id", "from", "to", "therapist_id"]


def _availability_as_jsonify_writes_it(app, sid, first, last, therapist_id=None):
    """What the endpoint answered before its JSON was built by hand: jsonify of the dict."""
    from clinic_app.db import read_only
    from clinic_app.extensions import db
    from clinic_app.services.availability import search_slots

    with app.app_context():
        with read_only():
            tz, slots = search_slots(db.session, service_id=sid, date_from=first,
                                     date_to=last, therapist_id=therapist_id,
                                     now=app.extensions["clock"].now())
        db.session.remove()
        body = {"timezone": tz.key, "service_id": sid,
                "slots": [{"start": s.start.astimezone(tz).isoformat(),
                           "end": s.end.astimezone(tz).isoformat(),
                           "therapist_id": s.therapist_id} for s in slots]}
        return app.json.response(body).get_data()


def test_availability_json_is_byte_for_byte_what_jsonify_wrote(app, client, clock):
    """The hand-built JSON equals jsonify's output: slots of several therapists sharing
    times, both DST changes of Europe/London and a booking in the way."""
    from datetime import date

    from tests.factories.booking import make_booking

    clock.set(datetime(2026, 3, 20, 8, tzinfo=UTC))
    clinic = make_clinic(app, therapists=3, hours=EVERY_DAY)
    make_booking(app, clinic, datetime(2026, 3, 29, 10, tzinfo=UTC))
    sid = clinic.service.id
    cases = [(date(2026, 3, 27), date(2026, 3, 31), None),
             (date(2026, 3, 28), date(2026, 3, 29), clinic.t2.id)]
    for first, last, therapist_id in cases:
        url = f"/api/v1/availability?service_id={sid}&from={first}&to={last}"
        if therapist_id:
            url += f"&therapist_id={therapist_id}"
        response = client.get(url)
        assert response.status_code == 200
        assert response.mimetype == "application/json"
        expected = _availability_as_jsonify_writes_it(app, sid, first, last, therapist_id)
        assert response.get_data() == expected
        assert len(response.get_json()["slots"]) > 10
        # Asked again: answered from the per-process text cache, still the same bytes.
        assert client.get(url).get_data() == expected
    clock.set(datetime(2026, 10, 16, 8, tzinfo=UTC))
    first, last = date(2026, 10, 24), date(2026, 10, 26)
    url = f"/api/v1/availability?service_id={sid}&from={first}&to={last}"
    body = client.get(url).get_data()
    assert body == _availability_as_jsonify_writes_it(app, sid, first, last)
    assert b'"2026-10-25T09:00:00+00:00"' in body and b'"2026-10-24T09:00:00+01:00"' in body


def test_availability_json_in_debug_is_jsonify_indented(app, client):
    """In debug, jsonify indents: the endpoint then answers through jsonify itself."""
    from datetime import date

    clinic = make_clinic(app)
    sid = clinic.service.id
    url = f"/api/v1/availability?service_id={sid}&from=2026-11-24&to=2026-11-25"
    app.debug = True
    try:
        body = client.get(url).get_data()
        expected = _availability_as_jsonify_writes_it(app, sid, date(2026, 11, 24),
                                                      date(2026, 11, 25))
    finally:
        app.debug = False
    assert body == expected and b'\n  "service_id"' in body
    # Errors keep the error JSON in either mode.
    bad = client.get(f"/api/v1/availability?service_id={sid}&from=2026-11-25&to=2026-11-24")
    assert bad.status_code == 422 and bad.get_json()["error"]["code"] == "invalid_range"


def test_availability_json_caches_are_per_duration_and_renewed_when_full(app, client,
                                                                          monkeypatch):
    """Two services of different lengths share start times but not their JSON heads (the
    end differs); a full text cache is replaced, and the answers stay jsonify's bytes."""
    from datetime import date

    from clinic_app.api import catalog

    clinic = make_clinic(app, minutes=60)
    short = make_service(app, therapists=clinic.therapists, rooms=clinic.rooms, minutes=30)
    first, last = date(2026, 11, 24), date(2026, 11, 25)

    def get(sid):
        body = client.get(f"/api/v1/availability?service_id={sid}&from={first}&to={last}")
        assert body.get_data() == _availability_as_jsonify_writes_it(app, sid, first, last)
        return body.get_json()["slots"]

    long_slots, short_slots = get(clinic.service.id), get(short.id)
    nine = "2026-11-24T09:00:00+00:00"
    assert {s["end"] for s in long_slots if s["start"] == nine} == {"2026-11-24T10:00:00+00:00"}
    assert {s["end"] for s in short_slots if s["start"] == nine} == {"2026-11-24T09:30:00+00:00"}
    monkeypatch.setattr(catalog, "_ISO_CACHE_MAX", 5)  # both caches are now over the limit
    old_iso = dict(catalog._ISO_CACHE)
    assert get(clinic.service.id) == long_slots
    assert all(catalog._ISO_CACHE[tz] is not cache for tz, cache in old_iso.items())
    assert get(short.id) == short_slots
