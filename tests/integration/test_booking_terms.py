"""Promises that are true (issue 10 item 3): one function decides the terms of a booking,
and the confirm page, the done page and every booking email state them. A same-day booking
already inside the cutoff is not promised free cancellation; a "confirm first" booking gets
no "confirmed" wording and no add-to-calendar."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime
from datetime import timedelta

from sqlalchemy import select

from clinic_app.models import Booking
from clinic_app.models import ClinicSettings
from clinic_app.models import Intake
from clinic_app.services.notify.messages import booking_terms
from tests.factories.accounts import login
from tests.factories.pages import make_clinic

# The clock: Mon 23 Nov 2026 08:00 UTC (GMT). Hours 09-12 and 13-17; 4 h minimum notice.
MON_13 = datetime(2026, 11, 23, 13, 0, tzinfo=UTC)  # same day: inside the 24 h cutoff
TUE_10 = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)  # free cancellation until Mon 10:00
NOW = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)


def _confirm(clinic, start):
    return (f"/book/{clinic.service.id}/confirm?start={start.isoformat()}"
            f"&therapist={clinic.therapist.id}&chosen={clinic.therapist.id}")


def _book(client, clinic, start):
    response = client.post(f"/book/{clinic.service.id}/confirm", data={
        "start": start.isoformat(), "therapist": clinic.therapist.id,
        "chosen": clinic.therapist.id})
    assert response.status_code == 302, response.get_data(as_text=True)
    return response.headers["Location"]


def test_terms_follow_the_cutoff_and_the_status():
    clinic = ClinicSettings(cancel_cutoff_hours=24)
    ahead = booking_terms(None, clinic, NOW, start=TUE_10, status="booked")
    assert ahead.free_cancel_until == TUE_10 - timedelta(hours=24)
    assert ahead.confirmed and ahead.calendar and not ahead.pending
    assert "free of charge up to 24 hours" in ahead.policy
    inside = booking_terms(None, clinic, NOW, start=MON_13, status="booked")
    assert inside.free_cancel_until is None
    assert "free of charge" not in inside.policy and "already passed" in inside.policy
    # Exactly at the cutoff the free period is over.
    edge = booking_terms(None, clinic, TUE_10 - timedelta(hours=24), start=TUE_10)
    assert edge.free_cancel_until is None
    pending = booking_terms(None, clinic, NOW, start=TUE_10, status="pending")
    assert not pending.confirmed and not pending.calendar and pending.pending
    assert pending.policy.startswith("This is a request until your therapist confirms it")


def test_same_day_booking_is_not_promised_free_cancellation(app, client, db, mailbox):
    clinic = make_clinic(app)
    login(client, clinic.client)
    page = client.get(_confirm(clinic, MON_13)).get_data(as_text=True)
    assert "free of charge" not in page
    assert "less than 24 hours away" in page and "already passed" in page
    assert "Book this appointment" in page
    done = client.get(_book(client, clinic, MON_13)).get_data(as_text=True)
    assert "less than 24 hours away" in done and "A confirmation email is on its way" in done
    mailbox.deliver()
    [mail] = mailbox.messages(clinic.client.email)
    text = mailbox.text(mail)
    assert "free of charge" not in text and "already passed" in text


def test_next_day_booking_states_when_free_cancellation_ends(app, client, db, mailbox):
    clinic = make_clinic(app)
    login(client, clinic.client)
    page = client.get(_confirm(clinic, TUE_10)).get_data(as_text=True)
    assert "free of charge up to <strong>24 hours</strong>" in page
    assert "until Monday 23 November, 10:00" in page and "already passed" not in page
    _book(client, clinic, TUE_10)
    mailbox.deliver()
    [mail] = mailbox.messages(clinic.client.email)
    assert "free of charge up to 24 hours" in mailbox.text(mail)
    assert [p.get_content_type() for p in mail.iter_attachments()] == ["text/calendar"]


def test_confirm_first_booking_is_a_request_without_calendar(app, client, db, mailbox, clock):
    clinic = make_clinic(app)
    db.session.add(Intake(client_id=clinic.client.id, answers={}, flags=["confirm_first"],
                          updated_at=clock.now()))
    db.session.commit()
    login(client, clinic.client)
    page = client.get(_confirm(clinic, TUE_10)).get_data(as_text=True)
    assert "Your therapist confirms this appointment first" in page
    assert "Request this appointment" in page and "Book this appointment" not in page
    done = client.get(_book(client, clinic, TUE_10)).get_data(as_text=True)
    booking = db.session.scalar(select(Booking))
    assert booking.status == "pending"
    assert "Request received" in done
    assert "confirmation email is on its way" not in done
    assert ".ics" not in done and "Add to calendar" not in done
    mailbox.deliver()
    [mail] = mailbox.messages(clinic.client.email)
    assert mail["Subject"].startswith("Booking request received")
    text = mailbox.text(mail).lower()
    assert "confirmed" not in text.replace("confirms", "").replace("confirm it", "")
    assert "calendar file" not in text
    assert list(mail.iter_attachments()) == []
    [for_therapist] = mailbox.messages(clinic.therapist.user.email)
    assert for_therapist["Subject"].startswith("Booking request to confirm")
