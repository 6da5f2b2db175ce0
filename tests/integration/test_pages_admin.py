"""The admin back office: services, rooms, therapists, settings, closures, bookings, dashboard."""

from __future__ import annotations

from datetime import UTC
from datetime import date
from datetime import datetime

from sqlalchemy import select

from clinic_app.models import Booking
from clinic_app.models import ClinicSettings
from clinic_app.models import Closure
from clinic_app.models import Room
from clinic_app.models import Service
from tests.factories.accounts import login
from tests.factories.pages import make_booking
from tests.factories.pages import make_clinic

TUE_10 = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)


def test_non_admins_are_refused(app, client, db):
    clinic = make_clinic(app)
    assert client.get("/admin/").status_code == 302  # log in first
    for user in (clinic.client, clinic.therapist.user):
        login(client, user)
        for url in ("/admin/", "/admin/services", "/admin/bookings", "/admin/settings"):
            assert client.get(url).status_code == 403, url
        assert client.post("/admin/services/new", data={"name": "x"}).status_code == 403


def test_create_and_edit_a_service(app, client, db):
    clinic = make_clinic(app)
    login(client, clinic.admin)
    form = {"name": "Neck 45", "description": "Neck and shoulders",
            "duration_minutes": "45", "buffer_before_minutes": "0",
            "buffer_after_minutes": "15", "price": "52.50", "active": "y",
            "therapist_ids": [str(clinic.therapist.id)]}
    # No room: refused next to the field; what was typed stays.
    response = client.post("/admin/services/new", data=form)
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert 'id="room_ids-error">Choose at least one room' in page
    assert 'value="Neck 45"' in page and 'value="52.50"' in page
    response = client.post("/admin/services/new", data={**form, "room_ids": [clinic.room.id]})
    assert response.status_code == 302
    service = db.session.scalar(select(Service).where(Service.name == "Neck 45"))
    assert service.price_cents == 5250 and service.duration_minutes == 45
    assert [t.id for t in service.therapists] == [clinic.therapist.id]
    # Clients can book it at once.
    assert "Neck 45" in client.get("/book").get_data(as_text=True)
    # A duplicate name and a zero length are refused.
    response = client.post("/admin/services/new", data={**form, "name": "neck 45",
                                                        "duration_minutes": "0",
                                                        "room_ids": [clinic.room.id]})
    page = response.get_data(as_text=True)
    assert response.status_code == 422 and "already has this name" in page
    assert "Between 5 and 480 minutes" in page
    page = client.get(f"/admin/services/{service.id}").get_data(as_text=True)
    assert 'value="52.50"' in page and "checked" in page
    response = client.post(f"/admin/services/{service.id}", data={
        **form, "name": "Neck 45", "price": "55", "room_ids": [clinic.room.id], "active": ""})
    assert response.status_code == 302
    db.session.refresh(service)
    assert service.price_cents == 5500 and service.active is False
    assert client.get("/admin/services/999").status_code == 404


def test_rooms(app, client, db):
    clinic = make_clinic(app)
    login(client, clinic.admin)
    assert client.post("/admin/rooms", data={"name": "Room B", "active": "y"}).status_code \
        == 302
    response = client.post("/admin/rooms", data={"name": "room b"})
    assert response.status_code == 422 and "already has this name" in response.get_data(
        as_text=True)
    room = db.session.scalar(select(Room).where(Room.name == "Room B"))
    assert client.post(f"/admin/rooms/{room.id}", data={"name": "Room C"}).status_code == 302
    db.session.refresh(room)
    assert room.name == "Room C" and room.active is False
    assert client.get("/admin/rooms/999").status_code == 404


def test_invite_and_deactivate_a_therapist(app, client, db, mailbox):
    clinic = make_clinic(app)
    booking = make_booking(app, client=clinic.client, service=clinic.service,
                           therapist=clinic.therapist, room=clinic.room, start=TUE_10)
    login(client, clinic.admin)
    response = client.post("/admin/therapists", data={"name": "Ines", "email": "ines@example.com"})
    assert response.status_code == 302
    assert mailbox.last_link("ines@example.com", "/invite")
    response = client.post("/admin/therapists", data={"name": "Again",
                                                      "email": "ines@example.com"})
    assert response.status_code == 422 and "already exists" in response.get_data(as_text=True)
    response = client.post("/admin/therapists", data={"name": "", "email": "bad"})
    assert response.status_code == 422
    page = client.get(f"/admin/therapists/{clinic.therapist.id}").get_data(as_text=True)
    assert "Future bookings (1)" in page and "Casey Client" in page
    response = client.post(f"/admin/therapists/{clinic.therapist.id}/active",
                           data={"active": "0"}, follow_redirects=True)
    page = response.get_data(as_text=True)
    assert "Move or cancel the 1 future booking" in page
    assert f"/admin/bookings/{booking.id}/reschedule" in page
    db.session.refresh(clinic.therapist)
    assert clinic.therapist.active is False and clinic.therapist.user.is_active is False
    # Reassign the booking to the other therapist.
    response = client.post(f"/admin/bookings/{booking.id}/reschedule/confirm",
                           data={"start": TUE_10.isoformat(),
                                 "therapist": clinic.other_therapist.id})
    assert response.status_code == 302
    db.session.refresh(booking)
    assert booking.therapist_id == clinic.other_therapist.id and booking.start_at == TUE_10
    assert client.get("/admin/therapists/999").status_code == 404


def test_settings_and_closures(app, client, db):
    clinic = make_clinic(app)
    make_booking(app, client=clinic.client, service=clinic.service,
                 therapist=clinic.therapist, room=clinic.room, start=TUE_10)
    login(client, clinic.admin)
    page = client.get("/admin/settings").get_data(as_text=True)
    assert 'value="Europe/London"' in page
    form = {"name": "Knots Ltd", "address": "1 High St", "phone": "0117",
            "timezone": "Mars/Olympus", "min_notice_minutes": "120", "horizon_days": "60",
            "slot_step_minutes": "30", "cancel_cutoff_hours": "48",
            "max_upcoming_per_client": "4", "reminder_offsets_hours": "24, 2",
            "retention_years": "8", "offer_minutes": "45"}
    response = client.post("/admin/settings", data=form)
    page = response.get_data(as_text=True)
    assert response.status_code == 422 and "IANA time zone" in page and 'value="Knots Ltd"' in page
    response = client.post("/admin/settings", data={**form, "timezone": "Europe/Dublin"})
    assert response.status_code == 302
    row = db.session.scalar(select(ClinicSettings))
    assert (row.name, row.timezone, row.cancel_cutoff_hours, row.reminder_offsets_hours) == (
        "Knots Ltd", "Europe/Dublin", 48, "24,2")
    assert row.offer_minutes == 45 and 'name="offer_minutes"' in client.get(
        "/admin/settings").get_data(as_text=True)
    # A waitlist offer holds a slot for 5 minutes to a day.
    for minutes in ("4", "1441"):
        response = client.post("/admin/settings", data={**form, "timezone": "UTC",
                                                         "offer_minutes": minutes})
        assert response.status_code == 422 and "from 5 to 1440" in response.get_data(as_text=True)
    assert db.session.scalar(select(ClinicSettings)).offer_minutes == 45
    response = client.post("/admin/settings", data={**form, "timezone": "UTC",
                                                     "slot_step_minutes": "1"})
    assert response.status_code == 422 and "from 5 to 120" in response.get_data(as_text=True)
    # Closures: reversed dates refused; a closure over a booking points at it.
    response = client.post("/admin/closures", data={"start_date": "2026-11-25",
                                                    "end_date": "2026-11-24"})
    assert response.status_code == 422 and "cannot be before" in response.get_data(as_text=True)
    response = client.post("/admin/closures", data={"start_date": "2026-11-24",
                                                    "end_date": "2026-11-24",
                                                    "reason": "Training"})
    assert response.status_code == 302 and "/staff/covered/closure/" in response.headers["Location"]
    closure = db.session.scalar(select(Closure))
    assert closure.start_date == date(2026, 11, 24)
    assert "Training" in client.get("/admin/settings").get_data(as_text=True)
    assert client.post(f"/admin/closures/{closure.id}/delete").status_code == 302
    assert db.session.scalar(select(Closure)) is None
    assert client.post("/admin/closures/999/delete").status_code == 404


def test_bookings_list_filters(app, client, db):
    clinic = make_clinic(app)
    a = make_booking(app, client=clinic.client, service=clinic.service,
                     therapist=clinic.therapist, room=clinic.room, start=TUE_10)
    make_booking(app, client=clinic.other_client, service=clinic.service,
                 therapist=clinic.other_therapist, room=clinic.room,
                 start=datetime(2026, 11, 30, 10, 0, tzinfo=UTC), status="cancelled")
    login(client, clinic.admin)
    page = client.get("/admin/bookings").get_data(as_text=True)
    assert "Casey Client" in page and "Olive Other" in page
    page = client.get(f"/admin/bookings?therapist={clinic.therapist.id}").get_data(as_text=True)
    assert "Casey Client" in page and "Olive Other" not in page
    page = client.get("/admin/bookings?status=cancelled").get_data(as_text=True)
    assert "Casey Client" not in page and "Olive Other" in page
    page = client.get("/admin/bookings?date_from=2026-11-23&date_to=2026-11-24").get_data(
        as_text=True)
    assert "Casey Client" in page and "Olive Other" not in page
    page = client.get("/admin/bookings?q=olive").get_data(as_text=True)
    assert "Olive Other" in page and "Casey Client" not in page
    response = client.get("/admin/bookings?date_from=2026-11-30&date_to=2026-11-01")
    assert response.status_code == 422 and "end is before the start" in response.get_data(
        as_text=True)
    response = client.get("/admin/bookings?date_from=not-a-date")
    assert response.status_code == 422
    assert client.get(f"/admin/bookings/{a.id}").status_code == 200
    assert client.get("/admin/bookings/999").status_code == 404


def test_book_cancel_and_reschedule_on_behalf(app, client, db, mailbox):
    clinic = make_clinic(app)
    login(client, clinic.admin)
    page = client.get(f"/admin/book?client={clinic.client.id}&service={clinic.service.id}"
                      "&therapist=any&day=2026-11-24").get_data(as_text=True)
    assert "Times on Tuesday 24 November" in page
    response = client.get("/admin/book?client=&service=")
    assert response.status_code == 422
    response = client.post("/admin/book/confirm", data={
        "client": clinic.client.id, "service": clinic.service.id, "start": TUE_10.isoformat(),
        "therapist": clinic.therapist.id})
    assert response.status_code == 302
    booking = db.session.scalar(select(Booking))
    assert booking.client_id == clinic.client.id and booking.booked_by_id == clinic.admin.id
    # The same time again: refused with a message, back to the picker.
    response = client.post("/admin/book/confirm", data={
        "client": clinic.client.id, "service": clinic.service.id, "start": TUE_10.isoformat(),
        "therapist": clinic.therapist.id}, follow_redirects=True)
    assert "Pick another" in response.get_data(as_text=True) or "taken" in response.get_data(
        as_text=True)
    assert len(db.session.scalars(select(Booking)).all()) == 1
    # Booking for a non-client is a 404.
    response = client.post("/admin/book/confirm", data={
        "client": clinic.admin.id, "service": clinic.service.id, "start": TUE_10.isoformat()})
    assert response.status_code == 404
    new = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)
    page = client.get(f"/admin/bookings/{booking.id}/reschedule?day=2026-11-25").get_data(
        as_text=True)
    assert "Times on Wednesday 25 November" in page
    assert client.post(f"/admin/bookings/{booking.id}/reschedule/confirm",
                       data={"start": new.isoformat()}).status_code == 302
    db.session.refresh(booking)
    assert booking.start_at == new
    response = client.post(f"/admin/bookings/{booking.id}/cancel", data={"reason": "Flood"})
    assert response.status_code == 302
    db.session.refresh(booking)
    assert booking.status == "cancelled" and booking.late_cancel is False
    response = client.post(f"/admin/bookings/{booking.id}/cancel", follow_redirects=True)
    assert "cannot be cancelled" in response.get_data(as_text=True)


def test_dashboard_figures_and_chart(app, client, db):
    clinic = make_clinic(app)
    make_booking(app, client=clinic.client, service=clinic.service,
                 therapist=clinic.therapist, room=clinic.room, start=TUE_10)
    late = make_booking(app, client=clinic.other_client, service=clinic.service,
                        therapist=clinic.therapist, room=clinic.room,
                        start=datetime(2026, 11, 25, 10, 0, tzinfo=UTC), status="cancelled")
    late.late_cancel = True
    make_booking(app, client=clinic.other_client, service=clinic.service,
                 therapist=clinic.other_therapist, room=clinic.room,
                 start=datetime(2026, 11, 23, 9, 0, tzinfo=UTC), status="no_show")
    db.session.commit()
    login(client, clinic.admin)
    page = client.get("/admin/").get_data(as_text=True)
    # Each therapist works 6 days x 7 h = 2520 min; 60 booked min each = 2%.
    assert "The week of 23 November 2026" in page
    assert "<svg" in page and "Maya Therapist" in page and ">2%<" in page
    assert "120 of 5040 min" in page
    assert "Late cancellations</small><strong>1</strong>" in page
    assert "No-shows</small><strong>1</strong>" in page
    page = client.get("/admin/?week=2026-11-30").get_data(as_text=True)
    assert "The week of 30 November 2026" in page and "0 of 5040 min" in page
    # Not a date: this week's figures still show, the message sits on the week chooser (400).
    garbage = client.get("/admin/?week=garbage")
    assert garbage.status_code == 400
    assert "The week of 23 November 2026" in garbage.get_data(as_text=True)
    assert 'class="field-error" id="week-error">Not a valid date value.' in \
        garbage.get_data(as_text=True)
