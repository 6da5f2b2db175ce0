"""The admin dashboard's continuity panel (issue 13 item 4): where follow-ups landed
relative to the window current when they were booked, and a 12-week chart."""

from __future__ import annotations

from datetime import date
from zoneinfo import ZoneInfo

import pytest

from clinic_app.services.continuity import continuity_panel
from tests.factories import make_user
from tests.factories.accounts import login
from tests.factories.booking import make_clinic
from tests.factories.booking import raw_booking
from tests.factories.care import recorded_session
from tests.factories.schedule import local

LONDON = ZoneInfo("Europe/London")
WEEK = date(2026, 11, 23)


@pytest.fixture
def clinic(app):
    return make_clinic(app)


def follow_up(app, clinic, client, start):
    return raw_booking(app, client=client, therapist=clinic.t1, room=clinic.rooms[0],
                       service=clinic.service, start=start)


def test_follow_ups_by_window(app, clinic, db):
    # Each client: a session on Fri 20 Nov, soreness 2 -> window 22 / 24 / 28 Nov.
    inside, early, late = clinic.client, make_user(app), make_user(app)
    for person, hour in ((inside, 9), (early, 13), (late, 15)):
        recorded_session(app, clinic, local(2026, 11, 20, hour), client=person, soreness=2)
    follow_up(app, clinic, inside, local(2026, 11, 25, 10))
    # Booked before the window opened (the 21st is before earliest): "before earliest".
    follow_up(app, clinic, early, local(2026, 11, 21, 13))
    follow_up(app, clinic, late, local(2026, 11, 30, 10))  # next week: after latest
    # A first visit with no recommendation is not a follow-up.
    follow_up(app, clinic, make_user(app), local(2026, 11, 26, 10))

    panel = continuity_panel(db.session, WEEK, LONDON)
    assert (panel.current.inside, panel.current.before_earliest,
            panel.current.after_latest) == (1, 0, 0)
    weeks = dict(panel.weeks)
    assert len(panel.weeks) == 12 and panel.weeks[-1][0] == WEEK
    # The 21st is in the week of 16 Nov.
    assert weeks[date(2026, 11, 16)].before_earliest == 1
    later = continuity_panel(db.session, date(2026, 11, 30), LONDON)
    assert later.current.after_latest == 1 and later.current.share(1) == 1.0


def test_no_follow_ups_gives_no_share(db):
    panel = continuity_panel(db.session, WEEK, LONDON)
    assert panel.current.total == 0 and panel.current.share(0) is None


def test_the_dashboard_shows_the_panel(app, client, clinic):
    recorded_session(app, clinic, local(2026, 11, 20, 10), soreness=2)
    follow_up(app, clinic, clinic.client, local(2026, 11, 25, 10))
    login(client, clinic.admin)
    page = client.get("/admin/?week=2026-11-23")
    assert page.status_code == 200
    assert b"Continuity" in page.data and b"1 of 1 follow-ups" in page.data
    assert b"continuity-title" in page.data
