"""Send-time rules: every kind's check and validity window, run by the dispatcher right
before it renders and sends a row. A row that fails is retired with the reason (the admin
outbox page shows it), never sent.

==========================  ===============================================================
kind                        sent only if (else retired with the reason)
==========================  ===============================================================
booking_confirmation,       the booking exists, is not cancelled, still has the sequence
booking_change              the row was written for, and has not started
booking_cancellation        the appointment's time has not passed
reminder                    the booking is active, still starts when the row was written for,
                            has not started, and no later (closer) reminder is already due
aftercare                   the session was completed; within 3 days of its end
checkin_24h / checkin_72h   the session was completed; that check-in has not been answered;
                            within 3 days of the check-in's due time
rebooking_prompt            nothing booked ahead; the recommendation it was written for is
                            still the client's current one and says "book" (not refer, not
                            therapist review); its window has not ended
recall                      nothing booked ahead, no later visit, the current recommendation
                            is not refer / therapist review; within 14 days of its due time
daily_agenda                the same clinic day (the renderer retires an empty day)
red_flag_alert              the booking exists (always sent: it is the safety net)
waitlist_offer              the offer is still open and unexpired, its hold still keeps the
                            slot, and the client's account is active
account emails              the account exists; within a day of being written (links expire)
==========================  ===============================================================

Non-essential kinds (prompts, recalls) also need an active recipient who has not opted out
(``mail.outbox.skip_reason``).
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import date
from datetime import datetime
from datetime import timedelta

from sqlalchemy import exists
from sqlalchemy import select
from sqlalchemy.orm import Session

from clinic_app.mail.outbox import register_kind
from clinic_app.models.accounts import User
from clinic_app.models.booking import INCLUDE_HOLDS
from clinic_app.models.booking import Booking
from clinic_app.models.booking import BookingStatus
from clinic_app.models.care import CheckIn
from clinic_app.models.care import Recommendation
from clinic_app.models.outbox import OutboxMessage
from clinic_app.models.waitlist import OfferStatus
from clinic_app.models.waitlist import WaitlistOffer
from clinic_app.scheduling.followup import Action
from clinic_app.services.notify import messages as m
from clinic_app.services.settings import get_settings

AFTERCARE_VALID = timedelta(days=3)
CHECKIN_VALID = timedelta(days=3)
RECALL_VALID = timedelta(days=14)
ACCOUNT_MAIL_VALID = timedelta(days=1)
HELD_ACTIONS = (Action.REFER.value, Action.THERAPIST_REVIEW.value)


_NOT_CANCELLED = tuple(s.value for s in BookingStatus if s is not BookingStatus.CANCELLED)


def _booking_for(session: Session, row: OutboxMessage, *, statuses: Collection[str] | None = None,
                 refused: str = "booking {status}") -> Booking | str:
    """The row's booking (read afresh), or why the row is retired: the booking is gone, or
    its status is not one of ``statuses`` (``refused`` says so). A check returns a ``str``
    as its reason."""
    booking = (None if row.booking_id is None
               else session.get(Booking, row.booking_id, populate_existing=True))
    if booking is None:
        return "booking gone"
    if statuses is not None and booking.status not in statuses:
        return refused.format(status=booking.status)
    return booking


def _completed_booking(session: Session, row: OutboxMessage) -> Booking | str:
    """As :func:`_booking_for`, for the mail that follows a session (aftercare, check-ins):
    only once the session was completed."""
    return _booking_for(session, row, statuses=(BookingStatus.COMPLETED.value,),
                        refused="booking {status}, not completed")


def future_booking_exists(session: Session, client_id: int, now: datetime) -> bool:
    return bool(session.scalar(select(exists().where(
        Booking.client_id == client_id, Booking.start_at > now,
        Booking.status.in_(m.ACTIVE_UPCOMING)))))


def current_recommendation(session: Session, client_id: int) -> Recommendation | None:
    """The client's newest recommendation (the care layer's definition, read directly)."""
    return session.scalar(
        select(Recommendation).where(Recommendation.client_id == client_id)
        .order_by(Recommendation.created_at.desc(), Recommendation.id.desc()).limit(1)
    )


def held_for_review(session: Session, client_id: int) -> str | None:
    """A reason not to invite the client to book: their current recommendation is a
    referral or waits for the therapist's review."""
    current = current_recommendation(session, client_id)
    if current is not None and current.action in HELD_ACTIONS:
        return f"current recommendation is {current.action}"
    return None


def check_booking_mail(session: Session, row: OutboxMessage, now: datetime) -> str | None:
    booking = _booking_for(session, row, statuses=_NOT_CANCELLED)
    if isinstance(booking, str):
        return booking
    sequence = int((row.params or {}).get("sequence", row.key.split(":")[3]))
    if sequence < booking.sequence:
        return f"superseded by sequence {booking.sequence}"
    if booking.start_at <= now:
        return "appointment already started"
    return None


def check_cancellation(session: Session, row: OutboxMessage, now: datetime) -> str | None:
    booking = _booking_for(session, row)
    if isinstance(booking, str):
        return booking
    if booking.end_at <= now:
        return "the appointment's time has passed"
    return None


def check_reminder(session: Session, row: OutboxMessage, now: datetime) -> str | None:
    booking = _booking_for(session, row, statuses=m.ACTIVE_UPCOMING)
    if isinstance(booking, str):
        return booking
    params = row.params or {}
    written_for = params.get("start") or row.key.split(":", 3)[3]
    if written_for != booking.start_at.isoformat():
        return "booking moved"
    if booking.start_at <= now:
        return "appointment already started"
    hours = int(params.get("hours", 0))
    closer = [h for h in get_settings(session).reminder_offsets() if h < hours
              and booking.start_at - timedelta(hours=h) <= now]
    if closer:
        return f"the {min(closer)} h reminder is already due"
    return None


def check_aftercare(session: Session, row: OutboxMessage, now: datetime) -> str | None:
    booking = _completed_booking(session, row)
    if isinstance(booking, str):
        return booking
    if now > booking.end_at + AFTERCARE_VALID:
        return "too late for aftercare"
    return None


def check_checkin(session: Session, row: OutboxMessage, now: datetime) -> str | None:
    booking = _completed_booking(session, row)
    if isinstance(booking, str):
        return booking
    kind = "24h" if row.kind == m.CHECKIN_24H else "72h"
    answered = session.scalar(select(CheckIn.id).where(CheckIn.booking_id == booking.id,
                                                       CheckIn.kind == kind))
    if answered is not None:
        return f"the {kind} check-in is already answered"
    delay = m.CHECKIN_24H_DELAY if kind == "24h" else m.CHECKIN_72H_DELAY
    if now > booking.end_at + delay + CHECKIN_VALID:
        return "too late for this check-in"
    return None


def _invitation_booking(session: Session, row: OutboxMessage, now: datetime) -> Booking | str:
    """The booking a prompt or recall was written after, or why not to invite the client to
    book (as :func:`_booking_for`)."""
    booking = _booking_for(session, row)
    if isinstance(booking, str):
        return booking
    if future_booking_exists(session, booking.client_id, now):
        return "a future booking exists"
    return held_for_review(session, booking.client_id) or booking


def check_prompt(session: Session, row: OutboxMessage, now: datetime) -> str | None:
    booking = _invitation_booking(session, row, now)
    if isinstance(booking, str):
        return booking
    current = current_recommendation(session, booking.client_id)
    written_for = (row.params or {}).get("ideal")
    if (current is None or current.booking_id != booking.id or current.ideal is None
            or current.ideal.isoformat() != written_for):
        return "superseded by a newer recommendation"
    if current.latest is None or current.latest < _today(session, now):
        return "the window has ended"
    return None


def check_recall(session: Session, row: OutboxMessage, now: datetime) -> str | None:
    booking = _invitation_booking(session, row, now)
    if isinstance(booking, str):
        return booking
    later = session.scalar(
        select(Booking.id).where(
            Booking.client_id == booking.client_id,
            Booking.status == BookingStatus.COMPLETED.value,
            Booking.end_at > booking.end_at,
        ).limit(1)
    )
    if later is not None:
        return "a later visit exists"
    if now > row.due_at + RECALL_VALID:
        return "too late for this recall"
    return None


def check_agenda(session: Session, row: OutboxMessage, now: datetime) -> str | None:
    day = (row.params or {}).get("day")
    if day is None or date.fromisoformat(day) != _today(session, now):
        return "that day is over"
    return None


def check_red_flag_alert(session: Session, row: OutboxMessage, now: datetime) -> str | None:
    booking = _booking_for(session, row)
    return booking if isinstance(booking, str) else None


def check_waitlist_offer(session: Session, row: OutboxMessage, now: datetime) -> str | None:
    offer_id = (row.params or {}).get("offer")
    offer = (session.get(WaitlistOffer, offer_id, populate_existing=True)
             if isinstance(offer_id, int) else None)
    if offer is None:
        return "offer gone"
    if offer.status != OfferStatus.OPEN.value:
        return f"offer {offer.status}"
    if offer.expires_at <= now:
        return "offer expired"
    hold = session.get(Booking, offer.hold_id, populate_existing=True,
                       execution_options={INCLUDE_HOLDS: True})
    if hold is None or not offer.is_held_by(hold) or not hold.hold_lives(now):
        return "the slot is no longer held"
    client = session.get(User, offer.client_id)
    if client is None or not client.is_active or client.anonymised_at is not None:
        return "recipient gone"
    return None


def check_account_mail(session: Session, row: OutboxMessage, now: datetime) -> str | None:
    if row.user_id is None or session.get(User, row.user_id) is None:
        return "account gone"
    if now > row.due_at + ACCOUNT_MAIL_VALID:
        return "too late: the link in it has expired"
    return None


def _today(session: Session, now: datetime) -> date:
    return now.astimezone(m.zone_of(get_settings(session))).date()


def register() -> None:
    """Register every kind this package renders (the planner adds check-ins and prompts)."""
    for kind in (m.CONFIRMATION, m.CHANGE):
        register_kind(kind, check=check_booking_mail, render=m.render_booking_mail)
    register_kind(m.CANCELLATION, check=check_cancellation, render=m.render_booking_mail)
    register_kind(m.REMINDER, check=check_reminder, render=m.render_reminder)
    register_kind(m.AFTERCARE, check=check_aftercare, render=m.render_aftercare)
    register_kind(m.RECALL, check=check_recall, render=m.render_recall)
    register_kind(m.DAILY_AGENDA, check=check_agenda, render=m.render_agenda)
    register_kind(m.RED_FLAG_ALERT, check=check_red_flag_alert, render=m.render_red_flag_alert)
    register_kind(m.WAITLIST_OFFER, check=check_waitlist_offer, render=m.render_waitlist_offer)
    for kind in m.ACCOUNT_KINDS:
        register_kind(kind, check=check_account_mail, render=m.render_account_mail)


register()
