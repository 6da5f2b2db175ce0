"""No 500 for any input: ids, dates, NUL bytes, deep JSON, prices, time zones, body size,
control characters, admin values. Each case gave a 500 (or stored nonsense) before."""

from __future__ import annotations

import logging
from datetime import timedelta
from decimal import Decimal

import pytest

from clinic_app import create_app
from clinic_app.config import ConfigError
from clinic_app.models import Service
from clinic_app.services.settings import get_settings
from clinic_app.validation import MAX_ID
from clinic_app.validation import has_control_characters
from clinic_app.validation import is_iana_zone
from clinic_app.validation import parse_id
from clinic_app.validation import price_to_cents
from tests.factories import now_of
from tests.factories.accounts import login
from tests.factories.accounts import token_for
from tests.factories.booking import make_clinic
from tests.factories.booking import raw_booking

TOO_BIG = str(2**31)  # one above the largest 32-bit id
HUGE = "9" * 5000  # int() refuses strings this long


@pytest.fixture
def clinic(app):
    return make_clinic(app)


def _error(response, status: int) -> dict:
    assert response.status_code == status, (response.status_code, response.data[:300])
    body = response.get_json()
    assert set(body["error"]) >= {"code", "message"}, body
    return body["error"]


# --- pure rules -------------------------------------------------------------------------------


def test_parse_id_accepts_only_ids_that_can_name_a_row():
    assert parse_id("42") == 42 and parse_id(str(MAX_ID)) == MAX_ID
    for bad in (None, "", "0", "-1", "4.2", "abc", TOO_BIG, HUGE, "٣", " 1"):
        assert parse_id(bad) is None, bad


def test_control_characters_are_found():
    assert not has_control_characters("Zoë O'Brien-Smith +44 20 7946 0000")
    for bad in ("a\nb", "a\rb", "a\tb", "a\x00b", "a\x1bb", "a\x7fb", "a\x85b", "a\u2028b"):
        assert has_control_characters(bad), repr(bad)


@pytest.mark.parametrize(("raw", "cents"), [("65", 6500), ("65.5", 6550), ("0.01", 1),
                                            ("0", 0), ("100000", 10_000_000)])
def test_price_to_cents_accepts_whole_pence(raw, cents):
    assert price_to_cents(Decimal(raw)) == (cents, None)


@pytest.mark.parametrize("raw", ["Infinity", "-Infinity", "NaN", "sNaN", "-1", "0.001",
                                 "0.005", "12.345", "21500000", "100000.01", "abc", None])
def test_price_to_cents_refuses_the_rest(raw):
    cents, problem = price_to_cents(raw)
    assert cents is None and problem


def test_time_zones_are_real_places_only():
    assert is_iana_zone("Europe/London") and is_iana_zone("UTC")
    assert is_iana_zone("America/New_York")
    for bad in ("Factory", "localtime", "posixrules", "right/Europe/London",
                "posix/Europe/London", "Mars/Olympus", "a" * 5000, "", "../../etc/passwd"):
        assert not is_iana_zone(bad), bad


# --- ids --------------------------------------------------------------------------------------


def test_ids_above_32_bits_are_404_on_every_api_route(app, client, clinic):
    admin = token_for(app, clinic.admin)
    for big in (TOO_BIG, HUGE, "0"):
        for method, path in [
            ("GET", f"/api/v1/bookings/{big}"),
            ("POST", f"/api/v1/bookings/{big}/cancel"),
            ("POST", f"/api/v1/bookings/{big}/no-show"),
            ("GET", f"/api/v1/bookings/{big}/session-record"),
            ("GET", f"/api/v1/bookings/{big}/follow-up"),
            ("POST", f"/api/v1/bookings/{big}/check-in"),
            ("DELETE", f"/api/v1/therapists/me/time-off/{big}"),
        ]:
            response = client.open(path, method=method, headers=admin, json={})
            assert _error(response, 404)["code"] == "not_found", path


def test_ids_above_32_bits_are_404_on_pages(app, client, clinic):
    login(client, clinic.admin)
    for path in (f"/admin/services/{TOO_BIG}", f"/admin/rooms/{TOO_BIG}",
                 f"/admin/therapists/{TOO_BIG}", f"/admin/bookings/{TOO_BIG}",
                 f"/book/{TOO_BIG}", f"/book/{HUGE}/times",
                 f"/book/{clinic.service.id}/times?therapist={TOO_BIG}",
                 f"/book/{clinic.service.id}/times?therapist={HUGE}",
                 f"/admin/book/confirm?client={TOO_BIG}&service=1"):
        assert client.get(path).status_code == 404, path
    for path in (f"/admin/closures/{TOO_BIG}/delete", f"/admin/outbox/{TOO_BIG}/retry"):
        assert client.post(path).status_code == 404, path
    # Still the ordinary behaviour for a real id and for "first available".
    assert client.get(f"/book/{clinic.service.id}/times?therapist=any").status_code == 200


def test_id_query_arguments_in_the_api_are_422(app, client, clinic):
    response = client.get(f"/api/v1/therapists?service_id={TOO_BIG}")
    assert _error(response, 422)["fields"]


def test_openapi_declares_id_bounds_and_email_format(client):
    doc = client.get("/api/v1/openapi.json").get_json()
    op = doc["paths"]["/api/v1/bookings/{booking_id}"]["get"]
    (param,) = [p for p in op["parameters"] if p["name"] == "booking_id"]
    assert param["schema"] == {"type": "integer", "minimum": 1, "maximum": MAX_ID}
    signup = doc["components"]["schemas"]["SignupIn"]["properties"]["email"]
    assert signup["format"] == "email"


# --- NUL bytes --------------------------------------------------------------------------------


def test_nul_in_json_is_400_everywhere(app, client, clinic):
    me = token_for(app, clinic.t1.user)
    cases = [
        ("/api/v1/auth/signup", {"name": "A\x00", "email": "a@example.com",
                                 "password": "long enough pw", "consent": True}, {}),
        ("/api/v1/auth/tokens", {"email": "x\x00@example.com", "password": "pw"}, {}),
        ("/api/v1/therapists/me/time-off", {"start_date": "2026-12-01", "reason": "a\x00"}, me),
        ("/api/v1/therapists/me/time-off", {"start_date": "2026-12-01", "x\x00": 1}, me),
        ("/api/v1/therapists/me/time-off", {"start_date": "2026-12-01",
                                            "deep": [[{"k": "\x00"}]]}, me),
    ]
    for path, body, headers in cases:
        error = _error(client.post(path, json=body, headers=headers), 400)
        assert error["code"] == "invalid_characters", (path, body)


def test_nul_in_query_path_and_form_is_400(app, client, clinic):
    assert _error(client.get("/api/v1/services?x=%00"), 400)["code"] == "invalid_characters"
    assert client.get("/check-in/abc%00def").status_code == 400
    assert client.get("/password/reset/abc%00").status_code == 400
    response = client.post("/signup", data={"name": "Nul\x00", "email": "n@example.com",
                                            "password": "long enough pw", "consent": "y"})
    assert response.status_code == 400 and b"NUL" in response.data
    login(client, clinic.admin)
    assert client.get("/admin/bookings?q=%00").status_code == 400


# --- JSON -------------------------------------------------------------------------------------


@pytest.mark.parametrize("depth", [33, 1000, 100_000])
def test_deep_json_is_400(app, client, clinic, depth):
    body = '{"email": ' + "[" * depth + "]" * depth + ', "password": "x"}'
    response = client.post("/api/v1/auth/tokens", data=body,
                           content_type="application/json")
    assert _error(response, 400)["code"] == "invalid_json"


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_json_constants_that_are_not_json_are_400(client, constant):
    body = '{"email": "a@example.com", "password": ' + constant + "}"
    response = client.post("/api/v1/auth/tokens", data=body, content_type="application/json")
    assert _error(response, 400)["code"] == "invalid_json"


# --- size limit -------------------------------------------------------------------------------


def test_requests_above_the_limit_get_413_json(app, client):
    big = "x" * (app.config["MAX_REQUEST_BYTES"] + 1)
    response = client.post("/api/v1/auth/tokens", data=big, content_type="application/json")
    error = _error(response, 413)
    assert error["code"] == "too_large" and "1,048,576" in error["message"]
    page = client.post("/login", data={"email": big, "password": "x"})
    assert page.status_code == 413
    small = client.post("/api/v1/auth/tokens", json={"email": "a@example.com", "password": "x"})
    assert small.status_code == 401


def test_request_limit_is_a_setting(monkeypatch, tmp_path):
    monkeypatch.setenv("CLINIC_INSTANCE_PATH", str(tmp_path))
    monkeypatch.setenv("CLINIC_MAX_REQUEST_BYTES", "2048")
    app = create_app()
    assert app.config["MAX_REQUEST_BYTES"] == 2048 == app.config["MAX_CONTENT_LENGTH"]
    monkeypatch.setenv("CLINIC_MAX_REQUEST_BYTES", "lots")
    with pytest.raises(ConfigError, match="^CLINIC_MAX_REQUEST_BYTES"):
        create_app()


# --- dates ------------------------------------------------------------------------------------


@pytest.mark.parametrize("day", ["0001-01-01", "9999-12-31", "2020-01-01", "2035-01-01"])
def test_page_date_arguments_out_of_range_are_422(app, client, clinic, day):
    login(client, clinic.t1.user)
    for path in (f"/therapist/?date={day}", f"/therapist/week?date={day}"):
        response = client.get(path)
        assert response.status_code == 422 and b"Choose a date from" in response.data, path
    login(client, clinic.admin)
    assert client.get(f"/admin/?week={day}").status_code == 422
    login(client, clinic.client)
    response = client.get(f"/book/{clinic.service.id}/times?therapist=any&first={day}")
    assert response.status_code == 422


def test_page_date_arguments_in_range_or_garbage_still_work(app, client, clinic):
    login(client, clinic.t1.user)
    for value in ("2026-12-02", "2028-06-01", "not-a-date", ""):
        assert client.get(f"/therapist/?date={value}").status_code == 200, value


@pytest.mark.parametrize(("start", "end"), [("0001-01-01", None), ("9999-12-31", None),
                                            ("2026-12-01", "9999-12-31"),
                                            ("2030-01-01", "2030-01-02")])
def test_time_off_dates_out_of_range_are_422(app, client, clinic, start, end):
    me = token_for(app, clinic.t1.user)
    body = {"start_date": start} | ({"end_date": end} if end else {})
    error = _error(client.post("/api/v1/therapists/me/time-off", json=body, headers=me), 422)
    assert error["code"] == "date_out_of_range" and "Choose a date" in str(error["fields"])


def test_time_off_form_dates_out_of_range_show_a_message(app, client, clinic):
    login(client, clinic.t1.user)
    response = client.post("/therapist/time-off", data={"start_date": "9999-12-31"})
    assert response.status_code == 422 and b"Choose a date from" in response.data


def test_weekly_hours_from_far_future_are_422(app, client, clinic):
    me = token_for(app, clinic.t1.user)
    response = client.put("/api/v1/therapists/me/hours", headers=me, json={
        "effective_from": "9999-12-31", "hours": [{"weekday": 0, "start": "09:00",
                                                   "end": "12:00"}]})
    assert "Choose a date" in _error(response, 422)["fields"]["effective_from"]


@pytest.mark.parametrize("query", ["from=0001-01-01", "to=9999-12-31",
                                   "from=9999-12-25&to=9999-12-31"])
def test_therapist_bookings_range_out_of_window_is_422(app, client, clinic, query):
    me = token_for(app, clinic.t1.user)
    response = client.get(f"/api/v1/therapists/me/bookings?{query}", headers=me)
    assert _error(response, 422)["code"] == "date_out_of_range"


def test_closure_dates_out_of_range_show_a_message(app, client, clinic):
    login(client, clinic.admin)
    for start, end in (("9999-12-30", "9999-12-31"), ("0001-01-01", "2026-12-01")):
        response = client.post("/admin/closures", data={"start_date": start, "end_date": end})
        assert response.status_code == 422 and b"Choose a date from" in response.data
    ok = client.post("/admin/closures", data={"start_date": "2026-12-24",
                                              "end_date": "2026-12-26"})
    assert ok.status_code == 302


@pytest.mark.parametrize("start", ["9999-12-31T23:00:00-05:00", "0001-01-01T00:30:00+01:00"])
def test_booking_at_the_ends_of_time_is_422(app, client, clinic, start):
    me = token_for(app, clinic.client)
    response = client.post("/api/v1/bookings", headers=me, json={
        "service_id": clinic.service.id, "start": start})
    assert response.status_code == 422, response.data[:300]


# --- control characters -----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["Eve\r\nBcc: all@example.com", "Tab\tName", "Esc\x1b[31m",
                                  "Line\u2028Sep"])
def test_names_with_control_characters_are_refused_by_api_and_pages(app, client, name):
    response = client.post("/api/v1/auth/signup", json={
        "name": name, "email": "cc@example.com", "password": "long enough pw", "consent": True})
    assert "name" in _error(response, 422)["fields"]
    page = client.post("/signup", data={"name": name, "email": "cc@example.com",
                                        "password": "long enough pw", "consent": "y"})
    assert page.status_code == 422 and b"control characters" in page.data


def test_reasons_with_control_characters_are_refused(app, client, clinic):
    me = token_for(app, clinic.t1.user)
    response = client.post("/api/v1/therapists/me/time-off", headers=me, json={
        "start_date": "2026-12-01", "reason": "Away\nand more"})
    assert "reason" in _error(response, 422)["fields"]
    booking = raw_booking(app, client=clinic.client, therapist=clinic.t1,
                          room=clinic.rooms[0], service=clinic.service,
                          start=now_of(app).replace(day=28, hour=10))
    mine = token_for(app, clinic.client)
    response = client.post(f"/api/v1/bookings/{booking.id}/cancel", headers=mine,
                           json={"reason": "bye\r\nSubject: hi"})
    assert "reason" in _error(response, 422)["fields"]


def test_admin_names_with_control_characters_show_a_message(app, client, clinic):
    login(client, clinic.admin)
    room = client.post("/admin/rooms", data={"name": "Room\nB", "active": "y"})
    assert room.status_code == 422 and b"control characters" in room.data
    settings = client.post("/admin/settings", data=_settings_form(name="Clinic\r\nX"))
    assert settings.status_code == 422 and b"control characters" in settings.data


# --- admin values -----------------------------------------------------------------------------


def _service_form(clinic, price: str) -> dict:
    return {"name": "Price test", "duration_minutes": "60", "buffer_before_minutes": "0",
            "buffer_after_minutes": "0", "price": price, "active": "y",
            "room_ids": str(clinic.rooms[0].id)}


@pytest.mark.parametrize("price", ["Infinity", "NaN", "21500000", "0.001", "12.345", "-1"])
def test_bad_prices_show_a_message(app, client, clinic, price, db):
    login(client, clinic.admin)
    response = client.post("/admin/services/new", data=_service_form(clinic, price))
    assert response.status_code == 422, response.data[:300]
    assert db.session.query(Service).filter_by(name="Price test").count() == 0


def test_good_prices_are_saved_in_pence(app, client, clinic, db):
    login(client, clinic.admin)
    response = client.post("/admin/services/new", data=_service_form(clinic, "49.99"))
    assert response.status_code == 302
    assert db.session.query(Service).filter_by(name="Price test").one().price_cents == 4999


def _settings_form(**changes: str) -> dict:
    values = {"name": "Trigger Point Clinic", "address": "", "phone": "",
              "timezone": "Europe/London", "min_notice_minutes": "60", "horizon_days": "90",
              "slot_step_minutes": "15", "cancel_cutoff_hours": "24",
              "max_upcoming_per_client": "6", "reminder_offsets_hours": "24",
              "retention_years": "8", "offer_minutes": "30"}
    return values | changes


@pytest.mark.parametrize("zone", ["Factory", "localtime", "posixrules", "right/Europe/London",
                                  "a" * 5000, "Europe/Nowhere"])
def test_settings_refuse_zones_that_are_not_places(app, client, clinic, zone, db):
    login(client, clinic.admin)
    response = client.post("/admin/settings", data=_settings_form(timezone=zone))
    assert response.status_code == 422
    assert get_settings(db.session).timezone == "Europe/London"


@pytest.mark.parametrize("reminders", [",", " , , ", "0", "abc", "9" * 5000])
def test_settings_refuse_an_empty_or_bad_reminder_list(app, client, clinic, reminders, db):
    login(client, clinic.admin)
    response = client.post("/admin/settings",
                           data=_settings_form(reminder_offsets_hours=reminders))
    assert response.status_code == 422
    assert get_settings(db.session).reminder_offsets_hours != ""


def test_settings_save_a_real_zone_and_reminders(app, client, clinic, db):
    login(client, clinic.admin)
    response = client.post("/admin/settings", data=_settings_form(
        timezone="America/New_York", reminder_offsets_hours="24, 48"))
    assert response.status_code == 302
    row = get_settings(db.session)
    assert (row.timezone, row.reminder_offsets_hours) == ("America/New_York", "48,24")


@pytest.mark.parametrize("zone", ["Factory", "localtime", "a" * 5000])
def test_configuration_refuses_zones_that_are_not_places(monkeypatch, tmp_path, zone):
    monkeypatch.setenv("CLINIC_INSTANCE_PATH", str(tmp_path))
    monkeypatch.setenv("CLINIC_TIMEZONE", zone)
    with pytest.raises(ConfigError) as info:
        create_app()
    assert str(info.value).startswith("CLINIC_TIMEZONE") and len(str(info.value)) < 200


def _production(monkeypatch, tmp_path, base_url: str):
    monkeypatch.setenv("CLINIC_INSTANCE_PATH", str(tmp_path))
    monkeypatch.setenv("CLINIC_ENV", "production")
    monkeypatch.setenv("CLINIC_DATABASE_URL", f"sqlite:///{tmp_path}/p.db")
    monkeypatch.setenv("CLINIC_SECRET_KEY", "a-production-secret-long-enough")
    monkeypatch.setenv("CLINIC_BASE_URL", base_url)
    return create_app()


def test_production_over_http_warns_at_start_up(monkeypatch, tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="clinic_app"):
        _production(monkeypatch, tmp_path, "http://clinic.example")
    assert any("http" in r.getMessage() and r.levelno == logging.WARNING
               for r in caplog.records)


def test_production_over_https_does_not_warn(monkeypatch, tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="clinic_app"):
        _production(monkeypatch, tmp_path, "https://clinic.example")
    assert not [r for r in caplog.records if "CLINIC_BASE_URL" in r.getMessage()]


@pytest.mark.parametrize("query", ["from=9999-12-30&to=9999-12-31",
                                   "from=0001-01-01&to=0001-01-02",
                                   "from=2030-01-01&to=2030-01-02"])
def test_availability_out_of_the_window_is_422(app, client, clinic, query):
    response = client.get(f"/api/v1/availability?service_id={clinic.service.id}&{query}")
    assert _error(response, 422)["code"] == "date_out_of_range"


def test_availability_inside_the_window_still_answers(app, client, clinic):
    response = client.get(f"/api/v1/availability?service_id={clinic.service.id}"
                          "&from=2026-11-30&to=2026-12-01")
    assert response.status_code == 200 and response.get_json()["slots"]


@pytest.mark.parametrize("query", [f"therapist={TOO_BIG}", f"therapist={HUGE}",
                                   "date_from=0001-01-01", "date_to=9999-12-31",
                                   "date_from=9999-12-31&date_to=9999-12-31"])
def test_admin_bookings_filter_refuses_ids_and_dates_out_of_range(app, client, clinic, query):
    login(client, clinic.admin)
    response = client.get(f"/admin/bookings?{query}")
    assert response.status_code == 422, response.data[:300]


def test_admin_bookings_filter_in_range_works(app, client, clinic):
    login(client, clinic.admin)
    response = client.get(f"/admin/bookings?therapist={clinic.t1.id}&date_from=2026-11-01"
                          "&date_to=2027-01-31")
    assert response.status_code == 200


def test_session_record_injury_date_out_of_range_is_a_form_message(app, client, clinic):
    booking = raw_booking(app, client=clinic.client, therapist=clinic.t1,
                          room=clinic.rooms[0], service=clinic.service,
                          start=now_of(app).replace(hour=9, minute=0) - timedelta(days=1))
    login(client, clinic.t1.user)
    response = client.post(f"/therapist/bookings/{booking.id}/complete", data={
        "intensity": "5", "goal": "acute", "injury_date": "0001-01-01"})
    assert response.status_code == 422 and b"Choose a date from" in response.data
