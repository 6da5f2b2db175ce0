"""The worker's planning jobs: the messages that depend on later facts.

Above care and booking (it reads recommendations and searches free slots), below the
worker. ``plan_due_messages`` writes "still sore?" check-ins, rebooking prompts and
recalls; ``daily_agenda`` writes each therapist's day. Each client is planned in its
own savepoint: one bad row (say a recommendation dated 9999-12-31) is logged, counted
and skipped, and everyone else is still planned. Everything is an outbox intent; this
module also registers the renderers of the two kinds that need the care layer: the
check-ins (their signed link) and the rebooking prompt (free slots found at send time,
at least an hour beyond the minimum notice, so the first one is still bookable when the
client clicks it).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field
from datetime import date
from datetime import datetime
from datetime import time
from datetime import timedelta
from typing import Any
from typing import TypeVar

from sqlalchemy import and_
from sqlalchemy import exists
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy.orm import aliased

from clinic_app.errors import DomainError
from clinic_app.mail.outbox import NotRenderable
from clinic_app.mail.outbox import Outgoing
from clinic_app.mail.outbox import register_kind
from clinic_app.mail.outbox import retire
from clinic_app.models.accounts import User
from clinic_app.models.booking import Booking
from clinic_app.models.booking import BookingStatus
from clinic_app.models.care import CheckIn
from clinic_app.models.care import Recommendation
from clinic_app.models.outbox import OutboxMessage
from clinic_app.models.outbox import OutboxStatus
from clinic_app.models.schedule import Therapist
from clinic_app.scheduling.followup import DEFAULT_PARAMS
from clinic_app.scheduling.followup import RED_FLAGS
from clinic_app.services import care
from clinic_app.services.notify import messages as m
from clinic_app.services.notify import send_rules
from clinic_app.services.notify.events import checkin_due
from clinic_app.services.notify.events import intent
from clinic_app.services.notify.links import absolute
from clinic_app.services.notify.links import report_link
from clinic_app.services.settings import get_settings

log = logging.getLogger("clinic_app.worker")

STILL_SORE_MIN_SORENESS = DEFAULT_PARAMS.still_sore_question_min_soreness  # 4
# Planner look-back windows: old history is never mailed (e.g. on a first deployment).
STILL_SORE_WINDOW = timedelta(days=5)
RECALL_WINDOW = timedelta(days=14)
PROMPT_STALE_DAYS = 7
PROMPT_LOCAL_TIME = time(10, 0)  # the prompt goes out at a humane hour on the ideal date
PROMPT_SLOTS = 6  # free slots a rebooking prompt offers
# A prompt's first time must still be bookable when the client reads the email and
# clicks: this much beyond the clinic's minimum notice, counted from the moment it is sent.
PROMPT_NOTICE_MARGIN = timedelta(hours=1)

T = TypeVar("T")


@dataclass
class PlanResult:
    still_sore: int = 0
    prompts: int = 0
    recalls: int = 0
    failures: list[str] = field(default_factory=list)  # "client 12: ValueError: ..."


def _each_client(session: Session, items: list[T], client_of: Callable[[T], int],
                 plan: Callable[[T], bool], result: PlanResult, job: str) -> int:
    """Run ``plan`` for each item in its own savepoint; count what it wrote, log and
    record what failed, and go on with the next one."""
    made = 0
    for item in items:
        client_id = client_of(item)
        try:
            with session.begin_nested():
                if plan(item):
                    made += 1
        except Exception as exc:  # noqa: BLE001 - one bad row must not stop the others
            log.exception("planning %s failed for client %s; skipped", job, client_id)
            result.failures.append(f"{job}, client {client_id}: "
                                   f"{exc.__class__.__name__}: {exc}"[:300])
    return made


def plan_due_messages(session: Session, now: datetime) -> PlanResult:
    """Write the messages that depend on later facts; idempotent (keys). Does not commit."""
    result = PlanResult()
    result.still_sore = _plan_still_sore(session, now, result)
    result.prompts = _plan_rebooking_prompts(session, now, result)
    result.recalls = _plan_recalls(session, now, result)
    return result


def _plan_still_sore(session: Session, now: datetime, result: PlanResult) -> int:
    """ "Still sore?" at end + 72 h for completed bookings whose 24 h soreness was >= 4."""
    rows = session.scalars(
        select(Booking)
        .join(CheckIn, CheckIn.booking_id == Booking.id)
        .where(
            CheckIn.kind == "24h",
            CheckIn.soreness >= STILL_SORE_MIN_SORENESS,
            Booking.status == BookingStatus.COMPLETED.value,
            Booking.end_at > now - m.CHECKIN_72H_DELAY - STILL_SORE_WINDOW,
            Booking.end_at <= now,
        )
        .where(~exists().where(OutboxMessage.booking_id == Booking.id,
                               OutboxMessage.kind == m.CHECKIN_72H))
        .distinct()
    ).all()
    return _each_client(session, list(rows), lambda b: b.client_id,
                        lambda b: checkin_due(session, b, now, kind="72h") is not None,
                        result, "still-sore")


def _future_booking_exists(client_id: Any, now: datetime) -> Any:
    # Aliased: inside a query over bookings it must not correlate with the outer row.
    future = aliased(Booking)
    return exists().where(future.client_id == client_id, future.start_at > now,
                          future.status.in_(m.ACTIVE_UPCOMING))


def _plan_rebooking_prompts(session: Session, now: datetime, result: PlanResult) -> int:
    """A prompt at the ideal date of each client's current recommendation, once."""
    zone = m.zone_of(get_settings(session))
    today = now.astimezone(zone).date()
    newest = (select(func.max(Recommendation.id)).group_by(Recommendation.booking_id)
              .scalar_subquery())
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
        .where(~exists().where(OutboxMessage.booking_id == Recommendation.booking_id,
                               OutboxMessage.kind == m.REBOOKING_PROMPT,
                               OutboxMessage.status == OutboxStatus.SENT.value))
    ).all()

    def plan(rec: Recommendation) -> bool:
        if rec.latest is not None and rec.latest < today:
            return False  # the window is over; the recall takes it from here
        if send_rules.current_recommendation(session, rec.client_id) is not rec:
            return False  # not the client's current window (created_at order decides)
        assert rec.ideal is not None
        due = datetime.combine(rec.ideal, PROMPT_LOCAL_TIME, tzinfo=zone)
        key = f"booking:{rec.booking_id}:rebooking-prompt:{rec.ideal.isoformat()}"
        if session.scalar(select(OutboxMessage.id).where(OutboxMessage.key == key)):
            return False
        # A newer recommendation (therapist override) replaces an unsent older prompt.
        retire(session, booking_id=rec.booking_id, kinds=[m.REBOOKING_PROMPT], now=now)
        booking = session.get(Booking, rec.booking_id)
        assert booking is not None
        return intent(session, kind=m.REBOOKING_PROMPT, key=key, to=booking.client.email,
                      now=now, user=booking.client, booking=booking, due_at=max(due, now),
                      recommendation_id=rec.id, ideal=rec.ideal.isoformat()) is not None

    return _each_client(session, list(candidates), lambda r: r.client_id, plan, result,
                        "prompts")


def _plan_recalls(session: Session, now: datetime, result: PlanResult) -> int:
    """A recall 8 weeks after a client's last visit, when nothing is booked."""
    last_end = (
        select(Booking.client_id, func.max(Booking.end_at).label("last_end"))
        .where(Booking.status == BookingStatus.COMPLETED.value)
        .group_by(Booking.client_id)
        .subquery()
    )
    rows = session.execute(
        select(Booking)
        .join(last_end, and_(last_end.c.client_id == Booking.client_id,
                             last_end.c.last_end == Booking.end_at))
        .join(User, User.id == Booking.client_id)
        .where(
            Booking.status == BookingStatus.COMPLETED.value,
            last_end.c.last_end <= now - m.RECALL_AFTER,
            last_end.c.last_end > now - m.RECALL_AFTER - RECALL_WINDOW,
            User.wants_prompts.is_(True),
            User.is_active.is_(True),
            User.anonymised_at.is_(None),
        )
        .where(~_future_booking_exists(Booking.client_id, now))
    ).scalars().all()

    def plan(booking: Booking) -> bool:
        if send_rules.held_for_review(session, booking.client_id):
            return False
        client = booking.client
        return intent(session, kind=m.RECALL, key=f"user:{client.id}:recall:{booking.id}",
                      to=client.email, now=now, user=client, booking=booking) is not None

    return _each_client(session, list(rows), lambda b: b.client_id, plan, result, "recalls")


def daily_agenda(session: Session, now: datetime) -> int:
    """Each active therapist's day (clinic zone), once per day, for therapists with at
    least one booking that day (no empty emails on days off). Returns how many were
    written. Does not commit."""
    zone = m.zone_of(get_settings(session))
    today = now.astimezone(zone).date()
    day_start = datetime.combine(today, time(0), tzinfo=zone)
    day_end = datetime.combine(today + timedelta(days=1), time(0), tzinfo=zone)
    therapist_ids = session.scalars(
        select(Booking.therapist_id).distinct()
        .join(Therapist, Therapist.id == Booking.therapist_id)
        .join(User, User.id == Therapist.user_id)
        .where(Therapist.active.is_(True), User.is_active.is_(True),
               Booking.start_at >= day_start, Booking.start_at < day_end,
               Booking.status.in_(m.ACTIVE_UPCOMING))
    ).all()
    made = 0
    for therapist_id in therapist_ids:
        therapist = session.get(Therapist, therapist_id)
        assert therapist is not None
        if intent(session, kind=m.DAILY_AGENDA,
                  key=f"therapist:{therapist_id}:agenda:{today.isoformat()}",
                  to=therapist.user.email, now=now, user=therapist.user,
                  therapist_id=therapist_id, day=today.isoformat()):
            made += 1
    return made


# ------------------------------------------------------ renderers that need the care layer


@dataclass
class SlotView:
    """One free slot offered in a rebooking prompt (times in the clinic zone)."""

    when: str
    therapist: str
    same_therapist: bool
    url: str


def prompt_slots(session: Session, rec: Recommendation, client: User, now: datetime
                 ) -> tuple[list[SlotView], int | None]:
    """Free slots inside the window as of ``now`` (the moment of sending), the last
    session's therapist first (R5), then others: from ``ideal`` to ``latest``, else from
    ``earliest``; only slots at least ``PROMPT_NOTICE_MARGIN`` beyond the minimum notice.
    One slot search (``care.next_session_options``); returns the slots and the service."""
    clinic = get_settings(session)
    zone = m.zone_of(clinic)
    try:
        options = care.next_session_options(session, client, now)
    except DomainError:
        return [], None  # e.g. the service is no longer offered: link to the booking page
    if options.service_id is None or not options.bookable:
        return [], options.service_id
    if options.recommendation is None or options.recommendation.id != rec.id:
        return [], options.service_id
    not_before = now + timedelta(minutes=clinic.min_notice_minutes) + PROMPT_NOTICE_MARGIN

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
            when=m.format_local(s.start, zone),
            therapist=names.get(s.therapist_id, ""),
            same_therapist=s.therapist_id == options.therapist_id,
            # The confirm step of the booking path, for that therapist at that time.
            url=absolute("client.book_confirm", "/book", service_id=options.service_id,
                         start=s.start.isoformat(), therapist=s.therapist_id,
                         chosen=s.therapist_id),
        )
        for s in chosen
    ], options.service_id


def render_prompt(session: Session, row: OutboxMessage, now: datetime) -> Outgoing:
    """The rebooking prompt, written when it goes: the current window and its free slots."""
    booking = session.get(Booking, row.booking_id) if row.booking_id is not None else None
    if booking is None:
        raise NotRenderable("booking gone")
    rec = send_rules.current_recommendation(session, booking.client_id)
    if rec is None:
        raise NotRenderable("no recommendation")
    client = booking.client
    slots, service_id = prompt_slots(session, rec, client, now)
    book_url = (absolute("client.book_service", "/book", service_id=service_id)
                if service_id is not None else absolute("client.book"))
    zone = m.zone_of(get_settings(session))
    return m.render("rebooking_prompt", session, row, person=client,
                    last=m.booking_view(booking, zone), earliest=m.day_text(rec.earliest),
                    ideal=m.day_text(rec.ideal), latest=m.day_text(rec.latest),
                    book_url=book_url, slots=slots, zone_key=zone.key)


def render_checkin(session: Session, row: OutboxMessage, now: datetime) -> Outgoing:
    """The 24 h or 72 h check-in, with its signed link (the care layer's token)."""
    booking = session.get(Booking, row.booking_id) if row.booking_id is not None else None
    if booking is None:
        raise NotRenderable("booking gone")
    kind = "24h" if row.kind == m.CHECKIN_24H else "72h"
    return m.render(f"checkin_{kind}", session, row, person=booking.client,
                    appt=m.booking_view(booking, m.zone_of(get_settings(session))),
                    link=absolute("checkin.form", token=care.checkin_token(booking, kind)),
                    red_flags=list(RED_FLAGS.values()), report_url=report_link(booking))


register_kind(m.CHECKIN_24H, check=send_rules.check_checkin, render=render_checkin)
register_kind(m.CHECKIN_72H, check=send_rules.check_checkin, render=render_checkin)
register_kind(m.REBOOKING_PROMPT, check=send_rules.check_prompt, render=render_prompt)
