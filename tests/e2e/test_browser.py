"""The whole jobs of each role, in a real browser (Chromium) against a live server."""

from __future__ import annotations

import re
from datetime import UTC
from datetime import datetime
from datetime import time
from types import SimpleNamespace

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from clinic_app.extensions import db
from clinic_app.models import Booking
from tests.e2e.conftest import PHONE
from tests.factories import make_room
from tests.factories import make_service
from tests.factories import make_therapist
from tests.factories import make_user

pytestmark = pytest.mark.e2e



def _plain(**objects):
    """Ids and names of freshly made rows, read now: touching an expired ORM attribute later
    would open a transaction in the test thread, and on SQLite that holds the write lock the
    live server needs."""
    out = SimpleNamespace(**{k: SimpleNamespace(id=v.id, name=getattr(v, "name", None))
                             for k, v in objects.items()})
    db.session.commit()
    return out


def _clinic(site, tag):
    """A therapist, a room and a service for one test (names unique per test)."""
    therapist = make_therapist(site.app, name=f"Maya {tag}", email=f"maya-{tag}@example.org")
    room = make_room(site.app, f"Room {tag}")
    service = make_service(site.app, therapists=[therapist], rooms=[room],
                           name=f"Trigger point {tag}", price_cents=6500)
    made = _plain(therapist=therapist, room=room, service=service)
    return made.therapist, made.room, made.service


def _pick_first_time(page):
    """On a picker page: the selected day's first time."""
    expect(page.get_by_role("heading", name=re.compile("^Times on"))).to_be_visible()
    page.locator("ul.slots a").first.click()


def test_client_journey_signup_to_cancel(site, new_page):
    _, _, service = _clinic(site, "journey")
    page = new_page()
    page.goto(site.url("/"))
    site.audit(page)
    site.shot(page, "home")
    page.get_by_role("button", name="Sign up").click()
    site.audit(page)
    page.get_by_label("Full name").fill("Casey Browser")
    page.get_by_label("Email").fill("casey@example.com")
    page.get_by_label("Password").fill("a-long-browser-password")
    page.get_by_label("I have read the privacy notice").check()
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("heading", name="Confirm your email")).to_be_visible()
    site.audit(page)

    # The admin reads the dev mailbox in another browser (its own cookies).
    make_user(site.app, role="admin", email="admin@example.com", name="Admin")
    site.deliver_mail()
    admin = new_page()
    site.log_in(admin, "admin@example.com")
    site.audit(admin)
    admin.goto(site.url("/dev/mailbox"))
    site.audit(admin)
    admin.get_by_role("row", name=re.compile("casey@example.com")).get_by_role("link").first \
        .click()
    site.audit(admin)
    link = admin.locator("a[href*='/verify/']").first.get_attribute("href")
    assert link and link.startswith(site.server.base_url)

    page.goto(link)
    expect(page.get_by_text("Your email is confirmed")).to_be_visible()
    site.audit(page)
    site.log_in(page, "casey@example.com", "a-long-browser-password")
    expect(page.get_by_role("heading", name="My appointments")).to_be_visible()
    site.audit(page)

    # Book: service -> first available -> day -> time -> confirm -> done.
    page.get_by_role("link", name="Book", exact=True).click()
    site.audit(page)
    page.get_by_role("link", name=re.compile(service.name)).click()
    site.audit(page)
    page.get_by_role("link", name=re.compile("First available")).click()
    site.audit(page)
    page.get_by_role("link", name=re.compile("Tue 24 Nov")).click()
    expect(page.get_by_text("Times are shown in Europe/London").first).to_be_visible()
    site.audit(page)
    site.shot(page, "client-book-times")
    page.get_by_role("button", name=re.compile("^10:00")).click()
    expect(page.get_by_text("£65.00, paid at the clinic")).to_be_visible()
    expect(page.get_by_text("Cancellation policy")).to_be_visible()
    expect(page.get_by_role("link", name="health form")).to_be_visible()
    site.audit(page)
    site.shot(page, "client-book-confirm")
    page.get_by_role("button", name="Book this appointment").click()
    expect(page.get_by_role("heading", name="You're booked")).to_be_visible()
    expect(page.get_by_role("button", name="Add to calendar (.ics)")).to_be_visible()
    site.audit(page)
    site.shot(page, "client-book-done")

    # Reschedule to Thursday with the same picker.
    page.get_by_role("link", name="My appointments").first.click()
    site.audit(page)
    page.get_by_role("link", name=re.compile("Tue 24 Nov 2026, 10:00")).click()
    site.audit(page)
    page.get_by_role("button", name="Reschedule").click()
    site.audit(page)
    page.get_by_role("link", name=re.compile("Thu 26 Nov")).click()
    site.audit(page)
    page.get_by_role("button", name=re.compile("^14:00")).click()
    site.audit(page)
    page.get_by_role("button", name="Move my appointment").click()
    expect(page.get_by_text("Your appointment has moved")).to_be_visible()
    expect(page.get_by_text("Thursday 26 November 2026, 14:00")).to_be_visible()
    site.audit(page)

    # Fill in the health form, then cancel.
    page.get_by_role("link", name="Health intake").click()
    site.audit(page)
    for radio in page.locator("input[type=radio][value=no]").all():
        radio.check()
    page.get_by_label(re.compile("Anything else")).fill("Stiff left shoulder")
    site.shot(page, "client-intake")
    page.get_by_role("button", name="Save my health form").click()
    expect(page.get_by_text("your health form is saved")).to_be_visible()
    site.audit(page)
    site.shot(page, "client-appointments")
    page.get_by_role("link", name=re.compile("Thu 26 Nov 2026, 14:00")).click()
    site.audit(page)
    # Cancelling asks first: the button opens the question, a second button confirms.
    page.get_by_role("button", name="Cancel appointment…").click()
    expect(page.get_by_text("Cancel your appointment on Thursday 26 November")).to_be_visible()
    site.audit(page)
    page.get_by_role("button", name="Yes, cancel it").click()
    expect(page.get_by_text("Your appointment is cancelled")).to_be_visible()
    expect(page.get_by_text("No upcoming appointments")).to_be_visible()
    site.audit(page)
    booking = db.session.scalar(select(Booking).where(Booking.service_id == service.id))
    assert booking.status == "cancelled" and booking.late_cancel is False
    assert booking.start_at == datetime(2026, 11, 26, 14, 0, tzinfo=UTC)
    db.session.commit()


def test_therapist_sets_hours_then_sees_booking_in_week(site, new_page):
    therapist = make_therapist(site.app, name="Theo Hours", email="theo@example.org",
                               hours={0: [(time(9), time(10))]})
    room = make_room(site.app, "Room hours")
    service = make_service(site.app, therapists=[therapist], rooms=[room], name="Hours test")
    make_user(site.app, name="Wendy Week", email="wendy@example.com")
    made = _plain(therapist=therapist, service=service)
    therapist, service = made.therapist, made.service
    page = new_page()
    site.log_in(page, "theo@example.org")
    expect(page.get_by_role("heading", name=re.compile("Monday 23 November 2026"))).to_be_visible()
    site.audit(page)
    page.get_by_role("link", name="Hours").click()
    site.audit(page)
    # Overlapping ranges are refused with a message next to the day.
    page.get_by_label("Wednesday").fill("09:00-13:00, 12:00-17:00")
    page.get_by_role("button", name="Save hours").click()
    expect(page.get_by_text("overlaps")).to_be_visible()
    expect(page.get_by_label("Wednesday")).to_have_value("09:00-13:00, 12:00-17:00")
    site.audit(page)
    page.get_by_label("Wednesday").fill("09:00-12:00, 13:00-17:00")
    page.get_by_label("Thursday").fill("10:00-16:00")
    page.get_by_role("button", name="Save hours").click()
    expect(page.get_by_text("Your working hours are saved")).to_be_visible()
    site.audit(page)
    site.shot(page, "therapist-hours")

    # A client books Wednesday 13:00 through the pages.
    other = new_page()
    site.log_in(other, "wendy@example.com")
    site.audit(other)
    other.goto(site.url(f"/book/{service.id}/times?therapist={therapist.id}&day=2026-11-25"))
    site.audit(other)
    other.get_by_role("button", name=re.compile("^13:00")).click()
    site.audit(other)
    other.get_by_role("button", name="Book this appointment").click()
    expect(other.get_by_role("heading", name="You're booked")).to_be_visible()
    site.audit(other)

    page.get_by_role("link", name="Week").click()
    wednesday = page.locator("section", has=page.get_by_role("heading", name="Wed 25 Nov"))
    expect(wednesday.get_by_text("Wendy Week")).to_be_visible()
    expect(wednesday.get_by_text("first visit")).to_be_visible()
    site.audit(page)
    site.shot(page, "therapist-week")
    wednesday.get_by_role("link", name=re.compile("Wendy Week")).click()
    expect(page.get_by_text("has not filled in the health form")).to_be_visible()
    site.audit(page)
    site.shot(page, "therapist-booking")


def test_admin_creates_a_service_a_client_books(site, new_page):
    make_therapist(site.app, name="Ines Admin-test", email="ines@example.org")
    make_room(site.app, "Room admin")
    make_user(site.app, role="admin", email="boss@example.com", name="Boss")
    make_user(site.app, name="Carl Client", email="carl@example.com")
    db.session.commit()
    admin = new_page()
    site.log_in(admin, "boss@example.com")
    expect(admin.get_by_role("heading", name=re.compile("The week of"))).to_be_visible()
    site.audit(admin)
    site.shot(admin, "admin-dashboard")
    admin.get_by_role("link", name="Services").click()
    site.audit(admin)
    admin.get_by_role("button", name="New service").click()
    site.audit(admin)
    admin.get_by_label("Name").fill("Neck release 45")
    admin.get_by_label("Length (minutes)").fill("45")
    admin.get_by_label("Price (£)").fill("52.50")
    admin.get_by_label("Ines Admin-test").check()
    admin.get_by_role("button", name="Save service").click()
    # No room chosen: refused next to the field, everything typed kept.
    expect(admin.get_by_text("Choose at least one room")).to_be_visible()
    expect(admin.get_by_label("Name")).to_have_value("Neck release 45")
    site.audit(admin)
    admin.get_by_label("Room admin").check()
    site.shot(admin, "admin-service-form")
    admin.get_by_role("button", name="Save service").click()
    expect(admin.get_by_text("Saved the service")).to_be_visible()
    site.audit(admin)

    page = new_page()
    site.log_in(page, "carl@example.com")
    site.audit(page)
    page.get_by_role("link", name="Book", exact=True).click()
    site.audit(page)
    page.get_by_role("link", name=re.compile("Neck release 45")).click()
    site.audit(page)
    page.get_by_role("link", name=re.compile("Ines Admin-test")).click()
    site.audit(page)
    _pick_first_time(page)
    expect(page.get_by_text("£52.50")).to_be_visible()
    site.audit(page)
    page.get_by_role("button", name="Book this appointment").click()
    expect(page.get_by_role("heading", name="You're booked")).to_be_visible()
    site.audit(page)

    admin.get_by_role("link", name="Bookings").click()
    expect(admin.get_by_role("cell", name="Carl Client")).to_be_visible()
    site.audit(admin)
    site.shot(admin, "admin-bookings")
    admin.get_by_role("link", name="Settings").click()
    site.audit(admin)
    site.shot(admin, "admin-settings")


def test_booking_path_at_phone_width(site, new_page):
    _, _, service = _clinic(site, "phone")
    make_user(site.app, name="Pat Phone", email="pat@example.com")
    db.session.commit()
    page = new_page(viewport=PHONE, is_mobile=True, has_touch=True)
    site.log_in(page, "pat@example.com")
    site.audit(page)
    page.goto(site.url("/book"))
    site.audit(page)
    page.get_by_role("link", name=re.compile(service.name)).click()
    site.audit(page)
    page.get_by_role("link", name=re.compile("First available")).click()

    expect(page.get_by_role("heading", name=re.compile("^Times on"))).to_be_visible()
    site.no_sideways_scroll(page)  # the day and time picker
    site.audit(page)
    _pick_first_time(page)
    expect(page.get_by_role("heading", name="Confirm your booking")).to_be_visible()
    site.no_sideways_scroll(page)
    site.audit(page)
    site.shot(page, "phone-confirm")
    page.get_by_role("button", name="Book this appointment").click()
    expect(page.get_by_role("heading", name="You're booked")).to_be_visible()
    site.no_sideways_scroll(page)
    site.audit(page)
    page.goto(site.url(f"/book/{service.id}/times?therapist=any"))
    site.no_sideways_scroll(page)
    site.audit(page)
    site.shot(page, "phone-times")


def test_phone_day_choice_brings_times_into_view_and_focus(site, new_page):
    _, _, service = _clinic(site, "focus")
    make_user(site.app, name="Fran Focus", email="fran@example.com")
    db.session.commit()
    page = new_page(viewport=PHONE, is_mobile=True, has_touch=True)
    site.log_in(page, "fran@example.com")
    # The header is compact: the links sit in a menu that opens without JavaScript.
    header = page.evaluate("document.querySelector('header').getBoundingClientRect().height")
    assert header < 100, f"the header takes {header}px at 390px"
    page.get_by_text("Menu", exact=True).click()
    expect(page.get_by_role("link", name="Book", exact=True)).to_be_visible()
    site.audit(page)
    page.goto(site.url(f"/book/{service.id}/times?therapist=any"))
    site.audit(page)
    page.get_by_role("link", name=re.compile("^Wed 25 Nov")).click()
    heading = page.get_by_role("heading", name="Times on Wednesday 25 November")
    expect(heading).to_be_focused()
    expect(heading).to_be_in_viewport()
    expect(page.get_by_role("heading", name="Morning")).to_be_visible()
    assert "day=2026-11-25" in page.url  # htmx pushed the address: back and reload work
    site.audit(page)
    site.shot(page, "phone-day-times")
    # Without JavaScript the same link is a plain page load with an anchor to the times.
    link = page.get_by_role("link", name=re.compile("^Thu 26 Nov"))
    href = link.get_attribute("href")
    assert href and href.endswith("#picker-times")
    page.goto(site.url(href))
    expect(page.get_by_role("heading", name="Times on Thursday 26 November")).to_be_in_viewport()
    assert page.evaluate("window.scrollY") > 0  # scrolled down to them
    site.audit(page)
    # The month view marks the days with free times.
    page.get_by_role("link", name="Show the whole month").click()
    expect(page.get_by_role("table")).to_be_visible()
    expect(page.get_by_role("link", name=re.compile("^Thursday 26 November \\d+ times"))) \
        .to_be_visible()
    site.audit(page)
    site.shot(page, "phone-month")
