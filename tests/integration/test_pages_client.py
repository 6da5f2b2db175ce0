"""The client's pages: booking journey, my appointments (cancel, reschedule), intake."""

from __future__ import annotations

import re
from datetime import UTC
from datetime import date
from datetime import datetime
from datetime import timedelta

from sqlalchemy import select

from clinic_app.models import Booking
from clinic_app.models import Intake
from clinic_app.models import Recommendation
from clinic_app.models import Service
from tests.factories import make_room
from tests.factories.accounts import login
from tests.factories.pages import make_booking
from tests.factories.pages import make_clinic

# The clock: Mon 23 Nov 2026 08:00 UTC (London is on GMT). Hours 09-12 and 13-17.
TUE_10 = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
WED_10 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


def _confirm_url(clinic, start, therapist=None, chosen="any"):
    therapist = therapist or clinic.therapist
    return (f"/book/{clinic.service.id}/confirm?start={start.isoformat()}"
            f"&therapist={therapist.id}&chosen={chosen}")


def test_booking_journey_step_by_step(app, client, db):
    clinic = make_clinic(app)
    # Browsing does not need an account.
    page = client.get("/book").get_data(as_text=True)
    assert "Trigger point 60" in page and f"/book/{clinic.service.id}" in page
    page = client.get(f"/book/{clinic.service.id}").get_data(as_text=True)
    assert "First available" in page and "Maya Therapist" in page and "Tom Therapist" in page
    page = client.get(f"/book/{clinic.service.id}/times?therapist=any").get_data(as_text=True)
    assert "Europe/London" in page
    # 14 days, Sundays without openings; the first day with openings is selected.
    assert page.count("No openings") == 2
    assert 'aria-current="date"' in page and "Times on Monday 23 November" in page
    # 12:00 is the earliest (4 h notice) but the break: the first time is 13:00.
    times = re.findall(r'href="(/book/\d+/confirm\?[^"]+)"[^>]*>(\d\d:\d\d)', page)
    assert times[0][1] == "13:00"
    page = client.get(f"/book/{clinic.service.id}/times?therapist={clinic.therapist.id}"
                      "&day=2026-11-24").get_data(as_text=True)
    assert "Times on Tuesday 24 November" in page and ">09:00" in page
    # Confirming needs an account: a visitor is offered sign-up or log-in there (issue 12.2).
    response = client.get(_confirm_url(clinic, TUE_10))
    assert response.status_code == 200 and "/login?next=" in response.get_data(as_text=True)
    assert 'name="password"' in response.get_data(as_text=True)
    login(client, clinic.client)
    page = client.get(_confirm_url(clinic, TUE_10, chosen=clinic.therapist.id)).get_data(
        as_text=True)
    assert "£65.00" in page and "24 hours" in page and "Tuesday 24 November 2026, 10:00" in page
    assert "health form" in page  # first visit, no intake yet
    response = client.post(f"/book/{clinic.service.id}/confirm", data={
        "start": TUE_10.isoformat(), "therapist": clinic.therapist.id,
        "chosen": clinic.therapist.id})
    assert response.status_code == 302
    booking = db.session.scalar(select(Booking))
    assert booking.client_id == clinic.client.id and booking.start_at == TUE_10
    assert response.headers["Location"].endswith(f"/appointments/{booking.id}/done")
    page = client.get(f"/appointments/{booking.id}/done").get_data(as_text=True)
    assert "booked" in page and f"/bookings/{booking.id}.ics" in page
    page = client.get("/appointments").get_data(as_text=True)
    assert "Tue 24 Nov 2026, 10:00" in page


def test_confirm_refuses_a_taken_slot_and_a_bad_start(app, client, db):
    clinic = make_clinic(app)
    make_booking(app, client=clinic.other_client, service=clinic.service,
                 therapist=clinic.therapist, room=clinic.room, start=TUE_10)
    login(client, clinic.client)
    response = client.post(f"/book/{clinic.service.id}/confirm", data={
        "start": TUE_10.isoformat(), "therapist": clinic.therapist.id,
        "chosen": clinic.therapist.id})
    assert response.status_code in (409, 422)
    assert 'class="form-errors"' in response.get_data(as_text=True)
    assert db.session.scalars(select(Booking)).all().__len__() == 1
    assert client.get(f"/book/{clinic.service.id}/confirm?start=tomorrow").status_code == 400
    assert client.get(f"/book/{clinic.service.id}/confirm?start=2026-11-24T10:00").status_code \
        == 400
    assert client.get("/book/999").status_code == 404
    assert client.get(f"/book/{clinic.service.id}/times?therapist=999").status_code == 404


def test_first_available_books_whoever_is_free(app, client, db):
    clinic = make_clinic(app)
    make_booking(app, client=clinic.other_client, service=clinic.service,
                 therapist=clinic.therapist, room=clinic.room, start=TUE_10)
    room_b = make_room(app, "Room B")
    service = db.session.get(Service, clinic.service.id)
    service.rooms = [*service.rooms, room_b]
    db.session.commit()
    login(client, clinic.client)
    response = client.post(f"/book/{clinic.service.id}/confirm", data={
        "start": TUE_10.isoformat(), "therapist": clinic.therapist.id, "chosen": "any"})
    assert response.status_code == 302
    mine = db.session.scalar(select(Booking).where(Booking.client_id == clinic.client.id))
    assert mine.therapist_id == clinic.other_therapist.id


def test_cancel_outside_and_inside_the_cutoff(app, client, db, clock):
    clinic = make_clinic(app)
    far = make_booking(app, client=clinic.client, service=clinic.service,
                       therapist=clinic.therapist, room=clinic.room, start=WED_10)
    near = make_booking(app, client=clinic.client, service=clinic.service,
                        therapist=clinic.therapist, room=clinic.room,
                        start=datetime(2026, 11, 23, 14, 0, tzinfo=UTC))
    login(client, clinic.client)
    page = client.get(f"/appointments/{far.id}").get_data(as_text=True)
    assert "Late cancellation" not in page and "Reschedule" in page
    assert client.post(f"/appointments/{far.id}/cancel", data={"reason": "ill"}).status_code \
        == 302
    page = client.get(f"/appointments/{near.id}").get_data(as_text=True)
    assert "Late cancellation" in page and "Cancel anyway (late)" in page
    assert "Reschedule" not in page
    assert client.post(f"/appointments/{near.id}/cancel").status_code == 302
    db.session.expire_all()
    assert (far.status, far.late_cancel) == ("cancelled", False)
    assert (near.status, near.late_cancel) == ("cancelled", True)
    # Cancelling twice is refused with a message, not a crash.
    response = client.post(f"/appointments/{far.id}/cancel")
    assert response.status_code == 422 and "cannot" in response.get_data(as_text=True)
    page = client.get("/appointments").get_data(as_text=True)
    assert "late" in page and "No upcoming appointments" in page


def test_reschedule_with_the_same_picker(app, client, db):
    clinic = make_clinic(app)
    b = make_booking(app, client=clinic.client, service=clinic.service,
                     therapist=clinic.therapist, room=clinic.room, start=WED_10)
    login(client, clinic.client)
    page = client.get(f"/appointments/{b.id}/reschedule?day=2026-11-26").get_data(as_text=True)
    assert "Times on Thursday 26 November" in page and "Europe/London" in page
    new = datetime(2026, 11, 26, 14, 0, tzinfo=UTC)
    link = f"/appointments/{b.id}/reschedule/confirm?start={new.isoformat()}"
    assert link.replace("+", "%2B") in page or link in page.replace("%2B", "+").replace(
        "&amp;", "&")
    page = client.get(link.replace("+", "%2B")).get_data(as_text=True)
    assert "Thursday 26 November 2026, 14:00" in page
    response = client.post(f"/appointments/{b.id}/reschedule/confirm",
                           data={"start": new.isoformat()})
    assert response.status_code == 302
    db.session.expire_all()
    assert b.start_at == new and b.status == "booked"
    # A time that is not on offer (outside hours) is refused next to the form.
    bad = datetime(2026, 11, 26, 20, 0, tzinfo=UTC)
    response = client.post(f"/appointments/{b.id}/reschedule/confirm",
                           data={"start": bad.isoformat()})
    assert response.status_code == 422 and "form-errors" in response.get_data(as_text=True)
    db.session.expire_all()
    assert b.start_at == new


def test_intake_form_saves_and_keeps_input_on_error(app, client, db):
    clinic = make_clinic(app)
    login(client, clinic.client)
    page = client.get("/intake").get_data(as_text=True)
    assert 'name="blood_clot"' in page and "<legend>" in page
    from clinic_app.services.care import INTAKE_QUESTIONS

    data = {q["code"]: "no" for q in INTAKE_QUESTIONS if q["kind"] == "yesno"}
    data.update(anticoagulants="yes", details="left shoulder")
    # Unanswered questions and an over-long text: errors next to the fields, answers kept.
    response = client.post("/intake", data={"anticoagulants": "yes", "details": "x" * 3000})
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert 'id="fever-error">Please answer yes or no.' in page
    assert 'id="details-error"' in page
    assert '<input checked id="anticoagulants-1"' in page
    response = client.post("/intake", data=data)
    assert response.status_code == 302
    intake = db.session.scalar(select(Intake))
    assert intake.answers["anticoagulants"] is True and "light_pressure" in intake.flags
    page = client.get("/intake").get_data(as_text=True)
    assert "left shoulder" in page and "Last updated" in page


def test_early_booking_needs_the_checkbox(app, client, db):
    clinic = make_clinic(app)
    done = make_booking(app, client=clinic.client, service=clinic.service,
                        therapist=clinic.therapist, room=clinic.room,
                        start=datetime(2026, 11, 20, 10, 0, tzinfo=UTC), status="completed")
    db.session.add(Recommendation(client_id=clinic.client.id, booking_id=done.id,
                                  created_at=datetime(2026, 11, 20, 12, 0, tzinfo=UTC),
                                  earliest=date(2026, 11, 25), ideal=date(2026, 11, 26),
                                  latest=date(2026, 11, 30), action="book", reasons=[]))
    db.session.commit()
    login(client, clinic.client)
    page = client.get("/appointments").get_data(as_text=True)
    assert "between Wed 25 Nov and Mon 30 Nov" in page
    assert "Thu 26 Nov" in page  # slots in the window are offered
    page = client.get(_confirm_url(clinic, TUE_10)).get_data(as_text=True)
    assert "earlier than recommended" in page and 'name="early_ok"' in page
    form = {"start": TUE_10.isoformat(), "therapist": clinic.therapist.id, "chosen": "any"}
    response = client.post(f"/book/{clinic.service.id}/confirm", data=form)
    assert response.status_code == 422 and "tick this box" in response.get_data(as_text=True)
    assert db.session.scalar(select(Booking).where(Booking.start_at == TUE_10)) is None
    response = client.post(f"/book/{clinic.service.id}/confirm", data={**form, "early_ok": "y"})
    assert response.status_code == 302
    made = db.session.scalar(select(Booking).where(Booking.start_at == TUE_10))
    assert made.early_confirmed is True
    # A start inside the window needs no confirmation.
    page = client.get(_confirm_url(clinic, datetime(2026, 11, 26, 10, 0, tzinfo=UTC))) \
        .get_data(as_text=True)
    assert 'name="early_ok"' not in page


def test_client_pages_need_a_client(app, client, db):
    clinic = make_clinic(app)
    assert client.get("/appointments").status_code == 302
    login(client, clinic.admin)
    assert client.get("/appointments").status_code == 403
    assert client.get("/intake").status_code == 403
    assert timedelta  # imported for readers of the times above
