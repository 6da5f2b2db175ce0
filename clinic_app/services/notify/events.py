"""The entry points the booking, care and account services call in the causing
transaction. Each writes outbox *intents* (kind, booking, recipient, due time, key,
small params) and retires rows that no longer fit; none renders a template: the worker
writes every email from the current state when it sends it (``messages``), after the
kind's send-time rule (``send_rules``).

The schedule (shared/notes/followup-spacing.md, "Message schedule"):

============================  =====================  ==========================================
message (kind)                due                    written by
============================  =====================  ==========================================
booking_confirmation          at once                booking_created
booking_change                at once                booking_changed
booking_cancellation          at once                booking_cancelled
reminder                      start - h for h in     booking_created / booking_changed (due
                              reminder_offsets()     times already passed are not written)
aftercare                     end + 3 h, or at       booking_completed (only a completed
                              completion if later    session gets one)
checkin_24h                   end + 24 h             booking_completed
red_flag_alert                at once                red_flag_raised (a check-in with flags),
                                                     problem_reported (each problem report)
waitlist_offer                at once                waitlist_offer_made (the worker's offer
                                                     job, services.waitlist_offers)
checkin_72h, prompts,         later facts            the worker's planner (services.planner)
recalls, daily agenda
account emails                at once                account_email (services.accounts)
============================  =====================  ==========================================

Time: "24 h before" means 24 *elapsed* hours (absolute time, ``start - timedelta(hours=24)``),
not "the same wall-clock time the day before". Across a DST change the two differ by an
hour: a 09:00 BST appointment on Mon 30 March 2026 (the day after the clocks went forward)
gets its 24 h reminder at 08:00 UTC on Sun 29 March, which is 09:00 BST, and its 48 h
reminder at 08:00 UTC on Sat 28 March, which is 08:00 GMT.
"""

from __future__ import annotations

from datetime import datetime
from datetime import timedelta
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from clinic_app.mail.outbox import Intent
from clinic_app.mail.outbox import enqueue
from clinic_app.mail.outbox import enqueue_intents
from clinic_app.mail.outbox import retire
from clinic_app.models.accounts import User
from clinic_app.models.booking import Booking
from clinic_app.models.care import CheckIn
from clinic_app.models.care import ProblemReport
from clinic_app.models.outbox import OutboxMessage
from clinic_app.models.outbox import OutboxStatus
from clinic_app.models.waitlist import WaitlistOffer
from clinic_app.services.notify import send_rules  # noqa: F401 - registers the kinds
from clinic_app.services.notify.messages import ACTIVE_UPCOMING
from clinic_app.services.notify.messages import AFTERCARE
from clinic_app.services.notify.messages import AFTERCARE_DELAY
from clinic_app.services.notify.messages import CANCELLATION
from clinic_app.services.notify.messages import CHANGE
from clinic_app.services.notify.messages import CHECKIN_24H
from clinic_app.services.notify.messages import CHECKIN_24H_DELAY
from clinic_app.services.notify.messages import CONFIRMATION
from clinic_app.services.notify.messages import NON_ESSENTIAL
from clinic_app.services.notify.messages import RED_FLAG_ALERT
from clinic_app.services.notify.messages import REMINDER
from clinic_app.services.notify.messages import WAITLIST_OFFER
from clinic_app.services.settings import get_settings

__all__ = ["CANCELLATION", "account_email", "booking_cancelled", "booking_changed",
           "booking_completed", "booking_created", "intent", "problem_reported",
           "red_flag_raised", "waitlist_offer_made"]


def intent(session: Session, *, kind: str, key: str, to: str, now: datetime,
           user: User | None = None, booking: Booking | None = None,
           due_at: datetime | None = None, **params: Any) -> OutboxMessage | None:
    """One outbox intent (idempotent on ``key``); ``params`` must be JSON values."""
    if not to:  # a client created at the desk with a phone number only (issue 11)
        return None
    return enqueue(session, key=key, kind=kind, to=to, params=params, now=now, due_at=due_at,
                   booking_id=booking.id if booking is not None else None,
                   user_id=user.id if user is not None else None,
                   essential=kind not in NON_ESSENTIAL)


def _intent(kind: str, key: str, to: str, *, user: User, booking: Booking,
            due_at: datetime | None = None, **params: Any) -> Intent:
    return Intent(key=key, kind=kind, to=to, params=params, due_at=due_at,
                  booking_id=booking.id, user_id=user.id, essential=kind not in NON_ESSENTIAL)


def _both(booking: Booking, *, event: str, kind: str, **params: Any) -> list[Intent]:
    """The client's and the therapist's copy of a confirmation/change/cancellation."""
    return [
        _intent(kind, f"booking:{booking.id}:{event}:{booking.sequence}:{audience}",
                person.email, user=person, booking=booking, audience=audience,
                sequence=booking.sequence, **params)
        for audience, person in (("client", booking.client), ("therapist", booking.therapist.user))
        if person.email and person.anonymised_at is None
        # Staff booked with "do not email the client" (issue 11): no confirmation to them.
        and not (audience == "client" and event == "confirmation"
                 and booking.notify_client is False)
    ]


def _reminder_key(booking: Booking, hours: int) -> str:
    return f"booking:{booking.id}:reminder-{hours}h:{booking.start_at.isoformat()}"


def _reminders(session: Session, booking: Booking, now: datetime) -> list[Intent]:
    """Reminders for the booking's current time (skips due times already passed)."""
    client = booking.client
    # "Do not email the client" (issue 11) covers the confirmation and the reminders; changes,
    # cancellations and the aftercare advice still reach the client.
    if client.anonymised_at is not None or not client.email or booking.notify_client is False:
        return []
    out = []
    for hours in get_settings(session).reminder_offsets():
        due = booking.start_at - timedelta(hours=hours)  # elapsed hours, not wall clock
        if due > now:
            out.append(_intent(REMINDER, _reminder_key(booking, hours), client.email,
                               user=client, booking=booking, due_at=due, hours=hours,
                               start=booking.start_at.isoformat()))
    return out


def _retire_stale_reminders(session: Session, booking: Booking, now: datetime) -> int:
    """Retire the booking's unsent reminders written for another time (all of them once
    it is no longer upcoming)."""
    keep = ([_reminder_key(booking, h) for h in get_settings(session).reminder_offsets()]
            if booking.status in ACTIVE_UPCOMING else [])
    return session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.booking_id == booking.id, OutboxMessage.kind == REMINDER,
               OutboxMessage.status.in_([OutboxStatus.PENDING.value, OutboxStatus.FAILED.value]),
               OutboxMessage.key.not_in(keep))
        .values(status=OutboxStatus.RETIRED.value, last_error="booking moved")
        .execution_options(synchronize_session=False)
    ).rowcount or 0


def booking_created(session: Session, booking: Booking, now: datetime) -> None:
    """A booking was made (status booked or pending)."""
    session.flush()
    enqueue_intents(session, [*_both(booking, event="confirmation", kind=CONFIRMATION),
                              *_reminders(session, booking, now)], now=now)


def booking_changed(session: Session, booking: Booking, old_start: datetime,
                    now: datetime) -> None:
    """A booking moved (rescheduled) or changed therapist/room; ``sequence`` already raised.

    Also the call to make when a pending booking is confirmed. Unsent rows that no longer
    fit are retired (an older confirmation or update; reminders for another time), then
    the update and the reminders for the current time are written.
    """
    session.flush()
    retire(session, booking_id=booking.id, kinds=[CONFIRMATION, CHANGE], now=now)
    _retire_stale_reminders(session, booking, now)
    changes = _both(booking, event="change", kind=CHANGE,
                    moved=old_start != booking.start_at, old_start=old_start.isoformat())
    reminders = _reminders(session, booking, now) if booking.status in ACTIVE_UPCOMING else []
    enqueue_intents(session, [*changes, *reminders], now=now)


def booking_cancelled(session: Session, booking: Booking, now: datetime) -> None:
    """A booking was cancelled (``late_cancel`` set); ``sequence`` already raised."""
    session.flush()
    retire(session, booking_id=booking.id, now=now)
    enqueue_intents(session, _both(booking, event="cancellation", kind=CANCELLATION), now=now)


def booking_completed(session: Session, booking: Booking, now: datetime) -> None:
    """The session was completed (its record exists): aftercare and the +24 h check-in.

    Written on completion, so only completed bookings ever get either. Aftercare goes at
    end + 3 h, or at once when the completion is recorded later than that; a completion
    recorded more than a day late sends the check-in at once.
    """
    session.flush()
    client = booking.client
    if client.anonymised_at is not None:
        return
    intent(session, kind=AFTERCARE, key=f"booking:{booking.id}:aftercare", to=client.email,
           now=now, user=client, booking=booking,
           due_at=max(booking.end_at + AFTERCARE_DELAY, now))
    checkin_due(session, booking, now, kind="24h")


def checkin_due(session: Session, booking: Booking, now: datetime, *,
                kind: str) -> OutboxMessage | None:
    """The ``kind`` ("24h" or "72h") soreness check-in email for a completed booking."""
    client = booking.client
    if client.anonymised_at is not None:
        return None
    delay = CHECKIN_24H_DELAY if kind == "24h" else timedelta(hours=72)
    return intent(session, kind=CHECKIN_24H if kind == "24h" else "checkin_72h",
                  key=f"booking:{booking.id}:checkin-{kind}", to=client.email, now=now,
                  user=client, booking=booking, due_at=max(booking.end_at + delay, now))


def red_flag_raised(session: Session, booking: Booking, checkin: CheckIn,
                    now: datetime) -> None:
    """A check-in ticked a warning sign: alert the treating therapist at once."""
    therapist_user = booking.therapist.user
    intent(session, kind=RED_FLAG_ALERT, key=f"booking:{booking.id}:red-flag:{checkin.kind}",
           to=therapist_user.email, now=now, user=therapist_user, booking=booking,
           checkin=checkin.kind)


def problem_reported(session: Session, booking: Booking, report: ProblemReport,
                     now: datetime) -> None:
    """The client reported a warning sign after the session: the same alert as a red-flag
    check-in, keyed by the report (a client may report more than once)."""
    therapist_user = booking.therapist.user
    intent(session, kind=RED_FLAG_ALERT, key=f"booking:{booking.id}:problem-report:{report.id}",
           to=therapist_user.email, now=now, user=therapist_user, booking=booking,
           report=report.id)


def waitlist_offer_made(session: Session, offer: WaitlistOffer, now: datetime) -> None:
    """A freed slot is held for a waiting client: email them the offer at once. Keyed by
    the offer (one email per offer); not linked to the hold's booking row, which is deleted
    when the offer is declined or expires (the send rule retires the email then)."""
    client = offer.client
    intent(session, kind=WAITLIST_OFFER, key=f"waitlist-offer:{offer.id}", to=client.email,
           now=now, user=client, offer=offer.id)


def account_email(session: Session, user: User, kind: str, key: str, now: datetime, *,
                  to: str | None = None, **params: str) -> None:
    """An account email (verify, reset, invite, change of address ...). ``params`` are the
    link's token and the like; the address is recorded now (``to``: e.g. the new one)."""
    intent(session, kind=kind, key=key, to=to or user.email, now=now, user=user, **params)
