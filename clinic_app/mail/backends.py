"""Delivery backends: ``dev`` keeps messages as .eml files, ``smtp`` sends them."""

from __future__ import annotations

import email.policy
import smtplib
import ssl
import time
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any
from typing import Protocol


class MailBackend(Protocol):
    def send(self, message: EmailMessage) -> None: ...


class ConnectionBackend(MailBackend, Protocol):
    """A backend that can also hand out one connection for a batch (SMTP)."""

    def open(self) -> smtplib.SMTP: ...


class DevMailbox:
    """Keeps each message as a file in a folder (the embedded default).

    Files, not memory, so that the web process can show what the worker sent.
    """

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)

    def send(self, message: EmailMessage) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        ident = str(message["Message-ID"]).strip("<>").split("@")[0]
        # Written atomically: readers never see half a message. The name sorts
        # by arrival (nanosecond counter, not the app clock: it is only an order).
        tmp = self.folder / f".{ident}.tmp"
        tmp.write_bytes(message.as_bytes(policy=email.policy.SMTP))
        tmp.replace(self.folder / f"{time.time_ns():020d}-{ident}.eml")

    def messages(self) -> list[tuple[str, EmailMessage]]:
        """Every kept message, oldest first, with its file id."""
        if not self.folder.exists():
            return []
        parser = BytesParser(policy=email.policy.default)
        out = []
        for path in sorted(self.folder.glob("*.eml")):
            out.append((path.stem, parser.parsebytes(path.read_bytes())))  # type: ignore[arg-type]
        return out

    def get(self, ident: str) -> EmailMessage | None:
        for stem, message in self.messages():
            if stem == ident:
                return message
        return None

    def clear(self) -> None:
        if self.folder.exists():
            for path in self.folder.glob("*.eml"):
                path.unlink()


class SmtpBackend:
    """smtplib with no TLS, STARTTLS or implicit TLS, and optional login."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        tls: str = "none",
        username: str | None = None,
        password: str | None = None,
        timeout: int = 15,
    ) -> None:
        self.host, self.port, self.tls = host, port, tls
        self.username, self.password, self.timeout = username, password, timeout

    def open(self) -> smtplib.SMTP:
        """A connected (and logged-in) SMTP session, for sending several messages over one
        connection; the caller quits it."""
        conn = self._connect()
        if self.username:
            conn.login(self.username, self.password or "")
        return conn

    def _connect(self) -> smtplib.SMTP:
        if self.tls == "ssl":
            return smtplib.SMTP_SSL(
                self.host, self.port, timeout=self.timeout, context=ssl.create_default_context()
            )
        conn = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        if self.tls == "starttls":
            conn.starttls(context=ssl.create_default_context())
        return conn

    def send(self, message: EmailMessage) -> None:
        with self._connect() as conn:
            if self.username:
                conn.login(self.username, self.password or "")
            conn.send_message(message)


def backend_from_config(config: dict[str, Any], instance_path: str) -> MailBackend:
    """The backend the configuration asks for."""
    if config["MAIL_BACKEND"] == "smtp":
        return SmtpBackend(
            config["SMTP_HOST"],
            config["SMTP_PORT"],
            tls=config["SMTP_TLS"],
            username=config.get("SMTP_USERNAME"),
            password=config.get("SMTP_PASSWORD"),
            timeout=config["SMTP_TIMEOUT"],
        )
    folder = config.get("DEV_MAILBOX_DIR") or str(Path(instance_path) / "dev-mailbox")
    return DevMailbox(folder)
