"""The append-only audit log of staff reads of health data.

Only who read what kind of record of which client, and when, is written: never
the health data itself. Rows are only ever inserted; nothing here updates or
deletes them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from clinic_app.models.accounts import User
from clinic_app.models.audit import AuditEntry


def record_read(
    session: Session,
    actor: User,
    action: str,
    client_id: int | None,
    subject_type: str,
    subject_id: int | None,
    now: datetime,
) -> AuditEntry | None:
    """Log that ``actor`` read ``subject_type``/``subject_id`` of ``client_id``.

    A client reading their own records is not a staff read and is not logged
    (returns None). Anyone else (therapists, admins) is logged in the caller's
    transaction, so the entry exists if and only if the read's transaction commits.
    """
    if actor.role == "client" and actor.id == client_id:
        return None
    entry = AuditEntry(
        at=now,
        actor_id=actor.id,
        action=action[:40],
        client_id=client_id,
        subject_type=subject_type[:40],
        subject_id=subject_id,
    )
    session.add(entry)
    session.flush()
    return entry


#: What each kind of read was of, in words a client understands.
SUBJECT_LABELS = {
    "intake": "health questionnaire",
    "session_record": "session record",
    "check_ins": "check-in answers",
    "recommendation": "follow-up recommendation",
    "timeline": "treatment history",
    "review_queue": "review list (what needs attention)",
}


@dataclass(frozen=True)
class AccessLogLine:
    """One staff read of a client's health data, for people: who (name, role), what, when."""

    at: datetime
    actor_id: int
    actor_name: str
    actor_role: str
    action: str
    subject_type: str
    subject_id: int | None

    @property
    def what(self) -> str:
        """The kind of record read, in words (the week view's flags say "intake flags")."""
        if self.action == "read:intake_flags":
            return "health questionnaire flags (on the therapist's calendar)"
        return SUBJECT_LABELS.get(self.subject_type, self.subject_type.replace("_", " "))

    def to_dict(self) -> dict[str, object]:
        """The data export's shape (ISO 8601 time with its offset)."""
        return {"at": self.at.isoformat(), "who": self.actor_name, "role": self.actor_role,
                "what": self.what, "action": self.action, "record_type": self.subject_type,
                "record_id": self.subject_id}


def access_log(session: Session, client_id: int, *, newest_first: bool = True,
               limit: int | None = None) -> list[AccessLogLine]:
    """Who read which of ``client_id``'s health records, and when (one query, with names).

    For the admin's per-client page and for the client's own data export (the right of
    access includes who saw the data). Reads of the audit log itself are not logged: it
    holds no health data.
    """
    order = (AuditEntry.at.desc(), AuditEntry.id.desc()) if newest_first else (
        AuditEntry.at, AuditEntry.id)
    stmt = (select(AuditEntry, User.name, User.role)
            .join(User, User.id == AuditEntry.actor_id)
            .where(AuditEntry.client_id == client_id).order_by(*order))
    if limit is not None:
        stmt = stmt.limit(limit)
    return [AccessLogLine(at=entry.at, actor_id=entry.actor_id, actor_name=name,
                          actor_role=role, action=entry.action,
                          subject_type=entry.subject_type, subject_id=entry.subject_id)
            for entry, name, role in session.execute(stmt)]


def entries_for_client(session: Session, client_id: int) -> list[AuditEntry]:
    """Every audit entry about ``client_id``, oldest first (for exports and admins)."""
    return list(
        session.scalars(
            select(AuditEntry)
            .where(AuditEntry.client_id == client_id)
            .order_by(AuditEntry.at, AuditEntry.id)
        )
    )
