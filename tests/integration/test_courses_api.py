"""Planning and booking a course (issue 13 item 3): proposals inside their projected windows,
usual therapist first; booking all or nothing, also under a concurrent taker."""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func
from sqlalchemy import select

from clinic_app.models import Booking
from clinic_app.models import OutboxMessage
from tests.api_contract import assert_documented
from tests.factories import make_service
from tests.factories import make_user
from tests.factories.accounts import token_for
from tests.factories.booking import make_clinic
from tests.factories.booking import raw_booking
from tests.factories.care import recorded_session
from tests.factories.schedule import local
from tests.integration.test_concurrency import OVERLAPS_SQL
from tests.integration.test_concurrency import Api
from tests.live_server import live_server_factory  # noqa: F401  (fixture)

LONDON = ZoneInfo("Europe/London")


@pytest.fixture
def clinic(app):
    clinic = make_clinic(app)
    # Last session Friday 20 November (the clock then stands at Monday 23rd, 08:00 UTC): the
    # window is 22nd / 24th / 28th.
    recorded_session(app, clinic, local(2026, 11, 20, 10), soreness=2)
    return clinic


@pytest.fixture
def auth(app, clinic):
    return token_for(app, clinic.client)


def plan(client, headers, **body):
    return client.post("/api/v1/courses/plan", headers=headers, json=body)


def local_day(iso: str) -> date:
    return datetime.fromisoformat(iso).astimezone(LONDON).date()


def test_plan_three_sessions_each_inside_its_window(client, clinic, auth):
    body = assert_documented(plan(client, auth, sessions=3), "POST", "/courses/plan")
    sessions = body["sessions"]
    assert len(sessions) == 3
    assert (sessions[0]["earliest"], sessions[0]["ideal"], sessions[0]["latest"]) == (
        "2026-11-22", "2026-11-24", "2026-11-28")
    previous_day = None
    for s in sessions:
        day = local_day(s["start"])
        assert date.fromisoformat(s["earliest"]) <= day <= date.fromisoformat(s["latest"])
        assert day >= date.fromisoformat(s["ideal"])  # there is room on or after ideal (R5)
        assert s["therapist_id"] == clinic.t1.id  # the usual therapist first
        if previous_day is not None:
            # Each window is projected from the session before: at least 48 h later.
            assert date.fromisoformat(s["earliest"]) > previous_day
            assert (day - previous_day).days >= 2
        previous_day = day


def test_plan_with_another_therapist(client, clinic, auth):
    sessions = plan(client, auth, sessions=2, therapist_id=clinic.t2.id).get_json()["sessions"]
    assert [s["therapist_id"] for s in sessions] == [clinic.t2.id, clinic.t2.id]


def test_usual_therapist_full_gives_another(app, client, clinic, auth):
    # t1 is booked solid on the whole first window (22nd-28th): the proposal moves to t2.
    other = make_user(app)
    morning = make_service(app, therapists=[clinic.t1], rooms=[clinic.rooms[1]], minutes=180,
                           after=0)
    afternoon = make_service(app, therapists=[clinic.t1], rooms=[clinic.rooms[1]], minutes=240,
                             after=0)
    for day in range(23, 29):
        for service, hour in ((morning, 9), (afternoon, 13)):
            raw_booking(app, client=other, therapist=clinic.t1, room=clinic.rooms[1],
                        service=service, start=local(2026, 11, day, hour))
    first = plan(client, auth, sessions=1).get_json()["sessions"][0]
    assert first["therapist_id"] == clinic.t2.id


def test_plan_refusals(app, client, clinic, auth):
    for sessions in (0, 7, "three"):
        response = plan(client, auth, sessions=sessions)
        assert response.status_code == 422 and "sessions" in response.get_json()["error"]["fields"]
    # Session 1 of the initial series (6 sessions): at most 5 more.
    response = plan(client, auth, sessions=6)
    assert response.status_code == 422
    assert response.get_json()["error"]["code"] == "too_many_sessions"
    newcomer = token_for(app, make_user(app))
    response = plan(client, newcomer, sessions=2)
    assert response.status_code == 422
    assert response.get_json()["error"]["code"] == "no_recommendation"
    assert client.post("/api/v1/courses/plan", json={"sessions": 2}).status_code == 401


def test_plan_after_a_referral_is_refused(app, client, clinic, auth):
    recorded_session(app, clinic, local(2026, 11, 23, 13), soreness=2, red_flags=["fever"])
    response = plan(client, auth, sessions=2)
    assert response.status_code == 422
    assert response.get_json()["error"]["code"] == "see_clinician_first"


def test_staff_plan_for_a_client(app, client, clinic):
    admin = token_for(app, clinic.admin)
    response = plan(client, admin, sessions=2, client_id=clinic.client.id)
    assert response.status_code == 200 and len(response.get_json()["sessions"]) == 2
    stranger = token_for(app, clinic.t2.user)  # does not treat this client
    assert plan(client, stranger, sessions=2, client_id=clinic.client.id).status_code == 404


def book_body(clinic, sessions):
    return {"service_id": clinic.service.id,
            "sessions": [{"start": s["start"], "therapist_id": s["therapist_id"]}
                         for s in sessions]}


def client_bookings(db, client_id: int) -> int:
    db.session.rollback()
    return db.session.scalar(select(func.count(Booking.id)).where(
        Booking.client_id == client_id, Booking.status != "cancelled",
        Booking.start_at > datetime(2026, 11, 23, tzinfo=LONDON)))


def test_plan_then_book_all(client, clinic, auth, db):
    sessions = plan(client, auth, sessions=3).get_json()["sessions"]
    response = client.post("/api/v1/courses/book", headers=auth, json=book_body(clinic, sessions))
    body = assert_documented(response, "POST", "/courses/book")
    assert [b["start"] for b in body["bookings"]] == [s["start"] for s in sessions]
    assert all(b["client_id"] == clinic.client.id for b in body["bookings"])
    assert client_bookings(db, clinic.client.id) == 3


def test_a_slot_taken_meanwhile_books_nothing_and_names_it(app, client, clinic, auth, db):
    sessions = plan(client, auth, sessions=3).get_json()["sessions"]
    taken = datetime.fromisoformat(sessions[1]["start"])
    raw_booking(app, client=make_user(app), therapist=clinic.t1, room=clinic.rooms[0],
                service=clinic.service, start=taken)
    outbox_before = db.session.scalar(select(func.count(OutboxMessage.id)))
    response = client.post("/api/v1/courses/book", headers=auth, json=book_body(clinic, sessions))
    assert response.status_code == 409
    error = response.get_json()["error"]
    assert error["code"] == "slot_taken" and list(error["fields"]) == ["sessions.1"]
    assert client_bookings(db, clinic.client.id) == 0
    assert db.session.scalar(select(func.count(OutboxMessage.id))) == outbox_before


def test_book_refuses_bad_input(client, clinic, auth, db):
    sessions = plan(client, auth, sessions=2).get_json()["sessions"]
    same = book_body(clinic, [sessions[0], sessions[0]])
    assert client.post("/api/v1/courses/book", headers=auth, json=same).status_code == 422
    empty = {"service_id": clinic.service.id, "sessions": []}
    assert client.post("/api/v1/courses/book", headers=auth, json=empty).status_code == 422
    naive = {"service_id": clinic.service.id,
             "sessions": [{"start": "2026-11-24T10:00:00"}]}
    response = client.post("/api/v1/courses/book", headers=auth, json=naive)
    assert response.status_code == 422 and "sessions.0.start" in response.get_json()["error"][
        "fields"]
    # A refusal other than a taken slot (in the past) also books nothing and names the session.
    past = book_body(clinic, sessions)
    past["sessions"][1]["start"] = "2026-11-20T10:00:00+00:00"
    response = client.post("/api/v1/courses/book", headers=auth, json=past)
    assert response.status_code == 409 and "sessions.1" in response.get_json()["error"]["fields"]
    assert client_bookings(db, clinic.client.id) == 0


def test_course_booking_against_a_concurrent_taker(app, db, clinic, live_server_factory):  # noqa: F811
    taker = make_user(app)
    course_token = token_for(app, clinic.client)["Authorization"].split()[1]
    taker_token = token_for(app, taker)["Authorization"].split()[1]
    # Plain ids: touching ORM attributes after the server starts would open a transaction in
    # the test's session and hold SQLite's write lock.
    service_id, client_id = clinic.service.id, clinic.client.id
    server = live_server_factory(app)
    api = Api(server)
    status, planned = api.call("POST", "/courses/plan", course_token, {"sessions": 3})
    assert status == 200, planned
    sessions = planned["sessions"]
    contested = sessions[2]
    barrier = threading.Barrier(2)

    def book_course() -> tuple[int, object]:
        barrier.wait(timeout=30)
        return api.call("POST", "/courses/book", course_token, {
            "service_id": service_id,
            "sessions": [{"start": s["start"], "therapist_id": s["therapist_id"]}
                         for s in sessions]})

    def take_one() -> tuple[int, object]:
        barrier.wait(timeout=30)
        return api.call("POST", "/bookings", taker_token, {
            "service_id": service_id, "start": contested["start"],
            "therapist_id": contested["therapist_id"]})

    with ThreadPoolExecutor(max_workers=2) as pool:
        course_future, taker_future = pool.submit(book_course), pool.submit(take_one)
        (course_status, course_body), (taker_status, _) = (course_future.result(),
                                                           taker_future.result())
    # Exactly one of them has the contested slot; the course is whole or absent.
    assert Counter([course_status, taker_status]) == Counter([201, 409]), course_body
    mine = client_bookings(db, client_id)
    if course_status == 201:
        assert mine == 3
    else:
        assert mine == 0
        assert course_body["error"]["code"] == "slot_taken"
        assert list(course_body["error"]["fields"]) == ["sessions.2"]
    assert db.session.scalar(OVERLAPS_SQL) == 0
