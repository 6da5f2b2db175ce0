"""The health intake: the client's answers, the screening flags they raise, and the
"confirm first" hold on self-booking until a treating therapist confirms.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from clinic_app.errors import Conflict
from clinic_app.errors import NotFound
from clinic_app.models.accounts import User
from clinic_app.models.booking import BookingStatus
from clinic_app.models.care import Intake
from clinic_app.services.care.access import STAFF_ROLES
from clinic_app.services.care.access import audit_read
from clinic_app.services.care.access import require_health_access
from clinic_app.services.care.inputs import FLAG_CONFIRM_FIRST
from clinic_app.services.care.inputs import FLAG_LABELS
from clinic_app.services.care.inputs import INTAKE_QUESTIONS
from clinic_app.services.care.inputs import IntakeIn
from clinic_app.services.care.inputs import parse
from clinic_app.services.care.lookups import intake_for


def screening_flags(answers: Mapping[str, Any]) -> list[str]:
    """The flags a set of (clean) answers raises, in a fixed order."""
    raised = {q["flag"] for q in INTAKE_QUESTIONS
              if q["kind"] == "yesno" and q["flag"] and answers.get(str(q["code"])) is True}
    return [flag for flag in FLAG_LABELS if flag in raised]


def save_intake(session: Session, client: User, answers: Mapping[str, Any],
                now: datetime) -> Intake:
    """The client saves their intake; the screening flags are derived from the answers.

    A new "confirm first" answer needs a therapist's confirmation again; a therapist's
    earlier confirmation stays valid while that answer does not change.
    """
    if client.role != "client":
        raise NotFound("Not found.")
    clean = parse(IntakeIn, dict(answers) if isinstance(answers, Mapping) else answers,
                  message="Some answers are invalid.").model_dump()
    flags = screening_flags(clean)
    row = intake_for(session, client.id)
    if row is None:
        row = Intake(client_id=client.id, answers={}, flags=[], updated_at=now)
        session.add(row)
    newly_confirm_first = (FLAG_CONFIRM_FIRST in flags
                           and FLAG_CONFIRM_FIRST not in (row.flags or []))
    if newly_confirm_first or FLAG_CONFIRM_FIRST not in flags:
        row.confirmed_by_id = None
        row.confirmed_at = None
    row.answers = clean
    row.flags = flags
    row.updated_at = now
    session.flush()
    return row


def get_intake(session: Session, client: User, viewer: User, now: datetime) -> Intake | None:
    """The intake of ``client`` for someone allowed to see it; staff reads are audited."""
    require_health_access(session, viewer, client.id)
    row = intake_for(session, client.id)
    audit_read(session, viewer, "intake", client.id, row.id if row else None, now)
    return row


def needs_confirmation(session: Session, client_id: int) -> bool:
    """True while a "confirm first" flag waits for a therapist."""
    return _waits(intake_for(session, client_id))


def _waits(row: Intake | None) -> bool:
    return bool(row and FLAG_CONFIRM_FIRST in (row.flags or []) and row.confirmed_at is None)


def initial_status_for(session: Session, client: User) -> str:
    """The status of a client's new booking: ``pending`` while a "confirm first" intake
    flag waits for a therapist, otherwise ``booked``. (Called by booking's hook.)"""
    return status_for_intake(intake_for(session, client.id))


def status_for_intake(row: Intake | None) -> str:
    """:func:`initial_status_for` with the client's intake ``row`` already read
    (``lookups.recommendation_and_intake``)."""
    return BookingStatus.PENDING.value if _waits(row) else BookingStatus.BOOKED.value


def confirm_intake(session: Session, client: User, actor: User, now: datetime) -> Intake:
    """A treating therapist of the client (or an admin) confirms a "confirm first" intake.

    Only the intake row changes here; ``services.booking.confirm_pending`` calls this and
    then confirms the client's pending bookings (care never changes a booking's status
    except by completing it). Conflict ``nothing_to_confirm`` without that flag."""
    if actor.role not in STAFF_ROLES:
        raise NotFound("Not found.")
    require_health_access(session, actor, client.id)
    row = intake_for(session, client.id)
    if row is None or FLAG_CONFIRM_FIRST not in (row.flags or []):
        raise Conflict("This client's intake needs no confirmation.", code="nothing_to_confirm")
    if row.confirmed_at is None:
        row.confirmed_at = now
        row.confirmed_by_id = actor.id
    session.flush()
    return row
