"""One validation per care input: the API and the pages go through the same pydantic
models in services/care/inputs.py; date inputs are bounded; every care API response is
its documented response model."""

from __future__ import annotations

from datetime import UTC
from datetime import date
from datetime import datetime
from datetime import timedelta

import pytest

from clinic_app.api.core import ENDPOINTS
from clinic_app.errors import ValidationFailed
from clinic_app.services import care
from clinic_app.services.care import inputs
from tests.api_contract import assert_documented
from tests.factories.accounts import login
from tests.factories.accounts import token_for
from tests.factories.booking import make_clinic
from tests.factories.booking import raw_booking
from tests.factories.care import recorded_session

MON = datetime(2026, 11, 23, 10, tzinfo=UTC)


@pytest.fixture
def clinic(app):
    return make_clinic(app)


def test_the_api_bodies_are_the_service_input_models():
    bodies = {(s.method, s.rule): s.body for s in ENDPOINTS if s.tag == "care" and s.body}
    assert bodies == {
        ("POST", "/bookings/<int:booking_id>/complete"): inputs.SessionRecordIn,
        ("PATCH", "/bookings/<int:booking_id>/session-record"): inputs.SessionRecordPatch,
        ("POST", "/bookings/<int:booking_id>/session-record/amendments"): inputs.AmendmentIn,
        ("POST", "/bookings/<int:booking_id>/check-in"): inputs.CheckInIn,
        ("POST", "/bookings/<int:booking_id>/report"): inputs.ProblemReportIn,
        ("POST", "/bookings/<int:booking_id>/follow-up/override"): inputs.OverrideIn,
        ("PUT", "/clients/me/intake"): inputs.IntakeIn,
    }
    # The hand-written validators are gone from the service layer.
    assert not [name for name in dir(inputs) if name.startswith(("as_", "_as_", "clean_"))]


@pytest.mark.parametrize(("data", "field"), [
    ({"goal": "chronic"}, "intensity"),
    ({"intensity": True, "goal": "chronic"}, "intensity"),
    ({"intensity": "11", "goal": "chronic"}, "intensity"),
    ({"intensity": 3, "goal": "chronic", "regions": "neck"}, "regions"),
    ({"intensity": 3, "goal": "chronic", "regions": ["n" * 81]}, "regions"),
    ({"intensity": 3, "goal": "chronic", "regions": [f"r{i}" for i in range(31)]}, "regions"),
    ({"intensity": 3, "goal": "chronic", "notes": "x" * 5001}, "notes"),
    ({"intensity": 3, "goal": "chronic", "injury_date": "0001-01-01"}, "injury_date"),
    ({"intensity": 3, "goal": "chronic", "injury_date": "yesterday"}, "injury_date"),
    ({"intensity": 3, "goal": "chronic", "shoe_size": 9}, "shoe_size"),
])
def test_session_record_rules(data, field):
    with pytest.raises(ValidationFailed) as caught:
        inputs.parse(inputs.SessionRecordIn, data, message="bad")
    assert field in caught.value.fields, caught.value.fields


def test_session_record_cleaning_and_context_rules():
    data = inputs.parse(inputs.SessionRecordIn, {
        "intensity": "4", "regions": ["  upper   back ", "neck", "upper back", ""],
        "notes": "  kept  ", "injury_date": "2026-11-20", "progress": ""}, message="bad")
    assert data.regions == ["upper back", "neck"] and data.notes == "kept"
    assert data.intensity == 4 and data.progress is None
    chronic = data.finish(default_goal="chronic", session_day=date(2026, 11, 23))
    assert chronic["goal"] == "chronic" and chronic["injury_date"] is None  # acute only
    with pytest.raises(ValidationFailed) as caught:
        data.finish(default_goal=None, session_day=date(2026, 11, 23))
    assert "goal" in caught.value.fields
    acute = inputs.parse(inputs.SessionRecordIn, {"intensity": 4, "goal": "acute",
                                                   "injury_date": "2026-11-24"}, message="bad")
    with pytest.raises(ValidationFailed) as caught:
        acute.finish(default_goal=None, session_day=date(2026, 11, 23))
    assert caught.value.fields == {"injury_date": "The injury date cannot be after the session."}


def test_check_in_and_intake_rules():
    with pytest.raises(ValidationFailed) as caught:
        inputs.CheckInIn.parse({"kind": "24h"})
    assert caught.value.fields == {"soreness": "Enter a number from 0 to 10."}
    with pytest.raises(ValidationFailed) as caught:
        inputs.CheckInIn.parse({"kind": "72h", "soreness": 2})
    assert list(caught.value.fields) == ["still_sore"]
    with pytest.raises(ValidationFailed) as caught:
        inputs.CheckInIn.parse({"soreness": 2, "red_flags": ["itchy"]})
    assert list(caught.value.fields) == ["red_flags"]
    ordered = inputs.CheckInIn.parse({"soreness": 2,
                                      "red_flags": ["fever", "calf_pain_swelling", "fever"]})
    assert ordered.red_flags == ["calf_pain_swelling", "fever"]  # the checklist's order
    answers = inputs.parse(inputs.IntakeIn, {"blood_clot": "yes", "fever": "no",
                                              "details": None}, message="bad")
    assert answers.blood_clot is True and answers.fever is False and answers.details == ""
    assert answers.pregnant is False  # unanswered counts as no
    for bad in ({"blood_clot": "maybe"}, {"favourite_colour": "blue"},
                {"details": "x" * 2001}):
        with pytest.raises(ValidationFailed):
            inputs.parse(inputs.IntakeIn, bad, message="bad")


def _completed(app, clinic):
    booking, _ = recorded_session(app, clinic, MON)
    return booking


@pytest.mark.parametrize(("window", "field"), [
    ({"earliest": "2026-11-26", "ideal": "2026-11-28", "latest": "9999-12-31"}, "latest"),
    ({"earliest": "2026-11-26", "ideal": "2029-01-01", "latest": "2029-01-02"}, "ideal"),
    ({"earliest": "2026-11-22", "ideal": "2026-11-28", "latest": "2026-12-02"}, "earliest"),
    ({"earliest": "0001-01-01", "ideal": "2026-11-28", "latest": "2026-12-02"}, "earliest"),
    ({"earliest": "2026-11-26", "ideal": "2026-11-25", "latest": "2026-12-02"}, "ideal"),
])
def test_override_dates_are_bounded_in_the_api(app, db, client, clock, clinic, window, field):
    booking = _completed(app, clinic)
    t1 = token_for(app, clinic.t1.user)
    response = client.post(f"/api/v1/bookings/{booking.id}/follow-up/override", headers=t1,
                           json={**window, "reason": "travel"})
    assert response.status_code == 422, response.json
    assert field in response.json["error"]["fields"], response.json
    assert care.current_recommendation(db.session, clinic.client).source == "rules"


def test_override_dates_are_bounded_on_the_page(app, db, client, clock, clinic):
    booking = _completed(app, clinic)
    login(client, clinic.t1.user)
    page = client.post(f"/therapist/bookings/{booking.id}/followup", data={
        "earliest": "2026-11-26", "ideal": "2026-11-28", "latest": "9999-12-31",
        "reason": "travel"})
    assert page.status_code == 422
    text = page.get_data(as_text=True)
    assert 'id="latest-error"' in text and "Choose a date between" in text
    ok = client.post(f"/therapist/bookings/{booking.id}/followup", data={
        "earliest": "2026-11-26", "ideal": "2026-11-28", "latest": "2027-02-01",
        "reason": "travel"})
    assert ok.status_code == 302
    assert care.current_recommendation(db.session, clinic.client).latest == date(2027, 2, 1)


def test_the_page_and_the_api_refuse_the_same_record(app, db, client, clock, clinic):
    booking = raw_booking(app, client=clinic.client, therapist=clinic.t1, room=clinic.rooms[0],
                          service=clinic.service, start=MON)
    clock.set(MON + timedelta(hours=2))
    bad = {"intensity": 4, "goal": "acute", "injury_date": "2026-11-30"}  # after the session
    t1 = token_for(app, clinic.t1.user)
    api = client.post(f"/api/v1/bookings/{booking.id}/complete", headers=t1, json=bad)
    login(client, clinic.t1.user)
    page = client.post(f"/therapist/bookings/{booking.id}/complete",
                       data={**bad, "intensity": "4"})
    message = "The injury date cannot be after the session."
    assert api.status_code == 422 and api.json["error"]["fields"]["injury_date"] == message
    assert page.status_code == 422 and message in page.get_data(as_text=True)


def test_every_care_response_is_its_documented_model(app, db, client, clock, clinic):
    booking = raw_booking(app, client=clinic.client, therapist=clinic.t1, room=clinic.rooms[0],
                          service=clinic.service, start=MON)
    clock.set(MON + timedelta(hours=2))
    t1, me = token_for(app, clinic.t1.user), token_for(app, clinic.client)
    b = f"/api/v1/bookings/{booking.id}"
    rule = "/bookings/<int:booking_id>"
    assert_documented(client.post(f"{b}/complete", headers=t1, json={
        "intensity": 5, "goal": "chronic", "regions": ["neck"]}), "POST", f"{rule}/complete")
    assert_documented(client.get(f"{b}/session-record", headers=t1), "GET",
                      f"{rule}/session-record")
    assert_documented(client.patch(f"{b}/session-record", headers=t1, json={"notes": "n"}),
                      "PATCH", f"{rule}/session-record")
    assert_documented(client.post(f"{b}/session-record/amendments", headers=t1,
                                  json={"text": "later"}),
                      "POST", f"{rule}/session-record/amendments")
    clock.advance(timedelta(days=1))
    assert_documented(client.post(f"{b}/check-in", headers=me, json={
        "soreness": 3, "red_flags": ["fever"]}), "POST", f"{rule}/check-in")
    assert_documented(client.get(f"{b}/follow-up", headers=me), "GET", f"{rule}/follow-up")
    assert_documented(client.post(f"{b}/follow-up/override", headers=t1, json={
        "earliest": "2026-11-27", "ideal": "2026-11-30", "latest": "2026-12-04",
        "reason": "x"}), "POST", f"{rule}/follow-up/override")
    assert_documented(client.get("/api/v1/clients/me/recommendation", headers=me), "GET",
                      "/clients/me/recommendation")
    assert_documented(client.put("/api/v1/clients/me/intake", headers=me,
                                 json={"fever": True}), "PUT", "/clients/me/intake")
    assert_documented(client.get("/api/v1/clients/me/intake", headers=me), "GET",
                      "/clients/me/intake")


def test_the_contract_helper_catches_an_undocumented_field(app, client, clinic):
    me = token_for(app, clinic.client)
    response = client.get("/api/v1/clients/me/intake", headers=me)
    response.set_data(response.get_data().replace(b'"flags"', b'"secret":1,"flags"'))
    with pytest.raises(AssertionError):
        assert_documented(response, "GET", "/clients/me/intake")
