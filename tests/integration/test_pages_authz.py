"""Every page route that takes an object id, tried by someone it does not belong to.

A client or a therapist gets 404 for another user's object (nobody learns that it exists);
a user of the wrong role gets 403 for a whole area.
"""

from __future__ import annotations

from datetime import UTC
from datetime import datetime

import pytest

from clinic_app.extensions import db as _db
from clinic_app.models import HoursOverride
from tests.factories.accounts import login
from tests.factories.pages import make_booking
from tests.factories.pages import make_clinic

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
