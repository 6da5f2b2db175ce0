"""The transactional outbox.

``enqueue`` writes a row in the caller's transaction, so an email exists if and
only if the change that caused it was committed. A row records the *intent*: kind,
booking, recipient, due time, idempotency key and a few params; nothing is rendered
in the causing request. ``dispatch`` (the worker) claims due rows in a short
transaction and, right before each send, asks the kind's registered ``MessageKind``
whether the message still holds (``check``: a reason to retire it, or None) and renders
it from the current state (``render``); it sends outside any transaction and records
the outcome (the rendered subject and bodies stay on the row as the record of what
was said).
Claiming is one conditional UPDATE: with ``FOR UPDATE SKIP LOCKED`` on
PostgreSQL, and under SQLite's ``BEGIN IMMEDIATE`` write lock, two workers never
claim the same row. A crashed worker's rows come back when their lease ends.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
from collections.abc import Callable
from collections.abc import Iterable
from dataclasses import dataclass
from dataclasses import field
from datetime import datetime
from datetime import timedelta
from email import encoders
from email.charset import QP
from email.charset import Charset
from email.header import Header
from email.message import Message
from email.mime.base import MIMEBase
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import format_datetime
from email.utils import formataddr
from email.utils import parseaddr
from typing import Any
from typing import cast

from sqlalchemy import delete
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from clinic_app.errors import Conflict
from clinic_app.errors import NotFound
from clinic_app.mail.backends import ConnectionBackend
from clinic_app.mail.backends import MailBackend
from clinic_app.models.accounts import User
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
    now: datetime,
    to: str | None = None,
    params: dict[str, Any] | None = None,
    message: Outgoing | None = None,
    due_at: datetime | None = None,
    booking_id: int | None = None,
    user_id: int | None = None,
    essential: bool = True,
) -> OutboxMessage | None:
    """Add a message to the outbox in the current transaction.

    Either an intent (``to`` and small JSON ``params``; the kind's registered renderer
    writes it at send time) or, for kinds without a renderer, a ready ``message``.
    Idempotent on ``key``: a second call with the same key returns None and changes
    nothing (a planner may run twice; the email goes once).
    """
    if (message is None) == (to is None):
        raise ValueError("enqueue takes either an intent (to=, params=) or a message")
    existing = session.scalar(select(OutboxMessage.id).where(OutboxMessage.key == key))
    if existing is not None:
        return None
    due = due_at or now
    row = OutboxMessage(
        key=key,
        kind=kind,
        to_addr=message.to if message is not None else to,
        subject=message.subject if message is not None else None,
        body_text=message.text if message is not None else None,
        body_html=message.html if message is not None else None,
        attachments=[a.__dict__ for a in message.attachments] if message is not None else [],
        headers=dict(message.headers) if message is not None else {},
        params=None if message is not None else dict(params or {}),
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


@dataclass
class Intent:
    """One message to write as an outbox intent (see ``enqueue``)."""

    key: str
    kind: str
    to: str
    params: dict[str, Any]
    due_at: datetime | None = None
    booking_id: int | None = None
    user_id: int | None = None
    essential: bool = True


def _insert_new_intents(dialect: str) -> Any:
    """INSERT of outbox rows that skips every row whose key is already present.

    Only the columns that vary are parameters; the rest are left to their column defaults
    or NULL. Without RETURNING the rows go through the driver's ``executemany`` (on
    psycopg a pipeline: one round trip, one parsed statement reused per row) instead of
    one multi-row VALUES whose text and parameter count change with the number of rows
    (psycopg does not cache the parse of a statement with more than 50 parameters).
    """
    stmt = _INSERT_INTENTS.get(dialect)
    if stmt is None:
        insert = pg_insert if dialect == "postgresql" else sqlite_insert
        stmt = insert(OutboxMessage.__table__).on_conflict_do_nothing(index_elements=["key"])
        _INSERT_INTENTS[dialect] = stmt
    return stmt


_INSERT_INTENTS: dict[str, Any] = {}


def enqueue_intents(session: Session, intents: list[Intent], *, now: datetime) -> None:
    """Write several intents at once (a booking writes four or more) in one executemany of
    ``INSERT ... ON CONFLICT (key) DO NOTHING``: idempotent on each key like ``enqueue``,
    also against a concurrent writer of the same key.

    The rows are written with Core, not as ORM objects: the causing request never reads
    them back, and building and flushing the objects cost more than the SQL.
    """
    if not intents:
        return
    session.flush()  # pending ORM rows first, so a key they hold is seen as present
    rows = []
    for item in intents:
        due = item.due_at or now
        rows.append({
            "key": item.key, "kind": item.kind, "to_addr": item.to,
            "attachments": [], "headers": {},
            "params": dict(item.params), "essential": item.essential,
            "booking_id": item.booking_id, "user_id": item.user_id,
            "status": OutboxStatus.PENDING.value, "due_at": due, "next_attempt_at": due,
            "attempts": 0, "created_at": now,
        })
    conn = session.connection()
    conn.execute(_insert_new_intents(conn.dialect.name), rows)


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


# Quoted-printable keeps the raw text readable (and greppable) where base64 would not.
_UTF8 = Charset("utf-8")
_UTF8.body_encoding = QP


# CR, LF and the other control characters (tab aside) have no place in a header value: a
# name with a line break would make the message fail to build on every attempt until it is
# dead (and could inject headers). They become spaces, whatever wrote the row.
_HEADER_CONTROLS = dict.fromkeys([*range(0x00, 0x09), *range(0x0A, 0x20), 0x7F], " ")


def clean_header(value: str) -> str:
    """``value`` on one line: control characters replaced by spaces, runs collapsed."""
    return " ".join(str(value).translate(_HEADER_CONTROLS).split())


def _header(value: str) -> str:
    """A clean ASCII header value (RFC 2047 encoded words for anything else)."""
    value = clean_header(value)
    return value if value.isascii() else Header(value, "utf-8").encode()


def _address(value: str) -> str:
    value = clean_header(value)
    name, addr = parseaddr(value)
    if value.isascii() or not addr:
        return _header(value)
    return formataddr((name, addr), charset="utf-8") if name else addr


def build_mime(row: OutboxMessage, mail_from: str) -> Message:
    """The MIME message for an outbox row (text, optional HTML, attachments).

    Built with the classic ``email.mime`` classes: about fifteen times cheaper than
    ``EmailMessage`` with the default policy (which parses every header it is given),
    and the dispatcher builds one per message sent.
    """
    body: Message = MIMEText(row.body_text, "plain", _UTF8)  # type: ignore[arg-type]
    if row.body_html:
        alternative = MIMEMultipart("alternative")
        alternative.attach(body)
        alternative.attach(MIMEText(row.body_html, "html", _UTF8))  # type: ignore[arg-type]
        body = alternative
    msg = body
    if row.attachments:
        msg = MIMEMultipart("mixed")
        msg.attach(body)
        for att in row.attachments:
            maintype, _, rest = att["content_type"].partition("/")
            subtype, _, params = rest.partition(";")
            extra: dict[str, Any] = {}
            for param in params.split(";"):
                if "=" in param:
                    k, v = param.strip().split("=", 1)
                    extra[k] = v
            extra.pop("charset", None)
            if maintype == "text":
                part: Message = MIMEText(att["content"], subtype.strip(), "utf-8")
                for k, v in extra.items():
                    part.set_param(k, v)
            else:
                part = MIMEBase(maintype, subtype.strip(), **extra)
                part.set_payload(att["content"].encode())
                encoders.encode_base64(part)
            part.add_header("Content-Disposition", "attachment", filename=att["filename"])
            msg.attach(part)
    msg["From"] = _address(mail_from)
    msg["To"] = _address(row.to_addr)
    msg["Subject"] = _header(row.subject)
    msg["Message-ID"] = message_id_for(row.key, mail_from)
    msg["Date"] = format_datetime(row.due_at)
    for name, value in (row.headers or {}).items():
        msg[clean_header(name).replace(" ", "-")] = _header(value)
    return msg


SendCheck = Callable[[Session, OutboxMessage, datetime], str | None]
Render = Callable[[Session, OutboxMessage, datetime], Outgoing]


@dataclass(frozen=True)
class MessageKind:
    """What the dispatcher needs to know about one kind of message.

    ``check(session, row, now)``: the send-time rule and validity window; a reason to
    retire the row (shown on the admin outbox page), or None to send it. ``render``:
    the email written from the current state; None for kinds enqueued ready-made.
    """

    check: SendCheck | None = None
    render: Render | None = None


KINDS: dict[str, MessageKind] = {}


def register_kind(kind: str, *, check: SendCheck | None = None,
                  render: Render | None = None) -> None:
    KINDS[kind] = MessageKind(check=check, render=render)


class NotRenderable(Exception):  # noqa: N818 - a reason, not an error
    """Raised by a renderer when the message cannot be written any more: the row is
    retired with ``reason`` rather than retried."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def default_worker_id() -> str:
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
    lost: int = 0  # claimed, but taken over by another worker before it could be sent


def skip_reason(session: Session, row: OutboxMessage, now: datetime) -> str | None:
    """Why ``row`` must not be sent now (checked at send time), or None.

    Non-essential messages (prompts, recalls) go only to active users who still want
    them; essential ones ignore that switch. Then the kind's registered check runs.
    """
    if not row.essential and row.user_id is not None:
        user = session.get(User, row.user_id, populate_existing=True)
        if user is None or not user.is_active or user.anonymised_at is not None:
            return "recipient gone"
        if not user.wants_prompts:
            return "recipient opted out"
    kind = KINDS.get(row.kind)
    if row.params is not None and (kind is None or kind.render is None):
        return f"no renderer for {row.kind}"
    return kind.check(session, row, now) if kind is not None and kind.check else None


def render_row(session: Session, row: OutboxMessage, now: datetime) -> None:
    """Write an intent row's email from the current state onto the row (every attempt:
    a retry an hour later says what is true then)."""
    if row.params is None:
        return  # enqueued ready-made
    message = KINDS[row.kind].render(session, row, now)  # type: ignore[misc]
    row.subject = message.subject
    row.body_text = message.text
    row.body_html = message.html
    row.attachments = [a.__dict__ for a in message.attachments]
    row.headers = dict(message.headers)


class _Connection:
    """Sends a batch over one connection when the backend offers one (``open``).

    Opening a connection per message costs several round trips; the batch reuses one
    and reconnects after any error (a refused message may leave it in an odd state).
    Other backends (the dev mailbox) are used as they are.
    """

    def __init__(self, backend: MailBackend) -> None:
        self.backend = backend
        self.conn: Any = None
        self.reusable = callable(getattr(backend, "open", None))

    def send(self, message: Any) -> None:
        if not self.reusable:
            self.backend.send(message)
            return
        if self.conn is None:
            self.conn = cast(ConnectionBackend, self.backend).open()
        try:
            self.conn.send_message(message)
        except Exception:
            self.close()
            raise

    def close(self) -> None:
        if self.conn is not None:
            try:
                self.conn.quit()
            except Exception:  # noqa: BLE001 - closing a broken connection
                try:
                    self.conn.close()
                except Exception:  # noqa: BLE001, S110
                    pass
            self.conn = None


def _renew_claim(session: Session, row_id: int, worker_id: str, *, now: datetime,
                 lease: timedelta) -> bool:
    """Re-check that ``worker_id`` still holds ``row_id`` and extend its lease; commits.

    One conditional UPDATE right before the row is sent: if the lease ran out and another
    worker claimed the row meanwhile, ``claimed_by`` no longer matches and the row is left
    to that worker. A renewed lease runs from *now* for the full lease length, so it
    outlives the one send that follows however long the batch before it took.
    """
    renewed = session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == row_id, OutboxMessage.claimed_by == worker_id,
               OutboxMessage.status == OutboxStatus.SENDING.value)
        .values(lease_until=now + lease)
        .execution_options(synchronize_session=False)
    ).rowcount
    session.commit()
    return bool(renewed)


def dispatch(
    session: Session,
    backend: MailBackend,
    *,
    now: datetime,
    mail_from: str,
    worker_id: str | None = None,
    limit: int = 20,
    lease: timedelta = timedelta(minutes=2),
    max_attempts: int = 8,
    clock: Callable[[], datetime] | None = None,
) -> DispatchResult:
    """Send every due message once. Safe to run in several processes at once.

    Claims a small batch (``limit``), then for each row in turn: re-checks the claim with
    a conditional UPDATE that also renews its lease (``_renew_claim``), re-checks whether
    it should still go (``skip_reason``), and sends it with no transaction open while
    SMTP talks. Each sent row is marked in its own commit right after the server accepted
    it, so the only way to send twice is a crash between the server's acceptance and that
    commit (the lease then gives the row to another worker, which sends it again with the
    same Message-ID). ``clock`` gives the current time for the lease renewals of a slow
    batch (default: ``now`` throughout).
    """
    worker_id = worker_id or default_worker_id()
    current = clock or (lambda: now)
    result = DispatchResult()
    ids = claim(session, now=now, worker_id=worker_id, limit=limit, lease=lease)
    if not ids:
        return result
    connection = _Connection(backend)
    try:
        for row_id in ids:
            if not _renew_claim(session, row_id, worker_id, now=current(), lease=lease):
                result.lost += 1  # another worker took it over after our lease ran out
                continue
            row = session.get(OutboxMessage, row_id, populate_existing=True)
            if row is None:
                session.rollback()
                continue
            kind = row.kind
            try:
                reason = skip_reason(session, row, now)
                if reason is None:
                    render_row(session, row, now)
                    mime = build_mime(row, mail_from)
            except NotRenderable as exc:
                reason = exc.reason
            except Exception as exc:  # noqa: BLE001 - a rendering bug: retried, then dead
                session.rollback()
                log.exception("outbox %s (%s) could not be written", row_id, kind)
                _record_failure(session, row_id, worker_id, now,
                                f"rendering failed: {exc.__class__.__name__}: {exc}"[:500],
                                max_attempts, result)
                continue
            if reason:
                row.status = OutboxStatus.RETIRED.value
                row.last_error = reason
                row.lease_until = None
                session.commit()
                result.skipped += 1
                log.info("outbox %s skipped (%s): %s", row_id, kind, reason)
                continue
            session.commit()  # no transaction stays open while we talk to SMTP
            session.expunge(row)
            try:
                connection.send(mime)
            except Exception as exc:  # noqa: BLE001 - any delivery failure is retried
                _record_failure(session, row_id, worker_id, now, str(exc)[:500], max_attempts,
                                result)
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
                log.info("sent outbox %s (%s)", row_id, kind)
    finally:
        connection.close()
    return result


def retry(session: Session, row_id: int, *, now: datetime) -> OutboxMessage:
    """Give a failed or dead message a fresh start (admin): pending, 0 attempts, due now.

    Raises NotFound for an unknown id and Conflict unless the row is failed or dead.
    Does not commit.
    """
    row = session.get(OutboxMessage, row_id)
    if row is None:
        raise NotFound("There is no such message.")
    if row.status not in (OutboxStatus.FAILED.value, OutboxStatus.DEAD.value):
        raise Conflict(f"This message is {row.status}; only failed or dead ones can be retried.")
    row.status = OutboxStatus.PENDING.value
    row.attempts = 0
    row.next_attempt_at = now
    row.lease_until = None
    row.claimed_by = None
    return row


def failed_and_dead(session: Session, *, limit: int = 500) -> list[OutboxMessage]:
    """Messages that need an admin's eye: dead first, then failed, newest first."""
    return list(
        session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.status.in_([OutboxStatus.DEAD.value,
                                             OutboxStatus.FAILED.value]))
            .order_by(OutboxMessage.status, OutboxMessage.id.desc())
            .limit(limit)
        )
    )


def recently_retired(session: Session, *, limit: int = 50) -> list[OutboxMessage]:
    """The newest retired messages with the reason each was not sent (admin page)."""
    return list(
        session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.status == OutboxStatus.RETIRED.value)
            .order_by(OutboxMessage.id.desc())
            .limit(limit)
        )
    )


SENT_RETENTION = timedelta(days=90)


def purge(session: Session, *, now: datetime, older_than: timedelta = SENT_RETENTION) -> int:
    """Delete sent rows (and retired ones) older than ``older_than``; returns how many.

    Failed and dead rows stay for the admin page. Does not commit.
    """
    cutoff = now - older_than
    sent = session.execute(
        delete(OutboxMessage).where(
            OutboxMessage.status == OutboxStatus.SENT.value, OutboxMessage.sent_at < cutoff
        )
    ).rowcount or 0
    retired = session.execute(
        delete(OutboxMessage).where(
            OutboxMessage.status == OutboxStatus.RETIRED.value, OutboxMessage.created_at < cutoff
        )
    ).rowcount or 0
    return sent + retired


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
        log.error("outbox %s (%s) is dead after %s attempts: %s",
                  row.id, row.kind, row.attempts, _scrub(error, row))
    else:
        row.status = OutboxStatus.FAILED.value
        row.next_attempt_at = now + backoff(row.attempts)
        result.failed += 1
        log.warning("outbox %s (%s) failed (attempt %s): %s",
                    row.id, row.kind, row.attempts, _scrub(error, row))
    row.last_error = error
    row.lease_until = None
    session.commit()


def _scrub(error: str, row: OutboxMessage) -> str:
    """An SMTP error for the log, without the recipient's address (servers often quote it);
    the full text stays in the row's ``last_error``."""
    return error.replace(row.to_addr, "<recipient>") if row.to_addr else error
