"""Staff booking options on POST /api/v1/bookings and the slot booking form (issue 11):
``notify: false`` (staff) and ``override_rules`` + ``override_reason`` (admins)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from clinic_app.models import Booking
from clinic_app.models import User
from clinic_app.models.outbox import OutboxMessage
from tests.factories import make_user
from tests.factories.accounts import login
from tests.factories.accounts import token_for
from tests.factories.booking import make_clinic
from tests.factories.booking import raw_booking
from tests.factories.schedule import local

TUE_10 = "2026-11-24T10:00:00+00:00"
MON_09 = "2026-11-23T09:00:00+00:00"  # an hour after "now": inside the 4-hour notice
FAR = "2027-03-02T10:00:00+00:00"  # beyond the 90-day horizon


@pytest.fixture
def clinic(app):
    return make_clinic(app)


def _book(client, headers, clinic, start=TUE_10, **extra):
    return client.post("/api/v1/bookings", headers=headers,
                       json={"service_id": clinic.service.id, "start": start,
                             "client_id": clinic.client.id, **extra})


def _rows(db, booking_id):
    return {(m.kind, m.to_addr) for m in db.session.scalars(
        select(OutboxMessage).where(OutboxMessage.booking_id == booking_id))}


def test_staff_book_without_emailing_the_client(client, clinic, db):
    for staff in (clinic.admin, clinic.t1.user):
        start = TUE_10 if staff is clinic.admin else "2026-11-24T14:00:00+00:00"
        made = _book(client, token_for(client.application, staff), clinic, start=start,
                     therapist_id=clinic.t1.id, notify=False)
        assert made.status_code == 201, made.get_json()
        assert made.get_json()["notify_client"] is False
        rows = _rows(db, made.get_json()["id"])
        assert not any(to == clinic.client.email and kind in ("confirmation", "reminder")
                       for kind, to in rows), rows
        assert any(to == clinic.t1.user.email for _, to in rows)  # the therapist's copy
        assert db.session.get(Booking, made.get_json()["id"]).notify_client is False


def test_default_still_emails_the_client(client, clinic, db):
    made = _book(client, token_for(client.application, clinic.admin), clinic)
    assert made.status_code == 201 and made.get_json()["notify_client"] is True
    assert any(to == clinic.client.email for _, to in _rows(db, made.get_json()["id"]))


def test_clients_sending_staff_options_get_403(client, clinic):
    own = token_for(client.application, clinic.client)
    for extra in ({"notify": False}, {"notify": True}, {"override_rules": True,
                                                        "override_reason": "x"}):
        response = client.post("/api/v1/bookings", headers=own,
                               json={"service_id": clinic.service.id, "start": TUE_10, **extra})
        assert response.status_code == 403, extra
        assert response.get_json()["error"]["code"] == "forbidden"


def test_admin_overrides_notice_and_horizon_with_a_reason(client, clinic, db):
    admin = token_for(client.application, clinic.admin)
    assert _book(client, admin, clinic, start=MON_09).get_json()["error"]["code"] == "too_soon"
    no_reason = _book(client, admin, clinic, start=MON_09, override_rules=True)
    assert no_reason.status_code == 422
    assert no_reason.get_json()["error"]["code"] == "reason_required"
    soon = _book(client, admin, clinic, start=MON_09, override_rules=True,
                 override_reason="Came in with acute neck pain")
    assert soon.status_code == 201, soon.get_json()
    assert soon.get_json()["override_reason"] == "Came in with acute neck pain"
    assert _book(client, admin, clinic, start=FAR).get_json()["error"]["code"] == \
        "beyond_horizon"
    far = _book(client, admin, clinic, start=FAR, override_rules=True,
                override_reason="Booked a course ahead")
    assert far.status_code == 201
    assert db.session.get(Booking, far.get_json()["id"]).override_reason == \
        "Booked a course ahead"


def test_override_never_lifts_hours_conflicts_or_the_past(client, clinic):
    admin = token_for(client.application, clinic.admin)
    options = {"override_rules": True, "override_reason": "urgent"}
    evening = _book(client, admin, clinic, start="2026-11-24T18:00:00+00:00", **options)
    assert evening.get_json()["error"]["code"] == "outside_hours"
    past = _book(client, admin, clinic, start="2026-11-23T07:00:00+00:00", **options)
    assert past.get_json()["error"]["code"] == "in_past"
    first = _book(client, admin, clinic, start=MON_09, therapist_id=clinic.t1.id, **options)
    assert first.status_code == 201
    clash = _book(client, admin, clinic, start=MON_09, therapist_id=clinic.t1.id, **options)
    assert clash.status_code == 409 and clash.get_json()["error"]["code"] == "slot_taken"


def test_therapists_may_not_override(client, clinic):
    response = _book(client, token_for(client.application, clinic.t1.user), clinic,
                     start=MON_09, override_rules=True, override_reason="please")
    assert response.status_code == 403 and response.get_json()["error"]["code"] == "forbidden"


def test_openapi_lists_the_new_fields(client):
    doc = client.get("/api/v1/openapi.json").get_json()
    fields = doc["components"]["schemas"]["BookingIn"]["properties"]
    assert {"notify", "override_rules", "override_reason"} <= set(fields)
    assert "403" in doc["paths"]["/api/v1/bookings"]["post"]["responses"]
    assert "/api/v1/clients" in doc["paths"]


# --- the booking form an empty slot opens -----------------------------------------------------


def test_admin_creates_a_caller_and_books_without_email(client, clinic, db):
    login(client, clinic.admin)
    url = f"/staff/book?therapist={clinic.t1.id}&start=2026-11-24T10:00:00%2B00:00"
    form = client.get(url)
    assert form.status_code == 200 and "New client" in form.get_data(as_text=True)
    done = client.post("/staff/book", data={
        "therapist": clinic.t1.id, "start": "2026-11-24T10:00:00+00:00",
        "service": clinic.service.id, "new_name": "Phone Caller", "new_phone": "07700 900777"})
    assert done.status_code == 302, done.get_data(as_text=True)[:2000]
    caller = db.session.scalar(select(User).where(User.name == "Phone Caller"))
    booking = db.session.scalar(select(Booking).where(Booking.client_id == caller.id))
    assert booking.therapist_id == clinic.t1.id and booking.notify_client is False  # unticked
    assert caller.email is None and caller.consent_at is not None


def test_booking_form_errors_are_shown_and_nothing_is_kept(client, clinic, db):
    login(client, clinic.admin)
    base = {"therapist": clinic.t1.id, "start": "2026-11-23T09:00:00+00:00",
            "service": clinic.service.id, "notify": "y"}
    soon = client.post("/staff/book", data={**base, "client": clinic.client.id})
    assert soon.status_code == 422 and "more notice" in soon.get_data(as_text=True)
    nobody = client.post("/staff/book", data=base)
    assert nobody.status_code == 422 and "Choose a client" in nobody.get_data(as_text=True)
    # A new client whose booking fails is not created either (one transaction).
    failed = client.post("/staff/book", data={**base, "new_name": "Ghost", "new_phone":
                                              "0123456789"})
    assert failed.status_code == 422
    assert db.session.scalar(select(User).where(User.name == "Ghost")) is None
    override = client.post("/staff/book", data={**base, "client": clinic.client.id,
                                                "override_rules": "y",
                                                "override_reason": "Walk-in, in pain"})
    assert override.status_code == 302
    assert client.get("/staff/book?therapist=99999&start=2026-11-24T10:00:00%2B00:00"
                      ).status_code == 404
    assert client.get(f"/staff/book?therapist={clinic.t1.id}&start=nope").status_code == 400


def test_therapist_books_own_client_but_not_for_another_therapist(client, clinic, db):
    stranger = make_user(client.application, name="Not Yet Mine")
    raw_booking(client.application, client=clinic.client, therapist=clinic.t1,
                room=clinic.rooms[0], service=clinic.service, start=local(2026, 11, 20, 10),
                status="completed")
    login(client, clinic.t1.user)
    url = f"/staff/book?therapist={clinic.t2.id}&start=2026-11-24T10:00:00%2B00:00"
    assert client.get(url).status_code == 404
    page = client.get(f"/staff/book?therapist={clinic.t1.id}&start=2026-11-24T10:00:00%2B00:00")
    assert page.status_code == 200 and "New client" not in page.get_data(as_text=True)
    made = client.post("/staff/book", data={
        "therapist": clinic.t1.id, "start": "2026-11-24T10:00:00+00:00",
        "service": clinic.service.id, "client": clinic.client.id, "new_name": "",
        "override_rules": "y", "override_reason": "x", "notify": "y"})
    # A therapist's override tick is ignored (admins only); the booking is normal.
    assert made.status_code == 302
    booking = db.session.scalar(select(Booking).where(Booking.client_id == clinic.client.id,
                                                      Booking.status == "booked"))
    assert booking.override_reason == "" and booking.notify_client is True
    # Someone the therapist has never treated cannot be picked (health-data rule).
    refused = client.post("/staff/book", data={
        "therapist": clinic.t1.id, "start": "2026-11-24T14:00:00+00:00",
        "service": clinic.service.id, "client": stranger.id, "notify": "y"})
    assert refused.status_code == 422
    assert db.session.scalar(select(Booking).where(Booking.client_id == stranger.id)) is None


# --- therapists act on the bookings they give (issue 11 item 2, API) --------------------------


def test_therapist_reschedules_and_cancels_own_bookings_only(client, clinic, db, mailbox):
    app = client.application
    mine = raw_booking(app, client=clinic.client, therapist=clinic.t1, room=clinic.rooms[0],
                       service=clinic.service, start=local(2026, 11, 24, 10))
    theirs = raw_booking(app, client=clinic.client, therapist=clinic.t2, room=clinic.rooms[1],
                         service=clinic.service, start=local(2026, 11, 24, 10))
    t1 = token_for(app, clinic.t1.user)
    moved = client.post(f"/api/v1/bookings/{mine.id}/reschedule", headers=t1,
                        json={"start": "2026-11-24T14:00:00+00:00"})
    assert moved.status_code == 200 and moved.get_json()["start"] == "2026-11-24T14:00:00+00:00"
    refused = client.post(f"/api/v1/bookings/{mine.id}/reschedule", headers=t1,
                          json={"start": "2026-11-24T18:00:00+00:00"})
    assert refused.status_code == 422 and refused.get_json()["error"]["code"] == "outside_hours"
    for path in ("reschedule", "cancel"):
        other = client.post(f"/api/v1/bookings/{theirs.id}/{path}", headers=t1,
                            json={"start": "2026-11-24T14:00:00+00:00"})
        assert other.status_code == 404
    cancelled = client.post(f"/api/v1/bookings/{mine.id}/cancel", headers=t1,
                            json={"reason": "Therapist unwell"})
    assert cancelled.status_code == 200 and cancelled.get_json()["status"] == "cancelled"
    assert cancelled.get_json()["late"] is False  # the clinic cancelled, not the client
    told = [m for m in mailbox.deliver() if clinic.client.email in str(m["To"])]
    assert any("Therapist unwell" in mailbox.text(m) for m in told)
