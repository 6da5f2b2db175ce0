"""Reporting a problem after a session, in Chromium at desktop and phone width (issue 12
item 4): the appointment page's button, the red-flag checklist, the seek-care advice."""

from __future__ import annotations

from datetime import timedelta

import pytest
from playwright.sync_api import expect

from clinic_app.extensions import db
from clinic_app.models import ProblemReport
from tests.conftest import START
from tests.e2e.conftest import PHONE
from tests.factories.booking import make_clinic
from tests.factories.care import recorded_session

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("width", ["desktop", "phone"])
def test_client_reports_a_problem_from_the_appointment_page(site, new_page, width):
    clinic = make_clinic(site.app)
    # Last Friday's session, recorded; the clock stays at Monday 08:00 (three days later).
    booking, _ = recorded_session(site.app, clinic, START - timedelta(days=3, hours=-5))
    booking_id, email = booking.id, clinic.client.email
    db.session.commit()  # read what the test needs now, so no transaction holds SQLite

    page = new_page(viewport=PHONE) if width == "phone" else new_page()
    site.log_in(page, email)
    site.audit(page)
    page.goto(site.url(f"/appointments/{booking_id}"))
    site.audit(page)
    site.no_sideways_scroll(page)
    site.shot(page, f"report-appointment-{width}")
    page.get_by_role("button", name="Report a problem").click()
    expect(page.get_by_role("heading", name="Report a problem")).to_be_visible()
    site.audit(page)
    site.no_sideways_scroll(page)
    # Nothing ticked: the form says what is missing.
    page.get_by_role("button", name="Send the report").click()
    expect(page.get_by_text("Tick at least one of the warning signs.")).to_be_visible()
    site.audit(page)
    page.get_by_label("Fever").check()
    site.shot(page, f"report-form-{width}")
    page.get_by_role("button", name="Send the report").click()
    expect(page.get_by_role("heading", name="Please seek medical advice")).to_be_visible()
    expect(page.get_by_role("alert")).to_contain_text("Fever")
    site.audit(page)
    site.no_sideways_scroll(page)
    site.shot(page, f"report-advice-{width}")
    reports = db.session.query(ProblemReport).filter_by(booking_id=booking_id).all()
    assert [r.red_flags for r in reports] == [["fever"]]
    db.session.commit()
