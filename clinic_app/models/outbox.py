"""The transactional outbox: every email is a row first, sent later by the worker."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON
from sqlalchemy import ForeignKey
from sqlalchemy import Index
from sqlalchemy import Integer
from sqlalchemy import String
from sqlalchemy import Text
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from clinic_app.db import Base
from clinic_app.db import UTCDateTime


class OutboxStatus(enum.StrEnum):
    PENDING = "pending"  # waiting for due_at / next_attempt_at
    SENDING = "sending"  # claimed by a worker until lease_until
    SENT = "sent"
    FAILED = "failed"  # last attempt failed; will retry at next_attempt_at
    DEAD = "dead"  # gave up after the maximum number of attempts
    RETIRED = "retired"  # no longer wanted (booking cancelled or moved)


class OutboxMessage(Base):
    """One email to send, identified by an idempotency key.

    Written as an intent (kind, booking, recipient, due time, key, ``params``) by the
    change that causes it; ``subject`` and the bodies are filled in by the worker when
    it renders the message at send time (rows with ``params`` NULL were enqueued
    ready-made). A retired row's ``last_error`` says why it was never sent.
    """

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_status_next", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(40))
    to_addr: Mapped[str] = mapped_column(String(254))
    subject: Mapped[str | None] = mapped_column(String(255))
    body_text: Mapped[str | None] = mapped_column(Text)
    body_html: Mapped[str | None] = mapped_column(Text)
    # [{"filename", "content_type", "content"}] and extra headers.
    attachments: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    headers: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    # What the renderer needs beyond the booking and the recipient (small: ids, hours, a
    # token for an account link). NULL for a row enqueued ready-made.
    params: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    essential: Mapped[bool] = mapped_column(default=True)
    booking_id: Mapped[int | None] = mapped_column(ForeignKey("bookings.id"), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    status: Mapped[str] = mapped_column(String(10), default=OutboxStatus.PENDING.value)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime())
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime())
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    claimed_by: Mapped[str | None] = mapped_column(String(80))
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class WorkerJobRun(Base):
    """The last run of each worker job, for the admin outbox page (one row per job)."""

    __tablename__ = "worker_job_runs"

    job: Mapped[str] = mapped_column(String(40), primary_key=True)
    last_run_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_ok_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The last failure: the whole job's, or "client 12: ValueError: ..." for one client
    # the planner skipped.
    last_error: Mapped[str | None] = mapped_column(Text)
    failures: Mapped[int] = mapped_column(Integer, default=0)  # in the last run
