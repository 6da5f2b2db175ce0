"""Calendar files: ICS content (parsed back with icalendar), the download route and the feed."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from icalendar import Calendar
from sqlalchemy import event
from sqlalchemy import select

from clinic_app.mail.ics import booking_calendar
from clinic_app.mail.ics import event_uid
from clinic_app.mail.ics import feed_calendar
from clinic_app.models import Therapist
from clinic_app.services.calendar import feed_url
from clinic_app.services.calendar import regenerate_feed_token
from clinic_app.services.settings import get_settings
from tests.factories import PASSWORD
from tests.factories import make_room
from tests.factories import make_service
from tests.factories import make_therapist
from tests.factories import make_user
from tests.factories.booking import make_booking

LONDON = ZoneInfo("Europe/London")
START = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)


@pytest.fixture
def world(app, db):
    """A therapist, a room, a 60-minute service, two clients, one booking for ``owner``."""
    settings = get_settings(db.session)
    settings.address = "1 Harbour Street, Bristol"
    settings.phone = "0117 496 0000"
    db.session.commit()
    therapist = make_therapist(app, name="Maya Stone", email="maya@clinic.example")
    room = make_room(app, "Room Blue")
    service = make_service(app, therapists=[therapist], rooms=[room],
                           name="Trigger point therapy 60")
    owner = make_user(app, name="Olive Owner", email="olive@example.com")
    other = make_user(app, name="Otto Other", email="otto@example.com")
    booking = make_booking(app, client=owner, therapist=therapist, service=service, room=room,
                           start=START, sequence=2)
    return {"therapist": therapist, "room": room, "service": service, "owner": owner,
            "other": other, "booking": booking, "settings": settings}


def login(client, email):
    response = client.post("/login", data={"email": email, "password": PASSWORD})
    assert response.status_code == 302, response.data
    return response


def parse(data: bytes) -> Calendar:
    return Calendar.from_ical(data)


def events(cal: Calendar) -> list:
    return list(cal.walk("VEVENT"))


# ----- ICS content -------------------------------------------------------------------------


def test_booking_calendar_request(app, db, world):
    booking = world["booking"]
    data = booking_calendar(booking, zone=LONDON, clinic=world["settings"])
    cal = parse(data)
    assert str(cal["method"]) == "REQUEST" and str(cal["version"]) == "2.0"
    (ev,) = events(cal)
    # The installation's host (CLINIC_BASE_URL http://clinic.test): no two clinics share a UID.
    assert str(ev["uid"]) == event_uid(booking) == f"booking-{booking.id}@clinic.test"
    assert int(ev["sequence"]) == 2
    assert str(ev["status"]) == "CONFIRMED"
    assert ev["dtstart"].dt == START and ev["dtend"].dt == START + timedelta(hours=1)
    assert b"DTSTART:20261124T100000Z" in data  # UTC, no floating or local time
    assert "Trigger point therapy 60" in str(ev["summary"])
    assert "Trigger Point Clinic" in str(ev["location"])
    assert "Room Blue" in str(ev["location"])
    assert str(ev["organizer"]) == "mailto:bookings@clinic.localhost"
    assert str(ev["attendee"]) == "mailto:olive@example.com"
    assert ev["attendee"].params["CN"] == "Olive Owner"
    assert "Tue 24 Nov 2026, 10:00-11:00 (Europe/London)" in str(ev["description"])


def test_booking_calendar_cancel_and_bad_method(app, db, world):
    booking = world["booking"]
    booking.status = "cancelled"
    booking.sequence = 3
    db.session.commit()
    cal = parse(booking_calendar(booking, zone=LONDON, method="CANCEL",
                                 clinic=world["settings"]))
    assert str(cal["method"]) == "CANCEL"
    (ev,) = events(cal)
    assert str(ev["status"]) == "CANCELLED"
    assert int(ev["sequence"]) == 3
    assert str(ev["uid"]) == event_uid(booking)  # same event: calendars remove it
    with pytest.raises(ValueError):
        booking_calendar(booking, zone=LONDON, method="DELETE",  # type: ignore[arg-type]
                         clinic=world["settings"])


def test_booking_calendar_uses_local_time_on_dst_day(app, db, world):
    # 29 March 2026: London springs forward; 10:00 BST is 09:00 UTC.
    start = datetime(2026, 3, 30, 9, 0, tzinfo=UTC)
    world["booking"].start_at = start
    world["booking"].end_at = start + timedelta(hours=1)
    world["booking"].blocked_start = start
    world["booking"].blocked_end = start + timedelta(minutes=75)
    db.session.commit()
    cal = parse(booking_calendar(world["booking"], zone=LONDON, clinic=world["settings"]))
    (ev,) = events(cal)
    assert ev["dtstart"].dt == start
    assert "10:00-11:00 (Europe/London)" in str(ev["description"])


def test_feed_calendar_content(app, db, world):
    booking = world["booking"]
    cancelled = make_booking(app, client=world["other"], therapist=world["therapist"],
                             service=world["service"], room=world["room"],
                             start=START + timedelta(days=1), status="cancelled", sequence=1)
    data = feed_calendar([booking, cancelled], zone=LONDON, clinic=world["settings"],
                         name="Clinic: Maya Stone")
    cal = parse(data)
    assert str(cal["x-wr-calname"]) == "Clinic: Maya Stone"
    assert b"REFRESH-INTERVAL;VALUE=DURATION:PT15M" in data
    by_uid = {str(ev["uid"]): ev for ev in events(cal)}
    assert set(by_uid) == {event_uid(booking), event_uid(cancelled)}
    assert str(by_uid[event_uid(booking)]["status"]) == "CONFIRMED"
    assert str(by_uid[event_uid(cancelled)]["status"]) == "CANCELLED"
    assert "Olive Owner" in str(by_uid[event_uid(booking)]["summary"])


def test_feed_calendar_empty_is_valid(app, db, world):
    cal = parse(feed_calendar([], zone=LONDON, clinic=world["settings"], name="Empty"))
    assert events(cal) == [] and str(cal["x-wr-calname"]) == "Empty"


# ----- GET /bookings/<id>.ics --------------------------------------------------------------


def test_owner_downloads_booking_ics(client, db, world):
    login(client, "olive@example.com")
    response = client.get(f"/bookings/{world['booking'].id}.ics")
    assert response.status_code == 200
    assert response.mimetype == "text/calendar"
    assert response.headers["Content-Disposition"].startswith("attachment;")
    (ev,) = events(parse(response.data))
    assert str(ev["uid"]) == event_uid(world["booking"])


def test_other_client_gets_404(client, db, world):
    login(client, "otto@example.com")
    assert client.get(f"/bookings/{world['booking'].id}.ics").status_code == 404
    assert client.get("/bookings/999999.ics").status_code == 404


def test_anonymous_is_sent_to_login(client, db, world):
    response = client.get(f"/bookings/{world['booking'].id}.ics")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_booking_therapist_and_admin_may_download_other_therapist_may_not(app, client, db,
                                                                          world):
    make_user(app, role="admin", email="admin@clinic.example")
    make_therapist(app, email="tom@clinic.example")
    url = f"/bookings/{world['booking'].id}.ics"
    login(client, "maya@clinic.example")
    assert client.get(url).status_code == 200
    client.post("/logout")
    login(client, "admin@clinic.example")
    assert client.get(url).status_code == 200
    client.post("/logout")
    login(client, "tom@clinic.example")
    assert client.get(url).status_code == 404


# ----- GET /calendar/<token>.ics -----------------------------------------------------------


def test_feed_by_token(client, db, world):
    therapist = world["therapist"]
    old = make_booking(client.application, client=world["other"], therapist=therapist,
                       service=world["service"], room=world["room"],
                       start=START - timedelta(days=60))
    far = make_booking(client.application, client=world["other"], therapist=therapist,
                       service=world["service"], room=world["room"],
                       start=START + timedelta(days=200))
    cancelled = make_booking(client.application, client=world["other"], therapist=therapist,
                             service=world["service"], room=world["room"],
                             start=START + timedelta(days=2), status="cancelled", sequence=1)
    other_therapist = make_therapist(client.application)
    theirs = make_booking(client.application, client=world["other"],
                          therapist=other_therapist, service=world["service"],
                          room=world["room"], start=START + timedelta(days=3))
    response = client.get(f"/calendar/{therapist.feed_token}.ics")
    assert response.status_code == 200
    assert response.mimetype == "text/calendar"
    cal = parse(response.data)
    statuses = {str(ev["uid"]): str(ev["status"]) for ev in events(cal)}
    assert statuses == {event_uid(world["booking"]): "CONFIRMED", event_uid(cancelled): "CANCELLED"}
    assert event_uid(old) not in statuses and event_uid(far) not in statuses
    assert event_uid(theirs) not in statuses
    assert "Maya Stone" in str(cal["x-wr-calname"])


def test_feed_loads_bookings_in_one_query(app, client, db, world):
    for day in range(1, 6):
        make_booking(app, client=world["other"], therapist=world["therapist"],
                     service=world["service"], room=world["room"],
                     start=START + timedelta(days=day))
    statements: list[str] = []

    def count(conn, cursor, statement, *args):  # noqa: ANN001
        if statement.lstrip().upper().startswith("SELECT"):
            statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        response = client.get(f"/calendar/{world['therapist'].feed_token}.ics")
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
    assert response.status_code == 200 and len(events(parse(response.data))) == 6
    booking_selects = [s for s in statements if "FROM bookings" in s]
    assert len(booking_selects) == 1
    assert len(statements) <= 4, statements  # therapist, bookings, settings, (login user)


def test_unknown_token_404(client, db, world):
    assert client.get("/calendar/not-a-real-token.ics").status_code == 404
    assert client.get("/calendar/.ics").status_code == 404


def test_inactive_therapist_feed_404(client, db, world):
    world["therapist"].active = False
    db.session.commit()
    assert client.get(f"/calendar/{world['therapist'].feed_token}.ics").status_code == 404


def test_regenerated_token_kills_old_url(app, client, db, world):
    therapist = world["therapist"]
    old_token = therapist.feed_token
    assert client.get(f"/calendar/{old_token}.ics").status_code == 200
    new_token = regenerate_feed_token(db.session, therapist)
    db.session.commit()
    assert new_token != old_token and len(new_token) >= 43
    assert db.session.scalar(select(Therapist.feed_token).where(
        Therapist.id == therapist.id)) == new_token
    assert client.get(f"/calendar/{old_token}.ics").status_code == 404
    assert client.get(f"/calendar/{new_token}.ics").status_code == 200
    assert feed_url(therapist) == f"http://clinic.test/calendar/{new_token}.ics"
