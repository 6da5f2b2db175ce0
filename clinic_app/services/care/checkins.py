"""Soreness check-ins: the signed link, the client's answers, the red-flag alert."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from datetime import timedelta
from typing import Any

from flask import current_app
from itsdangerous import BadData
from itsdangerous import URLSafeTimedSerializer
from itsdangerous.timed import TimestampSigner
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from clinic_app.errors import BadRequest
from clinic_app.errors import Conflict
from clinic_app.errors import ValidationFailed
from clinic_app.models.accounts import User
from clinic_app.models.booking import Booking
from clinic_app.models.booking import BookingStatus
from clinic_app.models.care import CheckIn
from clinic_app.scheduling import followup
from clinic_app.services.booking_access import find_booking
from clinic_app.services.care.access import audit_read
from clinic_app.services.care.access import require_health_access
from clinic_app.services.care.followup import recommendation_for_booking
from clinic_app.services.care.inputs import CheckInIn
from clinic_app.services.care.lookups import checkin_for
from clinic_app.services.care.lookups import session_record_for
from clinic_app.services.notify import events as notifications

CHECKIN_KINDS = ("24h", "72h")


# When each check-in falls due after the session's end (the note's message schedule).
CHECKIN_DUE = {"24h": timedelta(hours=24), "72h": timedelta(hours=72)}


CHECKIN_LINK_SALT = "clinic.check-in.v1"


CHECKIN_TOKEN_MAX_AGE = timedelta(days=7)


SEEK_CARE_TEXT = (
    "Some of what you reported can be a sign of something that needs a doctor. Please contact "
    "your doctor (GP) today, or call NHS 111. If you have chest pain, sudden breathlessness, or "
    "new numbness in the groin or saddle area or trouble controlling your bladder or bowel, "
    "call 999 or go to the nearest emergency department now. Do not book another massage until "
    "a clinician has seen you; your therapist has been told and will contact you."
)


class _DueTimeSigner(TimestampSigner):
    """Signs with a given timestamp instead of the wall clock (the check-in's due time)."""

    def __init__(self, *args: Any, timestamp: int | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._timestamp = timestamp

    def get_timestamp(self) -> int:
        return self._timestamp if self._timestamp is not None else super().get_timestamp()


def _serializer(timestamp: int | None = None) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=CHECKIN_LINK_SALT,
                                  signer=_DueTimeSigner,
                                  signer_kwargs={"timestamp": timestamp})


def checkin_due_at(booking: Booking, kind: str) -> datetime:
    """When the ``kind`` check-in falls due: 24 h or 72 h after the session's end."""
    return booking.end_at + CHECKIN_DUE[kind]


def checkin_token(booking: Booking, kind: str) -> str:
    """The signed, single-purpose link token for a booking's ``kind`` check-in.

    It is stamped with the check-in's due time rather than the moment it is made, so
    it is the same whenever the email is rendered, and it works for 7 days after the
    check-in is due. It needs no login; the salt keeps it from being usable anywhere else.
    """
    if kind not in CHECKIN_KINDS:
        raise ValueError(f"kind must be one of {CHECKIN_KINDS}")
    stamp = int(checkin_due_at(booking, kind).timestamp())
    return _serializer(stamp).dumps({"b": booking.id, "k": kind})


def booking_for_checkin_token(session: Session, token: str, now: datetime) -> tuple[Booking, str]:
    """``(booking, kind)`` for a valid token; BadRequest ``invalid_link`` or
    ``expired_link`` otherwise (also for a cancelled booking)."""
    try:
        payload, signed_at = _serializer().loads(token, max_age=None, return_timestamp=True)
    except BadData:
        raise BadRequest("This check-in link is not valid. Please use the link from your "
                         "latest email.", code="invalid_link") from None
    if (not isinstance(payload, dict) or not isinstance(payload.get("b"), int)
            or payload.get("k") not in CHECKIN_KINDS):
        raise BadRequest("This check-in link is not valid.", code="invalid_link")
    if now > signed_at + CHECKIN_TOKEN_MAX_AGE:
        raise BadRequest("This check-in link has expired (links work for 7 days). If you are "
                         "still sore or worried, please contact the clinic.",
                         code="expired_link")
    booking = find_booking(session, payload["b"])
    if booking is None or booking.status in (BookingStatus.CANCELLED.value,
                                             BookingStatus.PENDING.value):
        raise BadRequest("This check-in link is not valid.", code="invalid_link")
    return booking, payload["k"]


def submit_checkin(session: Session, booking: Booking, *, kind: str = "24h",
                   soreness: Any = None, red_flags: Any = None, progress: Any = None,
                   still_sore: Any = None, now: datetime) -> CheckIn:
    """Store the client's check-in (once per booking and kind: Conflict
    ``already_submitted`` after that).

    The answers are validated by :class:`CheckInIn`: the 24 h check-in needs soreness
    0-10; the 72 h one needs "still sore?". A red flag
    alerts the booking's therapist by email at once. The recommendation is recomputed.
    """
    if kind not in CHECKIN_KINDS:
        raise ValidationFailed("Unknown check-in.", fields={"kind": "Use 24h or 72h."})
    if booking.status not in (BookingStatus.BOOKED.value, BookingStatus.COMPLETED.value):
        raise Conflict("There is no session to check in about.", code="not_checkinable")
    if now < booking.start_at:
        raise Conflict("The session has not taken place yet.", code="not_started")
    if checkin_for(session, booking.id, kind) is not None:
        raise Conflict("We already have your answers for this check-in. Thank you!",
                       code="already_submitted")
    given = {"kind": kind, "soreness": soreness, "red_flags": red_flags,
             "progress": progress, "still_sore": still_sore}
    answers = CheckInIn.parse({k: v for k, v in given.items() if v is not None})
    flags = answers.red_flags
    row = CheckIn(booking_id=booking.id, kind=kind, soreness=answers.soreness,
                  red_flags=flags, progress=answers.progress,
                  still_sore=answers.still_sore if kind == "72h" else None, submitted_at=now)
    # A savepoint, so that losing a race to an identical submission is a clean 409.
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError:
        raise Conflict("We already have your answers for this check-in. Thank you!",
                       code="already_submitted") from None
    if flags:
        _alert_red_flag(session, booking, row, now)
    if session_record_for(session, booking.id) is not None:
        recommendation_for_booking(session, booking, now)
    return row


def _alert_red_flag(session: Session, booking: Booking, checkin: CheckIn, now: datetime) -> None:
    """Alert the therapist at once (the email names no one and no symptom; the review queue,
    behind a login, shows them)."""
    notifications.red_flag_raised(session, booking, checkin, now)


def checkins_for_booking(session: Session, booking: Booking, viewer: User,
                         now: datetime) -> list[CheckIn]:
    """A booking's check-ins for someone allowed to see them; staff reads are audited."""
    require_health_access(session, viewer, booking.client_id)
    rows = list(session.scalars(
        select(CheckIn).where(CheckIn.booking_id == booking.id).order_by(CheckIn.submitted_at)
    ))
    audit_read(session, viewer, "check_ins", booking.client_id, booking.id, now)
    return rows


def red_flag_labels(codes: Iterable[str]) -> list[str]:
    """The client-facing labels of red flag codes, in the checklist's order."""
    wanted = set(codes)
    return [label for code, label in followup.RED_FLAGS.items() if code in wanted]
