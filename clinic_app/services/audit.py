"""The append-only audit log of staff reads of health data.

Only who read what kind of record of which client, and when, is written: never
the health data itself. Rows are only ever inserted; nothing here updates or
deletes them.
"""

from __future__ import annotations

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


def entries_for_client(session: Session, client_id: int) -> list[AuditEntry]:
    """Every audit entry about ``client_id``, oldest first (for exports and admins)."""
    return list(
        session.scalars(
            select(AuditEntry)
            .where(AuditEntry.client_id == client_id)
            .order_by(AuditEntry.at, AuditEntry.id)
        )
    )
