"""Issue 12.8: POST /api/v1/holds, a held slot refused to others, sign-up with ``hold_id``."""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy import text

from clinic_app.models import Booking
from clinic_app.models import User
from clinic_app.services import holds
from clinic_app.services.settings import get_settings
from tests.conftest import path_of
from tests.factories import PASSWORD as CLIENT_PASSWORD
from tests.factories import now_of
from tests.factories.accounts import token_for
from tests.factories.booking import make_clinic
from tests.factories.schedule import local
from tests.integration.test_concurrency import OVERLAPS_SQL
from tests.integration.test_concurrency import Api
from tests.integration.test_concurrency import clients_with_tokens
from tests.live_server import live_server_factory  # noqa: F401  (fixture)

TUE_10 = local(2026, 11, 24, 10)  # clock: Mon 2026-11-23 08:00 UTC
PASSWORD = "a-good-long-password"


def place(client, clinic, start=TUE_10, **extra):
    body = {"service_id": clinic.service.id, "start": start.isoformat(), **extra}
    return client.post("/api/v1/holds", json=body)


def signup(client, email="casey@example.com", **extra):
    return client.post("/api/v1/auth/signup", json={"name": "Casey", "email": email,
                                                    "password": PASSWORD, **extra})


def test_hold_answers_its_slot_and_blocks_bookings_by_others(app, client, db):
    clinic = make_clinic(app, therapists=1, rooms=1)
    response = place(client, clinic, therapist_id=clinic.t1.id)
    assert response.status_code == 201, response.json
    body = response.json
    assert set(body) == {"hold_id", "expires_at", "therapist_id", "start", "end"}
    assert body["therapist_id"] == clinic.t1.id
    assert body["start"] == "2026-11-24T10:00:00+00:00"
    assert body["end"] == "2026-11-24T11:00:00+00:00"
    assert body["expires_at"] == "2026-11-23T08:10:00+00:00"  # the 10-minute default
    taken = client.post("/api/v1/bookings", headers=token_for(app, clinic.client),
                        json={"service_id": clinic.service.id, "start": TUE_10.isoformat(),
                              "therapist_id": clinic.t1.id})
    assert taken.status_code == 409 and taken.json["error"]["code"] == "slot_taken"
    again = place(client, clinic)
    assert again.status_code == 409 and again.json["error"]["code"] == "slot_taken"
    # Nobody's appointment list shows it.
    mine = client.get("/api/v1/bookings", headers=token_for(app, clinic.client))
    assert mine.status_code == 200 and mine.json["bookings"] == []


def test_hold_length_is_the_clinic_setting(app, client, db):
    clinic = make_clinic(app, therapists=1, rooms=1)
    get_settings(db.session).hold_minutes = 3
    db.session.commit()
    assert place(client, clinic).json["expires_at"] == "2026-11-23T08:03:00+00:00"


def test_an_expired_hold_lets_the_next_person_book(app, client, db, clock):
    clinic = make_clinic(app, therapists=1, rooms=1)
    assert place(client, clinic).status_code == 201
    headers = token_for(app, clinic.client)
    request = {"service_id": clinic.service.id, "start": TUE_10.isoformat()}
    clock.advance(timedelta(minutes=9, seconds=59))
    assert client.post("/api/v1/bookings", headers=headers, json=request).status_code == 409
    clock.advance(timedelta(seconds=1))  # expires_at reached
    booked = client.post("/api/v1/bookings", headers=headers, json=request)
    assert booked.status_code == 201 and booked.json["start"] == "2026-11-24T10:00:00+00:00"
    assert db.session.scalar(text("SELECT count(*) FROM bookings WHERE status = 'held'")) == 0


def test_bad_hold_requests_get_the_error_shape(app, client, db):
    clinic = make_clinic(app, therapists=1, rooms=1)
    naive = client.post("/api/v1/holds", json={"service_id": clinic.service.id,
                                               "start": "2026-11-24T10:00:00"})
    assert naive.status_code == 422 and "start" in naive.json["error"]["fields"]
    unknown = client.post("/api/v1/holds", json={"service_id": 999_999,
                                                 "start": TUE_10.isoformat()})
    assert unknown.status_code == 404
    off_grid = place(client, clinic, start=local(2026, 11, 24, 10, 5))
    assert off_grid.status_code == 422 and off_grid.json["error"]["code"] == "not_on_step"
    missing = client.post("/api/v1/holds", json={})
    assert missing.status_code == 422 and {"service_id", "start"} <= set(
        missing.json["error"]["fields"])


def test_holds_are_throttled_per_address(app, client, db):
    clinic = make_clinic(app, therapists=1, rooms=1)
    app.config["HOLD_LIMIT_PER_IP"] = "2 per 15 minutes"
    codes = [place(client, clinic, start=local(2026, 11, 24, h)).status_code
             for h in (9, 13, 15)]
    assert codes == [201, 201, 429]


def test_signup_with_a_hold_then_verifying_books_the_slot(app, client, db, mailbox):
    clinic = make_clinic(app, therapists=1, rooms=1)
    hold_id = place(client, clinic).json["hold_id"]
    response = signup(client, hold_id=hold_id)
    assert response.status_code == 201
    user = db.session.scalar(select(User).where(User.email == "casey@example.com"))
    assert holds.get_hold(db.session, hold_id).client_id == user.id
    # Someone else cannot claim a hold already attached to Casey.
    stolen = signup(client, email="mallory@example.com", hold_id=hold_id)
    assert stolen.status_code == 404 and stolen.json["error"]["code"] == "hold_not_found"
    link = path_of(mailbox.last_link("casey@example.com", "/verify/"))
    verified = client.get(link)
    assert verified.status_code == 302
    assert f"/appointments/{hold_id}/done" in verified.headers["Location"]
    booking = db.session.get(Booking, hold_id)
    assert booking is not None and booking.status == "booked"
    assert booking.client_id == user.id and booking.start_at == TUE_10
    # Logged in by the link, and the confirmation (with the calendar file) goes out.
    assert client.get(f"/appointments/{hold_id}/done").status_code == 200
    confirmation = [m for m in mailbox.deliver() if "casey" in str(m["To"])
                    and "Confirm your email" not in str(m["Subject"])]
    assert confirmation, "no booking confirmation"
    assert any(part.get_content_type() == "text/calendar" for part in confirmation[-1].walk())


def test_verifying_after_the_hold_expired_books_nothing_and_says_so(app, client, db, mailbox,
                                                                     clock):
    clinic = make_clinic(app, therapists=1, rooms=1)
    hold_id = place(client, clinic).json["hold_id"]
    assert signup(client, hold_id=hold_id).status_code == 201
    link = path_of(mailbox.last_link("casey@example.com", "/verify/"))
    clock.advance(timedelta(minutes=11))
    verified = client.get(link)
    assert verified.status_code == 302
    picker = verified.headers["Location"]
    assert f"/book/{clinic.service.id}/times" in picker and "day=2026-11-24" in picker
    page = client.get(path_of(picker))  # the nearest free times, that day
    assert page.status_code == 200 and b"has expired" in page.data
    assert db.session.scalar(select(func.count(Booking.id))) == 0
    assert holds.get_hold(db.session, hold_id) is None  # released
    user = db.session.scalar(select(User).where(User.email == "casey@example.com"))
    assert user.email_verified_at is not None


def test_signup_with_an_expired_or_unknown_hold_creates_no_account(app, client, db, clock):
    clinic = make_clinic(app, therapists=1, rooms=1)
    hold_id = place(client, clinic).json["hold_id"]
    unknown = signup(client, hold_id=hold_id + 1000)
    assert unknown.status_code == 404 and unknown.json["error"]["code"] == "hold_not_found"
    clock.advance(timedelta(minutes=10))
    expired = signup(client, hold_id=hold_id)
    assert expired.status_code == 409 and expired.json["error"]["code"] == "hold_expired"
    assert db.session.scalar(select(User).where(User.email == "casey@example.com")) is None
    too_big = signup(client, hold_id=2**31)
    assert too_big.status_code == 422


def test_twenty_concurrent_bookings_of_a_held_slot_book_nothing(app, db, live_server_factory):  # noqa: F811
    clinic = make_clinic(app, therapists=1, rooms=1)
    hold = holds.place_hold(db.session, service_id=clinic.service.id, start=TUE_10,
                            purpose="signup", minutes=10, now=now_of(app))
    db.session.commit()
    hold_id, service_id, therapist_id = hold.id, clinic.service.id, clinic.t1.id
    tokens = clients_with_tokens(app, db, 20, "racer")
    api = Api(live_server_factory(app))
    barrier = threading.Barrier(len(tokens))

    def attempt(token: str) -> tuple[int, Any]:
        barrier.wait(timeout=30)  # all 20 requests leave together
        return api.call("POST", "/bookings", token, {
            "service_id": service_id, "start": TUE_10.isoformat(), "therapist_id": therapist_id})

    with ThreadPoolExecutor(max_workers=len(tokens)) as pool:
        results = list(pool.map(attempt, tokens))
    assert Counter(status for status, _ in results) == {409: 20}, results
    assert all(body["error"]["code"] == "slot_taken" for _, body in results)
    db.session.rollback()
    assert db.session.scalar(select(func.count(Booking.id))) == 0
    assert holds.get_hold(db.session, hold_id) is not None
    assert db.session.scalar(OVERLAPS_SQL) == 0


# --- the pages: book and sign up in one flow (issue 12.2) ----------------------------------


def confirm_path(clinic, start=TUE_10):
    return (f"/book/{clinic.service.id}/confirm?start={start.isoformat().replace('+', '%2B')}"
            f"&therapist={clinic.t1.id}&chosen=any")


def test_a_visitor_signs_up_at_the_confirm_step_and_the_link_books_it(app, client, db,
                                                                       mailbox):
    clinic = make_clinic(app, therapists=1, rooms=1)
    page = client.get(confirm_path(clinic))
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'name="password"' in html and 'name="consent"' in html and 'name="phone"' in html
    assert "I have an account — log in" in html and "/login?next=" in html
    held = client.post(confirm_path(clinic), data={
        "name": "Casey", "email": "casey@example.com", "password": PASSWORD, "consent": "y",
        "phone": "0117 496 0001"})
    assert held.status_code == 200
    assert "until <strong>08:10</strong>" in held.get_data(as_text=True)
    # Held: nobody else gets that time meanwhile.
    other = client.post("/api/v1/bookings", headers=token_for(app, clinic.client),
                        json={"service_id": clinic.service.id, "start": TUE_10.isoformat()})
    assert other.status_code == 409
    link = path_of(mailbox.last_link("casey@example.com", "/verify/"))
    done = client.get(link, follow_redirects=True)
    assert done.status_code == 200 and b"appointment is booked" in done.data
    booking = db.session.scalar(select(Booking))
    assert booking.start_at == TUE_10 and booking.client.email == "casey@example.com"


def test_a_refused_sign_up_at_the_confirm_step_holds_nothing(app, client, db):
    clinic = make_clinic(app, therapists=1, rooms=1)
    refused = client.post(confirm_path(clinic), data={
        "name": "Casey", "email": "casey@example.com", "password": "short", "consent": "y"})
    assert refused.status_code == 422
    assert db.session.scalar(text("SELECT count(*) FROM bookings")) == 0
    assert db.session.scalar(select(User).where(User.email == "casey@example.com")) is None
    # A time someone else holds: the visitor is told, and no account is created.
    assert place(client, clinic).status_code == 201
    taken = client.post(confirm_path(clinic), data={
        "name": "Casey", "email": "casey@example.com", "password": PASSWORD, "consent": "y"})
    assert taken.status_code == 409 and b"just been taken" in taken.data
    assert db.session.scalar(select(User).where(User.email == "casey@example.com")) is None


def test_logging_in_from_the_confirm_step_keeps_the_choice(app, client, db):
    clinic = make_clinic(app, therapists=1, rooms=1)
    html = client.get(confirm_path(clinic)).get_data(as_text=True)
    login_link = html.split('href="/login?next=', 1)[1].split('"', 1)[0]
    logged_in = client.post("/login?next=" + login_link,
                            data={"email": clinic.client.email, "password": "wrong-password"})
    assert logged_in.status_code == 401  # a wrong password first: still on the log-in page
    logged_in = client.post("/login?next=" + login_link,
                            data={"email": clinic.client.email, "password": CLIENT_PASSWORD})
    assert logged_in.status_code == 302
    back = logged_in.headers["Location"]
    assert back.startswith(f"/book/{clinic.service.id}/confirm?start=")
    page = client.get(back)
    assert page.status_code == 200 and b"Book this appointment" in page.data
    # Only local paths are followed.
    client.post("/logout")
    for target in ("https://evil.example/", "//evil.example/", "/\\evil.example/"):
        response = client.post("/login", query_string={"next": target},
                               data={"email": clinic.client.email, "password": CLIENT_PASSWORD})
        assert response.status_code == 302 and "evil" not in response.headers["Location"]
        client.post("/logout")


def test_visitor_holds_at_the_confirm_step_are_throttled_per_address(app, client, db):
    clinic = make_clinic(app, therapists=1, rooms=1)
    app.config["HOLD_LIMIT_PER_IP"] = "1 per 15 minutes"
    form = {"name": "Casey", "email": "casey@example.com", "password": PASSWORD, "consent": "y"}
    assert client.post(confirm_path(clinic), data=form).status_code == 200
    again = client.post(confirm_path(clinic, local(2026, 11, 24, 14)),
                        data=form | {"email": "other@example.com"})
    assert again.status_code == 429
