"""Phone-first pages: the picker (anchor and htmx, month view, grouped times, a capped
window), cancelling with a confirmation, past appointments and "book again", the client's
name and phone, the spread of times on the "your next session" card, the check-in scale."""

from __future__ import annotations

import re
from datetime import UTC
from datetime import datetime
from datetime import timedelta

from sqlalchemy import select

from clinic_app.models import User
from tests.factories.accounts import login
from tests.factories.booking import make_booking
from tests.factories.booking import make_clinic as make_care_clinic
from tests.factories.care import checkin_path
from tests.factories.care import recorded_session
from tests.factories.pages import make_clinic

# The clock: Mon 23 Nov 2026 08:00 UTC (London is on GMT). Hours 09-12 and 13-17.
TUE_10 = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)


def _times_page(client, clinic, query=""):
    return client.get(f"/book/{clinic.service.id}/times?therapist=any{query}") \
        .get_data(as_text=True)


def test_day_links_are_anchors_to_the_times_and_htmx_swaps(app, client, db):
    clinic = make_clinic(app)
    page = _times_page(client, clinic)
    links = re.findall(r'<a href="([^"]+)" hx-get="([^"]+)" hx-target="#picker"', page)
    assert len(links) == 12  # 14 days, two Sundays without openings
    for href, hx_get in links:
        assert href == f"{hx_get}#picker-times" and "day=" in hx_get
    assert 'hx-select="#picker"' in page and 'hx-push-url="true"' in page
    # The first visit does not move focus; a chosen day focuses its times.
    assert 'id="picker-times" tabindex="-1" >' in page
    chosen = _times_page(client, clinic, "&day=2026-11-24")
    assert 'id="picker-times" tabindex="-1" autofocus>' in chosen


def test_times_are_grouped_morning_afternoon(app, client, db):
    clinic = make_clinic(app)
    page = _times_page(client, clinic, "&day=2026-11-24")
    morning, afternoon = page.index(">Morning</h3>"), page.index(">Afternoon</h3>")
    assert morning < page.index(">09:00") < page.index(">11:00") < afternoon \
        < page.index(">13:00") < page.index(">16:00")
    assert ">Evening</h3>" not in page  # nothing after 17:00: no empty group


def test_month_view_marks_the_days_with_free_times(app, client, db):
    clinic = make_clinic(app)
    page = _times_page(client, clinic, "&view=month")
    assert '<table class="month">' in page and "November 2026" in page
    # Today (Mon 23) to Mon 30: seven days with openings, Sunday 29 without.
    day_links = re.findall(r'href="[^"]*day=(2026-11-\d\d)[^"]*view=month[^"]*#picker-times"',
                           page)
    assert day_links == [f"2026-11-{d}" for d in (23, 24, 25, 26, 27, 28, 30)]
    assert "Sunday </span>29<span class=\"visually-hidden\"> November: no openings" in page
    assert re.search(r'href="[^"]*first=2026-12-01[^"]*view=month[^"]*" rel="next"', page)
    december = _times_page(client, clinic, "&view=month&first=2026-12-01")
    assert "December 2026" in december and "2026-12-31" in december
    # A month in the past shows this month instead.
    past = _times_page(client, clinic, "&view=month&first=2026-01-01")
    assert "November 2026" in past


def test_until_caps_the_window_and_is_kept_in_links(app, client, db):
    clinic = make_clinic(app)
    page = _times_page(client, clinic, "&first=2026-11-24&until=2026-11-26")
    days = re.findall(r'day=(2026-\d\d-\d\d)[^"]*until=2026-11-26[^"]*#picker-times', page)
    assert days == ["2026-11-24", "2026-11-25", "2026-11-26"]
    assert 'rel="next"' not in page and "end of your recommended window" in page
    # A day past the cap is not offered, even when asked for.
    capped = _times_page(client, clinic, "&first=2026-11-24&until=2026-11-26&day=2026-11-28")
    assert "Times on Tuesday 24 November" in capped
    # A cap already in the past limits nothing.
    stale = _times_page(client, clinic, "&until=2026-11-01")
    assert len(re.findall(r"#picker-times\" hx-get", stale)) == 12 and 'rel="next"' in stale


def test_cancel_asks_first_and_past_appointments_open_with_book_again(app, client, db):
    clinic = make_clinic(app)
    upcoming = make_booking(app, client=clinic.client, service=clinic.service,
                            therapist=clinic.therapist, room=clinic.room, start=TUE_10)
    past = make_booking(app, client=clinic.client, service=clinic.service,
                        therapist=clinic.therapist, room=clinic.room,
                        start=TUE_10 - timedelta(days=14), status="completed")
    login(client, clinic.client)
    page = client.get(f"/appointments/{upcoming.id}").get_data(as_text=True)
    assert '<details class="confirm-cancel">' in page
    assert "Cancel appointment…</summary>" in page and "Yes, cancel it" in page
    assert "Book again" not in page
    listing = client.get("/appointments").get_data(as_text=True)
    assert f'href="/appointments/{past.id}"' in listing
    old = client.get(f"/appointments/{past.id}").get_data(as_text=True)
    assert "Book again" in old and "Cancel appointment" not in old
    assert f"/book/{clinic.service.id}/times?therapist={clinic.therapist.id}" in old
    # A therapist who no longer works: book again with the first available.
    clinic.therapist.active = False
    db.session.commit()
    old = client.get(f"/appointments/{past.id}").get_data(as_text=True)
    assert f"/book/{clinic.service.id}/times?therapist=any" in old
    # Another client's past appointment stays hidden.
    login(client, clinic.other_client)
    assert client.get(f"/appointments/{past.id}").status_code == 404


def test_a_cancel_refused_opens_the_question_again(app, client, db):
    clinic = make_clinic(app)
    booking = make_booking(app, client=clinic.client, service=clinic.service,
                           therapist=clinic.therapist, room=clinic.room, start=TUE_10)
    login(client, clinic.client)
    response = client.post(f"/appointments/{booking.id}/cancel", data={"reason": "x" * 600})
    assert response.status_code == 422
    assert '<details class="confirm-cancel" open>' in response.get_data(as_text=True)


def test_client_edits_name_and_phone(app, client, db):
    clinic = make_clinic(app)
    login(client, clinic.client)
    page = client.get("/account/").get_data(as_text=True)
    assert 'value="Casey Client"' in page and "Name and phone" in page
    response = client.post("/account/details", data={"cd-name": "  Casey Newname ",
                                                      "cd-phone": "07700 900123"})
    assert response.status_code == 302
    user = db.session.get(User, clinic.client.id)
    db.session.refresh(user)
    assert (user.name, user.phone) == ("Casey Newname", "07700 900123")
    # A blank phone removes it.
    client.post("/account/details", data={"cd-name": "Casey Newname", "cd-phone": ""})
    db.session.refresh(user)
    assert user.phone is None


def test_contact_details_refused_keep_the_old_ones(app, client, db):
    clinic = make_clinic(app)
    login(client, clinic.client)
    response = client.post("/account/details", data={"cd-name": "   ", "cd-phone": "1" * 41})
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "Enter your name." in page and "40 characters" in page
    user = db.session.scalar(select(User).where(User.id == clinic.client.id))
    db.session.refresh(user)
    assert user.name == "Casey Client" and user.phone is None


def test_next_session_card_spreads_times_and_links_the_capped_picker(app, client, db, clock):
    clinic = make_care_clinic(app)
    booking, _ = recorded_session(app, clinic, datetime(2026, 11, 23, 13, 0, tzinfo=UTC),
                                  intensity=6, soreness=4)
    login(client, clinic.client)
    page = client.get("/appointments").get_data(as_text=True)
    assert "Your next session" in page
    card = page[page.index("Your next session"):page.index("<h2>Upcoming")]
    days = re.findall(r'<h3 class="time-group" id="offer-\d">([^<]+)', card)
    assert 2 <= len(days) <= 4
    assert "ideal day" in card.split("</h3>")[0]  # the ideal day comes first
    for block in card.split('<h3 class="time-group"')[1:]:
        times = re.findall(r">(\d\d:\d\d)", block)
        assert 1 <= len(times) <= 3 and len(set(times)) == len(times)
        if len(times) == 3:
            assert times[0] < "12:00" <= times[-1]  # spread over the day, not one morning
    link = re.search(r'href="(/book/\d+/times\?[^"]+)">See every time in this window', card)
    assert link and "until=" in link.group(1) and "first=" in link.group(1)


def test_check_in_soreness_is_one_fieldset_scale(app, client, db, clock):
    clinic = make_care_clinic(app)
    booking, _ = recorded_session(app, clinic, datetime(2026, 11, 23, 13, 0, tzinfo=UTC))
    clock.set(booking.end_at + timedelta(hours=24))
    page = client.get(checkin_path(app, booking)).get_data(as_text=True)
    scale = page[page.index('<fieldset class="scale">'):]
    scale = scale[:scale.index("</fieldset>")]
    assert "<legend>How sore are you today?" in scale
    assert len(re.findall(r'type="radio"', scale)) == 11 and "<ul" not in scale
    assert '<fieldset class="choices">\n  <legend>Do you have any of these?' in page
