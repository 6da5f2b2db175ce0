"""The front desk in a real browser (issue 11): the staff calendar grid, a conflict, the admin
booking a new caller without email, drag to reschedule (and a refused drag), keyboard and
phone width. The app's clock is frozen at Monday 23 November 2026, 08:00 UTC (GMT)."""

from __future__ import annotations

import re
import time as timer
from datetime import UTC
from datetime import date
from datetime import datetime
from datetime import time
from datetime import timedelta
from types import SimpleNamespace

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from clinic_app.extensions import db
from clinic_app.models import Booking
from clinic_app.models import Closure
from clinic_app.models import HoursOverride
from clinic_app.models import User
from tests.factories import make_room
from tests.factories import make_service
from tests.factories import make_therapist
from tests.factories import make_user
from tests.factories import now_of
from tests.factories.care import add_recommendation

pytestmark = pytest.mark.e2e

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}


def _utc(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=UTC)  # November: London is UTC


def _setup(site, tag):
    """A therapist (Mon-Sat 09-12, 13-17), a room, a 60-min service, a client; the therapist
    is off all of Wednesday 25 Nov and has a booking there (a conflict) and one on Tuesday at
    10:00; the clinic is closed on Friday 27 Nov."""
    app = site.app
    therapist = make_therapist(app, name=f"Maya {tag}", email=f"maya-{tag}@example.org")
    room = make_room(app, f"Room {tag}")
    service = make_service(app, therapists=[therapist], rooms=[room], name=f"Release {tag}")
    client = make_user(app, name=f"Casey {tag}", email=f"casey-{tag}@example.com")
    db.session.add(HoursOverride(therapist_id=therapist.id, start_date=date(2026, 11, 25),
                                 end_date=date(2026, 11, 25), kind="off"))
    if not db.session.scalar(select(Closure.id)):
        db.session.add(Closure(start_date=date(2026, 11, 27), end_date=date(2026, 11, 27),
                               reason="Training"))
    ids = {}
    for name, start in (("tuesday", _utc(24, 10)), ("in_off", _utc(25, 10))):
        booking = Booking(client_id=client.id, therapist_id=therapist.id, room_id=room.id,
                          service_id=service.id, start_at=start,
                          end_at=start + timedelta(hours=1), blocked_start=start,
                          blocked_end=start + timedelta(minutes=75), status="booked",
                          price_cents=6500, created_at=now_of(app), updated_at=now_of(app),
                          late_cancel=False, cancel_reason="", sequence=0)
        db.session.add(booking)
        db.session.flush()
        ids[name] = booking.id
    out = SimpleNamespace(therapist_id=therapist.id, email=therapist.user.email,
                          service_id=service.id, name=therapist.user.name, **ids)
    db.session.commit()
    return out


def _start_of(booking_id: int) -> datetime:
    db.session.commit()  # a fresh read, and no transaction left open for the server
    value = db.session.scalar(select(Booking.start_at).where(Booking.id == booking_id))
    db.session.commit()
    return value


def test_therapist_week_grid_drag_and_refused_drag(site, new_page):
    made = _setup(site, "grid")
    # Tall enough that the whole day is on screen: a drag goes from one point to another.
    page = new_page(viewport={"width": 1280, "height": 1600})
    site.log_in(page, made.email)
    site.audit(page)  # the landing page
    page.goto(site.url("/staff/calendar?view=week&date=2026-11-23"))
    expect(page.get_by_role("heading", name="Week of 23 Nov 2026")).to_be_visible()
    site.audit(page)
    expect(page.locator(".cal-col")).to_have_count(7)
    expect(page.locator(".cal-block.cal-working").first).to_be_visible()
    expect(page.locator(".cal-break").first).to_have_text("Break")
    expect(page.locator(".cal-block.cal-time_off")).to_have_text("Time off")
    expect(page.locator(".cal-block.cal-closure")).to_have_text("Clinic closed")
    expect(page.locator(".cal-now")).to_have_count(1)
    conflict = page.locator(f'.cal-booking[data-booking-id="{made.in_off}"]')
    expect(conflict).to_have_class(re.compile("conflict"))
    expect(conflict.locator(".conflict-mark")).to_have_text("Conflict")
    expect(page.locator(".cal-conflicts")).to_contain_text("1 booking in time off or a closure")
    site.shot(page, "staff-calendar-week")

    # A refused drag (16:30 + 60 minutes runs past 17:00) snaps back with the server's reason.
    block = page.locator(f'.cal-booking[data-booking-id="{made.tuesday}"]')
    late = page.locator(f'.cal-slot[data-start="2026-11-24T16:30:00+00:00"]'
                        f'[data-therapist="{made.therapist_id}"]')
    block.drag_to(late)
    expect(page.locator("#cal-status")).to_contain_text("Not moved")
    expect(page.locator("#cal-status")).to_contain_text("working hours")
    assert _start_of(made.tuesday) == _utc(24, 10)
    expect(block).to_be_visible()
    site.audit(page)  # the refusal message and the snapped-back block

    # A good drag moves it (the page reloads with the block at 14:00).
    target = page.locator(f'.cal-slot[data-start="2026-11-24T14:00:00+00:00"]'
                          f'[data-therapist="{made.therapist_id}"]')
    with page.expect_navigation():
        block.drag_to(target)
    expect(page.locator(f'.cal-booking[data-booking-id="{made.tuesday}"] .when')
           ).to_contain_text("14:00")
    site.audit(page)
    assert _start_of(made.tuesday) == _utc(24, 14)


def test_admin_books_a_new_caller_without_email_by_keyboard(site, new_page):
    made = _setup(site, "desk")
    if not db.session.scalar(select(User.id).where(User.email == "desk-admin@example.com")):
        make_user(site.app, role="admin", email="desk-admin@example.com", name="Desk Admin")
    db.session.commit()
    page = new_page(viewport=DESKTOP)
    site.log_in(page, "desk-admin@example.com")
    site.audit(page)  # the landing page
    began = timer.monotonic()
    page.goto(site.url(f"/staff/calendar?date=2026-11-24&therapist={made.therapist_id}"))
    site.audit(page)
    slot = page.locator(f'.cal-slot[data-start="2026-11-24T13:00:00+00:00"]'
                        f'[data-therapist="{made.therapist_id}"]')
    slot.focus()  # keyboard: a free time is a link; Enter opens the booking form
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name=re.compile("^Book Tue 24 Nov 2026, 13:00"))
           ).to_be_visible()
    site.audit(page)
    page.get_by_label("Service").select_option(str(made.service_id))
    page.get_by_label("New client: name").fill("Phoebe Caller")
    page.get_by_label("Phone", exact=True).fill("07700 900321")
    page.get_by_label("Email the client a confirmation and reminders").uncheck()
    site.audit(page)  # the form filled in
    site.shot(page, "staff-book-new-caller")
    page.get_by_role("button", name="Book", exact=True).click()
    expect(page.locator(".flashes")).to_contain_text("Booked Phoebe Caller")
    expect(page.locator(".flashes")).to_contain_text("no email was sent")
    elapsed = timer.monotonic() - began
    site.audit(page)  # audited after the clock stops: the audit is not the admin's time
    assert elapsed < 60
    db.session.commit()
    caller = db.session.scalar(select(User).where(User.name == "Phoebe Caller"))
    booking = db.session.scalar(select(Booking).where(Booking.client_id == caller.id))
    assert caller.email is None and caller.phone == "07700 900321"
    assert booking.notify_client is False and booking.start_at == _utc(24, 13)
    db.session.commit()
    expect(page.locator(".cal-booking", has_text="Phoebe Caller")).to_be_visible()
    site.shot(page, "staff-calendar-admin-day")
    # The directory finds the caller by phone.
    page.goto(site.url("/staff/clients?q=07700900321"))
    expect(page.get_by_role("link", name="Phoebe Caller")).to_be_visible()
    site.audit(page)
    # The client's own page, from the directory.
    page.get_by_role("link", name="Phoebe Caller").click()
    expect(page.get_by_role("heading", name="Phoebe Caller")).to_be_visible()
    site.audit(page)


def test_phone_width_day_view_is_one_column(site, new_page):
    made = _setup(site, "phone")
    page = new_page(viewport=PHONE)
    site.log_in(page, made.email)
    site.audit(page)  # the landing page
    page.goto(site.url("/staff/calendar?date=2026-11-25"))
    expect(page.locator(".cal-col")).to_have_count(1)
    expect(page.locator(".cal-block.cal-time_off")).to_be_visible()
    site.audit(page)
    page.wait_for_load_state("load")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], width
    site.shot(page, "staff-calendar-phone")
    box = page.locator(".cal-col").bounding_box()
    assert box is not None and box["x"] + box["width"] <= PHONE["width"] + 1
    page.goto(site.url("/staff/calendar?date=2026-11-24"))
    expect(page.locator(f'.cal-booking[data-booking-id="{made.tuesday}"]')).to_be_visible()
    site.audit(page)
    assert time(10) == _start_of(made.tuesday).time()


def test_admin_phone_day_view_toolbar_fits_and_week_grid_scrolls_in_its_box(site, new_page):
    made = _setup(site, "deskphone")
    if not db.session.scalar(select(User.id).where(User.email == "phone-admin@example.com")):
        make_user(site.app, role="admin", email="phone-admin@example.com", name="Phone Admin")
    db.session.commit()
    page = new_page(viewport=PHONE)
    site.log_in(page, "phone-admin@example.com")
    site.audit(page)  # the landing page
    # All therapists: the toolbar has the therapist picker too, and still fits the phone.
    page.goto(site.url("/staff/calendar?date=2026-11-24"))
    expect(page.get_by_label("Therapist")).to_be_visible()
    site.audit(page)
    site.no_sideways_scroll(page)
    # The week of every therapist is wider than a phone: it scrolls inside its own box, which
    # takes keyboard focus, and the page itself does not scroll sideways.
    page.goto(site.url("/staff/calendar?view=week&date=2026-11-23"))
    grid = page.get_by_role("region", name="Calendar grid")
    grid.focus()
    expect(grid).to_be_focused()
    assert page.evaluate("document.querySelector('.cal-scroll').scrollWidth") > PHONE["width"]
    site.audit(page)
    site.no_sideways_scroll(page)
    page.goto(site.url(f"/staff/calendar?view=day&by=room&date=2026-11-24&therapist={made.therapist_id}"))
    expect(page.locator(".cal-col").first).to_be_visible()
    site.audit(page)
    site.no_sideways_scroll(page)


def test_therapist_books_the_follow_up_from_the_finished_session(site, new_page):
    made = _setup(site, "follow")
    done = db.session.get(Booking, made.tuesday)
    done.start_at, done.end_at = _utc(20, 10), _utc(20, 11)
    done.blocked_start, done.blocked_end = _utc(20, 10), _utc(20, 11, 15)
    done.status = "completed"
    db.session.commit()
    add_recommendation(site.app, done, earliest=date(2026, 12, 1), ideal=date(2026, 12, 2),
                       latest=date(2026, 12, 4))
    client_id = done.client_id
    db.session.commit()
    for viewport, name in ((DESKTOP, "staff-booking-followup"), (PHONE, "staff-booking-phone")):
        page = new_page(viewport=viewport)
        site.log_in(page, made.email)
        site.audit(page)  # the landing page
        page.goto(site.url(f"/staff/bookings/{made.tuesday}"))
        expect(page.get_by_role("heading", name="Book the follow-up")).to_be_visible()
        expect(page.get_by_text("Recommended window")).to_contain_text("Tue 01 Dec")
        site.audit(page)
        site.shot(page, name)
        assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
    page.get_by_role("button", name="Tue 01 Dec 09:00").click()
    expect(page.locator(".flashes")).to_contain_text("Booked Casey follow at Tue 01 Dec 09:00")
    site.audit(page)
    db.session.commit()
    booked = db.session.scalar(select(Booking).where(
        Booking.client_id == client_id, Booking.status == "booked",
        Booking.start_at == datetime(2026, 12, 1, 9, tzinfo=UTC)))
    db.session.commit()
    assert booked is not None and booked.therapist_id == made.therapist_id


def test_time_off_over_a_booking_offers_cancel_or_keep(site, new_page):
    made = _setup(site, "cover")
    page = new_page(viewport=DESKTOP)
    site.log_in(page, made.email)
    site.audit(page)  # the landing page
    page.goto(site.url("/therapist/hours"))
    site.audit(page)
    form = page.locator("form", has=page.get_by_role("button", name="Add time off"))
    form.get_by_label("First day").fill("2026-11-24")
    form.get_by_role("button", name="Add time off").click()
    expect(page.get_by_role("heading", name="Time off Tue 24 Nov")).to_be_visible()
    expect(page.get_by_text("1 booking falls in this time")).to_be_visible()
    site.audit(page)
    site.shot(page, "staff-covered")
    page.get_by_role("button", name="Keep them (conflicts)").click()
    # Kept: Tuesday's booking is now a conflict too (Wednesday's was one already).
    expect(page.locator(f'.cal-booking.conflict[data-booking-id="{made.tuesday}"]')
           ).to_be_visible()
    expect(page.locator(".cal-booking.conflict")).to_have_count(2)
    site.audit(page)
