"""After a check-in moves the window, the next booked session outside it is flagged to the
client and the therapist, with a one-click move into the window (issue 13 item 3)."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest

from clinic_app.models import Booking
from clinic_app.services import care
from clinic_app.services import courses as course_service
from tests.factories.accounts import login
from tests.factories.booking import make_clinic
from tests.factories.booking import raw_booking
from tests.factories.care import recorded_session
from tests.factories.schedule import local

LONDON = ZoneInfo("Europe/London")


@pytest.fixture
def clinic(app):
    return make_clinic(app)


@pytest.fixture
def planned(app, clinic, db):
    """Session on Fri 20 Nov (window 22 / 24 / 28 Nov), the next one booked Tue 24th."""
    session, _ = recorded_session(app, clinic, local(2026, 11, 20, 10))
    nxt = raw_booking(app, client=clinic.client, therapist=clinic.t1, room=clinic.rooms[0],
                      service=clinic.service, start=local(2026, 11, 24, 10))
    return session, nxt


def sore_checkin(app, db, session_booking, soreness):
    care.submit_checkin(db.session, session_booking, kind="24h", soreness=soreness,
                        red_flags=[], progress=None, now=app.extensions["clock"].now())
    db.session.commit()


def test_no_flag_while_the_session_fits(app, clinic, planned, db):
    assert course_service.next_session_outside_window(
        db.session, clinic.client.id, app.extensions["clock"].now()) is None


def test_a_check_in_that_moves_earliest_flags_and_one_click_moves(app, client, clinic,
                                                                  planned, db):
    session_booking, nxt = planned
    nxt_id = nxt.id
    sore_checkin(app, db, session_booking, 9)  # review: earliest now 27 Nov
    flag = course_service.next_session_outside_window(db.session, clinic.client.id,
                                                      app.extensions["clock"].now())
    assert flag is not None and flag.booking.id == nxt_id and flag.too_early
    assert flag.suggestion is not None
    assert flag.suggestion.start.astimezone(LONDON).date() >= flag.earliest

    login(client, clinic.client)
    page = client.get("/appointments")
    assert b"earlier than the recommended earliest date" in page.data
    assert b"Move it to" in page.data

    login(client, clinic.t1.user)
    therapist_page = client.get(f"/therapist/clients/{clinic.client.id}")
    assert b"earlier than the recommended earliest date" in therapist_page.data

    login(client, clinic.client)
    response = client.post(f"/courses/move/{nxt_id}")
    assert response.status_code == 302
    db.session.expire_all()
    moved = db.session.get(Booking, nxt_id)
    assert moved.start_at.astimezone(LONDON).date() >= flag.earliest
    assert moved.status == "booked"
    assert b"earlier than the recommended" not in client.get("/appointments").data
    # Nothing left to move: a second click changes nothing.
    start = moved.start_at
    client.post(f"/courses/move/{nxt_id}")
    db.session.expire_all()
    assert db.session.get(Booking, nxt_id).start_at == start


def test_someone_elses_booking_cannot_be_moved(app, client, clinic, planned, db):
    session_booking, nxt = planned
    nxt_id, start = nxt.id, nxt.start_at
    sore_checkin(app, db, session_booking, 9)
    login(client, clinic.t2.user)  # not this booking's therapist
    assert client.post(f"/courses/move/{nxt_id}").status_code == 404
    db.session.expire_all()
    assert db.session.get(Booking, nxt_id).start_at == start
