"""Issue 12.2 in a real browser at phone width: home -> a time -> sign up at the confirm step
-> the verification link -> booked, without losing the time."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from clinic_app.extensions import db
from clinic_app.models import Booking
from clinic_app.models import User
from tests.e2e.test_browser import PHONE
from tests.e2e.test_browser import _clinic

pytestmark = pytest.mark.e2e

DESKTOP = {"width": 1280, "height": 900}


def _no_sideways_scroll(page, width):
    page.wait_for_load_state("load")  # measure the rendered page, styles applied
    scroll = page.evaluate("document.documentElement.scrollWidth")
    assert scroll <= width, f"{page.url} is {scroll}px wide on a {width}px screen"


def _to_confirm_step(site, page, service_name):
    page.goto(site.url("/"))
    site.audit(page)
    page.goto(site.url("/book"))
    site.audit(page)
    page.get_by_role("link", name=re.compile(service_name)).click()
    site.audit(page)
    page.get_by_role("link", name=re.compile("First available")).click()
    site.audit(page)
    page.get_by_role("link", name=re.compile("Tue 24 Nov")).click()
    expect(page.get_by_role("button", name=re.compile("^10:00"))).to_be_visible()
    site.audit(page)
    page.get_by_role("button", name=re.compile("^10:00")).click()
    expect(page.get_by_role("heading", name="Confirm your booking")).to_be_visible()
    site.audit(page)


def test_new_client_books_and_verifies_in_one_flow_at_phone_width(site, new_page):
    _, _, service = _clinic(site, "oneflow")
    page = new_page(viewport=PHONE, is_mobile=True, has_touch=True)
    _to_confirm_step(site, page, service.name)
    expect(page.get_by_role("button", name="I have an account — log in")).to_be_visible()
    _no_sideways_scroll(page, PHONE["width"])
    page.get_by_label("Full name").fill("Nina New")
    page.get_by_label("Email").fill("nina@example.com")
    page.get_by_label("Phone (optional)").fill("0117 496 0002")
    page.get_by_label(re.compile("^Password")).fill("a-long-browser-password")
    page.get_by_label("I have read the privacy notice").check()
    site.shot(page, "phone-confirm-signup")
    page.get_by_role("button", name="Hold this time and create my account").click()
    expect(page.get_by_role("heading", name="Check your email to finish booking")).to_be_visible()
    expect(page.get_by_text(re.compile("until 08:10"))).to_be_visible()
    site.audit(page)
    _no_sideways_scroll(page, PHONE["width"])
    site.shot(page, "phone-held")

    (link,) = site.links_to("nina@example.com", "/verify/")
    page.goto(link)
    expect(page.get_by_text("your appointment is booked")).to_be_visible()
    expect(page.get_by_role("heading", name="You're booked")).to_be_visible()
    expect(page.get_by_text(re.compile("Tuesday 24 November 2026, 10:00")).first).to_be_visible()
    site.audit(page)
    _no_sideways_scroll(page, PHONE["width"])
    user = db.session.scalar(select(User).where(User.email == "nina@example.com"))
    booking = db.session.scalar(select(Booking).where(Booking.client_id == user.id))
    assert user.email_verified_at is not None and booking.status in ("booked", "pending")
    assert booking.service_id == service.id
    db.session.commit()

    # Cancel from the confirmation email's link in a fresh browser: no log-in (issue 12.3).
    view_links = [u for u in site.links_to("nina@example.com", "/b/")]
    assert len(view_links) == 3  # view, reschedule and cancel
    stranger = new_page(viewport=PHONE, is_mobile=True, has_touch=True)
    stranger.goto(view_links[0])
    expect(stranger.get_by_text(re.compile("Tuesday 24 November 2026, 10:00"))).to_be_visible()
    site.audit(stranger)
    _no_sideways_scroll(stranger, PHONE["width"])
    site.shot(stranger, "phone-email-link")
    stranger.get_by_role("button", name="Cancel appointment").click()
    expect(stranger.get_by_role("heading", name="Your appointment is cancelled")).to_be_visible()
    site.audit(stranger)
    db.session.refresh(booking)
    assert booking.status == "cancelled"
    db.session.commit()


def test_confirm_step_for_a_visitor_at_desktop_width(site, new_page):
    _, _, service = _clinic(site, "desk")
    page = new_page(viewport=DESKTOP)
    _to_confirm_step(site, page, service.name)
    _no_sideways_scroll(page, DESKTOP["width"])
    site.shot(page, "desktop-confirm-signup")
    # The log-in button keeps the choice: back on this confirm step after logging in.
    page.get_by_role("button", name="I have an account — log in").click()
    assert "next=" in page.url
    expect(page.get_by_role("button", name="Log in")).to_be_visible()
    site.audit(page)


def test_email_link_page_at_desktop_width(site, new_page):
    _, _, service = _clinic(site, "desklink")
    page = new_page(viewport=DESKTOP)
    _to_confirm_step(site, page, service.name)
    page.get_by_label("Full name").fill("Dora Desk")
    page.get_by_label("Email").fill("dora@example.com")
    page.get_by_label(re.compile("^Password")).fill("a-long-browser-password")
    page.get_by_label("I have read the privacy notice").check()
    page.get_by_role("button", name="Hold this time and create my account").click()
    expect(page.get_by_role("heading", name="Check your email to finish booking")).to_be_visible()
    site.audit(page)
    (link,) = site.links_to("dora@example.com", "/verify/")
    page.goto(link)
    expect(page.get_by_role("heading", name="You're booked")).to_be_visible()
    site.audit(page)
    view = site.links_to("dora@example.com", "/b/")[0]
    other = new_page(viewport=DESKTOP)
    other.goto(view)
    expect(other.get_by_role("button", name="Cancel appointment")).to_be_visible()
    site.audit(other)
    _no_sideways_scroll(other, DESKTOP["width"])
    site.shot(other, "desktop-email-link")
