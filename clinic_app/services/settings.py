"""The clinic's settings row (created on first use from the configured defaults)."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from flask import current_app
from sqlalchemy import Select
from sqlalchemy import select
from sqlalchemy.orm import Session

from clinic_app.models.schedule import ClinicSettings

_KEY = "clinic_settings"


def get_settings(session: Session) -> ClinicSettings:
    """The one settings row; created with the configured time zone if missing."""
    row = loaded_settings(session)
    if row is not None:
        return row
    row = session.scalar(settings_statement())
    if row is None:
        row = ClinicSettings(timezone=current_app.config["TIMEZONE"])
        session.add(row)
        session.flush()
    return keep_settings(session, row)


def settings_statement(*columns: Any) -> Select[Any]:
    """The query for the settings row, with ``columns`` (scalar subqueries) beside it: a
    caller that needs the row and another value reads both in one round trip (then hands
    the row to :func:`keep_settings`)."""
    return select(ClinicSettings, *columns).order_by(ClinicSettings.id).limit(1)


def loaded_settings(session: Session) -> ClinicSettings | None:
    """The settings row if this transaction has read it already, else None (no SQL)."""
    # Asked for many times per request (every email, every date shown): after the first
    # query the row is kept here, so the identity map answers with no SQL until the
    # transaction ends (a commit or rollback expires it, and the next use reloads it). The
    # reference must be strong: the identity map holds objects weakly, and a booking used to
    # read the row four times because nothing else kept it alive.
    row = session.info.get(_KEY)
    return row if row is not None and row in session else None


def keep_settings(session: Session, row: ClinicSettings) -> ClinicSettings:
    """Remember ``row`` (read by :func:`settings_statement`) for the rest of the transaction."""
    session.info[_KEY] = row
    return row


def clinic_zone(session: Session) -> ZoneInfo:
    return ZoneInfo(get_settings(session).timezone)
