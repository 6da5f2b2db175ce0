"""The transactional outbox.

``enqueue`` writes a row in the caller's transaction, so an email exists if and
only if the change that caused it was committed. ``dispatch`` (the worker) claims
due rows in a short transaction, sends outside it, and records the outcome.
Claiming is one conditional UPDATE: with ``FOR UPDATE SKIP LOCKED`` on
PostgreSQL, and under SQLite's ``BEGIN IMMEDIATE`` write lock, two workers never
claim the same row. A crashed worker's rows come back when their lease ends.
"""

from __future__ import annotations

import hashlib
import logging
import socket
from collections.abc import Callable
from collections.abc import Iterable
from dataclasses import dataclass
from dataclasses import field
from datetime import datetime
from datetime import timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from email.utils import parseaddr
from typing import Any

from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.orm import Session

from clinic_app.mail.backends import MailBackend
from clinic_app.models.outbox import OutboxMessage
from clinic_app.models.outbox import OutboxStatus

log = logging.getLogger("clinic_app.mail")

BACKOFF_BASE_SECONDS = 30
BACKOFF_CAP_SECONDS = 3600


@dataclass
class Attachment:
    filename: str
    content_type: str  # e.g. "text/calendar; method=REQUEST"
    content: str


@dataclass
class Outgoing:
    """A rendered email, before it becomes an outbox row."""

    to: str
    subject: str
    text: str
    html: str | None = None
    attachments: list[Attachment] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)


def enqueue(
    session: Session,
    *,
    key: str,
    kind: str,
    message: Outgoing,
    now: datetime,
    due_at: datetime | None = None,
    booking_id: int | None = None,
    user_id: int | None = None,
    essential: bool = True,
) -> OutboxMessage | None:
    """Add ``message`` to the outbox in the current transaction.

    Idempotent on ``key``: a second call with the same key returns None and
    changes nothing (a planner may run twice; the email goes once).
    """
    existing = session.scalar(select(OutboxMessage.id).where(OutboxMessage.key == key))
    if existing is not None:
        return None
    due = due_at or now
    row = OutboxMessage(
        key=key,
        kind=kind,
        to_addr=message.to,
        subject=message.subject,
        body_text=message.text,
        body_html=message.html,
        attachments=[a.__dict__ for a in message.attachments],
        headers=dict(message.headers),
        essential=essential,
        booking_id=booking_id,
        user_id=user_id,
        status=OutboxStatus.PENDING.value,
        due_at=due,
        next_attempt_at=due,
        attempts=0,
        created_at=now,
    )
    session.add(row)
    session.flush()
    return row


def retire(
    session: Session, *, booking_id: int, kinds: Iterable[str] | None = None, now: datetime
) -> int:
    """Retire a booking's unsent rows (all, or of ``kinds``); returns how many."""
    stmt = (
        update(OutboxMessage)
        .where(OutboxMessage.booking_id == booking_id)
        .where(OutboxMessage.status.in_([OutboxStatus.PENDING.value, OutboxStatus.FAILED.value]))
        .values(status=OutboxStatus.RETIRED.value, last_error=f"retired at {now.isoformat()}")
    )
    if kinds is not None:
        stmt = stmt.where(OutboxMessage.kind.in_(list(kinds)))
    return session.execute(stmt).rowcount or 0


def message_id_for(key: str, mail_from: str) -> str:
    """A stable Message-ID: the same key always gives the same id (dedupe downstream)."""
    domain = parseaddr(mail_from)[1].rpartition("@")[2] or "clinic.localhost"
    return f"<{hashlib.sha256(key.encode()).hexdigest()[:40]}@{domain}>"


def build_mime(row: OutboxMessage, mail_from: str) -> EmailMessage:
    """The MIME message for an outbox row (text, optional HTML, attachments)."""
    msg = EmailMessage()
    msg["From"] = mail_from
    msg["To"] = row.to_addr
    msg["Subject"] = row.subject
    msg["Message-ID"] = message_id_for(row.key, mail_from)
    msg["Date"] = format_datetime(row.due_at)
    for name, value in (row.headers or {}).items():
        msg[name] = value
    msg.set_content(row.body_text)
    if row.body_html:
        msg.add_alternative(row.body_html, subtype="html")
    for att in row.attachments or []:
        maintype, _, rest = att["content_type"].partition("/")
        subtype, _, params = rest.partition(";")
        extra: dict[str, Any] = {}
        for param in params.split(";"):
            if "=" in param:
                k, v = param.strip().split("=", 1)
                extra[k] = v
        msg.add_attachment(
            att["content"].encode(),
            maintype=maintype,
            subtype=subtype.strip(),
            filename=att["filename"],
            params=extra,
        )
    return msg


# kind -> check(session, row, now) -> reason to skip, or None to send. Booking
# messages register checks so that a cancelled booking never gets a reminder,
# even if retiring its rows was missed.
SendCheck = Callable[[Session, OutboxMessage, datetime], str | None]
SEND_CHECKS: dict[str, SendCheck] = {}


def register_send_check(kind: str, check: SendCheck) -> None:
    SEND_CHECKS[kind] = check


def default_worker_id() -> str:
    import os

    return f"{socket.gethostname()}:{os.getpid()}"


def claim(
    session: Session, *, now: datetime, worker_id: str, limit: int, lease: timedelta
) -> list[int]:
    """Claim up to ``limit`` due rows for ``worker_id``; commits. Returns their ids."""
    due = (
        select(OutboxMessage.id)
        .where(
            or_(
                OutboxMessage.status.in_(
                    [OutboxStatus.PENDING.value, OutboxStatus.FAILED.value]
                )
                & (OutboxMessage.next_attempt_at <= now),
                (OutboxMessage.status == OutboxStatus.SENDING.value)
                & (OutboxMessage.lease_until < now),
            )
        )
        .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    ids = list(session.scalars(due))
    if not ids:
        session.commit()
        return []
    # Conditional: a row someone else claimed meanwhile no longer matches.
    result = session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id.in_(ids))
        .where(
            or_(
                OutboxMessage.status.in_(
                    [OutboxStatus.PENDING.value, OutboxStatus.FAILED.value]
                ),
                (OutboxMessage.status == OutboxStatus.SENDING.value)
                & (OutboxMessage.lease_until < now),
            )
        )
        .values(
            status=OutboxStatus.SENDING.value,
            claimed_by=worker_id,
            lease_until=now + lease,
            attempts=OutboxMessage.attempts + 1,
        )
        .returning(OutboxMessage.id)
        .execution_options(synchronize_session=False)
    )
    claimed = [r[0] for r in result]
    session.commit()
    return claimed


def backoff(attempts: int) -> timedelta:
    """Capped exponential backoff: 30 s, 60 s, 120 s ... at most an hour."""
    return timedelta(seconds=min(BACKOFF_BASE_SECONDS * 2 ** max(attempts - 1, 0),
                                 BACKOFF_CAP_SECONDS))


@dataclass
class DispatchResult:
    sent: int = 0
    failed: int = 0
    dead: int = 0
    skipped: int = 0


def dispatch(
    session: Session,
    backend: MailBackend,
    *,
    now: datetime,
    mail_from: str,
    worker_id: str | None = None,
    limit: int = 200,
    lease: timedelta = timedelta(minutes=2),
    max_attempts: int = 8,
) -> DispatchResult:
    """Send every due message once. Safe to run in several processes at once."""
    worker_id = worker_id or default_worker_id()
    result = DispatchResult()
    ids = claim(session, now=now, worker_id=worker_id, limit=limit, lease=lease)
    for row_id in ids:
        row = session.get(OutboxMessage, row_id, populate_existing=True)
        if row is None or row.claimed_by != worker_id:
            session.rollback()
            continue
        check = SEND_CHECKS.get(row.kind)
        skip_reason = check(session, row, now) if check else None
        if skip_reason:
            row.status = OutboxStatus.RETIRED.value
            row.last_error = skip_reason
            row.lease_until = None
            session.commit()
            result.skipped += 1
            log.info("outbox %s skipped (%s): %s", row.id, row.kind, skip_reason)
            continue
        mime = build_mime(row, mail_from)
        session.rollback()  # no transaction stays open while we talk to SMTP
        try:
            backend.send(mime)
        except Exception as exc:  # noqa: BLE001 - any delivery failure is retried
            _record_failure(session, row_id, worker_id, now, str(exc)[:500], max_attempts, result)
            continue
        done = session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == row_id, OutboxMessage.claimed_by == worker_id)
            .where(OutboxMessage.status == OutboxStatus.SENDING.value)
            .values(status=OutboxStatus.SENT.value, sent_at=now, lease_until=None,
                    last_error=None)
            .execution_options(synchronize_session=False)
        )
        session.commit()
        if done.rowcount:
            result.sent += 1
            log.info("sent outbox %s %s to %s", row_id, row.kind, row.to_addr)
    return result


def _record_failure(
    session: Session,
    row_id: int,
    worker_id: str,
    now: datetime,
    error: str,
    max_attempts: int,
    result: DispatchResult,
) -> None:
    row = session.get(OutboxMessage, row_id, populate_existing=True)
    if row is None or row.claimed_by != worker_id:
        session.rollback()
        return
    if row.attempts >= max_attempts:
        row.status = OutboxStatus.DEAD.value
        result.dead += 1
        log.error("outbox %s %s to %s is dead after %s attempts: %s",
                  row.id, row.kind, row.to_addr, row.attempts, error)
    else:
        row.status = OutboxStatus.FAILED.value
        row.next_attempt_at = now + backoff(row.attempts)
        result.failed += 1
        log.warning("outbox %s %s to %s failed (attempt %s): %s",
                    row.id, row.kind, row.to_addr, row.attempts, error)
    row.last_error = error
    row.lease_until = None
    session.commit()
