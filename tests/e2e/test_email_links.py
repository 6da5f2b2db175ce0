"""Acting from an email without logging in, in Chromium at phone and desktop width (issue 12
items 3 and 4): reschedule from a booking email's link, then the old link is dead; report a
problem from a post-session email's link. Every page shown is audited with axe-core."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from playwright.sync_api import expect

from clinic_app.extensions import db
from clinic_app.models import Booking
from clinic_app.models import ProblemReport
from clinic_app.services import booking as booking_service
from tests.conftest import START
from tests.e2e.conftest import PHONE
from tests.factories.booking import make_clinic
from tests.factories.care import recorded_session
from tests.factories.schedule import local

pytestmark = pytest.mark.e2e

DESKTOP = {"width": 1280, "height": 900}


def _page(new_page, width):
    if width == "phone":
        return new_page(viewport=PHONE, is_mobile=True, has_touch=True)
    return new_page(viewport=DESKTOP)


@pytest.mark.parametrize("width", ["phone", "desktop"])
def test_reschedule_from_the_email_link_without_logging_in(site, new_page, width):
    clinic = make_clinic(site.app)
    booking = booking_service.book(db.session, client=clinic.client,
                                   service_id=clinic.service.id, start=local(2026, 11, 24, 10),
                                   now=START, therapist_id=clinic.t1.id)
    booking_id, email = booking.id, clinic.client.email
    db.session.commit()  # read what the test needs first, so no transaction holds SQLite
    (link,) = site.links_to(email, "/reschedule")

    page = _page(new_page, width)
    page.goto(link)
    expect(page.get_by_role("heading", name=re.compile("^Move your"))).to_be_visible()
    site.audit(page)
    site.no_sideways_scroll(page)
    page.get_by_role("link", name=re.compile("Wed 25 Nov")).click()
    expect(page.get_by_role("heading", name="Times on Wednesday 25 November")).to_be_visible()
    site.audit(page)
    site.shot(page, f"email-reschedule-{width}")
    page.get_by_role("button", name=re.compile("^14:00")).click()
    expect(page.get_by_role("heading", name="Move to this time?")).to_be_visible()
    site.audit(page)
    site.no_sideways_scroll(page)
    site.shot(page, f"email-reschedule-confirm-{width}")
    page.get_by_role("button", name="Move my appointment").click()
    expect(page.get_by_text("Your appointment has moved")).to_be_visible()
    expect(page.get_by_text(re.compile("Wednesday 25 November 2026, 14:00"))).to_be_visible()
    site.audit(page)
    site.no_sideways_scroll(page)
    site.shot(page, f"email-rescheduled-{width}")

    moved = db.session.get(Booking, booking_id)
    start, sequence = moved.start_at, moved.sequence
    db.session.commit()
    assert start == local(2026, 11, 25, 14) and sequence == 1
    # The old link is dead: a clear page, not an error.
    page.goto(link)
    expect(page.get_by_role("heading", name="This link does not work")).to_be_visible()
    site.audit(page)
    site.no_sideways_scroll(page)
    site.shot(page, f"email-link-dead-{width}")
    # The change email carries a new reschedule link that works.
    new_links = [u for u in site.links_to(email, "/reschedule") if u != link]
    assert len(new_links) == 1
    page.goto(new_links[0])
    expect(page.get_by_role("heading", name=re.compile("^Move your"))).to_be_visible()
    site.audit(page)


@pytest.mark.parametrize("width", ["phone", "desktop"])
def test_report_a_problem_from_a_post_session_email_without_logging_in(site, new_page, width):
    clinic = make_clinic(site.app)
    # Last Friday's session, recorded; its post-session emails are due (the clock: Monday).
    booking, _ = recorded_session(site.app, clinic, START - timedelta(days=3, hours=-5))
    booking_id, email = booking.id, clinic.client.email
    db.session.commit()  # read what the test needs first, so no transaction holds SQLite
    # Aftercare and the 24 h check-in are both due; they carry the same link.
    (link,) = set(site.links_to(email, "/report"))

    page = _page(new_page, width)
    page.goto(link)
    expect(page.get_by_role("heading", name="Report a problem")).to_be_visible()
    site.audit(page)
    site.no_sideways_scroll(page)
    page.get_by_label("Fever").check()
    site.shot(page, f"email-report-{width}")
    page.get_by_role("button", name="Send the report").click()
    expect(page.get_by_role("heading", name="Please seek medical advice")).to_be_visible()
    expect(page.get_by_role("alert")).to_contain_text("Fever")
    site.audit(page)
    site.no_sideways_scroll(page)
    reports = db.session.query(ProblemReport).filter_by(booking_id=booking_id).all()
    assert [r.red_flags for r in reports] == [["fever"]]
    db.session.commit()
