"""Issue 12.3: signed links in booking emails to view, cancel and reschedule without logging
in, and add-to-Google/Outlook links beside the calendar file."""

from __future__ import annotations

import re
from datetime import UTC
from datetime import datetime
from datetime import timedelta

from clinic_app.services import booking as booking_service
from tests.conftest import path_of
from tests.factories.accounts import make_user
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
    found = dict(re.findall(r"^\s*(View this appointment|Reschedule it|Cancel it|"
                            r"Add to Google Calendar|Add to Outlook):\s+(\S+)", text,
                            flags=re.M))
    return found, messages[-1]


def test_confirmation_carries_view_cancel_and_calendar_links(app, client, db, mailbox):
    clinic = make_clinic(app, therapists=1, rooms=1)
    _book(db, clinic)
    links, message = _links(mailbox, clinic.client.email, "Booking confirmed")
    assert set(links) == {"View this appointment", "Reschedule it", "Cancel it",
                          "Add to Google Calendar", "Add to Outlook"}
    google = links["Add to Google Calendar"]
    assert google.startswith("https://calendar.google.com/calendar/render?")
    assert "dates=20261124T100000Z%2F20261124T110000Z" in google
    assert links["Add to Outlook"].startswith("https://outlook.live.com/calendar/")
    html = message.get_body(preferencelist=("html",)).get_content()
    assert "View appointment" in html and "Add to Google Calendar" in html
    assert path_of(links["Reschedule it"]) in html and ">Reschedule</a>" in html
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


# --- reschedule from the email, no log-in -----------------------------------------------------

WED_14 = local(2026, 11, 25, 14)


def _time_link(page: str, start) -> str:
    """The picker's link for ``start`` on a page (HTML-escaped query)."""
    links = [href.replace("&amp;", "&") for href in re.findall(r'href="([^"]+)"', page)]
    wanted = start.isoformat().replace("+", "%2B")
    found = [href for href in links if "/reschedule/confirm?" in href and wanted in href]
    assert found, f"no link for {start} in the picker"
    return found[0]


def test_reschedule_link_moves_the_booking_and_the_new_email_has_new_links(
        app, client, db, mailbox):
    clinic = make_clinic(app, therapists=1, rooms=1)
    booking = _book(db, clinic)
    old, _ = _links(mailbox, clinic.client.email, "Booking confirmed")
    picker = client.get(path_of(old["Reschedule it"]) + "?day=2026-11-25")
    text = picker.get_data(as_text=True)
    assert picker.status_code == 200, text
    assert "Move your" in text and "Times on Wednesday 25 November" in text
    confirm = _time_link(text, WED_14.astimezone(UTC))
    assert confirm.startswith(path_of(old["Reschedule it"]))
    shown = client.get(confirm)
    assert shown.status_code == 200 and b"Wednesday 25 November 2026, 14:00" in shown.data
    moved = client.post(confirm, data={})
    # The page goes on to the moved booking on a fresh view link.
    assert moved.status_code == 302 and moved.headers["Location"].startswith("/b/")
    after = client.get(moved.headers["Location"])
    assert after.status_code == 200
    assert b"Your appointment has moved" in after.data
    assert b"Wednesday 25 November 2026, 14:00" in after.data
    db.session.refresh(booking)
    assert booking.start_at == WED_14 and booking.status == "booked"
    assert booking.sequence == 1
    # The client's own move: the change email, with new links that work.
    new, _ = _links(mailbox, clinic.client.email, "Booking moved")
    assert set(new) >= {"View this appointment", "Reschedule it", "Cancel it"}
    assert new["Reschedule it"] != old["Reschedule it"]
    assert client.get(path_of(new["Reschedule it"])).status_code == 200


def test_the_old_reschedule_link_is_dead_after_the_move(app, client, db, mailbox):
    clinic = make_clinic(app, therapists=1, rooms=1)
    booking = _book(db, clinic)
    old, _ = _links(mailbox, clinic.client.email, "Booking confirmed")
    page = client.get(path_of(old["Reschedule it"]) + "?day=2026-11-25").get_data(as_text=True)
    confirm = _time_link(page, WED_14.astimezone(UTC))
    assert client.post(confirm, data={}).status_code == 302
    for path in (path_of(old["Reschedule it"]), confirm, path_of(old["View this appointment"])):
        dead = client.get(path)
        assert dead.status_code == 410, path
        assert "This link does not work" in dead.get_data(as_text=True)
    # A second submit of the old confirm form moves nothing.
    again = client.post(confirm.replace("14%3A00", "15%3A00"), data={})
    assert again.status_code == 410
    db.session.refresh(booking)
    assert booking.start_at == WED_14 and booking.sequence == 1


def test_forged_or_wrong_purpose_reschedule_links_are_dead(app, client, db, mailbox):
    clinic = make_clinic(app, therapists=1, rooms=1)
    booking = _book(db, clinic)
    links, _ = _links(mailbox, clinic.client.email, "Booking confirmed")
    view_token = path_of(links["View this appointment"]).removeprefix("/b/")
    cancel_token = path_of(links["Cancel it"]).removeprefix("/b/")
    reschedule_token = path_of(links["Reschedule it"]).removeprefix("/b/").removesuffix(
        "/reschedule")
    start = WED_14.astimezone(UTC).isoformat().replace("+", "%2B")
    for path in (f"/b/{reschedule_token[:-4]}abcd/reschedule", "/b/not-a-token/reschedule",
                 f"/b/{view_token}/reschedule", f"/b/{cancel_token}/reschedule"):
        assert client.get(path).status_code == 410, path
    # A reschedule token is no view or cancel link either.
    assert client.get(f"/b/{reschedule_token}").status_code == 410
    forged = client.post(f"/b/{view_token}/reschedule/confirm?start={start}", data={})
    assert forged.status_code == 410
    db.session.refresh(booking)
    assert booking.start_at == TUE_10 and booking.sequence == 0


def test_a_time_taken_meanwhile_is_a_409_message_on_the_page(app, client, db, mailbox):
    clinic = make_clinic(app, therapists=1, rooms=1)
    booking = _book(db, clinic)
    links, _ = _links(mailbox, clinic.client.email, "Booking confirmed")
    page = client.get(path_of(links["Reschedule it"]) + "?day=2026-11-25").get_data(
        as_text=True)
    confirm = _time_link(page, WED_14.astimezone(UTC))
    booking_service.book(db.session, client=make_user(app), service_id=clinic.service.id,
                         start=WED_14, now=NOW, therapist_id=clinic.t1.id)
    db.session.commit()
    taken = client.post(confirm, data={})
    assert taken.status_code == 409
    assert "That time has just been taken" in taken.get_data(as_text=True)
    db.session.refresh(booking)
    assert booking.start_at == TUE_10 and booking.sequence == 0
    # The link still works: pick another time.
    assert client.get(path_of(links["Reschedule it"])).status_code == 200


def test_the_client_rules_apply_inside_the_cutoff(app, client, db, mailbox, clock):
    clinic = make_clinic(app, therapists=1, rooms=1)
    booking = _book(db, clinic)
    links, _ = _links(mailbox, clinic.client.email, "Booking confirmed")
    clock.set(TUE_10.astimezone(UTC) - timedelta(hours=20))  # cutoff: 24 h
    page = client.get(path_of(links["Reschedule it"]))
    text = page.get_data(as_text=True)
    assert page.status_code == 200 and "can no longer be moved online" in text
    assert "/reschedule/confirm" not in text
    start = WED_14.astimezone(UTC).isoformat().replace("+", "%2B")
    refused = client.post(path_of(links["Reschedule it"]) + f"/confirm?start={start}", data={})
    assert refused.status_code == 422
    assert "can be moved online up to 24 hours" in refused.get_data(as_text=True)
    db.session.refresh(booking)
    assert booking.start_at == TUE_10


def test_the_reschedule_link_of_a_cancelled_booking_is_dead(app, client, db, mailbox):
    clinic = make_clinic(app, therapists=1, rooms=1)
    booking = _book(db, clinic)
    links, _ = _links(mailbox, clinic.client.email, "Booking confirmed")
    booking_service.cancel(db.session, booking, actor=clinic.client, now=NOW)
    db.session.commit()
    reschedule = path_of(links["Reschedule it"])
    dead = client.get(reschedule)
    assert dead.status_code == 410 and "This link does not work" in dead.get_data(as_text=True)
    start = WED_14.astimezone(UTC).isoformat().replace("+", "%2B")
    assert client.post(reschedule + f"/confirm?start={start}", data={}).status_code == 410
    db.session.refresh(booking)
    assert booking.status == "cancelled" and booking.start_at == TUE_10
