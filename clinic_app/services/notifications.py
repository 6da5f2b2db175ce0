"""Booking emails, written to the outbox in the caller's transaction.

The booking services call ``booking_created`` / ``booking_changed`` /
``booking_cancelled`` / ``booking_completed`` on every change; these decide which
messages to enqueue or retire. The worker's planner (``plan_due_messages``) adds
the messages that depend on later facts (the 24 h soreness answer, the
recommendation, the absence of visits), and ``daily_agenda`` writes each
therapist's day. Every message is also re-checked at send time (``SEND_CHECKS``):
a cancelled or moved booking never gets a stale reminder even if retiring its rows
was missed.

The schedule (shared/notes/followup-spacing.md, "Message schedule"):

============================  =====================  ==========================================
message (kind)                due                    enqueued by / re-checked at send time
============================  =====================  ==========================================
booking_confirmation          at once                booking_created; skipped if superseded
booking_change                at once                booking_changed; skipped if superseded
booking_cancellation          at once                booking_cancelled
reminder                      start - h for h in     booking_created/changed; skipped unless the
                              reminder_offsets()     booking is active and still starts then
aftercare                     end + 3 h              booking_created/changed; skipped if
                                                     cancelled, moved or a no-show
checkin_24h                   end + 24 h             booking_completed (only completed bookings
                                                     get one; re-checked at send time)
checkin_72h ("still sore?")   end + 72 h             planner, when the 24 h soreness was >= 4
rebooking_prompt              ideal date, 10:00      planner; non-essential; skipped if a future
                                                     booking exists or the client opted out
recall                        8 weeks after the      planner; non-essential; same checks
                              last visit
daily_agenda                  07:00 clinic time      the worker's cron job
============================  =====================  ==========================================

The rebooking prompt offers up to six free slots inside the window (from ``ideal`` to
``latest``, else from ``earliest``), the last session's therapist first, each linking to
the booking confirm page; one slot search per prompt. A prompt written long before its
due time is rendered again ``PROMPT_REFRESH_LEAD`` before it goes, so its slots are fresh.

Time: "24 h before" means 24 *elapsed* hours (absolute time, ``start - timedelta(hours=24)``),
not "the same wall-clock time the day before". Across a DST change the two differ by an
hour: a 09:00 BST appointment on Mon 30 March 2026 (the day after the clocks went forward)
gets its 24 h reminder at 08:00 UTC on Sun 29 March, which is 09:00 BST, and its 48 h
reminder at 08:00 UTC on Sat 28 March, which is 08:00 GMT. Reminders whose due time has
already passed when the booking is made are not written (the confirmation says it all).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from datetime import datetime
from datetime import time
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask import current_app
from flask import url_for
from itsdangerous import BadSignature
from itsdangerous import URLSafeSerializer
from sqlalchemy import and_
from sqlalchemy import exists
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.orm import Session
from sqlalchemy.orm import aliased
from werkzeug.routing import BuildError

from clinic_app.mail.outbox import Attachment
from clinic_app.mail.outbox import Outgoing
from clinic_app.mail.outbox import enqueue
from clinic_app.mail.outbox import register_send_check
from clinic_app.mail.outbox import retire
from clinic_app.mail.render import render_email
from clinic_app.models.accounts import User
from clinic_app.models.booking import Booking
from clinic_app.models.booking import BookingStatus
from clinic_app.models.care import CheckIn
from clinic_app.models.care import Recommendation
from clinic_app.models.outbox import OutboxMessage
from clinic_app.models.outbox import OutboxStatus
from clinic_app.models.schedule import ClinicSettings
from clinic_app.models.schedule import Therapist
from clinic_app.scheduling.followup import DEFAULT_PARAMS
from clinic_app.scheduling.followup import RED_FLAGS
from clinic_app.services import booking_links
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

NON_ESSENTIAL = frozenset({REBOOKING_PROMPT, RECALL})

AFTERCARE_DELAY = timedelta(hours=3)
CHECKIN_24H_DELAY = timedelta(hours=24)
CHECKIN_72H_DELAY = timedelta(hours=72)
STILL_SORE_MIN_SORENESS = DEFAULT_PARAMS.still_sore_question_min_soreness  # 4
RECALL_AFTER = timedelta(weeks=DEFAULT_PARAMS.recall_weeks)  # 8 weeks
# Planner look-back windows: old history is never mailed (e.g. on a first deployment).
STILL_SORE_WINDOW = timedelta(days=5)
RECALL_WINDOW = timedelta(days=14)
PROMPT_STALE_DAYS = 7
PROMPT_LOCAL_TIME = time(10, 0)  # the prompt goes out at a humane hour on the ideal date
PROMPT_SLOTS = 6  # free slots a rebooking prompt offers
# A prompt written long before it is due is rendered again this long before it goes, so
# that the slots it offers are still free.
PROMPT_REFRESH_LEAD = timedelta(hours=1)
AGENDA_LOCAL_TIME = time(7, 0)
# Messages that make no sense long after the fact.
AFTERCARE_STALE = timedelta(days=3)

_UNSUBSCRIBE_SALT = "notify-unsubscribe"
_ACTIVE_UPCOMING = (BookingStatus.PENDING.value, BookingStatus.BOOKED.value)


# --------------------------------------------------------------------------- helpers


def format_local(moment: datetime, zone: ZoneInfo) -> str:
    """``Mon 30 Mar 2026, 09:00 BST (Europe/London)``: a time in the clinic zone, named."""
    local = moment.astimezone(zone)
    return f"{local:%a %d %b %Y, %H:%M} {local.tzname()} ({zone.key})"


def _zone(clinic: ClinicSettings) -> ZoneInfo:
    return ZoneInfo(clinic.timezone)


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


def _view(booking: Booking, zone: ZoneInfo) -> BookingView:
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


def _absolute(endpoint: str, fallback: str = "/", **values: Any) -> str:
    """An absolute link to ``endpoint``, or to ``fallback`` if that page does not exist yet."""
    base = current_app.config["BASE_URL"]
    try:
        with current_app.test_request_context("/", base_url=base):
            return base + url_for(endpoint, **values)
    except BuildError:
        return base + fallback


def _calendar(booking: Booking, clinic: ClinicSettings, method: str) -> Attachment:
    # Imported here: the calendar module is written alongside this one.
    from clinic_app.mail.ics import booking_calendar

    data = booking_calendar(booking, zone=_zone(clinic), method=method, clinic=clinic)
    return Attachment(
        filename="cancelled.ics" if method == "CANCEL" else "booking.ics",
        content_type=f"text/calendar; method={method}; charset=utf-8",
        content=data.decode("utf-8") if isinstance(data, bytes) else str(data),
    )


def unsubscribe_token(user_id: int) -> str:
    """A signed, non-expiring token naming the user (the unsubscribe link needs no login)."""
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt=_UNSUBSCRIBE_SALT).dumps(
        {"u": user_id}
    )


def user_from_unsubscribe_token(session: Session, token: str) -> User | None:
    """The user an unsubscribe token names, or None if it is forged or unknown."""
    try:
        data = URLSafeSerializer(current_app.config["SECRET_KEY"], salt=_UNSUBSCRIBE_SALT).loads(
            token
        )
    except BadSignature:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("u"), int):
        return None
    return session.get(User, data["u"])


def unsubscribe(session: Session, user: User) -> None:
    """Turn off non-essential messages (the same switch as the preferences page)."""
    user.wants_prompts = False


def _unsubscribe_bits(user: User) -> tuple[str, dict[str, str]]:
    url = current_app.config["BASE_URL"] + f"/unsubscribe/{unsubscribe_token(user.id)}"
    headers = {
        "List-Unsubscribe": f"<{url}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }
    return url, headers


def _policy(clinic: ClinicSettings) -> str:
    hours = clinic.cancel_cutoff_hours
    return (
        f"You can cancel or move this appointment free of charge up to {hours} hours before it "
        f"starts. Cancellations later than that, and missed appointments, are recorded as late "
        f"cancellations."
    )


def _put(
    session: Session,
    *,
    template: str,
    to: str,
    key: str,
    kind: str,
    now: datetime,
    due_at: datetime | None = None,
    booking: Booking | None = None,
    user: User | None = None,
    attachments: list[Attachment] | None = None,
    **context: Any,
) -> OutboxMessage | None:
    essential = kind not in NON_ESSENTIAL

    def render() -> Outgoing:
        headers: dict[str, str] = {}
        if not essential and user is not None:
            context["unsubscribe_url"], headers = _unsubscribe_bits(user)
        return render_email(template, to, attachments=attachments, headers=headers, **context)

    # enqueue renders only for a new key: a key already present costs one query.
    return enqueue(
        session,
        key=key,
        kind=kind,
        message=render,
        now=now,
        due_at=due_at,
        booking_id=booking.id if booking is not None else None,
        user_id=user.id if user is not None else None,
        essential=essential,
    )


def _client_links(booking: Booking, clinic: Any) -> dict[str, str] | None:
    """The signed view/cancel links and the add-to-calendar links of a booking email
    (issue 12.3); None once the booking is no longer pending or booked."""
    if booking.status not in ("pending", "booked"):
        return None
    secret = current_app.config["SECRET_KEY"]
    where = clinic.name + (f", {clinic.address}" if clinic.address else "")
    title = f"{booking.service.name} at {clinic.name}"
    event = {"title": title, "start": booking.start_at, "end": booking.end_at,
             "location": where}
    return {
        "view": _absolute("client.booking_link", token=booking_links.make_token(
            secret, booking, "view")),
        "cancel": _absolute("client.booking_link", token=booking_links.make_token(
            secret, booking, "cancel")),
        "google": booking_links.google_calendar_url(**event),
        "outlook": booking_links.outlook_calendar_url(**event),
    }


def _both(
    session: Session,
    booking: Booking,
    now: datetime,
    *,
    event: str,
    kind: str,
    method: str,
    **context: Any,
) -> None:
    """The client's and the therapist's copy of a confirmation/change/cancellation."""
    clinic = get_settings(session)
    zone = _zone(clinic)
    view = _view(booking, zone)
    calendar = _calendar(booking, clinic, method)
    therapist_user = booking.therapist.user
    for audience, person in (("client", booking.client), ("therapist", therapist_user)):
        if not person.email or person.anonymised_at is not None:
            continue
        _put(
            session,
            template=f"booking_{event}",
            to=person.email,
            key=f"booking:{booking.id}:{event}:{booking.sequence}:{audience}",
            kind=kind,
            now=now,
            booking=booking,
            user=person,
            attachments=[calendar],
            audience=audience,
            person=person,
            appt=view,
            status=booking.status,
            policy=_policy(clinic),
            manage_url=_absolute("client.appointments"),
            links=_client_links(booking, clinic) if audience == "client" else None,
            **context,
        )


def _plan_booking_rows(session: Session, booking: Booking, now: datetime) -> None:
    """Reminders and aftercare for the booking's current time (skips due times passed)."""
    clinic = get_settings(session)
    zone = _zone(clinic)
    view = _view(booking, zone)
    client = booking.client
    if client.anonymised_at is not None:
        return
    for hours in clinic.reminder_offsets():
        due = booking.start_at - timedelta(hours=hours)  # elapsed hours, not wall clock
        if due <= now:
            continue
        _put(
            session,
            template="reminder",
            to=client.email,
            key=f"booking:{booking.id}:reminder-{hours}h:{booking.start_at.isoformat()}",
            kind=REMINDER,
            now=now,
            due_at=due,
            booking=booking,
            user=client,
            person=client,
            appt=view,
            hours=hours,
            policy=_policy(clinic),
            manage_url=_absolute("client.appointments"),
            links=_client_links(booking, clinic),
        )
    after = booking.end_at + AFTERCARE_DELAY
    _put(
        session,
        template="aftercare",
        to=client.email,
        key=f"booking:{booking.id}:aftercare:{booking.end_at.isoformat()}",
        kind=AFTERCARE,
        now=now,
        due_at=max(after, now),
        booking=booking,
        user=client,
        person=client,
        appt=view,
        red_flags=list(RED_FLAGS.values()),
    )


def _time_keys(session: Session, booking: Booking) -> list[str]:
    clinic = get_settings(session)
    start = booking.start_at.isoformat()
    keys = [f"booking:{booking.id}:reminder-{h}h:{start}" for h in clinic.reminder_offsets()]
    keys.append(f"booking:{booking.id}:aftercare:{booking.end_at.isoformat()}")
    return keys


def _retire_stale_times(session: Session, booking: Booking, now: datetime) -> int:
    """Retire the booking's unsent reminders and aftercare written for another time."""
    return session.execute(
        update(OutboxMessage)
        .where(
            OutboxMessage.booking_id == booking.id,
            OutboxMessage.kind.in_([REMINDER, AFTERCARE]),
            OutboxMessage.status.in_([OutboxStatus.PENDING.value, OutboxStatus.FAILED.value]),
        )
        .where(OutboxMessage.key.not_in(_time_keys(session, booking))
               if booking.status in _ACTIVE_UPCOMING else OutboxMessage.id.is_not(None))
        .values(status=OutboxStatus.RETIRED.value, last_error=f"retired at {now.isoformat()}")
        .execution_options(synchronize_session=False)
    ).rowcount or 0


# ------------------------------------------------------- called by the booking services


def booking_created(session: Session, booking: Booking, now: datetime) -> None:
    """A booking was made (status booked or pending)."""
    session.flush()
    _both(session, booking, now, event="confirmation", kind=CONFIRMATION, method="REQUEST")
    _plan_booking_rows(session, booking, now)


def booking_changed(session: Session, booking: Booking, old_start: datetime,
                    now: datetime) -> None:
    """A booking moved (rescheduled) or changed therapist/room; ``sequence`` already raised.

    Also the call to make when a pending booking is confirmed. Unsent rows that no longer
    fit are retired (an older confirmation or update; reminders and aftercare for another
    time), then the update and the rows for the current time are written.
    """
    session.flush()
    retire(session, booking_id=booking.id, kinds=[CONFIRMATION, CHANGE], now=now)
    _retire_stale_times(session, booking, now)
    moved = old_start != booking.start_at
    clinic = get_settings(session)
    _both(
        session, booking, now, event="change", kind=CHANGE, method="REQUEST",
        moved=moved, old_when=format_local(old_start, _zone(clinic)),
    )
    if booking.status in _ACTIVE_UPCOMING:
        _plan_booking_rows(session, booking, now)


def booking_cancelled(session: Session, booking: Booking, now: datetime) -> None:
    """A booking was cancelled (``late_cancel`` set); ``sequence`` already raised."""
    session.flush()
    retire(session, booking_id=booking.id, now=now)
    _both(
        session, booking, now, event="cancellation", kind=CANCELLATION, method="CANCEL",
        late=booking.late_cancel, reason=booking.cancel_reason,
        book_url=_absolute("client.book"),
    )


def booking_completed(session: Session, booking: Booking, now: datetime) -> None:
    """A booking was completed (the session record exists): the +24 h soreness check-in.

    Written on completion (not at booking time), so only completed bookings ever get
    one; the send check re-checks the status anyway. A completion recorded more than a
    day late sends the check-in at once.
    """
    session.flush()
    _checkin(session, booking, now, kind="24h", due=booking.end_at + CHECKIN_24H_DELAY)


def _checkin(session: Session, booking: Booking, now: datetime, *, kind: str,
             due: datetime) -> OutboxMessage | None:
    # Imported here: the check-in pages and their token live in the care module.
    from clinic_app.services.care import checkin_token

    client = booking.client
    if client.anonymised_at is not None:
        return None
    clinic = get_settings(session)
    link = _absolute("checkin.form", token=checkin_token(booking, kind))
    return _put(
        session,
        template=f"checkin_{kind}",
        to=client.email,
        key=f"booking:{booking.id}:checkin-{kind}",
        kind=CHECKIN_24H if kind == "24h" else CHECKIN_72H,
        now=now,
        due_at=max(due, now),
        booking=booking,
        user=client,
        person=client,
        appt=_view(booking, _zone(clinic)),
        link=link,
        red_flags=list(RED_FLAGS.values()),
    )


# ------------------------------------------------------------------ the planner (worker)


@dataclass
class PlanResult:
    still_sore: int = 0
    prompts: int = 0
    recalls: int = 0


def plan_due_messages(session: Session, now: datetime) -> PlanResult:
    """Write the messages that depend on later facts; idempotent (keys). Does not commit."""
    result = PlanResult()
    result.still_sore = _plan_still_sore(session, now)
    result.prompts = _plan_rebooking_prompts(session, now)
    result.recalls = _plan_recalls(session, now)
    return result


def _plan_still_sore(session: Session, now: datetime) -> int:
    """ "Still sore?" at end + 72 h for completed bookings whose 24 h soreness was >= 4."""
    rows = session.scalars(
        select(Booking)
        .join(CheckIn, CheckIn.booking_id == Booking.id)
        .where(
            CheckIn.kind == "24h",
            CheckIn.soreness >= STILL_SORE_MIN_SORENESS,
            Booking.status == BookingStatus.COMPLETED.value,
            Booking.end_at > now - CHECKIN_72H_DELAY - STILL_SORE_WINDOW,
            Booking.end_at <= now,
        )
        .where(
            ~exists().where(
                OutboxMessage.booking_id == Booking.id, OutboxMessage.kind == CHECKIN_72H
            )
        )
        .distinct()
    ).all()
    made = 0
    for booking in rows:
        if _checkin(session, booking, now, kind="72h", due=booking.end_at + CHECKIN_72H_DELAY):
            made += 1
    return made


def _future_booking_exists(client_id: Any, now: datetime) -> Any:
    # Aliased: inside a query over bookings it must not correlate with the outer row.
    future = aliased(Booking)
    return exists().where(
        future.client_id == client_id,
        future.start_at > now,
        future.status.in_(_ACTIVE_UPCOMING),
    )


def _plan_rebooking_prompts(session: Session, now: datetime) -> int:
    """A prompt at the ideal date of each client's current recommendation, once."""
    clinic = get_settings(session)
    zone = _zone(clinic)
    today = now.astimezone(zone).date()
    newest = (
        select(func.max(Recommendation.id))
        .group_by(Recommendation.booking_id)
        .scalar_subquery()
    )
    candidates = session.scalars(
        select(Recommendation)
        .join(Booking, Booking.id == Recommendation.booking_id)
        .join(User, User.id == Recommendation.client_id)
        .where(
            Recommendation.id.in_(newest),
            Recommendation.action == "book",
            Recommendation.ideal.is_not(None),
            Recommendation.ideal >= today - timedelta(days=PROMPT_STALE_DAYS),
            Booking.status == BookingStatus.COMPLETED.value,
            User.wants_prompts.is_(True),
            User.is_active.is_(True),
            User.anonymised_at.is_(None),
        )
        .where(~_future_booking_exists(Recommendation.client_id, now))
        .where(
            ~exists().where(
                OutboxMessage.booking_id == Recommendation.booking_id,
                OutboxMessage.kind == REBOOKING_PROMPT,
                OutboxMessage.status == OutboxStatus.SENT.value,
            )
        )
    ).all()
    made = 0
    for rec in candidates:
        if rec.latest is not None and rec.latest < today:
            continue  # the window is over; the recall takes it from here
        # Only for the client's latest completed visit (older recommendations are history).
        booking = session.get(Booking, rec.booking_id)
        assert booking is not None
        newer = session.scalar(
            select(Booking.id).where(
                Booking.client_id == rec.client_id,
                Booking.status == BookingStatus.COMPLETED.value,
                Booking.end_at > booking.end_at,
            ).limit(1)
        )
        if newer is not None:
            continue
        key = f"booking:{rec.booking_id}:rebooking-prompt:{rec.ideal.isoformat()}"
        due = datetime.combine(rec.ideal, PROMPT_LOCAL_TIME, tzinfo=zone)
        existing = session.execute(
            select(OutboxMessage.id, OutboxMessage.status, OutboxMessage.due_at,
                   OutboxMessage.created_at).where(OutboxMessage.key == key)
        ).first()
        if existing is not None:
            # Written days ago: its slots are stale, so render it again shortly before it
            # goes (once: the refresh moves ``created_at`` into the lead window).
            if (existing.status == OutboxStatus.PENDING.value
                    and existing.due_at <= now + PROMPT_REFRESH_LEAD
                    and existing.created_at < existing.due_at - PROMPT_REFRESH_LEAD):
                message = _prompt_message(session, rec, booking, now,
                                          send_at=max(existing.due_at, now), zone=zone)
                session.execute(
                    update(OutboxMessage)
                    .where(OutboxMessage.id == existing.id,
                           OutboxMessage.status == OutboxStatus.PENDING.value)
                    .values(subject=message.subject, body_text=message.text,
                            body_html=message.html, headers=dict(message.headers),
                            created_at=now)
                    .execution_options(synchronize_session=False)
                )
            continue
        # A newer recommendation (therapist override) replaces an unsent older prompt.
        retire(session, booking_id=rec.booking_id, kinds=[REBOOKING_PROMPT], now=now)
        send_at = max(due, now)
        enqueue(
            session,
            key=key,
            kind=REBOOKING_PROMPT,
            message=_prompt_message(session, rec, booking, now, send_at=send_at, zone=zone),
            now=now,
            due_at=send_at,
            booking_id=booking.id,
            user_id=booking.client_id,
            essential=False,
        )
        made += 1
    return made


@dataclass
class SlotView:
    """One free slot offered in a rebooking prompt (times in the clinic zone)."""

    when: str
    therapist: str
    same_therapist: bool
    url: str


def _prompt_message(session: Session, rec: Recommendation, booking: Booking, now: datetime,
                    *, send_at: datetime, zone: ZoneInfo) -> Any:
    """The rendered rebooking prompt: the window plus up to PROMPT_SLOTS free slots."""
    client = booking.client
    slots, service_id = _prompt_slots(session, rec, client, now, send_at=send_at)
    book_url = (_absolute("client.book_service", "/book", service_id=service_id)
                if service_id is not None else _absolute("client.book"))
    context: dict[str, Any] = {}
    context["unsubscribe_url"], headers = _unsubscribe_bits(client)
    return render_email(
        "rebooking_prompt", client.email, headers=headers,
        person=client, last=_view(booking, zone), earliest=_day(rec.earliest),
        ideal=_day(rec.ideal), latest=_day(rec.latest), book_url=book_url, slots=slots,
        zone_key=zone.key, **context,
    )


def _prompt_slots(session: Session, rec: Recommendation, client: User, now: datetime, *,
                  send_at: datetime) -> tuple[list[SlotView], int | None]:
    """Free slots inside the window, the last session's therapist first (R5), then others.

    From ``ideal`` to ``latest``; if that has nothing, from ``earliest``. Only slots that
    still respect the minimum notice when the email goes out. One slot search (via
    ``care.next_session_options``) per prompt; returns the slots and the service's id.
    """
    # Imported here: the care module imports this one.
    from clinic_app.errors import DomainError
    from clinic_app.services.care import next_session_options

    clinic = get_settings(session)
    zone = _zone(clinic)
    try:
        options = next_session_options(session, client, now)
    except DomainError:
        return [], None  # e.g. the service is no longer offered: link to the booking page
    if options.service_id is None or not options.bookable:
        return [], options.service_id
    if options.recommendation is None or options.recommendation.id != rec.id:
        return [], options.service_id  # a newer window exists; do not offer another one's
    not_before = send_at + timedelta(minutes=clinic.min_notice_minutes)

    def within(first: date | None) -> list[Any]:
        if first is None or rec.latest is None:
            return []
        found = []
        for group in (options.same_therapist, options.other_therapists):
            found.extend(sorted(
                (s for s in group if s.start >= not_before
                 and first <= s.start.astimezone(zone).date() <= rec.latest),
                key=lambda s: s.start))
        return found

    chosen = (within(rec.ideal) or within(rec.earliest))[:PROMPT_SLOTS]
    names = dict(session.execute(
        select(Therapist.id, User.name).join(User, User.id == Therapist.user_id)
        .where(Therapist.id.in_({s.therapist_id for s in chosen}))
    ).all()) if chosen else {}
    return [
        SlotView(
            when=format_local(s.start, zone),
            therapist=names.get(s.therapist_id, ""),
            same_therapist=s.therapist_id == options.therapist_id,
            # The confirm step of the booking path, for that therapist at that time.
            url=_absolute("client.book_confirm", "/book", service_id=options.service_id,
                          start=s.start.isoformat(), therapist=s.therapist_id,
                          chosen=s.therapist_id),
        )
        for s in chosen
    ], options.service_id


def _day(value: date | None) -> str:
    return f"{value:%A %d %B %Y}" if value else ""


def _plan_recalls(session: Session, now: datetime) -> int:
    """A recall 8 weeks after a client's last visit, when nothing is booked."""
    clinic = get_settings(session)
    zone = _zone(clinic)
    last_end = (
        select(Booking.client_id, func.max(Booking.end_at).label("last_end"))
        .where(Booking.status == BookingStatus.COMPLETED.value)
        .group_by(Booking.client_id)
        .subquery()
    )
    rows = session.execute(
        select(Booking)
        .join(
            last_end,
            and_(last_end.c.client_id == Booking.client_id, last_end.c.last_end == Booking.end_at),
        )
        .join(User, User.id == Booking.client_id)
        .where(
            Booking.status == BookingStatus.COMPLETED.value,
            last_end.c.last_end <= now - RECALL_AFTER,
            last_end.c.last_end > now - RECALL_AFTER - RECALL_WINDOW,
            User.wants_prompts.is_(True),
            User.is_active.is_(True),
            User.anonymised_at.is_(None),
        )
        .where(~_future_booking_exists(Booking.client_id, now))
    ).scalars().all()
    made = 0
    for booking in rows:
        client = booking.client
        if _put(
            session,
            template="recall",
            to=client.email,
            key=f"user:{client.id}:recall:{booking.id}",
            kind=RECALL,
            now=now,
            booking=booking,
            user=client,
            person=client,
            last=_view(booking, zone),
            weeks=int(RECALL_AFTER.days // 7),
            book_url=_absolute("client.book"),
        ):
            made += 1
    return made


def daily_agenda(session: Session, now: datetime) -> int:
    """Each active therapist's bookings for today (clinic zone), once per day.

    Sent only to therapists with at least one booking that day (no empty emails on days
    off). Returns how many agendas were written. Does not commit.
    """
    clinic = get_settings(session)
    zone = _zone(clinic)
    today = now.astimezone(zone).date()
    day_start = datetime.combine(today, time(0), tzinfo=zone)
    day_end = datetime.combine(today + timedelta(days=1), time(0), tzinfo=zone)
    bookings = session.scalars(
        select(Booking)
        .join(Therapist, Therapist.id == Booking.therapist_id)
        .where(
            Therapist.active.is_(True),
            Booking.start_at >= day_start,
            Booking.start_at < day_end,
            Booking.status.in_(_ACTIVE_UPCOMING),
        )
        .order_by(Booking.therapist_id, Booking.start_at)
    ).all()
    by_therapist: dict[int, list[Booking]] = {}
    for booking in bookings:
        by_therapist.setdefault(booking.therapist_id, []).append(booking)
    made = 0
    for therapist_id, items in by_therapist.items():
        user = items[0].therapist.user
        if not user.is_active:
            continue
        if _put(
            session,
            template="daily_agenda",
            to=user.email,
            key=f"therapist:{therapist_id}:agenda:{today.isoformat()}",
            kind=DAILY_AGENDA,
            now=now,
            user=user,
            person=user,
            day=f"{today:%A %d %B %Y}",
            zone_key=zone.key,
            items=[(_view(b, zone), b.status) for b in items],
            day_url=_absolute("therapist.day"),
        ):
            made += 1
    return made


# ------------------------------------------------------------------------ send checks


def _booking_of(session: Session, row: OutboxMessage) -> Booking | None:
    if row.booking_id is None:
        return None
    return session.get(Booking, row.booking_id, populate_existing=True)


def _check_superseded(session: Session, row: OutboxMessage, now: datetime) -> str | None:
    booking = _booking_of(session, row)
    if booking is None:
        return "booking gone"
    sequence = int(row.key.split(":")[3])
    if booking.status == BookingStatus.CANCELLED.value:
        return "booking cancelled"
    if sequence < booking.sequence:
        return f"superseded by sequence {booking.sequence}"
    return None


def _check_reminder(session: Session, row: OutboxMessage, now: datetime) -> str | None:
    booking = _booking_of(session, row)
    if booking is None:
        return "booking gone"
    if booking.status not in _ACTIVE_UPCOMING:
        return f"booking {booking.status}"
    if row.key.split(":", 3)[3] != booking.start_at.isoformat():
        return "booking moved"
    if booking.start_at <= now:
        return "appointment already started"
    return None


def _check_aftercare(session: Session, row: OutboxMessage, now: datetime) -> str | None:
    booking = _booking_of(session, row)
    if booking is None:
        return "booking gone"
    if booking.status not in (BookingStatus.BOOKED.value, BookingStatus.COMPLETED.value):
        return f"booking {booking.status}"
    if row.key.split(":", 3)[3] != booking.end_at.isoformat():
        return "booking moved"
    if now > booking.end_at + AFTERCARE_STALE:
        return "too late for aftercare"
    return None


def _check_checkin(session: Session, row: OutboxMessage, now: datetime) -> str | None:
    booking = _booking_of(session, row)
    if booking is None:
        return "booking gone"
    if booking.status != BookingStatus.COMPLETED.value:
        return f"booking {booking.status}, not completed"
    return None


def _check_prompt(session: Session, row: OutboxMessage, now: datetime) -> str | None:
    booking = _booking_of(session, row)
    if booking is None:
        return "booking gone"
    if session.scalar(select(_future_booking_exists(booking.client_id, now))):
        return "a future booking exists"
    return None


def _check_recall(session: Session, row: OutboxMessage, now: datetime) -> str | None:
    reason = _check_prompt(session, row, now)
    if reason:
        return reason
    booking = _booking_of(session, row)
    assert booking is not None
    later = session.scalar(
        select(Booking.id).where(
            Booking.client_id == booking.client_id,
            Booking.status == BookingStatus.COMPLETED.value,
            Booking.end_at > booking.end_at,
        ).limit(1)
    )
    return "a later visit exists" if later is not None else None


for _kind in (CONFIRMATION, CHANGE):
    register_send_check(_kind, _check_superseded)
register_send_check(REMINDER, _check_reminder)
register_send_check(AFTERCARE, _check_aftercare)
register_send_check(CHECKIN_24H, _check_checkin)
register_send_check(CHECKIN_72H, _check_checkin)
register_send_check(REBOOKING_PROMPT, _check_prompt)
register_send_check(RECALL, _check_recall)
