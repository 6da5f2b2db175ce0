"""Client pages: waitlist (join, change, leave) and planning a course (issue 13 items 1, 3)."""

from __future__ import annotations

import pytest
from sqlalchemy import func
from sqlalchemy import select

from clinic_app.models import Booking
from clinic_app.models import WaitlistEntry
from tests.factories import make_user
from tests.factories.accounts import login
from tests.factories.booking import make_clinic
from tests.factories.care import recorded_session
from tests.factories.schedule import local


@pytest.fixture
def clinic(app):
    return make_clinic(app)


def test_join_change_and_leave_on_the_page(client, clinic, db):
    login(client, clinic.client)
    page = client.get("/waitlist")
    assert page.status_code == 200 and b"You are not on any waitlist" in page.data
    response = client.post("/waitlist", data={
        "service_id": clinic.service.id, "therapist_id": "any", "date_from": "2026-11-24",
        "date_to": "2026-11-30", "parts_of_day": ["morning"]})
    assert response.status_code == 302
    [entry] = db.session.scalars(select(WaitlistEntry)).all()
    assert entry.therapist_id is None and entry.parts_of_day == ["morning"]
    assert b"any therapist" in client.get("/waitlist").data

    edit = client.get(f"/waitlist/{entry.id}/edit")
    assert edit.status_code == 200
    changed = client.post(f"/waitlist/{entry.id}/edit", data={
        "service_id": clinic.service.id, "therapist_id": str(clinic.t2.id),
        "date_from": "2026-11-25", "date_to": "2026-11-27"})
    assert changed.status_code == 302
    db.session.refresh(entry)
    assert entry.therapist_id == clinic.t2.id and entry.parts_of_day == []
    assert str(entry.date_from) == "2026-11-25"

    bad = client.post(f"/waitlist/{entry.id}/edit", data={
        "service_id": clinic.service.id, "therapist_id": "any",
        "date_from": "2026-11-27", "date_to": "2026-11-25"})
    assert bad.status_code == 422 and b"Must not be before" in bad.data

    assert client.post(f"/waitlist/{entry.id}/leave").status_code == 302
    db.session.refresh(entry)
    assert entry.status == "left"
    assert client.get(f"/waitlist/{entry.id}/edit").status_code == 404


def test_join_errors_show_on_the_form(app, client, clinic):
    login(client, clinic.client)
    response = client.post("/waitlist", data={
        "service_id": clinic.service.id, "therapist_id": "any", "date_from": "2026-11-24",
        "date_to": "2027-12-30"})
    assert response.status_code == 422 and b"At most 2027-02-21" in response.data
    recorded_session(app, clinic, local(2026, 11, 16, 10), soreness=3, red_flags=["fever"])
    response = client.post("/waitlist", data={
        "service_id": clinic.service.id, "therapist_id": "any", "date_from": "2026-11-24",
        "date_to": "2026-11-30"})
    assert response.status_code == 422 and b"see a doctor first" in response.data


def test_someone_elses_entry_is_a_404(app, client, clinic, db):
    other = make_user(app)
    login(client, other)
    client.post("/waitlist", data={
        "service_id": clinic.service.id, "therapist_id": "any", "date_from": "2026-11-24",
        "date_to": "2026-11-30"})
    entry_id = db.session.scalar(select(WaitlistEntry.id))
    client.get("/logout")
    login(client, clinic.client)
    assert client.get(f"/waitlist/{entry_id}/edit").status_code == 404
    assert client.post(f"/waitlist/{entry_id}/leave").status_code == 404


def test_plan_and_book_three_sessions_in_one_action(app, client, clinic, db):
    recorded_session(app, clinic, local(2026, 11, 20, 10), soreness=2)
    login(client, clinic.client)
    assert client.get("/courses/plan").status_code == 200
    page = client.get("/courses/plan?sessions=3")
    assert page.status_code == 200 and b"Book all 3 sessions" in page.data
    # The hidden plan carries exactly the proposals shown.
    plan = page.data.decode().split('name="plan" type="hidden" value="')[1].split('"')[0]
    lines = plan.split("&#10;") if "&#10;" in plan else plan.splitlines()
    assert len(lines) == 3
    response = client.post("/courses/book", data={"service_id": clinic.service.id,
                                                   "plan": "\n".join(lines)})
    assert response.status_code == 302 and response.headers["Location"].endswith("/appointments")
    count = db.session.scalar(select(func.count(Booking.id)).where(
        Booking.client_id == clinic.client.id, Booking.status == "booked"))
    assert count == 3


def test_plan_page_errors(app, client, clinic):
    login(client, clinic.client)
    page = client.get("/courses/plan?sessions=2")
    assert page.status_code == 422 and b"book your first session" in page.data
    assert client.get("/courses/plan?sessions=99").status_code == 422
    garbled = client.post("/courses/book", data={"service_id": "x", "plan": "nonsense"})
    assert garbled.status_code == 302 and garbled.headers["Location"].endswith("/courses/plan")
