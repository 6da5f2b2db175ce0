"""Reads of care rows without any access check, shared by the care modules (internal use)."""

from __future__ import annotations

from datetime import date
from datetime import datetime
from typing import Any

from sqlalchemy import Select
from sqlalchemy import bindparam
from sqlalchemy import select
from sqlalchemy import true
from sqlalchemy.orm import Session
from sqlalchemy.orm import aliased

from clinic_app.models.accounts import User
from clinic_app.models.booking import unfiltered
from clinic_app.models.care import CheckIn
from clinic_app.models.care import Course
from clinic_app.models.care import Intake
from clinic_app.models.care import Recommendation
from clinic_app.models.care import SessionRecord
from clinic_app.services.settings import clinic_zone


def local_date(session: Session, moment: datetime) -> date:
    """The calendar date of ``moment`` in the clinic's zone."""
    return moment.astimezone(clinic_zone(session)).date()


def current_course(session: Session, client_id: int) -> Course | None:
    """The client's newest course of treatment, if any."""
    return session.scalar(
        select(Course).where(Course.client_id == client_id)
        .order_by(Course.started_at.desc(), Course.id.desc()).limit(1)
    )


def session_record_for(session: Session, booking_id: int) -> SessionRecord | None:
    """The record of a booking, without any access check (internal use)."""
    return session.scalar(select(SessionRecord).where(SessionRecord.booking_id == booking_id))


def checkin_for(session: Session, booking_id: int, kind: str) -> CheckIn | None:
    """The stored answer to one check-in, if any (internal use)."""
    return session.scalar(
        select(CheckIn).where(CheckIn.booking_id == booking_id, CheckIn.kind == kind)
    )


def checkins_by_booking(session: Session, booking_ids: list[int]) -> dict[int, dict[str, CheckIn]]:
    out: dict[int, dict[str, CheckIn]] = {}
    if not booking_ids:
        return out
    for row in session.scalars(select(CheckIn).where(CheckIn.booking_id.in_(booking_ids))):
        out.setdefault(row.booking_id, {})[row.kind] = row
    return out


def intake_for(session: Session, client_id: int) -> Intake | None:
    """A client's intake row (internal use, no audit)."""
    return session.scalar(select(Intake).where(Intake.client_id == client_id))


def _newest_recommendation(client_id: Any) -> Select[Any]:
    """The client's newest recommendation row (the current follow-up window)."""
    return (select(Recommendation).where(Recommendation.client_id == client_id)
            .order_by(Recommendation.created_at.desc(), Recommendation.id.desc()).limit(1))


def current_recommendation(session: Session, client: User | int) -> Recommendation | None:
    """The client's current follow-up window: their newest recommendation row."""
    client_id = client if isinstance(client, int) else client.id
    return session.scalar(_newest_recommendation(client_id))


# Built once: a new booking runs it every time (the early rule and the confirm-first rule).
_NEWEST = _newest_recommendation(bindparam("client_id")).subquery()
_CURRENT = aliased(Recommendation, _NEWEST)
_RECOMMENDATION_AND_INTAKE = unfiltered(  # no booking in it
    select(User.id, _CURRENT, Intake)
    .select_from(User)
    .outerjoin(_NEWEST, true())
    .outerjoin(Intake, Intake.client_id == User.id)
    .where(User.id == bindparam("client_id"))
)


def recommendation_and_intake(session: Session, client_id: int
                              ) -> tuple[Recommendation | None, Intake | None]:
    """:func:`current_recommendation` and :func:`intake_for` in one statement (one round
    trip): a new booking needs both."""
    row = session.execute(_RECOMMENDATION_AND_INTAKE, {"client_id": client_id}).first()
    if row is None:
        return None, None
    return row[1], row[2]


def recommendation_history(session: Session, client_id: int) -> list[Recommendation]:
    """All recommendation rows of a client, oldest first."""
    return list(session.scalars(
        select(Recommendation).where(Recommendation.client_id == client_id)
        .order_by(Recommendation.created_at, Recommendation.id)
    ))
