"""The clinic's settings row (created on first use from the configured defaults)."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import Session

from clinic_app.models.schedule import ClinicSettings

_KEY = "clinic_settings"


def get_settings(session: Session) -> ClinicSettings:
    """The one settings row; created with the configured time zone if missing."""
    # Asked for many times per request (every email, every date shown): after the first
    # query the row is kept here, so the identity map answers with no SQL until the
    # transaction ends (a commit or rollback expires it, and the next use reloads it). The
    # reference must be strong: the identity map holds objects weakly, and a booking used to
    # read the row four times because nothing else kept it alive.
    row = session.info.get(_KEY)
    if row is not None and row in session:
        return row
    row = session.scalar(select(ClinicSettings).order_by(ClinicSettings.id).limit(1))
    if row is None:
        row = ClinicSettings(timezone=current_app.config["TIMEZONE"])
        session.add(row)
        session.flush()
    session.info[_KEY] = row
    return row


def clinic_zone(session: Session) -> ZoneInfo:
    return ZoneInfo(get_settings(session).timezone)
