"""The verification email through the smtp backend to a real SMTP server (aiosmtpd)."""

from __future__ import annotations

import email
import email.policy
import re
import socket

import pytest
from aiosmtpd.controller import Controller

from clinic_app.mail.backends import SmtpBackend
from tests.conftest import path_of


class Sink:
    """Keeps every message the SMTP server accepted."""

    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd API
        self.messages.append(email.message_from_bytes(envelope.content,
                                                      policy=email.policy.default))
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp_server():
    sink = Sink()
    controller = Controller(sink, hostname="127.0.0.1", port=_free_port())
    controller.start()
    yield controller, sink
    controller.stop()


@pytest.fixture
def app_config(app_config, smtp_server):
    controller, _ = smtp_server
    app_config.update({"MAIL_BACKEND": "smtp", "SMTP_HOST": "127.0.0.1",
                       "SMTP_PORT": controller.port, "SMTP_TLS": "none"})
    return app_config


def test_verification_mail_arrives_over_smtp_and_its_link_works(app, client, db, smtp_server):
    from clinic_app.worker import dispatch_outbox_job

    _, sink = smtp_server
    assert isinstance(app.extensions["mail_backend"], SmtpBackend)
    client.post("/signup", data={"name": "Sam", "email": "sam@example.com",
                                 "password": "a-good-long-password", "consent": "y"})
    db.session.commit()
    result = dispatch_outbox_job(app)
    assert result.sent == 1
    assert len(sink.messages) == 1
    message = sink.messages[0]
    assert message["To"] == "sam@example.com"
    assert message["Subject"] == "Confirm your email address"
    assert message["Message-ID"].endswith("@clinic.localhost>")
    text = message.get_body(preferencelist=("plain",)).get_content()
    html = message.get_body(preferencelist=("html",)).get_content()
    link = re.search(r"http://clinic\.test/verify/\S+", text).group(0)
    assert link in html
    assert client.get(path_of(link)).status_code == 302
    login = client.post("/login", data={"email": "sam@example.com",
                                        "password": "a-good-long-password"})
    assert login.status_code == 302
    # Dispatching again sends nothing more: each message goes once.
    assert dispatch_outbox_job(app).sent == 0 and len(sink.messages) == 1


def test_unreachable_smtp_server_is_retried_not_lost(app, client, db, smtp_server):
    from clinic_app.models import OutboxMessage
    from clinic_app.worker import dispatch_outbox_job

    controller, sink = smtp_server
    app.extensions["mail_backend"] = SmtpBackend("127.0.0.1", _free_port(), timeout=2)
    client.post("/signup", data={"name": "Sam", "email": "sam@example.com",
                                 "password": "a-good-long-password", "consent": "y"})
    db.session.commit()
    result = dispatch_outbox_job(app)
    assert result.failed == 1 and result.sent == 0
    row = db.session.query(OutboxMessage).one()
    assert row.status == "failed" and row.attempts == 1 and row.last_error
    assert row.next_attempt_at > app.extensions["clock"].now()
    assert sink.messages == []
