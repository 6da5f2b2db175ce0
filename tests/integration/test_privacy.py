"""Client data export and account closure (pages and API), and the purge of health records
after the clinic's retention period (the worker's housekeeping)."""

from __future__ import annotations

import json
from datetime import UTC
from datetime import datetime
from datetime import timedelta

import pytest
from flask import current_app
from sqlalchemy import func
from sqlalchemy import select

from clinic_app.errors import Forbidden
from clinic_app.errors import ValidationFailed
from clinic_app.models import AuditEntry
from clinic_app.models import Booking
from clinic_app.models import CheckIn
from clinic_app.models import Course
from clinic_app.models import Intake
from clinic_app.models import OutboxMessage
from clinic_app.models import Recommendation
from clinic_app.models import SessionAmendment
from clinic_app.models import SessionRecord
from clinic_app.models import User
from clinic_app.services import privacy
from clinic_app.worker import housekeeping_job
from tests.factories import PASSWORD
from tests.factories.accounts import login
from tests.factories.accounts import token_for
from tests.factories.notify import run_job
from tests.factories.pages import make_booking
from tests.factories.pages import make_clinic

PAST = datetime(2026, 11, 16, 10, 0, tzinfo=UTC)  # a week before the frozen clock
FUTURE = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


def _health(db, clinic, client, *, notes, start=PAST, therapist=None, room=None):
    """A completed past booking with intake, course, record, amendment, check-in and
    recommendation for ``client``; returns the booking."""
    therapist = therapist or clinic.therapist
    b = make_booking(current_app, client=client, service=clinic.service, therapist=therapist,
                     room=room or clinic.room, start=start, status="completed")
    at = start + timedelta(hours=1)
    if db.session.scalar(select(Intake).where(Intake.client_id == client.id)) is None:
        db.session.add(Intake(client_id=client.id, answers={"pain_area": f"{notes} shoulder"},
                              flags=["light_pressure"], updated_at=at))
    course = Course(client_id=client.id, started_at=at, started_by_id=therapist.user_id,
                    goal="chronic")
    db.session.add(course)
    db.session.flush()
    record = SessionRecord(booking_id=b.id, course_id=course.id, session_number=1,
                           regions=["upper back"], muscles=["trapezius"], techniques=["ischemic"],
                           intensity=6, notes=notes, goal="chronic", author_id=therapist.user_id,
                           created_at=at, updated_at=at)
    db.session.add(record)
    db.session.flush()
    db.session.add(SessionAmendment(session_record_id=record.id, author_id=therapist.user_id,
                                    created_at=at + timedelta(days=2),
                                    text=f"amended {notes}"))
    db.session.add(CheckIn(booking_id=b.id, kind="24h", soreness=4, red_flags=[],
                           submitted_at=at + timedelta(hours=24)))
    db.session.add(Recommendation(client_id=client.id, booking_id=b.id, created_at=at,
                                  earliest=(start + timedelta(days=5)).date(),
                                  ideal=(start + timedelta(days=7)).date(),
                                  latest=(start + timedelta(days=10)).date(), action="book",
                                  reasons=[{"rule": "R1", "code": "x", "text": "why"}]))
    db.session.commit()
    return b


def _count(db, model, **where):
    stmt = select(func.count()).select_from(model)
    for name, value in where.items():
        stmt = stmt.where(getattr(model, name) == value)
    return db.session.scalar(stmt)


# --- export -----------------------------------------------------------------------------------


def test_export_page_and_api_hold_own_data_and_nothing_of_others(app, client, db):
    clinic = make_clinic(app)
    _health(db, clinic, clinic.client, notes="casey-notes")
    make_booking(app, client=clinic.client, service=clinic.service, therapist=clinic.therapist,
                 room=clinic.room, start=FUTURE)
    _health(db, clinic, clinic.other_client, notes="olive-secret",
            start=PAST + timedelta(hours=3))
    login(client, clinic.client)
    response = client.get("/account/export")
    assert response.status_code == 200
    assert response.headers["Content-Disposition"] == 'attachment; filename="my-data.json"'
    assert response.mimetype == "application/json"
    assert "no-store" in response.headers["Cache-Control"]
    data = json.loads(response.get_data(as_text=True))
    assert data["profile"]["email"] == clinic.client.email
    assert data["profile"]["name"] == "Casey Client"
    assert [b["status"] for b in data["bookings"]] == ["completed", "booked"]
    assert data["bookings"][1]["start"] == "2026-11-25T10:00:00+00:00"
    assert data["bookings"][1]["start_local"] == "2026-11-25T10:00:00+00:00"  # GMT in November
    assert data["bookings"][0]["therapist"] == "Maya Therapist"
    assert data["intake"]["answers"] == {"pain_area": "casey-notes shoulder"}
    [record] = data["session_records"]
    assert record["notes"] == "casey-notes" and record["intensity"] == 6
    assert record["amendments"][0]["text"] == "amended casey-notes"
    assert record["amendments"][0]["author"] == "Maya Therapist"
    assert data["check_ins"][0]["soreness"] == 4
    assert data["recommendations"][0]["ideal"] == "2026-11-23"
    assert len(data["courses"]) == 1
    text = response.get_data(as_text=True)
    assert "olive" not in text.lower() and clinic.other_client.email not in text

    api = client.get("/api/v1/clients/me/export", headers=token_for(app, clinic.client))
    assert api.status_code == 200
    assert api.json["session_records"][0]["notes"] == "casey-notes"
    assert "olive" not in json.dumps(api.json).lower()
    # The other client sees only their own.
    other = client.get("/api/v1/clients/me/export", headers=token_for(app, clinic.other_client))
    assert [r["notes"] for r in other.json["session_records"]] == ["olive-secret"]
    assert "casey" not in json.dumps(other.json).lower()


def test_export_requires_login_and_a_client_account(app, client, db):
    clinic = make_clinic(app)
    response = client.get("/account/export")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    assert client.get("/api/v1/clients/me/export").status_code == 401
    bad = client.get("/api/v1/clients/me/export", headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 401
    staff = client.get("/api/v1/clients/me/export", headers=token_for(app, clinic.therapist.user))
    assert staff.status_code == 403 and staff.json["error"]["code"] == "not_a_client"
    login(client, clinic.admin)
    assert client.get("/account/export").status_code == 403
    with pytest.raises(Forbidden):
        privacy.export_client_data(db.session, clinic.therapist.user, datetime.now(UTC))


# --- closing ----------------------------------------------------------------------------------


def test_close_with_wrong_password_is_422_and_changes_nothing(app, client, db):
    clinic = make_clinic(app)
    future = make_booking(app, client=clinic.client, service=clinic.service,
                          therapist=clinic.therapist, room=clinic.room, start=FUTURE)
    login(client, clinic.client)
    page = client.get("/account/").get_data(as_text=True)
    assert "Close my account" in page and "cannot be undone" in page
    assert "8 years" in page and "/account/export" in page
    response = client.post("/account/close", data={"close-password": "wrong-password!"})
    assert response.status_code == 422
    assert 'id="close-password-error">Your password is wrong.' in response.get_data(as_text=True)
    response = client.post("/account/close", data={})
    assert response.status_code == 422
    headers = token_for(app, clinic.client)
    api = client.post("/api/v1/clients/me/close", headers=headers, json={"password": "nope"})
    assert api.status_code == 422 and "password" in api.json["error"]["fields"]
    for body in ({}, {"password": ""}, {"password": 5}, {"password": "x", "extra": 1}):
        assert client.post("/api/v1/clients/me/close", headers=headers,
                           json=body).status_code == 422, body
    assert client.post("/api/v1/clients/me/close", headers=headers, data="nope",
                       content_type="application/json").status_code == 400
    db.session.expire_all()
    user = db.session.get(User, clinic.client.id)
    assert user.name == "Casey Client" and user.is_active and user.anonymised_at is None
    assert db.session.get(Booking, future.id).status == "booked"
    assert client.get("/account/").status_code == 200  # still logged in
    with pytest.raises(ValidationFailed) as exc:
        privacy.close_account(db.session, user, "wrong", datetime.now(UTC))
    assert exc.value.fields == {"password": "Your password is wrong."}


def test_close_account_page_anonymises_cancels_and_revokes_everything(app, client, db,
                                                                     mailbox):
    clinic = make_clinic(app)
    email = clinic.client.email
    past = _health(db, clinic, clinic.client, notes="kept")
    future = make_booking(app, client=clinic.client, service=clinic.service,
                          therapist=clinic.therapist, room=clinic.room, start=FUTURE)
    theirs = make_booking(app, client=clinic.other_client, service=clinic.service,
                          therapist=clinic.other_therapist, room=clinic.room,
                          start=FUTURE + timedelta(hours=2))
    prompt = OutboxMessage(key="prompt-1", kind="rebooking_prompt", to_addr=email, subject="s",
                           body_text="b", essential=False, user_id=clinic.client.id,
                           status="pending", due_at=FUTURE, next_attempt_at=FUTURE,
                           created_at=PAST)
    checkin = OutboxMessage(key="checkin-1", kind="checkin_24h", to_addr=email, subject="s",
                            body_text="b", essential=True, user_id=clinic.client.id,
                            status="pending", due_at=FUTURE, next_attempt_at=FUTURE,
                            created_at=PAST)
    db.session.add_all([prompt, checkin])
    db.session.commit()
    headers = token_for(app, clinic.client)
    other_device = app.test_client()
    login(other_device, clinic.client)
    login(client, clinic.client)

    response = client.post("/account/close", data={"close-password": PASSWORD})
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Your account is closed" in page and "1 upcoming appointment was cancelled" in page

    db.session.expire_all()
    user = db.session.get(User, clinic.client.id)
    assert user.name == "Closed account" and user.email == f"closed-{user.id}@invalid"
    assert user.phone is None and user.password_hash is None and not user.is_active
    assert user.anonymised_at == app.extensions["clock"].now()
    assert db.session.get(Booking, future.id).status == "cancelled"
    assert db.session.get(Booking, past.id).status == "completed"
    assert db.session.get(Booking, theirs.id).status == "booked"
    assert db.session.get(OutboxMessage, prompt.id).status == "retired"
    # Essential mail for the old sessions goes too: nobody is there to read it.
    assert db.session.get(OutboxMessage, checkin.id).status == "retired"
    # Health records are kept for the retention period.
    assert _count(db, SessionRecord) == 1 and _count(db, Intake) == 1
    # The cancellation went to the address the client had, not the anonymised one.
    mails = mailbox.deliver()
    assert any(email in str(m["To"]) and "ancel" in str(m["Subject"]) for m in mails)
    assert not any("rebook" in str(m["Subject"]).lower() for m in mails)

    # Logged out here and on the other device; the API token no longer works; no log-in.
    assert client.get("/account/").status_code == 302
    assert other_device.get("/account/").status_code == 302
    assert client.get("/api/v1/clients/me/export", headers=headers).status_code == 401
    for address in (email, user.email):
        response = client.post("/login", data={"email": address, "password": PASSWORD})
        assert response.status_code == 401
    token = client.post("/api/v1/auth/tokens", json={"email": email, "password": PASSWORD})
    assert token.status_code == 401


def test_close_account_through_the_api(app, client, db):
    clinic = make_clinic(app)
    make_booking(app, client=clinic.client, service=clinic.service, therapist=clinic.therapist,
                 room=clinic.room, start=FUTURE)
    headers = token_for(app, clinic.client)
    response = client.post("/api/v1/clients/me/close", headers=headers,
                           json={"password": PASSWORD})
    assert response.status_code == 200
    assert response.json == {"closed": True, "cancelled_bookings": 1}
    assert client.get("/api/v1/clients/me/export", headers=headers).status_code == 401
    db.session.expire_all()
    assert db.session.get(User, clinic.client.id).anonymised_at is not None
    assert _count(db, Booking, status="cancelled") == 1
    spec = client.get("/api/v1/openapi.json").json
    assert "/api/v1/clients/me/close" in spec["paths"] or "/clients/me/close" in spec["paths"]


def test_staff_cannot_close_their_account_here(app, client, db):
    clinic = make_clinic(app)
    for user in (clinic.therapist.user, clinic.admin):
        response = client.post("/api/v1/clients/me/close", headers=token_for(app, user),
                               json={"password": PASSWORD})
        assert response.status_code == 403
        assert response.json["error"]["code"] == "not_a_client"
        assert "admin" in response.json["error"]["message"]
    login(client, clinic.therapist.user)
    page = client.get("/account/").get_data(as_text=True)
    assert "Close my account" not in page and "deactivated by a clinic admin" in page
    assert client.post("/account/close", data={"close-password": PASSWORD}).status_code == 403
    db.session.expire_all()
    for user in (clinic.therapist.user, clinic.admin):
        row = db.session.get(User, user.id)
        assert row.is_active and row.anonymised_at is None and row.password_hash


# --- purge ------------------------------------------------------------------------------------


def test_purge_removes_only_expired_anonymised_clients_health_records(app, client, db, clock):
    clinic = make_clinic(app)
    old = clinic.client
    recent = clinic.other_client
    from tests.factories import make_user

    active = make_user(app, name="Still Here")
    _health(db, clinic, old, notes="old")
    _health(db, clinic, recent, notes="recent", start=PAST + timedelta(hours=2))
    _health(db, clinic, active, notes="active", start=PAST + timedelta(hours=4))
    db.session.add(AuditEntry(at=PAST, actor_id=clinic.therapist.user_id, action="read:intake",
                              client_id=old.id, subject_type="intake", subject_id=1))
    db.session.commit()
    now = clock.now()
    privacy.close_account(db.session, old, PASSWORD, now - timedelta(days=8 * 366 + 2))
    privacy.close_account(db.session, recent, PASSWORD, now - timedelta(days=365))
    db.session.commit()

    assert privacy.purge_expired_health_records(db.session, now - timedelta(days=8 * 366)) == 0
    db.session.rollback()
    result = run_job(housekeeping_job, app)
    # Amendment, check-in, recommendation, record, course and intake of ``old`` only.
    assert result["health_records"] == 6
    db.session.expire_all()
    assert _count(db, Intake, client_id=old.id) == 0
    assert _count(db, Course, client_id=old.id) == 0
    assert _count(db, Recommendation, client_id=old.id) == 0
    for who in (recent, active):
        assert _count(db, Intake, client_id=who.id) == 1
        assert _count(db, Recommendation, client_id=who.id) == 1
        assert _count(db, Course, client_id=who.id) == 1
    assert _count(db, SessionRecord) == 2 and _count(db, SessionAmendment) == 2
    assert _count(db, CheckIn) == 2
    # Bookings and the audit trail stay.
    assert _count(db, Booking, client_id=old.id) == 1
    assert _count(db, AuditEntry, client_id=old.id) == 1
    assert run_job(housekeeping_job, app)["health_records"] == 0
