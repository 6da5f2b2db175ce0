"""Session records (validation, edit window, amendments, courses), intake screening with
"confirm first" bookings, and the therapist's review queue."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime
from datetime import timedelta

import pytest
from sqlalchemy import select

from clinic_app.errors import Conflict
from clinic_app.errors import NotFound
from clinic_app.errors import ValidationFailed
from clinic_app.models import Booking
from clinic_app.models import SessionAmendment
from clinic_app.services import booking as booking_service
from clinic_app.services import care
from tests.factories.accounts import token_for
from tests.factories.booking import make_clinic
from tests.factories.booking import raw_booking
from tests.factories.care import recorded_session

MON = datetime(2026, 11, 23, 13, 0, tzinfo=UTC)


@pytest.fixture
def clinic(app):
    return make_clinic(app)


def test_bad_records_are_422_with_fields_never_500(app, db, client, clock, clinic):
    booking = raw_booking(app, client=clinic.client, therapist=clinic.t1, room=clinic.rooms[0],
                          service=clinic.service, start=MON)
    clock.set(MON + timedelta(hours=2))
    t1 = token_for(app, clinic.t1.user)
    url = f"/api/v1/bookings/{booking.id}/complete"
    for body, field in [
        ({"goal": "chronic"}, "intensity"),
        ({"intensity": 11, "goal": "chronic"}, "intensity"),
        ({"intensity": "a lot", "goal": "chronic"}, "intensity"),
        ({"intensity": 5, "goal": "sometimes"}, "goal"),
        ({"intensity": 5}, "goal"),  # no course yet: the goal is needed
        ({"intensity": 5, "goal": "acute", "injury_date": "2026-12-01"}, "injury_date"),
        ({"intensity": 5, "goal": "chronic", "progress": "great"}, "progress"),
        ({"intensity": 5, "goal": "chronic", "regions": "back"}, "regions"),
        ({"intensity": 5, "goal": "chronic", "muscles": ["x" * 81]}, "muscles"),
        ({"intensity": 5, "goal": "chronic", "colour": "blue"}, "colour"),
    ]:
        response = client.post(url, headers=t1, json=body)
        assert response.status_code == 422, (body, response.json)
        assert field in response.json["error"]["fields"], (body, response.json)
    assert client.post(url, headers=t1, data="nope",
                       content_type="application/json").status_code == 400
    assert client.post(url, headers=t1, json=[1]).status_code == 400
    db.session.expire_all()
    assert db.session.get(Booking, booking.id).status == "booked"
    # Cancelled and no-show bookings cannot be completed.
    for status in ("cancelled", "no_show", "pending"):
        other = raw_booking(app, client=clinic.client, therapist=clinic.t1,
                            room=clinic.rooms[0], service=clinic.service,
                            start=MON - timedelta(days=7 * (1 + ["cancelled", "no_show",
                                                                 "pending"].index(status))),
                            status=status)
        response = client.post(f"/api/v1/bookings/{other.id}/complete", headers=t1,
                               json={"intensity": 5, "goal": "chronic"})
        assert response.status_code == 409, response.json
        assert response.json["error"]["code"] == "not_completable"


def test_only_the_bookings_therapist_completes(app, db, client, clock, clinic):
    booking = raw_booking(app, client=clinic.client, therapist=clinic.t1, room=clinic.rooms[0],
                          service=clinic.service, start=MON)
    clock.set(MON + timedelta(hours=2))
    body = {"intensity": 5, "goal": "chronic"}
    url = f"/api/v1/bookings/{booking.id}/complete"
    assert client.post(url, headers=token_for(app, clinic.t2.user), json=body).status_code == 404
    assert client.post(url, headers=token_for(app, clinic.client), json=body).status_code == 404
    assert client.post(url, headers=token_for(app, clinic.admin), json=body).status_code == 201


def test_edit_window_then_amendments(app, db, client, clock, clinic):
    booking, record = recorded_session(app, clinic, MON, intensity=6)
    t1 = token_for(app, clinic.t1.user)
    url = f"/api/v1/bookings/{booking.id}/session-record"
    clock.set(record.created_at + timedelta(hours=23))
    edited = client.patch(url, headers=t1, json={"intensity": 4, "notes": "Left side tight."})
    assert edited.status_code == 200, edited.json
    assert edited.json["intensity"] == 4 and edited.json["regions"] == ["upper back"]
    # Only its author edits it.
    admin = token_for(app, clinic.admin)
    assert client.patch(url, headers=admin, json={"intensity": 3}).status_code == 404
    invalid = client.patch(url, headers=t1, json={"intensity": 12})
    assert invalid.status_code == 422
    clock.set(record.created_at + timedelta(hours=24, minutes=1))
    late = client.patch(url, headers=t1, json={"intensity": 3})
    assert late.status_code == 409 and late.json["error"]["code"] == "edit_window_closed"
    amended = client.post(url + "/amendments", headers=t1,
                          json={"text": "Client mentioned a fall last month."})
    assert amended.status_code == 201, amended.json
    assert amended.json["intensity"] == 4  # the record itself is unchanged
    [amendment] = amended.json["amendments"]
    assert amendment["author_id"] == clinic.t1.user.id
    assert amendment["created_at"].startswith(clock.now().date().isoformat())
    assert client.post(url + "/amendments", headers=t1, json={"text": ""}).status_code == 422
    t2 = token_for(app, clinic.t2.user)
    assert client.post(url + "/amendments", headers=t2, json={"text": "x"}).status_code == 404
    assert db.session.scalar(select(SessionAmendment.id)) is not None
    with pytest.raises(Conflict):
        care.edit_session_record(db.session, record, actor=clinic.t1.user, now=clock.now(),
                                 changes={"notes": "late"})


def test_courses_number_sessions(app, db, clock, clinic):
    _, first = recorded_session(app, clinic, MON)
    _, second = recorded_session(app, clinic, MON + timedelta(days=4))
    assert (first.session_number, second.session_number) == (1, 2)
    assert first.course_id == second.course_id
    with pytest.raises(ValidationFailed):
        care.start_new_course(db.session, clinic.client, clinic.t1.user, clock.now(), "other")
    with pytest.raises(NotFound):
        care.start_new_course(db.session, clinic.client, clinic.client, clock.now(), "chronic")
    outsider = make_clinic(app, therapists=1, rooms=1).t1
    with pytest.raises(NotFound):
        care.start_new_course(db.session, clinic.client, outsider.user, clock.now(), "chronic")
    course = care.start_new_course(db.session, clinic.client, clinic.t1.user, clock.now(),
                                   "maintenance")
    db.session.commit()
    _, third = recorded_session(app, clinic, MON + timedelta(days=8))
    assert third.course_id == course.id and third.session_number == 1
    assert third.goal == "chronic"  # the record's own goal is kept as written


def test_intake_confirm_first_makes_bookings_pending(app, db, client, clock, clinic):
    me = token_for(app, clinic.client)
    questions = {q["code"] for q in care.INTAKE_QUESTIONS}
    assert {"blood_clot", "anticoagulants", "pregnant"} <= questions
    empty = client.get("/api/v1/clients/me/intake", headers=me)
    assert empty.status_code == 200 and empty.json["flags"] == []
    bad = client.put("/api/v1/clients/me/intake", headers=me, json={"blood_clot": "maybe"})
    assert bad.status_code == 422
    unknown = client.put("/api/v1/clients/me/intake", headers=me, json={"horoscope": True})
    assert unknown.status_code == 422
    saved = client.put("/api/v1/clients/me/intake", headers=me, json={
        "blood_clot": True, "anticoagulants": True, "acute_injury": True, "pregnant": True,
        "details": "Left calf was swollen in 2024."})
    assert saved.status_code == 200, saved.json
    assert saved.json["flags"] == ["confirm_first", "light_pressure", "avoid_area",
                                   "pregnancy"]
    assert saved.json["needs_confirmation"] is True
    # Booking now starts pending; the therapist sees it in the review queue.
    response = client.post("/api/v1/bookings", headers=me, json={
        "service_id": clinic.service.id, "therapist_id": clinic.t1.id,
        "start": "2026-11-25T10:00:00+00:00"})
    assert response.status_code == 201, response.json
    assert response.json["status"] == "pending"
    second = booking_service.book(db.session, client=clinic.client, service_id=clinic.service.id,
                                  start=datetime(2026, 11, 26, 10, tzinfo=UTC),
                                  therapist_id=clinic.t1.id, now=clock.now())
    db.session.commit()
    queue = care.review_queue(db.session, clinic.t1, clock.now())
    assert [i.kind for i in queue] == ["confirm_first", "confirm_first"]
    assert care.review_queue(db.session, clinic.t2, clock.now()) == []
    # Declining one cancels it (the normal cancel path); confirming the intake books the rest.
    with pytest.raises(NotFound):
        booking_service.decline_pending(db.session, second, actor=clinic.t2.user,
                                        now=clock.now())
    with pytest.raises(NotFound):
        booking_service.decline_pending(db.session, second, actor=clinic.client,
                                        now=clock.now())
    booking_service.decline_pending(db.session, second, actor=clinic.t1.user, now=clock.now())
    assert second.status == "cancelled" and not second.late_cancel
    assert second.cancel_reason == "Declined by the therapist after the health intake"
    assert second.sequence == 1 and second.cancelled_at == clock.now()
    with pytest.raises(Conflict):
        booking_service.decline_pending(db.session, second, actor=clinic.t1.user,
                                        now=clock.now())
    with pytest.raises(NotFound):
        booking_service.confirm_pending(db.session, clinic.client, actor=clinic.client,
                                        now=clock.now())
    confirmed = booking_service.confirm_pending(db.session, clinic.client,
                                                actor=clinic.t1.user, now=clock.now())
    db.session.commit()
    assert [b.id for b in confirmed] == [response.json["id"]]
    assert db.session.get(Booking, response.json["id"]).status == "booked"
    assert client.get("/api/v1/clients/me/intake", headers=me).json["needs_confirmation"] is False
    # Saving the same answers again keeps the confirmation; new bookings are booked.
    client.put("/api/v1/clients/me/intake", headers=me, json={"blood_clot": True})
    assert care.initial_status_for(db.session, clinic.client) == "booked"
    # Answering "no" then "yes" again asks for a new confirmation.
    client.put("/api/v1/clients/me/intake", headers=me, json={"blood_clot": False})
    client.put("/api/v1/clients/me/intake", headers=me, json={"blood_clot": True})
    assert care.initial_status_for(db.session, clinic.client) == "pending"
    db.session.rollback()
    no_flag = make_clinic(app, therapists=1, rooms=1).client
    with pytest.raises(Conflict):
        booking_service.confirm_pending(db.session, no_flag, actor=clinic.admin,
                                        now=clock.now())


def test_review_queue(app, db, clock, clinic):
    other_client = make_clinic(app, therapists=1, rooms=1).client
    recorded_session(app, clinic, MON, soreness=9)  # R0 review
    recorded_session(app, clinic, MON + timedelta(days=1), client=other_client,
                     soreness=3, red_flags=["fever"])
    queue = care.review_queue(db.session, clinic.t1.user, clock.now())
    kinds = [i.kind for i in queue]
    assert kinds == ["red_flag", "refer", "therapist_review"]
    assert queue[0].labels == ["Fever"] and queue[0].client.id == other_client.id
    assert care.review_queue(db.session, clinic.t2, clock.now()) == []
    with pytest.raises(NotFound):
        care.review_queue(db.session, clinic.client, clock.now())
    # Red flags drop off after two weeks; the current recommendation stays until acted on.
    clock.advance(timedelta(days=15))
    assert [i.kind for i in care.review_queue(db.session, clinic.t1, clock.now())] == [
        "refer", "therapist_review"]
