"""Every page route that takes an object id, tried by someone it does not belong to, and
the pages reached from email links (a signed token instead of a log-in), with who may use them.

A client or a therapist gets 404 for another user's object (nobody learns that it exists);
a user of the wrong role gets 403 for a whole area. A forged, altered or wrong-purpose link
token gets the dead-link page (404 for a waitlist offer, 410 for a booking), never a 500.
"""

from __future__ import annotations

from datetime import UTC
from datetime import datetime

import pytest
from sqlalchemy import func
from sqlalchemy import select

from clinic_app.extensions import db as _db
from clinic_app.models import Booking
from clinic_app.models import HoursOverride
from clinic_app.models import ProblemReport
from clinic_app.models import WaitlistOffer
from clinic_app.services import booking_links
from clinic_app.services import offer_links
from clinic_app.services import waitlist_offers
from tests.factories.accounts import login
from tests.factories.booking import make_booking as waitlist_make_booking
from tests.factories.pages import make_booking
from tests.factories.pages import make_clinic
from tests.factories.schedule import local
from tests.factories.waitlist import cancel_and_offer
from tests.factories.waitlist import make_scene

WED_10 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)

# (method, url template, who tries, expected status). Templates use the objects of
# the set-up below: {b} the client's booking (with the first therapist), {p} a pending
# booking, {c} the client, {o} the first therapist's time off.
ROUTES = [
    # Another client's booking: 404.
    ("GET", "/appointments/{b}", "other_client", 404),
    ("GET", "/appointments/{b}/done", "other_client", 404),
    ("POST", "/appointments/{b}/cancel", "other_client", 404),
    ("GET", "/appointments/{b}/reschedule", "other_client", 404),
    ("GET", "/appointments/{b}/reschedule/confirm?start=2026-11-26T10:00:00%2B00:00",
     "other_client", 404),
    ("POST", "/appointments/{b}/reschedule/confirm", "other_client", 404),
    ("GET", "/appointments/{b}/report", "other_client", 404),
    ("POST", "/appointments/{b}/report", "other_client", 404),
    ("GET", "/bookings/{b}.ics", "other_client", 404),
    # Another therapist's booking, client or time off: 404.
    ("GET", "/therapist/bookings/{b}", "other_therapist", 404),
    ("POST", "/therapist/bookings/{b}/complete", "other_therapist", 404),
    ("POST", "/therapist/bookings/{b}/no-show", "other_therapist", 404),
    ("POST", "/therapist/bookings/{b}/followup", "other_therapist", 404),
    ("POST", "/therapist/bookings/{p}/decline", "other_therapist", 404),
    ("GET", "/therapist/clients/{c}", "other_therapist", 404),
    ("POST", "/therapist/clients/{c}/confirm-intake", "other_therapist", 404),
    ("POST", "/therapist/time-off/{o}/delete", "other_therapist", 404),
    # The wrong role for the area: 403.
    ("GET", "/therapist/bookings/{b}", "client", 403),
    ("GET", "/therapist/clients/{c}", "client", 403),
    ("GET", "/admin/bookings/{b}", "client", 403),
    ("POST", "/admin/bookings/{b}/cancel", "client", 403),
    ("GET", "/admin/bookings/{b}/reschedule", "therapist", 403),
    ("POST", "/admin/bookings/{b}/reschedule/confirm", "therapist", 403),
    ("GET", "/admin/services/{s}", "therapist", 403),
    ("GET", "/admin/rooms/{r}", "client", 403),
    ("GET", "/admin/therapists/{t}", "therapist", 403),
    ("POST", "/admin/therapists/{t}/active", "therapist", 403),
    ("POST", "/admin/therapists/{t}/resend", "client", 403),
    ("POST", "/admin/closures/1/delete", "therapist", 403),
    ("GET", "/appointments/{b}", "therapist", 403),
    ("GET", "/appointments/{b}", "admin", 403),
    ("GET", "/appointments/{b}/report", "therapist", 403),
    # Objects that do not exist: 404 for the right role too.
    ("GET", "/appointments/999999", "client", 404),
    ("GET", "/therapist/bookings/999999", "therapist", 404),
    ("GET", "/therapist/clients/999999", "therapist", 404),
    ("GET", "/admin/bookings/999999", "admin", 404),
    ("GET", "/admin/services/999999", "admin", 404),
    ("GET", "/admin/therapists/999999", "admin", 404),
    ("GET", "/book/999999", "client", 404),
]


@pytest.mark.parametrize(("method", "template", "who", "expected"), ROUTES,
                         ids=[f"{m} {t} as {w}" for m, t, w, _ in ROUTES])
def test_objects_of_others_are_not_found(app, client, db, method, template, who, expected):
    clinic = make_clinic(app)
    booking = make_booking(app, client=clinic.client, service=clinic.service,
                           therapist=clinic.therapist, room=clinic.room, start=WED_10)
    pending = make_booking(app, client=clinic.client, service=clinic.service,
                           therapist=clinic.therapist, room=clinic.room,
                           start=datetime(2026, 11, 26, 10, 0, tzinfo=UTC), status="pending")
    off = HoursOverride(therapist_id=clinic.therapist.id, start_date=WED_10.date(),
                        end_date=WED_10.date(), kind="off", reason="")
    _db.session.add(off)
    _db.session.commit()
    users = {"client": clinic.client, "other_client": clinic.other_client,
             "therapist": clinic.therapist.user, "other_therapist": clinic.other_therapist.user,
             "admin": clinic.admin}
    url = template.format(b=booking.id, p=pending.id, c=clinic.client.id, o=off.id,
                          s=clinic.service.id, r=clinic.room.id, t=clinic.therapist.id)
    login(client, users[who])
    response = client.open(url, method=method, data={"start": "2026-11-26T10:00:00+00:00"}
                           if method == "POST" else None)
    assert response.status_code == expected
    # Nothing changed on the way.
    _db.session.expire_all()
    assert booking.status == "booked" and booking.start_at == WED_10
    assert pending.status == "pending"
    assert _db.session.get(HoursOverride, off.id) is not None


# --- pages reached from email links, and the waitlist offer buttons -----------------------------
#
# The scene of ``tests.factories.waitlist``: Ada ("client") holds an open offer {o} of a freed
# slot; Eve ("other_client") waits too. The email links need no log-in ("anonymous"): the
# signed token is the authority, so a forged or altered one is the dead-link page (404 for an
# offer link, 410 for a booking link), never a 500. {accept} is Ada's accept link, {forged} one
# signed with another key; {view}, {reschedule} are links of Eve's booking on Wednesday,
# {report} the report link of her completed session last Friday. The last column is what
# becomes of the offer: only its client's own answer changes it.
LINK_ROUTES = [
    ("GET", "/waitlist/offers/{accept}", "anonymous", 200, "open"),
    ("GET", "/waitlist/offers/{accept}", "client", 200, "open"),
    ("POST", "/waitlist/offers/{accept}", "anonymous", 302, "accepted"),
    ("GET", "/waitlist/offers/{forged}", "anonymous", 404, "open"),
    ("POST", "/waitlist/offers/{forged}", "anonymous", 404, "open"),
    ("GET", "/waitlist/offers/{accept}x", "anonymous", 404, "open"),
    ("GET", "/waitlist/offers/not-a-token", "client", 404, "open"),
    ("POST", "/waitlist/offers/{o}/accept", "client", 302, "accepted"),
    ("POST", "/waitlist/offers/{o}/decline", "client", 302, "declined"),
    ("POST", "/waitlist/offers/{o}/accept", "other_client", 404, "open"),
    ("POST", "/waitlist/offers/{o}/decline", "other_client", 404, "open"),
    ("POST", "/waitlist/offers/999999/accept", "client", 404, "open"),
    ("POST", "/waitlist/offers/{o}/accept", "therapist", 403, "open"),
    ("POST", "/waitlist/offers/{o}/decline", "admin", 403, "open"),
    ("POST", "/waitlist/offers/{o}/accept", "anonymous", 302, "open"),  # to the log-in
    ("GET", "/b/{reschedule}/reschedule", "anonymous", 200, "open"),
    ("GET", "/b/{reschedule}/reschedule", "client", 200, "open"),
    ("GET", "/b/{view}/reschedule", "anonymous", 410, "open"),  # a view link cannot move it
    ("GET", "/b/{forged_booking}/reschedule", "anonymous", 410, "open"),
    ("GET", "/b/not-a-token/reschedule", "other_client", 410, "open"),
    ("GET", "/b/{report}/report", "anonymous", 200, "open"),
    ("GET", "/b/{report}/report", "therapist", 200, "open"),
    ("GET", "/b/{reschedule}/report", "anonymous", 410, "open"),  # wrong purpose
    ("GET", "/b/{forged_booking}/report", "anonymous", 410, "open"),
    ("POST", "/b/not-a-token/report", "anonymous", 410, "open"),
]


@pytest.mark.parametrize(("method", "template", "who", "expected", "offer_after"), LINK_ROUTES,
                         ids=[f"{m} {t} as {w}" for m, t, w, _, _ in LINK_ROUTES])
def test_link_pages_and_offer_answers(app, client, db, method, template, who, expected,
                                      offer_after):
    scene = make_scene(app)
    offer = cancel_and_offer(app, scene)
    later = waitlist_make_booking(app, scene.clinic, local(2026, 11, 25, 14), client=scene.e)
    past = waitlist_make_booking(app, scene.clinic, local(2026, 11, 20, 10), client=scene.e,
                                 status="completed")
    secret = app.config["SECRET_KEY"]
    url = template.format(
        o=offer.id, accept=offer_links.make_token(secret, offer, "accept"),
        forged=offer_links.make_token("not-the-secret", offer, "accept"),
        view=booking_links.make_token(secret, later, "view"),
        reschedule=booking_links.make_token(secret, later, "reschedule"),
        forged_booking=booking_links.make_token("not-the-secret", later, "reschedule"),
        report=booking_links.make_token(secret, past, "report"))
    users = {"client": scene.a, "other_client": scene.e, "therapist": scene.clinic.t1.user,
             "admin": scene.clinic.admin}
    if who != "anonymous":
        login(client, users[who])
    response = client.open(url, method=method, data={} if method == "POST" else None)
    assert response.status_code == expected
    page = response.get_data(as_text=True)
    if expected in (404, 410) and not template.endswith(("/accept", "/decline")):
        assert "This link does not work" in page  # the dead-link page, not a bare error
    if who == "anonymous" and template.endswith("/accept"):
        assert "/login" in response.headers["Location"]
    _db.session.expire_all()
    assert _db.session.get(WaitlistOffer, offer.id).status == offer_after
    held = waitlist_offers.hold_for(_db.session, _db.session.get(WaitlistOffer, offer.id))
    assert (held is not None) == (offer_after == "open")
    # The booking links only show: nothing moved, nothing was reported.
    assert _db.session.get(Booking, later.id).start_at == local(2026, 11, 25, 14)
    assert _db.session.get(Booking, later.id).status == "booked"
    assert _db.session.scalar(select(func.count(ProblemReport.id))) == 0
