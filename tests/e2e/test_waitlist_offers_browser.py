"""Waitlist offers in Chromium at desktop and phone width (issue 13.2): the email's link
without logging in, accepting from it; the logged-in waitlist page with the held time and
its two buttons; an offer that has expired."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from playwright.sync_api import expect

from clinic_app.extensions import db
from clinic_app.models import Booking
from clinic_app.models import WaitlistOffer
from tests.e2e.conftest import PHONE
from tests.factories.waitlist import cancel_and_offer
from tests.factories.waitlist import make_scene

pytestmark = pytest.mark.e2e


def _scene(site, tag: str):
    scene = make_scene(site.app, emails=tuple(f"{n}-{tag}" for n in ("ada", "eve", "fay", "bob")))
    offer = cancel_and_offer(site.app, scene)
    ids = offer.id, offer.hold_id, scene.a.email, scene.e.email
    db.session.commit()  # no transaction may hold SQLite while the browser works
    return ids


@pytest.mark.parametrize("width", ["desktop", "phone"])
def test_accept_from_the_email_link_without_logging_in(site, new_page, width):
    offer_id, hold_id, ada, _ = _scene(site, f"link-{width}")
    accept = site.links_to(ada, "/waitlist/offers/")[0]  # the email's first link: Accept
    page = new_page(viewport=PHONE) if width == "phone" else new_page()
    page.goto(accept)
    expect(page.get_by_role("heading", name="A time has come free for you")).to_be_visible()
    expect(page.get_by_text("We are holding it for you until")).to_be_visible()
    site.audit(page)
    site.no_sideways_scroll(page)
    site.shot(page, f"waitlist-offer-{width}")
    page.get_by_role("button", name="Accept: book it").click()
    expect(page.get_by_text("You're booked.")).to_be_visible()
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    site.audit(page)
    site.no_sideways_scroll(page)
    site.shot(page, f"waitlist-offer-accepted-{width}")
    booking = db.session.get(Booking, hold_id)
    assert booking.status == "booked" and booking.client.email == ada
    assert db.session.get(WaitlistOffer, offer_id).status == "accepted"
    db.session.commit()
    # The link again: it says it was accepted and offers the appointment, no buttons.
    page.goto(accept)
    expect(page.get_by_role("heading", name="You accepted this time")).to_be_visible()
    expect(page.get_by_role("button", name="Accept: book it")).to_have_count(0)
    site.audit(page)


@pytest.mark.parametrize("width", ["desktop", "phone"])
def test_the_waitlist_page_shows_the_held_time_and_decline_passes_it_on(site, new_page, width):
    offer_id, _, ada, _ = _scene(site, f"page-{width}")
    page = new_page(viewport=PHONE) if width == "phone" else new_page()
    site.log_in(page, ada)
    site.audit(page)
    page.goto(site.url("/waitlist"))
    expect(page.get_by_role("heading", name="Times held for you")).to_be_visible()
    site.audit(page)
    site.no_sideways_scroll(page)
    site.shot(page, f"waitlist-page-offer-{width}")
    page.get_by_role("button", name="Decline: pass it on").click()
    expect(page.get_by_text("we offer that time to the next person waiting")).to_be_visible()
    expect(page.get_by_role("heading", name="Times held for you")).to_have_count(0)
    site.audit(page)
    assert db.session.get(WaitlistOffer, offer_id).status == "declined"
    db.session.commit()


def test_an_expired_offer_says_so_and_links_to_the_picker(site, new_page):
    offer_id, _, ada, _ = _scene(site, "expired")
    accept = site.links_to(ada, "/waitlist/offers/")[0]
    clock = site.app.extensions["clock"]
    clock.advance(timedelta(minutes=31))
    try:
        page = new_page()
        page.goto(accept)
        expect(page.get_by_role("heading", name="This offer has expired")).to_be_visible()
        site.audit(page)
        site.shot(page, "waitlist-offer-expired-desktop")
        page.get_by_role("button", name="See free times that day").click()
        expect(page).to_have_url(re.compile(r"/book/\d+/times\?therapist=\d+&day=2026-11-24"))
        site.audit(page)
    finally:
        clock.advance(timedelta(minutes=-31))
    assert db.session.get(WaitlistOffer, offer_id).status == "open"  # the job expires it
    db.session.commit()
