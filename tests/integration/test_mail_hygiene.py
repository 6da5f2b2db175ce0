"""Mail hygiene: header values that cannot break a message, a red-flag alert that names no
one, logs without recipients, subjects or SQL parameters, and calendar UIDs unique to the
installation."""

from __future__ import annotations

import logging
from datetime import UTC
from datetime import datetime
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from clinic_app.extensions import db as _db
from clinic_app.mail.ics import event_uid
from clinic_app.mail.ics import uid_host
from clinic_app.mail.outbox import Outgoing
from clinic_app.mail.outbox import build_mime
from clinic_app.mail.outbox import clean_header
from clinic_app.mail.outbox import enqueue
from clinic_app.models import OutboxMessage
from clinic_app.worker import dispatch_outbox_job
from tests.factories.booking import make_clinic
from tests.factories.care import recorded_session

MON = datetime(2026, 11, 23, 13, 0, tzinfo=UTC)
MAIL_FROM = "Trigger Point Clinic <bookings@clinic.localhost>"


def _row(**values) -> OutboxMessage:
    fields = {"key": "test:1", "kind": "test", "to_addr": "r@example.com", "subject": "Hello",
              "body_text": "Hi\n", "body_html": None, "attachments": [], "headers": {},
              "due_at": MON}
    fields.update(values)
    return OutboxMessage(**fields)


@pytest.mark.parametrize("value", ["Ann\r\nBcc: victim@example.com", "Ann\nLee", "Ann\rLee",
                                   "Ann\x00\x1b\x7fLee", "Zoë\r\n Ünal"])
def test_control_characters_in_headers_never_break_the_message(value):
    row = _row(to_addr=f"{value} <r@example.com>", subject=f"Booking for {value}",
               headers={"X-Note": value})
    raw = build_mime(row, f"{value} <bookings@clinic.localhost>").as_bytes()
    head = raw.split(b"\n\n", 1)[0].decode("ascii")
    assert "Bcc:" not in head.replace("Bcc: victim", "")  # no injected header line
    for line in head.splitlines():
        assert line[:1] in (" ", "\t") or ":" in line  # every line a header or a folding
    assert "\x00" not in head and "\x1b" not in head


def test_clean_header_keeps_ordinary_text():
    assert clean_header("Booking confirmed: Wed 25 Nov, 10:00") == (
        "Booking confirmed: Wed 25 Nov, 10:00")
    assert clean_header("Ann\r\n\tLee") == "Ann Lee"
    assert clean_header("") == ""


def test_red_flag_alert_names_no_one_and_survives_a_name_with_a_line_break(
        app, db, clock, mailbox, caplog):
    clinic = make_clinic(app)
    # Written straight to the row: the forms refuse this name, but older rows may hold one.
    clinic.client.name = "Rob\r\nSmith"
    db.session.commit()
    with caplog.at_level(logging.DEBUG):
        booking, _ = recorded_session(app, clinic, MON, soreness=3,
                                      red_flags=["breathless_chest_pain"])
        clock.set(booking.end_at + timedelta(hours=25))
        mailbox.deliver()
    [alert] = mailbox.messages(clinic.t1.user.email)
    assert alert["Subject"] == "A client needs your attention"
    row = db.session.scalar(select(OutboxMessage).where(OutboxMessage.kind == "red_flag_alert"))
    assert row.status == "sent"
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert clinic.t1.user.email not in logged and clinic.client.email not in logged
    assert "needs your attention" not in logged


def test_failed_sends_log_no_recipient(app, db, caplog, monkeypatch):
    enqueue(db.session, key="test:fail", kind="test", now=app.extensions["clock"].now(),
            message=Outgoing(to="secret.person@example.com", subject="Private subject",
                             text="Hi\n"))
    db.session.commit()
    backend = app.extensions["mail_backend"]

    def refuse(message):
        raise OSError("550 <secret.person@example.com>: mailbox unavailable")

    monkeypatch.setattr(backend, "send", refuse)
    with caplog.at_level(logging.INFO, logger="clinic_app.mail"):
        assert dispatch_outbox_job(app).failed == 1
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "failed (attempt 1)" in logged and "mailbox unavailable" in logged
    assert "secret.person" not in logged and "Private subject" not in logged
    db.session.expire_all()
    row = db.session.scalar(select(OutboxMessage).where(OutboxMessage.key == "test:fail"))
    assert "secret.person@example.com" in row.last_error  # the admin page keeps the detail


def test_database_errors_do_not_log_parameters(app, db):
    assert _db.engine.hide_parameters is True
    # An error whose own text quotes nothing, with a secret bound beside it: division by
    # zero on PostgreSQL, a NOT NULL violation on SQLite (which divides by zero quietly).
    statement = ("SELECT :note || 'x', 1 / (:zero - :zero)"
                 if _db.engine.dialect.name == "postgresql"
                 else "INSERT INTO outbox (key, kind) VALUES (:note, 'test')")
    with pytest.raises(DBAPIError) as error:
        db.session.execute(text(statement), {"note": "session-note-x", "zero": 1})
    db.session.rollback()
    assert "session-note-x" not in str(error.value)
    assert "hidden due to hide_parameters" in str(error.value)


def test_calendar_uids_carry_the_installation_host(app, db):
    assert uid_host("https://booking.example-clinic.co.uk/") == "booking.example-clinic.co.uk"
    assert uid_host("http://127.0.0.1:5000") == "127.0.0.1"
    assert uid_host("") == "clinic.localhost"  # no base URL: a neutral host, never a crash
    assert uid_host("not a url") == "clinic.localhost"
    booking = type("B", (), {"id": 7})()
    assert event_uid(booking) == "booking-7@clinic.test"  # the app's CLINIC_BASE_URL
    assert event_uid(booking, "a.example") != event_uid(booking, "b.example")
