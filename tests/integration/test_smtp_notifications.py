"""Booking mail through the smtp backend into a real SMTP server (aiosmtpd on 127.0.0.1),
and what happens when the server refuses: capped exponential backoff, then ``dead``."""

from __future__ import annotations

import contextlib
import logging
from datetime import UTC
from datetime import datetime
from datetime import timedelta

import pytest
from aiosmtpd.controller import Controller

from clinic_app.mail.backends import SmtpBackend
from clinic_app.mail.outbox import backoff
from clinic_app.mail.outbox import message_id_for
from clinic_app.worker import dispatch_outbox_job
from tests.factories.notify import Sink
from tests.factories.notify import make_booking
from tests.factories.notify import make_clinic
from tests.factories.notify import rows
from tests.factories.notify import run_job
from tests.factories.notify import start_sink

START = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


@pytest.fixture
def smtp_sink():
    controller, sink = start_sink()
    yield controller, sink
    with contextlib.suppress(RuntimeError, AssertionError):  # a test may have stopped it
        controller.stop()


@pytest.fixture(autouse=True)
def mail_log():
    """The mail logger, enabled (a logging.config call elsewhere may have disabled it)."""
    logger = logging.getLogger("clinic_app.mail")
    logger.disabled = False
    return logger


@pytest.fixture
def app_config(app_config, smtp_sink):
    controller, _ = smtp_sink
    app_config.update({"MAIL_BACKEND": "smtp", "SMTP_HOST": "127.0.0.1",
                       "SMTP_PORT": controller.port, "SMTP_TLS": "none",
                       "OUTBOX_MAX_ATTEMPTS": 3})
    return app_config


def test_booking_mail_arrives_at_a_real_smtp_server(app, db, smtp_sink, caplog):
    _, sink = smtp_sink
    assert isinstance(app.extensions["mail_backend"], SmtpBackend)
    booking = make_booking(app, make_clinic(app), START)
    with caplog.at_level(logging.INFO, logger="clinic_app.mail"):
        result = run_job(dispatch_outbox_job, app)
    assert result.sent == 2 and result.failed == 0
    client_mail = sink.to("client@example.com")[0]
    key = f"booking:{booking.id}:confirmation:0:client"
    assert client_mail["Message-ID"] == message_id_for(key, app.config["MAIL_FROM"])
    assert client_mail["Subject"] == "Booking confirmed: Wed 25 Nov 2026, 10:00 GMT"
    assert client_mail.get_body(preferencelist=("html",)) is not None
    [ics] = [p for p in client_mail.iter_attachments()
             if p.get_content_type() == "text/calendar"]
    assert ics.get_param("method") == "REQUEST" and ics.get_filename() == "booking.ics"
    assert "BEGIN:VEVENT" in ics.get_content()
    sent_lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("sent")]
    assert len(sent_lines) == 2  # one log line per message
    assert run_job(dispatch_outbox_job, app).sent == 0 and len(sink.ids()) == 2


def test_refused_mail_backs_off_then_goes_dead(app, db, clock, smtp_sink, caplog):
    _, sink = smtp_sink
    sink.reject_with = "550 5.7.1 Relaying denied"
    make_booking(app, make_clinic(app), START)
    confirmation = rows("booking_confirmation")[0]
    with caplog.at_level(logging.INFO, logger="clinic_app.mail"):
        first = run_job(dispatch_outbox_job, app)
    assert first.failed == 2 and first.sent == 0
    row = db.session.get(type(confirmation), confirmation.id)
    assert (row.status, row.attempts) == ("failed", 1)
    assert "Relaying denied" in row.last_error
    assert row.next_attempt_at == clock.now() + timedelta(seconds=30)
    # Not before its time...
    clock.advance(timedelta(seconds=29))
    assert run_job(dispatch_outbox_job, app).failed == 0
    clock.advance(timedelta(seconds=1))
    assert run_job(dispatch_outbox_job, app).failed == 2
    row = db.session.get(type(confirmation), confirmation.id)
    assert row.attempts == 2 and row.next_attempt_at == clock.now() + timedelta(seconds=60)
    clock.advance(timedelta(seconds=60))
    third = run_job(dispatch_outbox_job, app)
    assert third.dead == 2
    row = db.session.get(type(confirmation), confirmation.id)
    assert (row.status, row.attempts) == ("dead", 3)
    clock.advance(timedelta(hours=1))  # still before the first reminder is due
    assert run_job(dispatch_outbox_job, app) == type(third)()  # dead stays dead
    messages = [r.getMessage() for r in caplog.records]
    assert sum("failed (attempt" in m for m in messages) == 4
    assert sum("is dead after 3 attempts" in m for m in messages) == 2
    assert sink.ids() == {}


def test_an_unreachable_server_is_retried_not_lost(app, db, smtp_sink):
    controller, _ = smtp_sink
    make_booking(app, make_clinic(app), START)
    controller.stop()
    assert run_job(dispatch_outbox_job, app).failed == 2
    sink = Sink()
    again = Controller(sink, hostname="127.0.0.1", port=controller.port)
    again.start()
    try:
        app.extensions["clock"].advance(timedelta(seconds=30))
        assert run_job(dispatch_outbox_job, app).sent == 2
        assert len(sink.ids()) == 2
    finally:
        again.stop()


def test_backoff_is_exponential_and_capped():
    assert [backoff(n).total_seconds() for n in (1, 2, 3, 4)] == [30, 60, 120, 240]
    assert backoff(8) == timedelta(hours=1) and backoff(50) == timedelta(hours=1)
