"""Planning and booking a course of sessions (issue 13, item 3).

:func:`plan_course` proposes the client's next N sessions, each inside its projected window:
the first inside the client's current recommendation, each later one inside the window the
rules (``scheduling.followup.recommend``) give for the proposed session before it, with the
next-day soreness not known yet (the rules' "missing" floor). Within a window the slot is the
first on or after ``ideal`` (R5), else the first after ``earliest``; the usual therapist
(the given one, else the last session's) first, then anyone.

:func:`book_course` books them all in the caller's transaction, all or nothing: every
session is tried (each in a SAVEPOINT) so that every conflict is named, and if any failed the
caller rolls the whole transaction back. Services never commit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from clinic_app.errors import DomainError
from clinic_app.errors import SlotTaken
from clinic_app.errors import ValidationFailed
from clinic_app.models.accounts import User
from clinic_app.models.booking import Booking
from clinic_app.scheduling import availability as pure_slots
from clinic_app.scheduling import followup
from clinic_app.services import booking as booking_service
from clinic_app.services import care
from clinic_app.services.availability import search_slots
from clinic_app.services.settings import clinic_zone

__all__ = ["MAX_PLANNED", "OutOfWindow", "PlannedSession", "book_course", "max_sessions",
           "next_session_outside_window", "plan_course", "planned_service_id"]

#: The most sessions planned in one go outside the initial series (issue 13.3).
MAX_PLANNED = 6


@dataclass(frozen=True)
class PlannedSession:
    """One proposed session and the window it was chosen in (local dates)."""

    start: datetime
    end: datetime
    therapist_id: int
    earliest: date
    ideal: date
    latest: date


@dataclass(frozen=True)
class _Basis:
    """What the projection starts from: the last recorded session and its window."""

    service_id: int
    therapist_id: int
    session_number: int
    goal: str
    intensity: int | None
    progress: str | None
    earliest: date
    ideal: date
    latest: date


def _basis(session: Session, client: User) -> _Basis:
    rec = care.current_recommendation(session, client)
    if rec is None:
        raise ValidationFailed(
            "A course is planned from your last session's recommendation; book your first "
            "session on its own.", code="no_recommendation",
            fields={"sessions": "No recommendation yet."})
    if rec.action == followup.Action.REFER.value or rec.earliest is None:
        raise ValidationFailed(
            "After the symptoms you reported, please see a doctor first; your therapist will "
            "open booking again.", code="see_clinician_first",
            fields={"sessions": "Booking is paused until your therapist has spoken to you."})
    if rec.action == followup.Action.THERAPIST_REVIEW.value:
        raise ValidationFailed(
            "Your therapist wants to review how you are doing before planning more sessions.",
            code="awaiting_review", fields={"sessions": "Awaiting the therapist's review."})
    record = care.session_record_for(session, rec.booking_id)
    last = session.get(Booking, rec.booking_id)
    assert last is not None and rec.ideal is not None and rec.latest is not None
    return _Basis(
        service_id=last.service_id, therapist_id=last.therapist_id,
        session_number=record.session_number if record else 1,
        goal=record.goal if record else followup.Goal.CHRONIC.value,
        intensity=record.intensity if record else None,
        progress=record.progress if record else None,
        earliest=rec.earliest, ideal=rec.ideal, latest=rec.latest,
    )


def planned_service_id(session: Session, client: User) -> int:
    """The service a course is planned for: the last recorded session's."""
    return _basis(session, client).service_id


def max_sessions(session_number: int, params: followup.FollowupParams) -> int:
    """Up to the rest of the initial series, or MAX_PLANNED once past it."""
    rest = params.initial_max_session - session_number
    return min(MAX_PLANNED, rest) if rest > 0 else MAX_PLANNED


def _pick(slots: list[pure_slots.Slot], tz: ZoneInfo, ideal: date) -> pure_slots.Slot | None:
    """R5: the first slot on or after ``ideal``, else the first one in the window."""
    on_or_after = [s for s in slots if s.start.astimezone(tz).date() >= ideal]
    if on_or_after:
        return on_or_after[0]
    return slots[0] if slots else None


def plan_course(session: Session, client: User, *, sessions: int, now: datetime,
                therapist_id: int | None = None) -> list[PlannedSession]:
    """Propose ``sessions`` sessions, each inside its projected window.

    Raises ValidationFailed: no_recommendation, see_clinician_first, awaiting_review,
    too_many_sessions, no_slot_in_window (``fields["sessions.N"]`` names the first session
    with no free slot in its window), not_offered.
    """
    basis = _basis(session, client)
    params = care.followup_params()
    limit = max_sessions(basis.session_number, params)
    if not 1 <= sessions <= limit:
        raise ValidationFailed(f"Plan from 1 to {limit} sessions.", code="too_many_sessions",
                               fields={"sessions": f"From 1 to {limit}."})
    usual = therapist_id if therapist_id is not None else basis.therapist_id
    tz = clinic_zone(session)
    today = now.astimezone(tz).date()
    earliest, ideal, latest = basis.earliest, basis.ideal, basis.latest
    planned: list[PlannedSession] = []
    for index in range(sessions):
        first = max(earliest, today)
        last = max(latest, first)
        after = planned[-1].end if planned else None
        slot = None
        # The usual therapist first; anyone else only when no therapist was asked for.
        for who in (usual, None) if therapist_id is None else (usual,):
            try:
                _, slots = search_slots(session, service_id=basis.service_id, date_from=first,
                                        date_to=last, therapist_id=who, now=now)
            except ValidationFailed:
                if who is None:
                    raise
                continue  # the usual therapist no longer offers this service: try anyone
            slot = _pick([s for s in slots if after is None or s.start >= after], tz, ideal)
            if slot is not None:
                break
        if slot is None:
            raise ValidationFailed(
                f"No free time for session {index + 1} between {first.isoformat()} and "
                f"{last.isoformat()}; plan fewer sessions or join the waitlist.",
                code="no_slot_in_window",
                fields={f"sessions.{index}": "No free slot inside its window."})
        planned.append(PlannedSession(start=slot.start, end=slot.end,
                                      therapist_id=slot.therapist_id, earliest=earliest,
                                      ideal=ideal, latest=latest))
        # The window after this proposed session, soreness not known yet.
        projected = followup.recommend(followup.FollowupInput(
            session_date=slot.start.astimezone(tz).date(),
            session_number=basis.session_number + index + 1, goal=basis.goal,
            intensity=basis.intensity, progress=basis.progress), params)
        assert projected.earliest is not None and projected.ideal is not None
        assert projected.latest is not None  # no red flags in a projection: always dated
        earliest, ideal, latest = projected.earliest, projected.ideal, projected.latest
    return planned


def book_course(session: Session, *, client: User, actor: User, service_id: int,
                sessions: list[tuple[datetime, int | None]], now: datetime) -> list[Booking]:
    """Book every ``(start, therapist_id)`` for ``client``, all or nothing.

    Each booking goes through ``booking.book`` (its checks and its race guards) inside a
    SAVEPOINT. If any fails, SlotTaken (409) is raised with ``fields["sessions.N"]`` for each
    session that could not be booked (a taken slot or another refusal, with its message) and
    the caller must roll back: nothing is booked.
    """
    if not sessions:
        raise ValidationFailed("Send at least one session.", fields={"sessions": "Empty."})
    starts = [start for start, _ in sessions]
    if len(set(starts)) != len(starts):
        raise ValidationFailed("Two sessions at the same time.",
                               fields={"sessions": "Each session needs its own time."})
    booked: list[Booking] = []
    conflicts: dict[str, str] = {}
    for index, (start, therapist_id) in enumerate(sessions):
        try:
            with session.begin_nested():
                booked.append(booking_service.book(
                    session, client=client, service_id=service_id, start=start, now=now,
                    therapist_id=therapist_id, actor=actor))
        except DomainError as exc:
            conflicts[f"sessions.{index}"] = exc.message
    if conflicts:
        raise SlotTaken(
            "Some of those sessions can no longer be booked; nothing was booked.",
            fields=conflicts)
    return booked


@dataclass(frozen=True)
class OutOfWindow:
    """A booked next session that the newest recommendation no longer fits, and the first
    free time inside the new window to move it to (None when there is none)."""

    booking: Booking
    earliest: date
    ideal: date
    latest: date
    too_early: bool
    suggestion: pure_slots.Slot | None


def next_session_outside_window(session: Session, client: User | int,
                                now: datetime) -> OutOfWindow | None:
    """After a check-in the window can move: the client's next booked session after the
    recorded one, when it now falls before ``earliest`` or after ``latest``.

    Only the next session is judged: the later planned ones get their windows from it.
    """
    rec = care.current_recommendation(session, client)
    if rec is None or rec.earliest is None or rec.ideal is None or rec.latest is None:
        return None
    recorded = session.get(Booking, rec.booking_id)
    if recorded is None:
        return None
    upcoming = session.scalar(
        select(Booking)
        .where(Booking.client_id == recorded.client_id,
               Booking.status.in_(booking_service.CANCELLABLE),
               Booking.start_at > recorded.end_at, Booking.start_at >= now)
        .order_by(Booking.start_at, Booking.id).limit(1))
    if upcoming is None:
        return None
    tz = clinic_zone(session)
    day = upcoming.start_at.astimezone(tz).date()
    if rec.earliest <= day <= rec.latest:
        return None
    first = max(rec.earliest, now.astimezone(tz).date())
    suggestion = None
    if first <= rec.latest:
        try:
            _, slots = search_slots(session, service_id=upcoming.service_id, date_from=first,
                                    date_to=rec.latest, therapist_id=upcoming.therapist_id,
                                    now=now, exclude_booking_id=upcoming.id)
            suggestion = _pick(slots, tz, rec.ideal)
        except ValidationFailed:
            suggestion = None  # the service or therapist is no longer bookable: no one-click
    return OutOfWindow(booking=upcoming, earliest=rec.earliest, ideal=rec.ideal,
                       latest=rec.latest, too_early=day < rec.earliest, suggestion=suggestion)
