"""A newcomer's first look at the demo, in Chromium: the demo client's course at phone width
(the next-session card, a past session, the waiting check-in email and its 0-10 scale, the
account page), the therapist's soreness trend and the admin's dashboard at 390 px."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from clinic_app.extensions import db
from clinic_app.models import User
from clinic_app.services import demo
from tests.e2e.conftest import PHONE

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def seeded(site):
    demo.seed(db.session, site.app.extensions["clock"].now())
    db.session.commit()
    return site


def test_demo_client_course_at_phone_width(seeded, new_page):
    site = seeded
    page = new_page(viewport=PHONE, is_mobile=True, has_touch=True)
    site.log_in(page, demo.DEMO_CLIENT, demo.DEMO_PASSWORD)
    expect(page.get_by_role("heading", name="Your next session")).to_be_visible()
    expect(page.get_by_text(re.compile("recommends your next session between"))).to_be_visible()
    expect(page.get_by_text("ideal day")).to_be_visible()
    site.no_sideways_scroll(page)
    site.audit(page)
    site.shot(page, "phone-appointments")
    # The window's link opens the picker capped to the window.
    page.get_by_role("link", name="See every time in this window").click()
    expect(page.get_by_text("the end of your recommended window")).to_be_visible()
    site.no_sideways_scroll(page)
    site.audit(page)
    page.go_back()
    site.audit(page)
    # A past session opens, with "book again".
    page.get_by_role("link", name=re.compile(r"\d\d:\d\d$")).last.click()
    expect(page.get_by_text("completed")).to_be_visible()
    site.audit(page)
    page.get_by_role("button", name="Book again").click()
    expect(page.get_by_role("heading", name=re.compile("with Maya Patel"))).to_be_visible()
    site.audit(page)
    # Name and phone on the account page.
    page.goto(site.url("/account/"))
    page.get_by_label("Phone (optional)").fill("07700 900456")
    page.get_by_role("button", name="Save name and phone").click()
    expect(page.get_by_text("Your name and phone number are saved")).to_be_visible()
    expect(page.get_by_label("Phone (optional)")).to_have_value("07700 900456")
    site.no_sideways_scroll(page)
    site.audit(page)
    site.shot(page, "phone-account")

    # The check-in email waiting in the mailbox: its link, the scale, the answer.
    links = site.links_to(demo.DEMO_CLIENT, "/check-in/")
    assert links, "the demo's check-in email is not in the mailbox"
    page.goto(links[0])
    scale = page.get_by_role("group", name=re.compile("How sore are you today"))
    expect(scale).to_be_visible()
    boxes = [scale.get_by_role("radio", name=str(n), exact=True).bounding_box() for n in (0, 10)]
    assert boxes[0] and boxes[1] and abs(boxes[0]["y"] - boxes[1]["y"]) < 2  # one row
    site.no_sideways_scroll(page)
    site.audit(page)
    site.shot(page, "phone-checkin")
    scale.get_by_role("radio", name="2", exact=True).check()
    page.get_by_role("button", name="Send my answers").click()
    expect(page.get_by_text(re.compile("[Tt]hank you"))).to_be_visible()
    site.audit(page)


def test_demo_therapist_trend_and_admin_dashboard(seeded, new_page):
    site = seeded
    page = new_page()
    site.log_in(page, "maya@clinic.example", demo.DEMO_PASSWORD)
    site.audit(page)
    page.get_by_role("link", name="Week", exact=True).click()
    expect(page.get_by_text(re.compile("|".join(n for _, n in demo.OTHER_CLIENTS))).first) \
        .to_be_visible()  # the coming week is booked
    site.audit(page)
    client_id = db.session.scalar(select(User.id).where(User.email == demo.DEMO_CLIENT))
    db.session.commit()  # end the read: SQLite's write lock stays free for the live server
    page.goto(site.url(f"/therapist/clients/{client_id}"))
    expect(page.get_by_role("img", name=re.compile("Next-day soreness"))).to_be_visible()
    site.audit(page)
    site.shot(page, "therapist-client-trend")

    admin = new_page(viewport=PHONE, is_mobile=True, has_touch=True)
    site.log_in(admin, "admin@clinic.example", demo.DEMO_PASSWORD)
    expect(admin.get_by_role("heading", name=re.compile("The week of"))).to_be_visible()
    site.no_sideways_scroll(admin)
    site.audit(admin)
    site.shot(admin, "phone-admin-dashboard")
