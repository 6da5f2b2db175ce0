"""The therapist's pages: day/week, hours and time off, bookings, clients, review, feed."""

from __future__ import annotations

from datetime import UTC
from datetime import date
from datetime import datetime
from datetime import time
from datetime import timedelta

from sqlalchemy import select

from clinic_app.models import AuditEntry
from clinic_app.models import CheckIn
from clinic_app.models import HoursOverride
from clinic_app.models import Intake
from clinic_app.models import SessionRecord
from clinic_app.models import WeeklyHours
from tests.factories import make_room
from tests.factories.accounts import login
from tests.factories.pages import make_booking
from tests.factories.pages import make_clinic

MON_9 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
WED_10 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


def _intake(db, client, flags):
    db.session.add(Intake(client_id=client.id, answers={}, flags=flags,
                          updated_at=datetime(2026, 11, 20, tzinfo=UTC)))
    db.session.commit()


def test_day_and_week_show_own_bookings_with_flags(app, client, db):
    clinic = make_clinic(app)
    mine = make_booking(app, client=clinic.client, service=clinic.service,
                        therapist=clinic.therapist, room=clinic.room, start=WED_10)
    make_booking(app, client=clinic.other_client, service=clinic.service,
                 therapist=clinic.other_therapist, room=make_room(app, "Room B"), start=WED_10)
    _intake(db, clinic.client, ["light_pressure"])
    login(client, clinic.therapist.user)
    page = client.get("/therapist/").get_data(as_text=True)
    assert "Monday 23 November 2026" in page and "No bookings on this day" in page
    page = client.get("/therapist/?date=2026-11-25").get_data(as_text=True)
    assert "Casey Client" in page and "Olive Other" not in page
    assert "first visit" in page and "Light pressure only" in page and "Room A" in page
    assert "10:00–11:00" in page
    assert 'href="/therapist/?date=2026-11-24"' in page and 'date=2026-11-26' in page
    page = client.get("/therapist/week?date=2026-11-27").get_data(as_text=True)
    assert "Week of 23 November 2026" in page and "Casey Client" in page
    assert "Olive Other" not in page and "first visit" in page
    assert f"/therapist/bookings/{mine.id}" in page
    # Showing intake flags to staff is an audited read.
    assert db.session.scalar(select(AuditEntry).where(AuditEntry.client_id == clinic.client.id))
    assert client.get("/therapist/?date=garbage").status_code == 200
    page = client.get("/therapist/week?date=2026-11-30").get_data(as_text=True)
    assert "Casey Client" not in page


def test_hours_editor_rejects_overlaps_and_reversed_ranges(app, client, db):
    clinic = make_clinic(app)
    login(client, clinic.therapist.user)
    page = client.get("/therapist/hours").get_data(as_text=True)
    assert 'value="09:00-12:00, 13:00-17:00"' in page and "Europe/London" in page
    form = {"effective_from": "2026-11-30", "day_0": "09:00-13:00, 12:00-17:00",
            "day_1": "17:00-09:00", "day_2": "nine to five", "day_3": "10:00-16:00"}
    response = client.post("/therapist/hours", data=form)
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "is not a range like 09:00-12:00" in page
    assert 'value="09:00-13:00, 12:00-17:00"' in page  # input kept
    form["day_2"] = ""
    response = client.post("/therapist/hours", data=form)
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert 'id="day_0-error">Monday: 09:00-13:00 overlaps 12:00-17:00' in page
    assert 'id="day_1-error">Tuesday: 17:00 must be before 09:00' in page
    response = client.post("/therapist/hours", data={**form, "effective_from": "2026-11-01",
                                                      "day_0": "09:00-12:00",
                                                      "day_1": "13:00-17:00"})
    assert response.status_code == 422 and "today or later" in response.get_data(as_text=True)
    response = client.post("/therapist/hours", data={
        "effective_from": "2026-11-30", "day_0": "08:00-12:00, 13:00-18:00",
        "day_3": "10:00-16:00"})
    assert response.status_code == 302
    rows = db.session.scalars(select(WeeklyHours).where(
        WeeklyHours.therapist_id == clinic.therapist.id,
        WeeklyHours.effective_from == date(2026, 11, 30)).order_by(WeeklyHours.weekday,
                                                                   WeeklyHours.start_time)).all()
    assert [(r.weekday, r.start_time, r.end_time) for r in rows] == [
        (0, time(8), time(12)), (0, time(13), time(18)), (3, time(10), time(16))]
    page = client.get("/therapist/hours").get_data(as_text=True)
    assert "Scheduled changes" in page and "From Mon 30 Nov 2026" in page


def test_time_off_add_and_remove(app, client, db):
    clinic = make_clinic(app)
    login(client, clinic.therapist.user)
    response = client.post("/therapist/time-off", data={"start_date": "2026-12-02",
                                                        "end_date": "2026-12-01"})
    assert response.status_code == 422
    assert 'id="end_date-error">Must not be before the start date.' in response.get_data(
        as_text=True)
    response = client.post("/therapist/time-off", data={"start_date": "2026-12-01",
                                                        "start_time": "14:00",
                                                        "end_time": "12:00"})
    assert response.status_code == 422 and "after the start time" in response.get_data(
        as_text=True)
    response = client.post("/therapist/time-off", data={"start_date": "2026-12-01",
                                                        "end_date": "2026-12-03",
                                                        "reason": "Course"})
    assert response.status_code == 302
    row = db.session.scalar(select(HoursOverride))
    assert (row.start_date, row.end_date, row.kind) == (date(2026, 12, 1), date(2026, 12, 3),
                                                        "off")
    assert "Course" in client.get("/therapist/hours").get_data(as_text=True)
    assert client.post(f"/therapist/time-off/{row.id}/delete").status_code == 302
    assert db.session.scalar(select(HoursOverride)) is None
    assert client.post("/therapist/time-off/999/delete").status_code == 404


def test_complete_a_session_and_no_show(app, client, db, clock):
    clinic = make_clinic(app)
    b = make_booking(app, client=clinic.client, service=clinic.service,
                     therapist=clinic.therapist, room=clinic.room, start=MON_9)
    later = make_booking(app, client=clinic.other_client, service=clinic.service,
                         therapist=clinic.therapist, room=clinic.room, start=WED_10)
    _intake(db, clinic.client, ["avoid_area"])
    login(client, clinic.therapist.user)
    clock.advance(timedelta(hours=2))  # 10:00: the 09:00 session has started
    page = client.get(f"/therapist/bookings/{b.id}").get_data(as_text=True)
    assert "Avoid the affected area" in page and "Complete the session" in page
    form = {"regions": "neck, upper back", "muscles": "trapezius", "techniques": "compression",
            "intensity": "11", "goal": "chronic", "progress": "", "notes": "tight"}
    response = client.post(f"/therapist/bookings/{b.id}/complete", data=form)
    page = response.get_data(as_text=True)
    assert response.status_code == 422 and 'id="intensity-error"' in page
    assert 'value="neck, upper back"' in page
    response = client.post(f"/therapist/bookings/{b.id}/complete",
                           data={**form, "intensity": "6"})
    assert response.status_code == 302
    record = db.session.scalar(select(SessionRecord))
    assert record.regions == ["neck", "upper back"] and record.intensity == 6
    page = client.get(f"/therapist/bookings/{b.id}").get_data(as_text=True)
    assert "Session record" in page and "Next session" in page and "6/10" in page
    # A future session cannot be completed or marked missed yet.
    page = client.get(f"/therapist/bookings/{later.id}").get_data(as_text=True)
    assert "once it has started" in page
    response = client.post(f"/therapist/bookings/{later.id}/no-show", follow_redirects=True)
    assert "once it has started" in response.get_data(as_text=True)
    clock.advance(timedelta(days=3))
    assert client.post(f"/therapist/bookings/{later.id}/no-show").status_code == 302
    db.session.refresh(later)
    assert later.status == "no_show"


def test_override_the_followup_window(app, client, db, clock):
    clinic = make_clinic(app)
    b = make_booking(app, client=clinic.client, service=clinic.service,
                     therapist=clinic.therapist, room=clinic.room, start=MON_9)
    login(client, clinic.therapist.user)
    clock.advance(timedelta(hours=2))
    client.post(f"/therapist/bookings/{b.id}/complete", data={"intensity": "4",
                                                              "goal": "chronic"})
    response = client.post(f"/therapist/bookings/{b.id}/followup", data={
        "earliest": "2026-11-26", "ideal": "2026-11-28", "latest": "2026-12-02", "reason": ""})
    assert response.status_code == 422
    response = client.post(f"/therapist/bookings/{b.id}/followup", data={
        "earliest": "2026-11-26", "ideal": "2026-11-28", "latest": "2026-12-02",
        "reason": "Client travels"})
    assert response.status_code == 302
    page = client.get(f"/therapist/bookings/{b.id}").get_data(as_text=True)
    assert "2026-11-26" in page and "set by a therapist" in page


def test_client_timeline_draws_soreness(app, client, db, clock):
    clinic = make_clinic(app)
    b = make_booking(app, client=clinic.client, service=clinic.service,
                     therapist=clinic.therapist, room=clinic.room, start=MON_9)
    login(client, clinic.therapist.user)
    clock.advance(timedelta(hours=2))
    client.post(f"/therapist/bookings/{b.id}/complete", data={"intensity": "5",
                                                              "goal": "chronic"})
    db.session.add(CheckIn(booking_id=b.id, kind="24h", soreness=3, red_flags=[],
                           submitted_at=MON_9 + timedelta(days=1)))
    db.session.commit()
    page = client.get(f"/therapist/clients/{clinic.client.id}").get_data(as_text=True)
    assert "<svg" in page and "<polyline" in page and "soreness 3, intensity 5" in page
    # A client this therapist never treated does not exist for them.
    assert client.get(f"/therapist/clients/{clinic.other_client.id}").status_code == 404


def test_review_queue_confirm_and_decline(app, client, db):
    clinic = make_clinic(app)
    _intake(db, clinic.client, ["confirm_first"])
    first = make_booking(app, client=clinic.client, service=clinic.service,
                         therapist=clinic.therapist, room=clinic.room, start=WED_10,
                         status="pending")
    _intake(db, clinic.other_client, ["confirm_first"])
    second = make_booking(app, client=clinic.other_client, service=clinic.service,
                          therapist=clinic.therapist, room=clinic.room,
                          start=WED_10 + timedelta(days=1), status="pending")
    login(client, clinic.therapist.user)
    page = client.get("/therapist/review").get_data(as_text=True)
    assert "Casey Client" in page and "Olive Other" in page and "confirm first" in page
    assert client.post(f"/therapist/clients/{clinic.client.id}/confirm-intake",
                       data={"back": "review"}).status_code == 302
    assert client.post(f"/therapist/bookings/{second.id}/decline",
                       data={"back": "review"}).status_code == 302
    db.session.expire_all()
    assert first.status == "booked" and second.status == "cancelled"
    page = client.get("/therapist/review").get_data(as_text=True)
    assert "Nothing waiting for you" in page
    # Declining again is refused with a message.
    response = client.post(f"/therapist/bookings/{second.id}/decline", follow_redirects=True)
    assert "Only a pending booking" in response.get_data(as_text=True)


def test_calendar_feed_copy_and_regenerate(app, client, db):
    clinic = make_clinic(app)
    old = clinic.therapist.feed_token
    login(client, clinic.therapist.user)
    page = client.get("/therapist/calendar").get_data(as_text=True)
    assert f"/calendar/{old}.ics" in page and "readonly" in page
    assert client.post("/therapist/calendar/regenerate").status_code == 302
    db.session.refresh(clinic.therapist)
    assert clinic.therapist.feed_token != old
    assert client.get(f"/calendar/{old}.ics").status_code == 404
    assert client.get(f"/calendar/{clinic.therapist.feed_token}.ics").status_code == 200


def test_therapist_pages_need_a_therapist(app, client, db):
    clinic = make_clinic(app)
    assert client.get("/therapist/").status_code == 302
    login(client, clinic.client)
    for url in ("/therapist/", "/therapist/week", "/therapist/hours", "/therapist/review",
                "/therapist/calendar"):
        assert client.get(url).status_code == 403, url
