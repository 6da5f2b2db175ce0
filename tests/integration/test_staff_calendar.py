"""The staff calendar: GET /api/v1/calendar, the grid pages, and drag-to-move (issue 11)."""

from __future__ import annotations

from datetime import UTC
from datetime import date
from datetime import datetime
from datetime import time

import pytest
from sqlalchemy import select

from clinic_app.extensions import db as _db
from clinic_app.models import Booking
from clinic_app.models import Closure
from clinic_app.models import HoursOverride
from clinic_app.models.audit import AuditEntry
from clinic_app.models.care import Intake
from tests.factories import make_user
from tests.factories.accounts import login
from tests.factories.accounts import token_for
from tests.factories.booking import make_clinic
from tests.factories.booking import raw_booking
from tests.factories.care import add_recommendation
from tests.factories.schedule import local

WEEK = "from=2026-11-23&to=2026-11-29"


@pytest.fixture
def clinic(app, db):
    """Two therapists Mon-Sat 09-12 / 13-17 (a break at 12), time off and a closure:

    t1 off all of Wed 25 Nov and Thu 26 Nov 10:00-11:00; the clinic is closed Fri 27 Nov.
    Bookings: t1 Tue 10:00 (fine), t1 Wed 10:00 (in time off), t1 Thu 10:30 (partly in
    time off), t2 Fri 14:00 (closure), t2 Tue 15:00 cancelled (not shown).
    """
    c = make_clinic(app)
    db.session.add_all([
        HoursOverride(therapist_id=c.t1.id, start_date=date(2026, 11, 25),
                      end_date=date(2026, 11, 25), kind="off", reason="Course"),
        HoursOverride(therapist_id=c.t1.id, start_date=date(2026, 11, 26),
                      end_date=date(2026, 11, 26), kind="off", start_time=time(10),
                      end_time=time(11)),
        Closure(start_date=date(2026, 11, 27), end_date=date(2026, 11, 27), reason="Training"),
    ])
    db.session.commit()
    common = {"client": c.client, "room": c.rooms[0], "service": c.service}
    c.fine = raw_booking(app, therapist=c.t1, start=local(2026, 11, 24, 10), **common)
    c.in_off = raw_booking(app, therapist=c.t1, start=local(2026, 11, 25, 10), **common)
    c.partly = raw_booking(app, therapist=c.t1, start=local(2026, 11, 26, 10, 30), **common)
    c.closed = raw_booking(app, therapist=c.t2, start=local(2026, 11, 27, 14), **common)
    c.gone = raw_booking(app, therapist=c.t2, start=local(2026, 11, 24, 15), status="cancelled",
                         **common)
    return c


def _events(client, headers, query=WEEK):
    response = client.get(f"/api/v1/calendar?{query}", headers=headers)
    assert response.status_code == 200, response.get_json()
    return response.get_json()["events"]


def test_therapist_gets_own_hours_time_off_closure_and_bookings(client, clinic):
    events = _events(client, token_for(client.application, clinic.t1.user))
    assert {e["therapist_id"] for e in events} <= {clinic.t1.id, None}
    monday = [e for e in events if e["kind"] == "working" and e["start"].startswith("2026-11-23")]
    assert [(e["start"], e["end"]) for e in monday] == [
        ("2026-11-23T09:00:00+00:00", "2026-11-23T12:00:00+00:00"),
        ("2026-11-23T13:00:00+00:00", "2026-11-23T17:00:00+00:00"),
    ]
    assert all(e["booking_id"] is None and e["status"] is None and e["conflict"] is False
               for e in events if e["kind"] != "booking")
    off = [(e["start"], e["end"]) for e in events if e["kind"] == "time_off"]
    assert off == [("2026-11-25T00:00:00+00:00", "2026-11-26T00:00:00+00:00"),
                   ("2026-11-26T10:00:00+00:00", "2026-11-26T11:00:00+00:00")]
    # No working hours on the day off or the closed day; Thursday has a hole at 10-11.
    working_days = {e["start"][:10] for e in events if e["kind"] == "working"}
    assert working_days == {"2026-11-23", "2026-11-24", "2026-11-26", "2026-11-28"}
    thursday = [(e["start"][11:16], e["end"][11:16]) for e in events
                if e["kind"] == "working" and e["start"].startswith("2026-11-26")]
    assert thursday == [("09:00", "10:00"), ("11:00", "12:00"), ("13:00", "17:00")]
    closure = [e for e in events if e["kind"] == "closure"]
    assert [(e["start"], e["end"], e["therapist_id"]) for e in closure] == [
        ("2026-11-27T00:00:00+00:00", "2026-11-28T00:00:00+00:00", None)]
    bookings = {e["booking_id"]: e for e in events if e["kind"] == "booking"}
    assert set(bookings) == {clinic.fine.id, clinic.in_off.id, clinic.partly.id}
    assert bookings[clinic.fine.id]["conflict"] is False
    assert bookings[clinic.in_off.id]["conflict"] is True
    assert bookings[clinic.partly.id]["conflict"] is True
    assert bookings[clinic.fine.id]["status"] == "booked"
    assert bookings[clinic.fine.id]["start"] == "2026-11-24T10:00:00+00:00"


def test_admin_sees_all_or_one_and_closure_conflicts(client, clinic):
    admin = token_for(client.application, clinic.admin)
    events = _events(client, admin)
    booking_ids = {e["booking_id"] for e in events if e["kind"] == "booking"}
    assert booking_ids == {clinic.fine.id, clinic.in_off.id, clinic.partly.id, clinic.closed.id}
    assert clinic.gone.id not in booking_ids  # cancelled bookings free the time
    closed = next(e for e in events if e["booking_id"] == clinic.closed.id)
    assert closed["conflict"] is True and closed["therapist_id"] == clinic.t2.id
    only_t2 = _events(client, admin, f"{WEEK}&therapist_id={clinic.t2.id}")
    assert {e["therapist_id"] for e in only_t2} == {clinic.t2.id, None}
    assert client.get(f"/api/v1/calendar?{WEEK}&therapist_id=99999",
                      headers=admin).status_code == 404


def test_unhappy_paths(client, clinic):
    app = client.application
    t1 = token_for(app, clinic.t1.user)
    other = client.get(f"/api/v1/calendar?{WEEK}&therapist_id={clinic.t2.id}", headers=t1)
    assert other.status_code == 404 and other.get_json()["error"]["code"] == "not_found"
    own = client.get(f"/api/v1/calendar?{WEEK}&therapist_id={clinic.t1.id}", headers=t1)
    assert own.status_code == 200
    too_long = client.get("/api/v1/calendar?from=2026-11-01&to=2027-01-02", headers=t1)
    assert too_long.status_code == 422
    assert too_long.get_json()["error"]["code"] == "range_too_long"
    just_fits = client.get("/api/v1/calendar?from=2026-11-01&to=2027-01-01", headers=t1)
    assert just_fits.status_code == 200  # 62 days
    reversed_ = client.get("/api/v1/calendar?from=2026-11-29&to=2026-11-23", headers=t1)
    assert reversed_.get_json()["error"]["code"] == "invalid_range"
    assert client.get("/api/v1/calendar?from=nope&to=2026-11-23", headers=t1).status_code == 422
    assert client.get("/api/v1/calendar?from=2026-11-23", headers=t1).status_code == 422
    as_client = client.get(f"/api/v1/calendar?{WEEK}",
                           headers=token_for(app, clinic.client))
    assert as_client.status_code == 404
    assert client.get(f"/api/v1/calendar?{WEEK}").status_code == 401
    assert client.get(f"/api/v1/calendar?{WEEK}&therapist_id=0", headers=t1).status_code == 422


def test_dst_change_keeps_local_hours(client, clinic):
    """Europe/London falls back on Sun 25 Oct 2026: 09:00 local is 08:00 UTC before, 09:00
    after, and both show as 09:00 with their own offset."""
    events = _events(client, token_for(client.application, clinic.t1.user),
                     "from=2026-10-24&to=2026-10-26")
    starts = sorted(e["start"] for e in events if e["kind"] == "working")
    assert starts == ["2026-10-24T09:00:00+01:00", "2026-10-24T13:00:00+01:00",
                      "2026-10-26T09:00:00+00:00", "2026-10-26T13:00:00+00:00"]


def test_openapi_describes_the_calendar(client):
    doc = client.get("/api/v1/openapi.json").get_json()
    op = doc["paths"]["/api/v1/calendar"]["get"]
    names = {p["name"] for p in op["parameters"]}
    assert names == {"from", "to", "therapist_id"}
    assert {"200", "401", "404", "422"} <= set(op["responses"])


# --- pages ------------------------------------------------------------------------------------


def test_therapist_week_grid_shows_shading_bookings_and_conflicts(client, clinic, db):
    db.session.add(Intake(client_id=clinic.client.id, answers={}, flags=["light_pressure"],
                          updated_at=datetime(2026, 11, 1, tzinfo=UTC)))
    db.session.commit()
    login(client, clinic.t1.user)
    page = client.get("/staff/calendar?view=week&date=2026-11-25")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Week of 23 Nov 2026" in html
    assert html.count('class="cal-col') == 7
    for label in ("Time off", "Clinic closed", "Break", "Light pressure only"):
        assert label in html, label
    assert "2 bookings in time off or a closure" in html
    assert f'data-booking-id="{clinic.in_off.id}"' in html
    assert f'data-booking-id="{clinic.closed.id}"' not in html  # another therapist's
    # Free times from now on link to the booking form; Monday 08:00 UTC is "now".
    assert "/staff/book?therapist=" in html
    assert "cal-now" in html
    # Showing intake flags is an audited staff read.
    audits = db.session.scalars(select(AuditEntry).where(
        AuditEntry.action == "read:intake_flags")).all()
    assert audits and all(a.client_id == clinic.client.id for a in audits)


def test_admin_day_grid_per_therapist_and_per_room(client, clinic):
    login(client, clinic.admin)
    by_therapist = client.get("/staff/calendar?date=2026-11-27").get_data(as_text=True)
    assert by_therapist.count('class="cal-col') == 2
    assert clinic.t1.user.name in by_therapist and clinic.t2.user.name in by_therapist
    assert "Clinic closed" in by_therapist and "1 booking in time off or a closure" in by_therapist
    by_room = client.get("/staff/calendar?date=2026-11-27&by=room").get_data(as_text=True)
    assert by_room.count('class="cal-col') == 2  # two rooms
    assert clinic.rooms[0].name in by_room and f'data-booking-id="{clinic.closed.id}"' in by_room
    one = client.get(f"/staff/calendar?view=week&therapist={clinic.t2.id}")
    assert one.get_data(as_text=True).count('class="cal-col') == 7
    assert client.get("/staff/calendar?therapist=99999").status_code == 404
    assert client.get("/staff/calendar?date=garbage").status_code == 200  # today instead


def test_calendar_pages_are_for_staff_only(client, clinic):
    assert client.get("/staff/calendar").status_code == 302  # to the log-in page
    login(client, clinic.client)
    assert client.get("/staff/calendar").status_code == 403
    assert client.post(f"/staff/calendar/bookings/{clinic.fine.id}/move",
                       json={"start": "2026-11-24T14:00:00+00:00"}).status_code == 403


def test_drag_moves_through_the_booking_rules(client, clinic, db, mailbox):
    login(client, clinic.t1.user)
    url = f"/staff/calendar/bookings/{clinic.fine.id}/move"
    moved = client.post(url, json={"start": "2026-11-24T14:00:00+00:00"})
    assert moved.status_code == 200, moved.get_json()
    db.session.expire_all()
    assert db.session.get(Booking, clinic.fine.id).start_at == datetime(2026, 11, 24, 14,
                                                                        tzinfo=UTC)
    assert any("changed" in str(m["Subject"]).lower() or "moved" in str(m["Subject"]).lower()
               for m in mailbox.deliver() if clinic.client.email in str(m["To"]))
    refused = client.post(url, json={"start": "2026-11-24T16:30:00+00:00"})  # runs past 17:00
    assert refused.status_code == 422
    assert refused.get_json()["error"]["code"] == "outside_hours"
    assert "working hours" in refused.get_json()["error"]["message"]
    db.session.expire_all()
    assert db.session.get(Booking, clinic.fine.id).start_at.hour == 14  # unchanged
    assert client.post(url, json={"start": "tomorrow"}).status_code == 422
    assert client.post(url, json={"start": "2026-11-24T15:00:00"}).status_code == 422  # naive
    theirs = client.post(f"/staff/calendar/bookings/{clinic.closed.id}/move",
                         json={"start": "2026-11-24T14:00:00+00:00"})
    assert theirs.status_code == 404


def test_grid_without_therapists_or_rooms(client, app):
    admin = make_user(app, role="admin")
    login(client, admin)
    assert "No therapists to show" in client.get("/staff/calendar").get_data(as_text=True)
    assert "No rooms yet" in client.get("/staff/calendar?by=room").get_data(as_text=True)
    assert _db.session.scalar(select(Booking.id)) is None


# --- acting on a booking from the calendar (item 2) -------------------------------------------


def test_booking_panel_access(client, clinic):
    login(client, clinic.t1.user)
    page = client.get(f"/staff/bookings/{clinic.fine.id}")
    assert page.status_code == 200 and "Private note" in page.get_data(as_text=True)
    assert client.get(f"/staff/bookings/{clinic.closed.id}").status_code == 404  # t2's
    assert client.get("/staff/bookings/99999999999").status_code == 404
    login(client, clinic.admin)
    assert client.get(f"/staff/bookings/{clinic.closed.id}").status_code == 200
    login(client, clinic.client)
    assert client.get(f"/staff/bookings/{clinic.fine.id}").status_code == 403


def test_therapist_cancels_with_a_reason_and_the_client_is_told(client, clinic, db, mailbox):
    login(client, clinic.t1.user)
    url = f"/staff/bookings/{clinic.fine.id}/cancel"
    assert client.post(url, data={"reason": ""}).status_code == 422
    assert db.session.get(Booking, clinic.fine.id).status == "booked"
    assert client.post(url, data={"reason": "Therapist unwell"}).status_code == 302
    db.session.expire_all()
    row = db.session.get(Booking, clinic.fine.id)
    assert row.status == "cancelled" and row.cancel_reason == "Therapist unwell"
    told = [m for m in mailbox.deliver() if clinic.client.email in str(m["To"])]
    assert any("Therapist unwell" in mailbox.text(m) for m in told)
    again = client.post(url, data={"reason": "twice"})
    assert again.status_code == 422 and "cannot be cancelled" in again.get_data(as_text=True)
    assert client.post(f"/staff/bookings/{clinic.closed.id}/cancel",
                       data={"reason": "not mine"}).status_code == 404


def test_therapist_moves_a_booking_by_form(client, clinic, db):
    login(client, clinic.t1.user)
    url = f"/staff/bookings/{clinic.fine.id}/reschedule"
    moved = client.post(url, data={"new_start": "2026-11-24T15:00"})
    assert moved.status_code == 302
    db.session.expire_all()
    assert db.session.get(Booking, clinic.fine.id).start_at == datetime(2026, 11, 24, 15,
                                                                        tzinfo=UTC)
    refused = client.post(url, data={"new_start": "2026-11-24T19:00"})
    assert refused.status_code == 422 and "working hours" in refused.get_data(as_text=True)
    assert client.post(url, data={"new_start": "garbage"}).status_code == 422


def test_private_note_is_for_staff_only(client, clinic, db):
    login(client, clinic.t1.user)
    saved = client.post(f"/staff/bookings/{clinic.fine.id}/note",
                        data={"private_note": "Prefers the left side first"})
    assert saved.status_code == 302
    assert db.session.get(Booking, clinic.fine.id).private_note == "Prefers the left side first"
    assert "Prefers the left side first" in client.get(
        f"/staff/bookings/{clinic.fine.id}").get_data(as_text=True)
    assert client.post(f"/staff/bookings/{clinic.closed.id}/note",
                       data={"private_note": "x"}).status_code == 404
    assert client.post(f"/staff/bookings/{clinic.fine.id}/note",
                       data={"private_note": "x" * 5001}).status_code == 422
    login(client, clinic.client)
    own_page = client.get(f"/appointments/{clinic.fine.id}").get_data(as_text=True)
    assert "Prefers the left side first" not in own_page


def test_follow_up_from_a_completed_session_own_slots_first(client, clinic, db, app):
    done = raw_booking(app, client=clinic.client, therapist=clinic.t1, room=clinic.rooms[0],
                       service=clinic.service, start=local(2026, 11, 20, 10),
                       status="completed")
    add_recommendation(app, done, earliest=date(2026, 12, 1), ideal=date(2026, 12, 2),
                       latest=date(2026, 12, 4))
    login(client, clinic.t1.user)
    page = client.get(f"/staff/bookings/{done.id}").get_data(as_text=True)
    assert "Book the follow-up" in page and "Tue 01 Dec" in page
    assert "Tue 01 Dec 09:00" in page and "With another therapist" not in page
    booked = client.post("/staff/book", data={
        "therapist": clinic.t1.id, "start": "2026-12-01T09:00:00+00:00",
        "service": clinic.service.id, "client": clinic.client.id, "notify": "y"})
    assert booked.status_code == 302
    follow = db.session.scalar(select(Booking).where(
        Booking.start_at == datetime(2026, 12, 1, 9, tzinfo=UTC)))
    assert follow.therapist_id == clinic.t1.id and follow.client_id == clinic.client.id
    login(client, clinic.admin)
    admin_page = client.get(f"/staff/bookings/{done.id}").get_data(as_text=True)
    assert "With another therapist" in admin_page
    assert admin_page.index("With " + clinic.t1.user.name) < admin_page.index(
        "With another therapist")
    assert _db.session.scalar(select(AuditEntry.id).where(
        AuditEntry.action == "read:recommendation")) is not None


# --- time off and closures over bookings (item 5) ---------------------------------------------


def test_time_off_over_bookings_cancel_some_with_a_message(client, clinic, db, mailbox):
    login(client, clinic.t1.user)
    saved = client.post("/therapist/time-off", data={"start_date": "2026-11-24",
                                                     "end_date": "2026-11-24"})
    assert saved.status_code == 302 and "/staff/covered/time_off/" in saved.headers["Location"]
    url = saved.headers["Location"]
    page = client.get(url).get_data(as_text=True)
    assert f'value="{clinic.fine.id}"' in page and "1 booking falls in this time" in page
    assert client.post(url, data={"action": "cancel", "message": "Sorry"}).status_code == 422
    assert client.post(url, data={"action": "cancel", "booking_ids": clinic.fine.id,
                                  "message": ""}).status_code == 422
    assert db.session.get(Booking, clinic.fine.id).status == "booked"
    done = client.post(url, data={"action": "cancel", "booking_ids": clinic.fine.id,
                                  "message": "Your therapist is away that day"})
    assert done.status_code == 302
    db.session.expire_all()
    assert db.session.get(Booking, clinic.fine.id).status == "cancelled"
    told = [m for m in mailbox.deliver() if clinic.client.email in str(m["To"])]
    assert any("away that day" in mailbox.text(m) for m in told)
    assert "No open booking falls in this time" in client.get(url).get_data(as_text=True)


def test_time_off_without_bookings_goes_back_to_hours(client, clinic):
    login(client, clinic.t1.user)
    saved = client.post("/therapist/time-off", data={"start_date": "2026-12-10",
                                                     "end_date": "2026-12-10"})
    assert saved.status_code == 302 and saved.headers["Location"].endswith("/therapist/hours")


def test_closure_over_bookings_keep_or_cancel_all(client, clinic, db):
    login(client, clinic.admin)
    saved = client.post("/admin/closures", data={"start_date": "2026-11-24",
                                                 "end_date": "2026-11-24", "reason": "Flood"})
    url = saved.headers["Location"]
    assert "/staff/covered/closure/" in url
    page = client.get(url).get_data(as_text=True)
    assert "Clinic closed Tue 24 Nov (Flood)" in page and f'value="{clinic.fine.id}"' in page
    kept = client.post(url, data={"action": "keep"})
    assert kept.status_code == 302 and "/staff/calendar" in kept.headers["Location"]
    events = client.get("/staff/calendar?date=2026-11-24").get_data(as_text=True)
    assert "booking in time off or a closure" in events  # kept: shown as a conflict
    everything = client.post(url, data={"action": "cancel_all", "message": "Flooded, sorry"})
    assert everything.status_code == 302
    db.session.expire_all()
    assert db.session.get(Booking, clinic.fine.id).status == "cancelled"


def test_covered_page_access(client, clinic, db):
    closure = db.session.scalar(select(Closure))
    off = db.session.scalar(select(HoursOverride).where(HoursOverride.therapist_id ==
                                                        clinic.t1.id))
    login(client, clinic.t2.user)
    assert client.get(f"/staff/covered/time_off/{off.id}").status_code == 404  # t1's
    assert client.get(f"/staff/covered/closure/{closure.id}").status_code == 404  # admin's
    assert client.get("/staff/covered/other/1").status_code == 404
    login(client, clinic.t1.user)
    assert client.get(f"/staff/covered/time_off/{off.id}").status_code == 200
    assert client.get("/staff/covered/time_off/99999").status_code == 404
