"""Issue 12.3: signed links in booking emails to view and cancel without logging in, and
add-to-Google/Outlook links beside the calendar file."""

from __future__ import annotations

import re
from datetime import UTC
from datetime import datetime
from datetime import timedelta

from clinic_app.services import booking as booking_service
from tests.conftest import path_of
from tests.factories.booking import make_clinic
from tests.factories.schedule import local

NOW = datetime(2026, 11, 23, 8, tzinfo=UTC)
TUE_10 = local(2026, 11, 24, 10)


def _book(db, clinic):
    booking = booking_service.book(db.session, client=clinic.client, service_id=clinic.service.id,
                                   start=TUE_10, now=NOW, therapist_id=clinic.t1.id)
    db.session.commit()
    return booking


def _links(mailbox, to, subject_starts):
    messages = [m for m in mailbox.deliver() if to in str(m["To"])
                and str(m["Subject"]).startswith(subject_starts)]
    assert messages, f"no email {subject_starts!r} to {to}"
    text = mailbox.text(messages[-1])
    found = dict(re.findall(r"^\s*(View this appointment|Cancel it|Add to Google Calendar|"
                            r"Add to Outlook):\s+(\S+)", text, flags=re.M))
    return found, messages[-1]


def test_confirmation_carries_view_cancel_and_calendar_links(app, client, db, mailbox):
    clinic = make_clinic(app, therapists=1, rooms=1)
    _book(db, clinic)
    links, message = _links(mailbox, clinic.client.email, "Booking confirmed")
    assert set(links) == {"View this appointment", "Cancel it", "Add to Google Calendar",
                          "Add to Outlook"}
    google = links["Add to Google Calendar"]
    assert google.startswith("https://calendar.google.com/calendar/render?")
    assert "dates=20261124T100000Z%2F20261124T110000Z" in google
    assert links["Add to Outlook"].startswith("https://outlook.live.com/calendar/")
    html = message.get_body(preferencelist=("html",)).get_content()
    assert "View appointment" in html and "Add to Google Calendar" in html
    # No log-in: the view link shows the appointment.
    page = client.get(path_of(links["View this appointment"]))
    assert page.status_code == 200 and "Tuesday 24 November 2026, 10:00" in page.get_data(
        as_text=True)
    # The therapist's copy has no client links.
    therapist_copy, _ = _links(mailbox, clinic.t1.user.email, "New booking")
    assert therapist_copy == {}


def test_the_cancel_link_cancels_once_then_every_link_is_dead(app, client, db, mailbox):
    clinic = make_clinic(app, therapists=1, rooms=1)
    booking = _book(db, clinic)
    links, _ = _links(mailbox, clinic.client.email, "Booking confirmed")
    cancel = path_of(links["Cancel it"])
    view = path_of(links["View this appointment"])
    assert client.post(view, data={}).status_code == 405  # a view link cannot cancel
    done = client.post(cancel, data={"reason": "ill"})
    assert done.status_code == 200 and b"is cancelled" in done.data
    db.session.refresh(booking)
    assert booking.status == "cancelled" and booking.cancel_reason == "ill"
    assert booking.late_cancel is False
    assert client.get(view).status_code == 410
    assert client.post(cancel, data={}).status_code == 410


def test_moving_the_booking_kills_the_old_links_and_the_new_email_has_new_ones(
        app, client, db, mailbox):
    clinic = make_clinic(app, therapists=1, rooms=1)
    booking = _book(db, clinic)
    old, _ = _links(mailbox, clinic.client.email, "Booking confirmed")
    booking_service.reschedule(db.session, booking, new_start=local(2026, 11, 25, 14),
                               actor=clinic.client, now=NOW)
    db.session.commit()
    assert client.get(path_of(old["View this appointment"])).status_code == 410
    new, _ = _links(mailbox, clinic.client.email, "Booking moved")
    page = client.get(path_of(new["View this appointment"]))
    assert page.status_code == 200 and b"Wednesday 25 November 2026, 14:00" in page.data


def test_links_die_when_the_booking_starts_and_forged_ones_never_work(app, client, db,
                                                                       mailbox, clock):
    clinic = make_clinic(app, therapists=1, rooms=1)
    _book(db, clinic)
    links, _ = _links(mailbox, clinic.client.email, "Booking confirmed")
    view = path_of(links["View this appointment"])
    assert client.get(view[:-3] + "abc").status_code == 410
    assert client.get("/b/not-a-token").status_code == 410
    clock.set(TUE_10.astimezone(UTC) + timedelta(seconds=1))
    assert client.get(view).status_code == 410
