"""The therapist's booking page: the session record with its amendments, the "Edit record"
form within 24 h of writing it, and "Add an amendment" afterwards."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime
from datetime import timedelta

from sqlalchemy import select

from clinic_app.models import SessionAmendment
from clinic_app.models import SessionRecord
from tests.factories.accounts import login
from tests.factories.pages import make_booking
from tests.factories.pages import make_clinic

MON_9 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
RECORD = {"regions": "upper back, neck", "muscles": "trapezius", "techniques": "ischemic",
          "intensity": "6", "goal": "chronic", "injury_date": "", "progress": "",
          "notes": "first notes"}


def _completed(app, client, clock):
    clinic = make_clinic(app)
    b = make_booking(app, client=clinic.client, service=clinic.service,
                     therapist=clinic.therapist, room=clinic.room, start=MON_9)
    clock.set(MON_9 + timedelta(hours=1, minutes=5))
    login(client, clinic.therapist.user)
    response = client.post(f"/therapist/bookings/{b.id}/complete", data=RECORD)
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    return clinic, b


def _record(db, booking_id):
    db.session.expire_all()
    return db.session.scalar(select(SessionRecord).where(SessionRecord.booking_id == booking_id))


def test_edit_within_24_hours(app, client, db, clock):
    clinic, b = _completed(app, client, clock)
    page = client.get(f"/therapist/bookings/{b.id}").get_data(as_text=True)
    assert "Edit record" in page and 'value="upper back, neck"' in page
    assert "Add an amendment" not in page
    clock.set(MON_9 + timedelta(hours=20))
    response = client.post(f"/therapist/bookings/{b.id}/record",
                           data={**RECORD, "intensity": "4", "notes": "better notes"})
    assert response.status_code == 302
    record = _record(db, b.id)
    assert record.intensity == 4 and record.notes == "better notes"
    assert record.updated_at == clock.now()
    page = client.get(f"/therapist/bookings/{b.id}").get_data(as_text=True)
    assert "better notes" in page and "last edited" in page


def test_edit_errors_stay_next_to_fields_with_input_kept(app, client, db, clock):
    clinic, b = _completed(app, client, clock)
    response = client.post(f"/therapist/bookings/{b.id}/record",
                           data={**RECORD, "intensity": "11", "notes": "typed text"})
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert 'id="intensity-error"' in page and "typed text" in page
    response = client.post(f"/therapist/bookings/{b.id}/record",
                           data={**RECORD, "goal": "acute", "injury_date": "2026-12-01",
                                 "notes": "kept"})
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert 'id="injury_date-error">The injury date cannot be after the session.' in page
    assert 'value="2026-12-01"' in page and "kept" in page
    record = _record(db, b.id)
    assert record.intensity == 6 and record.notes == "first notes"


def test_after_24_hours_edit_is_refused_and_an_amendment_works(app, client, db, clock):
    clinic, b = _completed(app, client, clock)
    clock.set(MON_9 + timedelta(hours=26))
    page = client.get(f"/therapist/bookings/{b.id}").get_data(as_text=True)
    assert "Add an amendment" in page and "Edit record" not in page
    response = client.post(f"/therapist/bookings/{b.id}/record",
                           data={**RECORD, "intensity": "2"})
    page = response.get_data(as_text=True)
    assert response.status_code == 409
    assert "Records can be edited for 24 hours; add an amendment instead." in page
    assert _record(db, b.id).intensity == 6

    response = client.post(f"/therapist/bookings/{b.id}/amendments", data={"text": ""})
    assert response.status_code == 422
    assert 'id="text-error"' in response.get_data(as_text=True)
    response = client.post(f"/therapist/bookings/{b.id}/amendments",
                           data={"text": "x" * 5001})
    assert response.status_code == 422 and "x" * 5001 in response.get_data(as_text=True)
    assert db.session.scalar(select(SessionAmendment)) is None

    response = client.post(f"/therapist/bookings/{b.id}/amendments",
                           data={"text": "Client later reported a headache."})
    assert response.status_code == 302
    [amendment] = db.session.scalars(select(SessionAmendment)).all()
    assert amendment.author_id == clinic.therapist.user_id
    assert amendment.created_at == clock.now()
    page = client.get(f"/therapist/bookings/{b.id}").get_data(as_text=True)
    assert "Amendments" in page and "Client later reported a headache." in page
    assert "first notes" in page  # the record itself is unchanged


def test_another_therapist_gets_404(app, client, db, clock):
    clinic, b = _completed(app, client, clock)
    login(client, clinic.other_therapist.user)
    assert client.get(f"/therapist/bookings/{b.id}").status_code == 404
    assert client.post(f"/therapist/bookings/{b.id}/record",
                       data={**RECORD, "intensity": "1"}).status_code == 404
    assert client.post(f"/therapist/bookings/{b.id}/amendments",
                       data={"text": "not mine"}).status_code == 404
    assert client.post("/therapist/bookings/999999/amendments",
                       data={"text": "nothing"}).status_code == 404
    assert _record(db, b.id).intensity == 6
    assert db.session.scalar(select(SessionAmendment)) is None
    # A client is not let in at all.
    login(client, clinic.client)
    assert client.post(f"/therapist/bookings/{b.id}/amendments",
                       data={"text": "x"}).status_code == 403


def test_no_record_yet_gives_404_on_edit_and_amend(app, client, db, clock):
    clinic = make_clinic(app)
    b = make_booking(app, client=clinic.client, service=clinic.service,
                     therapist=clinic.therapist, room=clinic.room, start=MON_9)
    login(client, clinic.therapist.user)
    assert client.post(f"/therapist/bookings/{b.id}/record", data=RECORD).status_code == 404
    assert client.post(f"/therapist/bookings/{b.id}/amendments",
                       data={"text": "x"}).status_code == 404
