"""The admin dashboard's continuity panel in Chromium, at 1280 and 390 px wide: 12 weeks of
follow-ups, of rebooking prompts and recalls and of waitlist offers, the week chosen with the
week chooser, the chart and its table, and a bad week answered with a message on the chooser."""

from __future__ import annotations

import re
from datetime import UTC
from datetime import date
from datetime import datetime
from datetime import timedelta

import pytest
from playwright.sync_api import expect

from clinic_app.extensions import db
from tests.conftest import START
from tests.e2e.conftest import PHONE
from tests.factories import make_booking
from tests.factories import make_user
from tests.factories.booking import make_clinic
from tests.factories.care import recorded_session
from tests.factories.notify import outbox_row
from tests.factories.waitlist import make_offer

pytestmark = pytest.mark.e2e

CHOSEN = date(2026, 11, 16)  # the week before the frozen clock's (Mon 23 Nov 2026)
FIRST = CHOSEN - timedelta(weeks=11)


def _at(day: date, hour: int) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


@pytest.fixture(scope="module")
def admin(site):
    """Each of the 12 weeks: follow-ups inside, before and after their window (one client
    each, a session with next-day soreness 2: window +2 / +4 / +8 days), and 2-5 prompts and
    0-2 recalls, some followed by a booking a day or two later; 1-4 waitlist offers, some
    accepted after their slot stayed empty 20 minutes to a few hours. Returns the admin's
    email."""
    app, clock = site.app, site.app.extensions["clock"]
    clinic = make_clinic(app)
    therapist, follow_t = clinic.t1, clinic.t2
    later = iter(range(1000))  # the converted clients' bookings, 2 hours apart from Jan 2027
    for i in range(12):
        monday = FIRST + timedelta(weeks=i)
        plan = [(-3, 5, 9)] * (2 + i % 3) + [(1, 1, 13)] * (i % 2) + [(-10, 11, 15)] * (i % 4 == 3)
        for j, (session_day, gap, hour) in enumerate(plan):
            person = make_user(app)
            session = _at(monday + timedelta(days=session_day), hour + (j % 2))
            recorded_session(app, clinic, session, client=person, therapist=therapist,
                             soreness=2)
            make_booking(app, clinic, _at(session.date() + timedelta(days=gap), 9 + 2 * j),
                         client=person, therapist=follow_t, room=clinic.rooms[1])
        for kind, count, converted in (("rebooking_prompt", 2 + i % 4, (i * 5) % (3 + i % 4)),
                                       ("recall", i % 3, (i % 3) // 2)):
            for n in range(count):
                person = make_user(app)
                sent = _at(monday + timedelta(days=n % 5), 10 + n)
                if sent >= START:
                    continue
                outbox_row(app, kind=kind, user=person, at=sent)
                if n < converted:
                    clock.set(sent + timedelta(days=1 + n % 2))
                    k = next(later)
                    make_booking(app, clinic, _at(date(2027, 1, 4) + timedelta(days=k // 4),
                                                  9 + 2 * (k % 4)), client=person,
                                 therapist=therapist, room=clinic.rooms[0])
                    clock.set(START)
        statuses = ("accepted", "declined", "accepted", "expired")[:1 + (i * 7) % 4]
        for n, status in enumerate(statuses):
            made = _at(monday + timedelta(days=n), 11)
            make_offer(app, clinic, status, made, freed=made - timedelta(minutes=15 * (i + n)),
                       responded=made + timedelta(minutes=5 + 10 * n)
                       if status in ("accepted", "declined") else None)
    admin = clinic.admin.email
    db.session.commit()  # end the read: SQLite's write lock stays free for the live server
    return admin


@pytest.mark.parametrize("viewport", [{"width": 1280, "height": 900}, PHONE],
                         ids=["desktop", "phone"])
def test_the_continuity_panel_follows_the_chosen_week(site, admin, new_page, viewport):
    phone = viewport == PHONE
    page = new_page(viewport=viewport, **({"is_mobile": True, "has_touch": True} if phone
                                          else {}))
    site.log_in(page, admin)
    expect(page.get_by_role("heading", name="Continuity, week of 23 Nov 2026")).to_be_visible()
    expect(page.get_by_text("No emails sent this week")).to_be_visible()
    expect(page.get_by_text("No offers made this week.")).to_be_visible()
    site.audit(page)

    page.get_by_label("Show the week of").fill(CHOSEN.isoformat())
    page.get_by_role("button", name="Show").click()
    expect(page.get_by_role("heading", name="Continuity, week of 16 Nov 2026")).to_be_visible()
    expect(page.get_by_role("heading", name="The week of 16 November 2026")).to_be_visible()
    prompts = page.locator(".figures article", has_text="Rebooking prompts")
    expect(prompts).to_contain_text(re.compile(r"\d of \d sent led to a booking"))
    expect(page.get_by_role("heading", name="Waitlist offers of freed slots")).to_be_visible()
    made = page.locator(".figures article", has_text="Offers made")
    expect(made).to_contain_text(re.compile(r"Offers made\s*\d"))
    empty = page.locator(".figures article", has_text="Slot empty until accepted")
    expect(empty).to_contain_text(re.compile(r"median; longest \d"))
    expect(page.get_by_role("img", name=re.compile("Continuity over the 12 weeks"))) \
        .to_be_visible()
    page.get_by_text("The 12 weeks as a table").click()
    table = page.get_by_role("region", name="Continuity, week by week")
    expect(table.get_by_role("row")).to_have_count(13)
    expect(table.get_by_role("row").last).to_contain_text("16 Nov")
    expect(table.get_by_role("columnheader", name="Offers accepted")).to_be_visible()
    site.no_sideways_scroll(page)
    site.audit(page)
    site.shot(page, f"{'phone-' if phone else ''}admin-dashboard-continuity")

    page.goto(site.url("/admin/?week=not-a-week"))
    expect(page.get_by_text("Not a valid date value.")).to_be_visible()
    expect(page.get_by_label("Show the week of")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_role("heading", name="Continuity, week of 23 Nov 2026")).to_be_visible()
    site.no_sideways_scroll(page)
    site.audit(page)
