"""Follow-up windows: the recommender's input from the database, the stored answers,
therapist overrides, and booking the next session inside the window.

The rules live in the pure ``clinic_app.scheduling.followup`` module; each answer is stored
as a ``Recommendation`` row (the history is kept; the newest row of a client is current).
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field
from datetime import date
from datetime import datetime
from datetime import timedelta
from typing import Any

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import Session

from clinic_app.errors import Conflict
from clinic_app.errors import ValidationFailed
from clinic_app.models.accounts import User
from clinic_app.models.booking import Booking
from clinic_app.models.care import CheckIn
from clinic_app.models.care import ProblemReport
from clinic_app.models.care import Recommendation
from clinic_app.models.care import SessionRecord
from clinic_app.scheduling import followup
from clinic_app.services.availability import search_slots
from clinic_app.services.care.access import audit_read
from clinic_app.services.care.access import require_booking_therapist
from clinic_app.services.care.access import require_health_access
from clinic_app.services.care.inputs import OverrideIn
from clinic_app.services.care.inputs import parse
from clinic_app.services.care.lookups import checkins_by_booking
from clinic_app.services.care.lookups import current_recommendation
from clinic_app.services.care.lookups import local_date
from clinic_app.services.care.lookups import session_record_for


def followup_params() -> followup.FollowupParams:
    """The rule numbers: the note's defaults, overridable with ``FOLLOWUP_PARAMS`` (a dict)."""
    custom = current_app.config.get("FOLLOWUP_PARAMS") or {}
    return followup.FollowupParams(**custom) if custom else followup.DEFAULT_PARAMS


def _course_history(session: Session, course_id: int) -> list[tuple[SessionRecord, Booking]]:
    return list(session.execute(
        select(SessionRecord, Booking).join(Booking, Booking.id == SessionRecord.booking_id)
        .where(SessionRecord.course_id == course_id)
        .order_by(SessionRecord.session_number)
    ).all())


def followup_input(session: Session, record: SessionRecord) -> followup.FollowupInput:
    """The recommender's input for one recorded session, gathered from the database."""
    booking = record.booking
    history = _course_history(session, record.course_id)
    checkins = checkins_by_booking(session, [b.id for _, b in history])
    day = local_date(session, booking.end_at)
    mine = checkins.get(booking.id, {})
    day1, day3 = mine.get("24h"), mine.get("72h")
    flags: set[str] = set()
    for answer in (day1, day3):
        if answer is not None:
            flags.update(answer.red_flags or [])
    # A problem reported after the session counts exactly like a check-in's red flag.
    for reported in session.scalars(select(ProblemReport.red_flags)
                                    .where(ProblemReport.booking_id == booking.id)):
        flags.update(reported or [])
    # The client's latest answer wins over the therapist's note from the session.
    progress = next((a.progress for a in (day3, day1) if a is not None and a.progress),
                    record.progress)
    previous = tuple(
        (checkins.get(b.id, {}).get("24h").soreness  # type: ignore[union-attr]
         if checkins.get(b.id, {}).get("24h") is not None else None)
        for r, b in history if r.session_number < record.session_number
    )
    injury = record.injury_date if record.goal == "acute" else None
    if injury is not None and injury > day:
        injury = None
    return followup.FollowupInput(
        session_date=day,
        session_number=record.session_number,
        goal=record.goal,
        intensity=record.intensity,
        soreness=day1.soreness if day1 is not None else None,
        still_sore_72h=day3.still_sore if day3 is not None else None,
        red_flags=frozenset(flags),
        progress=progress,
        injury_date=injury,
        previous_soreness=previous,
        weeks_without_improvement=_weeks_without_improvement(
            session, history, checkins, record, day),
    )


def _weeks_without_improvement(session: Session, history: list[tuple[SessionRecord, Booking]],
                               checkins: dict[int, dict[str, CheckIn]], record: SessionRecord,
                               day: date) -> int | None:
    """Weeks since progress was last "better" in this course (since its first session if
    never); None when nobody has said anything about progress yet."""
    answers: list[tuple[date, str]] = []
    first_day: date | None = None
    for r, b in history:
        if r.session_number > record.session_number:
            continue
        when = local_date(session, b.end_at)
        first_day = first_day or when
        if r.progress:
            answers.append((when, r.progress))
        for answer in checkins.get(b.id, {}).values():
            if answer.progress:
                answers.append((local_date(session, answer.submitted_at), answer.progress))
    if not answers or first_day is None:
        return None
    better = [when for when, value in answers if value == "better"]
    since = max(better) if better else first_day
    return max(0, (day - since).days // 7)


def _reasons(rec: followup.Recommendation) -> list[dict[str, str]]:
    return [{"rule": r.rule, "code": r.code, "text": r.text} for r in rec.reasons]


def recommendation_for_booking(session: Session, booking: Booking,
                               now: datetime) -> Recommendation | None:
    """Recompute the rules for a completed booking and store the answer as a new row.

    None when the booking has no session record yet. The new row does not replace a
    therapist's override for the same booking, nor the window of a later session, unless
    the rules now ask for a review or a referral (safety answers always win); the rows
    that are computed are still returned.
    """
    record = session_record_for(session, booking.id)
    if record is None:
        return None
    result = followup.recommend(followup_input(session, record), followup_params())
    row = Recommendation(
        client_id=booking.client_id, booking_id=booking.id, created_at=now,
        earliest=result.earliest, ideal=result.ideal, latest=result.latest,
        action=result.action.value,
        intensity_advice=result.intensity_advice.value if result.intensity_advice else None,
        reasons=_reasons(result), source="rules", override_reason="", author_id=None,
    )
    current = current_recommendation(session, booking.client_id)
    if current is not None and result.action is followup.Action.BOOK:
        if current.booking_id == booking.id and current.source == "override":
            return row  # the therapist's own window stands
        if current.booking_id != booking.id:
            other = session.get(Booking, current.booking_id)
            if other is not None and other.start_at > booking.start_at:
                return row  # a later session's window is the one that counts
    session.add(row)
    session.flush()
    return row


def override_recommendation(session: Session, booking: Booking, *, actor: User, earliest: Any,
                            ideal: Any, latest: Any, reason: Any,
                            now: datetime) -> Recommendation:
    """The booking's therapist (or an admin) sets their own window, with a reason
    (validated by :class:`OverrideIn`: dates in order, within today ± 2 years, the
    earliest not before the session).

    Kept in the history like every other row; it may go below the rules' 48 h floor,
    which is exactly what an override with a reason is for.
    """
    require_booking_therapist(session, actor, booking)
    record = session_record_for(session, booking.id)
    if record is None:
        raise Conflict("Complete the session before setting its follow-up.",
                       code="not_completed")
    given = {"earliest": earliest, "ideal": ideal, "latest": latest, "reason": reason}
    window = parse(OverrideIn, {k: v for k, v in given.items() if v not in (None, "")},
                   message="The window is incomplete or out of order.")
    window.check_bounds(session_day=local_date(session, booking.end_at),
                        today=local_date(session, now))
    first, middle, last, text = window.earliest, window.ideal, window.latest, window.reason
    base = session.scalar(
        select(Recommendation).where(Recommendation.booking_id == booking.id,
                                     Recommendation.source == "rules")
        .order_by(Recommendation.created_at.desc(), Recommendation.id.desc()).limit(1)
    )
    row = Recommendation(
        client_id=booking.client_id, booking_id=booking.id, created_at=now,
        earliest=first, ideal=middle, latest=last, action=followup.Action.BOOK.value,
        intensity_advice=base.intensity_advice if base else None,
        reasons=[{"rule": "override", "code": "therapist_override",
                  "text": f"Set by your therapist: {text}"}],
        source="override", override_reason=text, author_id=actor.id,
    )
    session.add(row)
    session.flush()
    return row


def recommendation_dict(row: Recommendation | None) -> dict[str, Any]:
    """The API's follow-up shape: dates as YYYY-MM-DD in the clinic's zone, null when none."""
    if row is None:
        return {"earliest": None, "ideal": None, "latest": None, "action": None,
                "intensity_advice": None, "reasons": []}
    return {
        "earliest": row.earliest.isoformat() if row.earliest else None,
        "ideal": row.ideal.isoformat() if row.ideal else None,
        "latest": row.latest.isoformat() if row.latest else None,
        "action": row.action,
        "intensity_advice": row.intensity_advice,
        "reasons": list(row.reasons or []),
    }


def followup_for_booking(session: Session, booking: Booking, viewer: User,
                         now: datetime) -> Recommendation | None:
    """The newest recommendation for one booking (audited for staff)."""
    require_health_access(session, viewer, booking.client_id)
    row = session.scalar(
        select(Recommendation).where(Recommendation.booking_id == booking.id)
        .order_by(Recommendation.created_at.desc(), Recommendation.id.desc()).limit(1)
    )
    audit_read(session, viewer, "recommendation", booking.client_id, row.id if row else None, now)
    return row


@dataclass
class NextSessionOptions:
    """The client's window and the slots to offer: same therapist first (R5), then others."""

    recommendation: Recommendation | None
    service_id: int | None = None
    therapist_id: int | None = None
    zone: Any = None
    same_therapist: list[Any] = field(default_factory=list)
    other_therapists: list[Any] = field(default_factory=list)

    @property
    def bookable(self) -> bool:
        rec = self.recommendation
        return rec is not None and rec.action != followup.Action.REFER.value


def next_session_options(session: Session, client: User, now: datetime, *,
                         service_id: int | None = None) -> NextSessionOptions:
    """The current window plus slots inside it: the last session's therapist first, then
    the others. No slots after a referral (the therapist has to clear the client first)."""
    rec = current_recommendation(session, client)
    options = NextSessionOptions(recommendation=rec)
    if rec is None or rec.earliest is None or rec.latest is None:
        return options
    last = session.get(Booking, rec.booking_id)
    options.therapist_id = last.therapist_id if last else None
    options.service_id = service_id or (last.service_id if last else None)
    if options.service_id is None:
        return options
    today = local_date(session, now)
    first = max(rec.earliest, today)
    final = rec.latest if rec.latest >= first else first + timedelta(days=14)
    zone, mine = search_slots(session, service_id=options.service_id, date_from=first,
                              date_to=final, therapist_id=options.therapist_id, now=now)
    _, everyone = search_slots(session, service_id=options.service_id, date_from=first,
                               date_to=final, now=now)
    options.zone = zone
    options.same_therapist = list(mine)
    options.other_therapists = [s for s in everyone
                                if getattr(s, "therapist_id", None) != options.therapist_id]
    return options


def recommended_earliest(session: Session, client: User, start: datetime) -> date | None:
    """The recommended earliest date when a booking at ``start`` would come before it
    (a follow-up of the client's last recorded session), else None. Never raises: staff
    booking on a client's behalf see this as a warning, not a refusal."""
    return earliest_before(session, current_recommendation(session, client), start)


def earliest_before(session: Session, rec: Recommendation | None, start: datetime
                    ) -> date | None:
    """:func:`recommended_earliest` with the client's current recommendation ``rec``
    already read (``lookups.recommendation_and_intake``)."""
    if rec is None or rec.earliest is None:
        return None
    session_booking = session.get(Booking, rec.booking_id)
    if session_booking is not None and start <= session_booking.start_at:
        return None  # a booking before the recorded session is not a follow-up
    return rec.earliest if local_date(session, start) < rec.earliest else None


def check_early_booking(session: Session, client: User, start: datetime, confirmed: bool,
                        now: datetime) -> bool:
    """Check a new booking's start against the client's window.

    Before ``earliest`` needs the client's explicit confirmation (ValidationFailed
    ``before_earliest`` otherwise); returns True when the booking is early and confirmed,
    so that the caller records it (``early_confirmed=True``). After a referral nothing can
    be booked until a therapist sets a new window (ValidationFailed ``see_clinician_first``).
    """
    return check_early_start(session, current_recommendation(session, client), start,
                             confirmed)


def check_early_start(session: Session, rec: Recommendation | None, start: datetime,
                      confirmed: bool) -> bool:
    """:func:`check_early_booking` with the client's current recommendation ``rec``
    already read (``lookups.recommendation_and_intake``)."""
    if rec is None:
        return False
    session_booking = session.get(Booking, rec.booking_id)
    if session_booking is not None and start <= session_booking.start_at:
        return False  # a booking before the recorded session is not a follow-up
    if rec.action == followup.Action.REFER.value:
        raise ValidationFailed(
            "After the symptoms you reported, please see a doctor first; your therapist will "
            "open booking again.", code="see_clinician_first",
            fields={"start": "Booking is paused until your therapist has spoken to you."})
    if rec.earliest is not None and local_date(session, start) < rec.earliest:
        if not confirmed:
            raise ValidationFailed(
                f"Your body needs more recovery time: the recommended earliest date is "
                f"{rec.earliest.isoformat()}. Confirm to book earlier anyway.",
                code="before_earliest",
                fields={"start": f"Earlier than the recommended {rec.earliest.isoformat()}."})
        return True
    return False
