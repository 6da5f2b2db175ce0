"""The clinic's settings row (created on first use from the configured defaults)."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import Session

from clinic_app.models.schedule import ClinicSettings


def get_settings(session: Session) -> ClinicSettings:
    """The one settings row; created with the configured time zone if missing."""
    # Asked for many times per request (every email, every date shown): after the first
    # query the identity map answers, with no SQL until the transaction ends. The identity
    # map holds objects weakly, so the session keeps a strong reference to the row too:
    # otherwise an unmodified row that no caller holds any more is collected between two
    # calls and read again (four reads in a booking request, two in a cancellation).
    known = session.info.get("clinic_settings_id")
    row = session.get(ClinicSettings, known) if known is not None else None
    if row is None:
        row = session.scalar(select(ClinicSettings).order_by(ClinicSettings.id).limit(1))
    if row is None:
        row = ClinicSettings(timezone=current_app.config["TIMEZONE"])
        session.add(row)
        session.flush()
    session.info["clinic_settings_id"] = row.id
    session.info["clinic_settings_row"] = row
    return row


def clinic_zone(session: Session) -> ZoneInfo:
    return ZoneInfo(get_settings(session).timezone)
