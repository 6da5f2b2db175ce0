"""The kinds of message and what each says, rendered from the current state at send time.

Each renderer takes the outbox row (kind, booking, recipient, ``params``) and the time of
sending, and writes the email from what is true then: a booking that moved since the row
was written is described where it is now, a therapist's day lists the bookings of that
morning. Renderers read models only (and the clinic's settings); the send-time rules that
decide whether a row goes at all are in ``send_rules``. The check-in and rebooking-prompt
renderers need the care layer and are registered by ``services.planner``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from datetime import datetime
from datetime import time
from datetime import timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from clinic_app.mail.ics import booking_calendar
from clinic_app.mail.outbox import Attachment
from clinic_app.mail.outbox import NotRenderable
from clinic_app.mail.outbox import Outgoing
from clinic_app.mail.render import render_email
from clinic_app.models.accounts import User
from clinic_app.models.booking import Booking
from clinic_app.models.booking import BookingStatus
from clinic_app.models.care import CheckIn
from clinic_app.models.care import ProblemReport
from clinic_app.models.outbox import OutboxMessage
from clinic_app.models.schedule import ClinicSettings
from clinic_app.models.schedule import Therapist
from clinic_app.models.waitlist import WaitlistOffer
from clinic_app.scheduling.followup import DEFAULT_PARAMS
from clinic_app.scheduling.followup import RED_FLAGS
from clinic_app.services.notify.links import absolute
from clinic_app.services.notify.links import client_links
from clinic_app.services.notify.links import report_link
from clinic_app.services.notify.links import unsubscribe_bits
from clinic_app.services.notify.links import waitlist_offer_links
from clinic_app.services.settings import get_settings

# Message kinds (the outbox ``kind`` column).
CONFIRMATION = "booking_confirmation"
CHANGE = "booking_change"
CANCELLATION = "booking_cancellation"
REMINDER = "reminder"
AFTERCARE = "aftercare"
CHECKIN_24H = "checkin_24h"
CHECKIN_72H = "checkin_72h"
REBOOKING_PROMPT = "rebooking_prompt"
RECALL = "recall"
DAILY_AGENDA = "daily_agenda"
RED_FLAG_ALERT = "red_flag_alert"
WAITLIST_OFFER = "waitlist_offer"
ACCOUNT_KINDS = ("verify_email", "account_exists", "password_reset", "password_changed",
                 "confirm_email_change", "email_changed", "therapist_invite", "client_invite",
                 "sign_in_link")

NON_ESSENTIAL = frozenset({REBOOKING_PROMPT, RECALL})

AFTERCARE_DELAY = timedelta(hours=3)
CHECKIN_24H_DELAY = timedelta(hours=24)
CHECKIN_72H_DELAY = timedelta(hours=72)
RECALL_AFTER = timedelta(weeks=DEFAULT_PARAMS.recall_weeks)  # 8 weeks
AGENDA_LOCAL_TIME = time(7, 0)
ACTIVE_UPCOMING = (BookingStatus.PENDING.value, BookingStatus.BOOKED.value)


# --------------------------------------------------------------------------- views


def zone_of(clinic: ClinicSettings) -> ZoneInfo:
    return ZoneInfo(clinic.timezone)


def format_local(moment: datetime, zone: ZoneInfo) -> str:
    """``Mon 30 Mar 2026, 09:00 BST (Europe/London)``: a time in the clinic zone, named."""
    local = moment.astimezone(zone)
    return f"{local:%a %d %b %Y, %H:%M} {local.tzname()} ({zone.key})"


def day_text(value: date | None) -> str:
    return f"{value:%A %d %B %Y}" if value else ""


@dataclass
class BookingView:
    """What the booking templates show (times already in the clinic zone)."""

    id: int
    service: str
    therapist: str
    client: str
    room: str
    when: str
    short: str
    starts: str
    ends: str
    date_local: str
    minutes: int


def booking_view(booking: Booking, zone: ZoneInfo) -> BookingView:
    local_start = booking.start_at.astimezone(zone)
    local_end = booking.end_at.astimezone(zone)
    return BookingView(
        id=booking.id,
        service=booking.service.name,
        therapist=booking.therapist.user.name,
        client=booking.client.name,
        room=booking.room.name,
        when=format_local(booking.start_at, zone),
        short=f"{local_start:%a %d %b %Y, %H:%M} {local_start.tzname()}",
        starts=f"{local_start:%H:%M}",
        ends=f"{local_end:%H:%M} {local_end.tzname()}",
        date_local=f"{local_start:%A %d %B %Y}",
        minutes=int((booking.end_at - booking.start_at).total_seconds() // 60),
    )


# --------------------------------------------------------------------------- terms


@dataclass(frozen=True)
class BookingTerms:
    """What may truthfully be promised about one booking at one moment: the only place
    that decides it (the confirm page and every booking email use it).

    ``confirmed``: booked, not waiting for the therapist. ``free_cancel_until``: the last
    moment of free cancellation, or None when that moment has already passed (a same-day
    booking inside the cutoff). ``calendar``: whether to offer an add-to-calendar file.
    """

    confirmed: bool
    pending: bool
    cutoff_hours: int
    free_cancel_until: datetime | None
    calendar: bool
    policy: str


def booking_terms(booking: Booking | None, clinic: ClinicSettings, now: datetime, *,
                  start: datetime | None = None, status: str | None = None) -> BookingTerms:
    """The terms for ``booking`` (or, before it exists, for one at ``start`` with
    ``status``) as of ``now``."""
    start = start or (booking.start_at if booking is not None else None)
    status = status or (booking.status if booking is not None else BookingStatus.BOOKED.value)
    assert start is not None, "a booking or a start time"
    hours = clinic.cancel_cutoff_hours
    cutoff = start - timedelta(hours=hours)
    pending = status == BookingStatus.PENDING.value
    free_until = cutoff if now < cutoff else None
    if free_until is not None:
        policy = (f"You can cancel or move this appointment free of charge up to {hours} "
                  f"hours before it starts. Cancellations later than that, and missed "
                  f"appointments, are recorded as late cancellations.")
    else:
        policy = (f"This appointment is less than {hours} hours away, so the free "
                  f"cancellation period has already passed: cancelling or missing it is "
                  f"recorded as a late cancellation.")
    if pending:
        policy = ("This is a request until your therapist confirms it; you will get an "
                  "email then. " + policy)
    return BookingTerms(confirmed=status == BookingStatus.BOOKED.value, pending=pending,
                        cutoff_hours=hours, free_cancel_until=free_until,
                        calendar=not pending, policy=policy)


# --------------------------------------------------------------------------- helpers


def _booking(session: Session, row: OutboxMessage) -> Booking:
    booking = session.get(Booking, row.booking_id) if row.booking_id is not None else None
    if booking is None:
        raise NotRenderable("booking gone")
    return booking


def _recipient(session: Session, row: OutboxMessage) -> User:
    user = session.get(User, row.user_id) if row.user_id is not None else None
    if user is None:
        raise NotRenderable("recipient gone")
    return user


def _calendar(booking: Booking, clinic: ClinicSettings, method: str) -> Attachment:
    data = booking_calendar(booking, zone=zone_of(clinic), method=method,  # type: ignore[arg-type]
                            clinic=clinic)
    return Attachment(
        filename="cancelled.ics" if method == "CANCEL" else "booking.ics",
        content_type=f"text/calendar; method={method}; charset=utf-8",
        content=data.decode("utf-8"),
    )


def render(template: str, session: Session, row: OutboxMessage, *,
           attachments: list[Attachment] | None = None, **context: object) -> Outgoing:
    """Render ``template`` for ``row``'s recipient; non-essential kinds get the
    unsubscribe link and headers."""
    headers: dict[str, str] = {}
    if row.kind in NON_ESSENTIAL and row.user_id is not None:
        context["unsubscribe_url"], headers = unsubscribe_bits(_recipient(session, row))
    return render_email(template, row.to_addr, clinic=get_settings(session),
                        attachments=attachments, headers=headers, **context)


# --------------------------------------------------------------------------- renderers


def render_booking_mail(session: Session, row: OutboxMessage, now: datetime) -> Outgoing:
    """Confirmation, change or cancellation: the client's or the therapist's copy."""
    booking = _booking(session, row)
    person = _recipient(session, row)
    clinic = get_settings(session)
    zone = zone_of(clinic)
    params = row.params or {}
    event = {CONFIRMATION: "confirmation", CHANGE: "change",
             CANCELLATION: "cancellation"}[row.kind]
    terms = booking_terms(booking, clinic, now)
    cancelled = row.kind == CANCELLATION
    attachments = ([_calendar(booking, clinic, "CANCEL" if cancelled else "REQUEST")]
                   if cancelled or terms.calendar else [])
    old_start = params.get("old_start")
    return render(
        f"booking_{event}", session, row, attachments=attachments,
        audience=params.get("audience", "client"), person=person,
        appt=booking_view(booking, zone), status=booking.status, terms=terms,
        policy=terms.policy, manage_url=absolute("client.appointments"),
        moved=bool(params.get("moved")),
        old_when=format_local(datetime.fromisoformat(old_start), zone) if old_start else "",
        late=booking.late_cancel, reason=booking.cancel_reason,
        book_url=absolute("client.book"),
        links=(client_links(booking, clinic)
               if params.get("audience", "client") == "client" else None),
    )


def render_reminder(session: Session, row: OutboxMessage, now: datetime) -> Outgoing:
    booking = _booking(session, row)
    clinic = get_settings(session)
    terms = booking_terms(booking, clinic, now)
    return render("reminder", session, row, person=_recipient(session, row),
                  appt=booking_view(booking, zone_of(clinic)),
                  hours=int((row.params or {}).get("hours", 24)), policy=terms.policy,
                  terms=terms, manage_url=absolute("client.appointments"),
                  links=client_links(booking, clinic))


def render_aftercare(session: Session, row: OutboxMessage, now: datetime) -> Outgoing:
    booking = _booking(session, row)
    return render("aftercare", session, row, person=_recipient(session, row),
                  appt=booking_view(booking, zone_of(get_settings(session))),
                  red_flags=list(RED_FLAGS.values()), report_url=report_link(booking))


def render_recall(session: Session, row: OutboxMessage, now: datetime) -> Outgoing:
    booking = _booking(session, row)
    return render("recall", session, row, person=_recipient(session, row),
                  last=booking_view(booking, zone_of(get_settings(session))),
                  weeks=int(RECALL_AFTER.days // 7), book_url=absolute("client.book"))


def agenda_bookings(session: Session, therapist_id: int, day: date,
                    zone: ZoneInfo) -> list[Booking]:
    """A therapist's pending and booked appointments on ``day`` (clinic zone)."""
    day_start = datetime.combine(day, time(0), tzinfo=zone)
    day_end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone)
    return list(session.scalars(
        select(Booking)
        .where(Booking.therapist_id == therapist_id, Booking.start_at >= day_start,
               Booking.start_at < day_end, Booking.status.in_(ACTIVE_UPCOMING))
        .order_by(Booking.start_at)
    ))


def render_agenda(session: Session, row: OutboxMessage, now: datetime) -> Outgoing:
    params = row.params or {}
    clinic = get_settings(session)
    zone = zone_of(clinic)
    day = date.fromisoformat(params["day"])
    therapist = session.get(Therapist, params["therapist_id"])
    items = agenda_bookings(session, params["therapist_id"], day, zone)
    if therapist is None or not items:
        raise NotRenderable("no appointments left that day")
    return render("daily_agenda", session, row, person=_recipient(session, row),
                  day=day_text(day), zone_key=zone.key,
                  items=[(booking_view(b, zone), b.status) for b in items],
                  day_url=absolute("therapist.day"))


def render_red_flag_alert(session: Session, row: OutboxMessage, now: datetime) -> Outgoing:
    """The therapist's alert: names no one in the subject and no symptom anywhere (email
    is not a safe place for health data); the review queue, behind a login, shows them.
    ``params`` name the check-in's kind, or the problem report (``report``)."""
    booking = _booking(session, row)
    params = row.params or {}
    flags: list[str]
    if "report" in params:
        report = session.get(ProblemReport, params["report"])
        if report is None or report.booking_id != booking.id:
            raise NotRenderable("problem report gone")
        kind, flags = "report", report.red_flags
    else:
        kind = params.get("checkin", "24h")
        checkin = session.scalar(select(CheckIn).where(CheckIn.booking_id == booking.id,
                                                       CheckIn.kind == kind))
        if checkin is None:
            raise NotRenderable("check-in gone")
        flags = checkin.red_flags
    zone = zone_of(get_settings(session))
    return render("red_flag_alert", session, row, booking=booking, client=booking.client,
                  therapist=_recipient(session, row), kind=kind, count=len(flags),
                  session_day=booking.start_at.astimezone(zone).date())


@dataclass
class OfferView:
    """What the waitlist offer email shows (times already in the clinic zone)."""

    service: str
    therapist: str
    when: str
    short: str
    ends: str
    minutes: int
    held_until: str  # "14:30 GMT"
    held_until_day: str  # "" when the hold ends on the day it was offered, else the day


def offer_view(offer: WaitlistOffer, zone: ZoneInfo, now: datetime) -> OfferView:
    local_start = offer.start_at.astimezone(zone)
    local_end = offer.end_at.astimezone(zone)
    until = offer.expires_at.astimezone(zone)
    return OfferView(
        service=offer.service.name, therapist=offer.therapist.user.name,
        when=format_local(offer.start_at, zone),
        short=f"{local_start:%a %d %b %Y, %H:%M} {local_start.tzname()}",
        ends=f"{local_end:%H:%M} {local_end.tzname()}",
        minutes=int((offer.end_at - offer.start_at).total_seconds() // 60),
        held_until=f"{until:%H:%M} {until.tzname()}",
        held_until_day="" if until.date() == now.astimezone(zone).date() else f"{until:%a %d %b}",
    )


def render_waitlist_offer(session: Session, row: OutboxMessage, now: datetime) -> Outgoing:
    """A freed slot held for a waiting client: what, with whom, when, held until when, and
    the signed Accept and Decline links (no log-in needed)."""
    offer = session.get(WaitlistOffer, (row.params or {}).get("offer"))
    if offer is None:
        raise NotRenderable("offer gone")
    clinic = get_settings(session)
    zone = zone_of(clinic)
    return render("waitlist_offer", session, row, person=_recipient(session, row),
                  offer=offer_view(offer, zone, now), links=waitlist_offer_links(offer),
                  waitlist_url=absolute("waitlist.index"))


def render_account_mail(session: Session, row: OutboxMessage, now: datetime) -> Outgoing:
    """Verification, reset, invitation and the other account emails (``params`` carry
    the link's token, for a change of address the new one, and the page to go on to)."""
    params = row.params or {}
    return render(row.kind, session, row, user=_recipient(session, row),
                  **{k: v for k, v in params.items() if k in ("token", "new_email", "next")})
