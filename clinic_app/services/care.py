"""Treatment continuity: session records, courses, check-ins, follow-up windows, intake.

The rules live in the pure ``clinic_app.scheduling.followup`` module; this module
gathers their inputs from the database, stores each answer as a ``Recommendation``
row (the history is kept; the newest row of a client is the current one), and
guards the health data: only the client, their treating therapists
(:func:`can_see_health`) and admins see it, everyone else gets NotFound, and every staff read writes
an audit entry (``services.audit``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from datetime import date
from datetime import datetime
from datetime import timedelta
from typing import Any

from flask import current_app
from itsdangerous import BadData
from itsdangerous import URLSafeTimedSerializer
from itsdangerous.timed import TimestampSigner
from sqlalchemy import ColumnElement
from sqlalchemy import and_
from sqlalchemy import exists
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from clinic_app.errors import BadRequest
from clinic_app.errors import Conflict
from clinic_app.errors import NotFound
from clinic_app.errors import ValidationFailed
from clinic_app.mail.outbox import enqueue
from clinic_app.mail.render import render_email
from clinic_app.models.accounts import User
from clinic_app.models.booking import Booking
from clinic_app.models.booking import BookingStatus
from clinic_app.models.care import CheckIn
from clinic_app.models.care import Course
from clinic_app.models.care import Intake
from clinic_app.models.care import Recommendation
from clinic_app.models.care import SessionAmendment
from clinic_app.models.care import SessionRecord
from clinic_app.models.schedule import Therapist
from clinic_app.scheduling import followup
from clinic_app.services import notifications
from clinic_app.services.audit import record_read
from clinic_app.services.booking_access import MAX_ID
from clinic_app.services.booking_access import find_booking
from clinic_app.services.booking_access import is_staff
from clinic_app.services.booking_access import may_see_booking
from clinic_app.services.booking_access import therapist_for_user
from clinic_app.services.settings import clinic_zone

# --- constants ---------------------------------------------------------------------------------

GOALS = tuple(g.value for g in followup.Goal)
PROGRESS = tuple(p.value for p in followup.Progress)
CHECKIN_KINDS = ("24h", "72h")
# When each check-in falls due after the session's end (the note's message schedule).
CHECKIN_DUE = {"24h": timedelta(hours=24), "72h": timedelta(hours=72)}
CHECKIN_LINK_SALT = "clinic.check-in.v1"
CHECKIN_TOKEN_MAX_AGE = timedelta(days=7)
EDIT_WINDOW = timedelta(hours=24)
LIST_MAX_ITEMS = 30
LIST_ITEM_MAX = 80
NOTES_MAX = 5000
REASON_MAX = 1000
INTAKE_TEXT_MAX = 2000
# Red-flag check-ins stay in the therapist's review queue this long.
REVIEW_RED_FLAG_DAYS = 14
SEEK_CARE_TEXT = (
    "Some of what you reported can be a sign of something that needs a doctor. Please contact "
    "your doctor (GP) today, or call NHS 111. If you have chest pain, sudden breathlessness, or "
    "new numbness in the groin or saddle area or trouble controlling your bladder or bowel, "
    "call 999 or go to the nearest emergency department now. Do not book another massage until "
    "a clinician has seen you; your therapist has been told and will contact you."
)
STAFF_ROLES = ("therapist", "admin")


# --- access and audit --------------------------------------------------------------------------


def _treating_clause(therapist_id: int) -> ColumnElement[bool]:
    """Bookings that make ``therapist_id`` the client's treating therapist.

    A completed session, or a booking that is not cancelled and that the client or an
    admin made (a therapist booking a stranger must not gain access by it). ``booked_by``
    is empty only for rows written outside the booking service (imports, set-up): those
    count as the client's own.
    """
    admins = select(User.id).where(User.role == "admin").scalar_subquery()
    made_by_client_or_admin = or_(Booking.booked_by_id.is_(None),
                                  Booking.booked_by_id == Booking.client_id,
                                  Booking.booked_by_id.in_(admins))
    return and_(
        Booking.therapist_id == therapist_id,
        or_(Booking.status == BookingStatus.COMPLETED.value,
            and_(Booking.status != BookingStatus.CANCELLED.value, made_by_client_or_admin)),
    )


def treated_client_ids(session: Session, therapist_id: int,
                       client_ids: Iterable[int]) -> set[int]:
    """Which of ``client_ids`` the therapist treats (one query, for lists like the week)."""
    wanted = set(client_ids)
    if not wanted:
        return set()
    return set(session.scalars(
        select(Booking.client_id).where(Booking.client_id.in_(wanted),
                                        _treating_clause(therapist_id)).distinct()
    ))


def is_treating_therapist(session: Session, therapist_id: int, client_id: int) -> bool:
    """True while the therapist is the client's treating therapist (see _treating_clause)."""
    return bool(session.scalar(select(exists().where(Booking.client_id == client_id,
                                                     _treating_clause(therapist_id)))))


def can_see_health(session: Session, viewer: User, client_id: int) -> bool:
    """THE health-data rule: the client themself, an admin, or a treating therapist."""
    if viewer.role == "admin":
        return True
    if viewer.role == "client":
        return viewer.id == client_id
    therapist = therapist_for_user(session, viewer)
    return therapist is not None and is_treating_therapist(session, therapist.id, client_id)


def require_health_access(session: Session, viewer: User, client_id: int) -> None:
    """NotFound unless ``viewer`` may see ``client_id``'s health data (no existence leak)."""
    if not can_see_health(session, viewer, client_id):
        raise NotFound("Not found.")


def _is_booking_therapist(session: Session, user: User, booking: Booking) -> bool:
    return user.role == "therapist" and may_see_booking(session, booking, user)


def _require_booking_therapist(session: Session, actor: User, booking: Booking) -> None:
    """Only the booking's own therapist (or an admin) writes its clinical records: the
    booking access rule, for staff."""
    if is_staff(actor) and may_see_booking(session, booking, actor):
        return
    raise NotFound("Not found.")


def booking_for_health(session: Session, booking_id: int, viewer: User) -> Booking:
    """A booking whose health data ``viewer`` may see (THE health rule on its client), with
    the id guard of the booking rule. Anything else is NotFound."""
    booking = find_booking(session, booking_id)
    if booking is None or not can_see_health(session, viewer, booking.client_id):
        raise NotFound("Not found.")
    return booking


def _audit(session: Session, viewer: User, what: str, client_id: int, subject_id: int | None,
           now: datetime) -> None:
    record_read(session, viewer, f"read:{what}", client_id, what, subject_id, now)


def get_client(session: Session, client_id: int, viewer: User) -> User:
    """A client account ``viewer`` may see the health data of (else NotFound)."""
    client = session.get(User, client_id) if 0 < client_id <= MAX_ID else None
    if client is None or client.role != "client":
        raise NotFound("Not found.")
    require_health_access(session, viewer, client.id)
    return client


# --- small validators --------------------------------------------------------------------------


def _as_int(value: Any, name: str, errors: dict[str, str], *, required: bool,
            lo: int = 0, hi: int = 10) -> int | None:
    if value is None or value == "":
        if required:
            errors[name] = f"Enter a number from {lo} to {hi}."
        return None
    if isinstance(value, bool):
        errors[name] = f"Enter a number from {lo} to {hi}."
        return None
    if isinstance(value, str):
        if not re.fullmatch(r"\s*-?\d{1,3}\s*", value):
            errors[name] = f"Enter a number from {lo} to {hi}."
            return None
        value = int(value)
    if not isinstance(value, int) or not lo <= value <= hi:
        errors[name] = f"Enter a number from {lo} to {hi}."
        return None
    return value


def _as_choice(value: Any, name: str, choices: tuple[str, ...], errors: dict[str, str], *,
               required: bool) -> str | None:
    if value is None or value == "":
        if required:
            errors[name] = f"Choose one of: {', '.join(choices)}."
        return None
    if not isinstance(value, str) or value not in choices:
        errors[name] = f"Choose one of: {', '.join(choices)}."
        return None
    return value


def _as_date(value: Any, name: str, errors: dict[str, str]) -> date | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        errors[name] = "Enter a date (YYYY-MM-DD)."
        return None
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    errors[name] = "Enter a date (YYYY-MM-DD)."
    return None


def _as_list(value: Any, name: str, errors: dict[str, str]) -> list[str]:
    """A list of short labels; a string is split on commas and new lines (form input)."""
    if value is None or value == "":
        return []
    if isinstance(value, str):
        value = re.split(r"[,\n]", value)
    if not isinstance(value, (list, tuple)):
        errors[name] = "Send a list of short texts."
        return []
    out: list[str] = []
    for item in value:
        if not isinstance(item, str):
            errors[name] = "Send a list of short texts."
            return []
        item = " ".join(item.split())
        if not item:
            continue
        if len(item) > LIST_ITEM_MAX:
            errors[name] = f"Each entry must be at most {LIST_ITEM_MAX} characters."
            return []
        if item not in out:
            out.append(item)
    if len(out) > LIST_MAX_ITEMS:
        errors[name] = f"At most {LIST_MAX_ITEMS} entries."
        return []
    return out


def _as_text(value: Any, name: str, errors: dict[str, str], limit: int) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        errors[name] = "Send text."
        return ""
    value = value.strip()
    if len(value) > limit:
        errors[name] = f"At most {limit} characters."
        return ""
    return value


def _red_flags(value: Any, errors: dict[str, str], name: str = "red_flags") -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, str) or not isinstance(value, Iterable):
        errors[name] = "Send a list of red flag codes."
        return []
    flags: list[str] = []
    for code in value:
        if not isinstance(code, str) or code not in followup.RED_FLAGS:
            errors[name] = f"Unknown red flag; known: {', '.join(followup.RED_FLAGS)}."
            return []
        if code not in flags:
            flags.append(code)
    # Stored in the checklist's order, so the alert and the page read the same.
    return [code for code in followup.RED_FLAGS if code in flags]


def local_date(session: Session, moment: datetime) -> date:
    """The calendar date of ``moment`` in the clinic's zone."""
    return moment.astimezone(clinic_zone(session)).date()


# --- courses and session records ----------------------------------------------------------------

RECORD_FIELDS = ("regions", "muscles", "techniques", "intensity", "notes", "goal",
                 "injury_date", "progress")


def current_course(session: Session, client_id: int) -> Course | None:
    """The client's newest course of treatment, if any."""
    return session.scalar(
        select(Course).where(Course.client_id == client_id)
        .order_by(Course.started_at.desc(), Course.id.desc()).limit(1)
    )


def start_new_course(session: Session, client: User, actor: User, now: datetime, goal: str,
                     injury_date: date | str | None = None) -> Course:
    """A therapist (of this client) or an admin starts a new course: numbering restarts at 1."""
    if actor.role not in STAFF_ROLES:
        raise NotFound("Not found.")
    require_health_access(session, actor, client.id)
    errors: dict[str, str] = {}
    goal_value = _as_choice(goal, "goal", GOALS, errors, required=True)
    injury = _as_date(injury_date, "injury_date", errors)
    if injury is not None and injury > local_date(session, now):
        errors["injury_date"] = "The injury date cannot be in the future."
    if errors:
        raise ValidationFailed("Some fields are missing or invalid.", fields=errors)
    course = Course(client_id=client.id, started_at=now, started_by_id=actor.id,
                    goal=goal_value or "chronic",
                    injury_date=injury if goal_value == "acute" else None)
    session.add(course)
    session.flush()
    return course


def _clean_record(raw: Mapping[str, Any], *, default_goal: str | None,
                  session_day: date) -> dict[str, Any]:
    """Validate a session record; every problem is reported next to its field."""
    if not isinstance(raw, Mapping):
        raise ValidationFailed("Send the session record as an object.")
    errors: dict[str, str] = {}
    unknown = sorted(set(raw) - set(RECORD_FIELDS))
    for name in unknown:
        errors[str(name)] = "Unknown field."
    out: dict[str, Any] = {
        "regions": _as_list(raw.get("regions"), "regions", errors),
        "muscles": _as_list(raw.get("muscles"), "muscles", errors),
        "techniques": _as_list(raw.get("techniques"), "techniques", errors),
        "intensity": _as_int(raw.get("intensity"), "intensity", errors, required=True),
        "notes": _as_text(raw.get("notes"), "notes", errors, NOTES_MAX),
        "progress": _as_choice(raw.get("progress"), "progress", PROGRESS, errors,
                               required=False),
    }
    goal = raw.get("goal") or default_goal
    out["goal"] = _as_choice(goal, "goal", GOALS, errors, required=True)
    injury = _as_date(raw.get("injury_date"), "injury_date", errors)
    if injury is not None and injury > session_day:
        errors["injury_date"] = "The injury date cannot be after the session."
    # An injury date only matters for an acute goal (R0 protection); otherwise it is dropped.
    out["injury_date"] = injury if out["goal"] == "acute" else None
    if errors:
        raise ValidationFailed("Some fields of the session record are missing or invalid.",
                               fields=errors)
    return out


def session_record_for(session: Session, booking_id: int) -> SessionRecord | None:
    """The record of a booking, without any access check (internal use)."""
    return session.scalar(select(SessionRecord).where(SessionRecord.booking_id == booking_id))


def complete_session(session: Session, booking: Booking, *, actor: User, now: datetime,
                     record: Mapping[str, Any]) -> SessionRecord:
    """The booking's therapist (or an admin) completes it with the session record.

    Conflict ``not_started`` before the booking's start, ``not_completable`` unless it is
    booked. The session is numbered within the client's current course (a course is
    started if there is none), the recommendation recomputed and the completion emails
    planned (``notifications.booking_completed``).
    """
    _require_booking_therapist(session, actor, booking)
    # Lock and re-read: two completions of one booking must not both write a record.
    session.refresh(booking, with_for_update=True)
    if now < booking.start_at:
        raise Conflict("The session has not started yet.", code="not_started")
    booking.require("complete")
    course = current_course(session, booking.client_id)
    clean = _clean_record(record, default_goal=course.goal if course else None,
                          session_day=local_date(session, booking.start_at))
    if course is None:
        course = Course(client_id=booking.client_id, started_at=now, started_by_id=actor.id,
                        goal=clean["goal"], injury_date=clean["injury_date"])
        session.add(course)
        session.flush()
    number = len(session.scalars(
        select(SessionRecord.id).where(SessionRecord.course_id == course.id)
    ).all()) + 1
    row = SessionRecord(booking_id=booking.id, course_id=course.id, session_number=number,
                        author_id=actor.id, created_at=now, updated_at=now, **clean)
    session.add(row)
    booking.complete(now)
    session.flush()
    recommendation_for_booking(session, booking, now)
    notifications.booking_completed(session, booking, now)
    return row


def edit_session_record(session: Session, record: SessionRecord, *, actor: User, now: datetime,
                        changes: Mapping[str, Any]) -> SessionRecord:
    """Its author changes a record within 24 h of writing it (Conflict
    ``edit_window_closed`` afterwards: append an amendment instead)."""
    if actor.id != record.author_id:
        raise NotFound("Not found.")
    if now - record.created_at > EDIT_WINDOW:
        raise Conflict("Records can be edited for 24 hours; add an amendment instead.",
                       code="edit_window_closed")
    merged = {name: getattr(record, name) for name in RECORD_FIELDS}
    merged.update(changes)
    booking = record.booking
    clean = _clean_record(merged, default_goal=None,
                          session_day=local_date(session, booking.start_at))
    for name, value in clean.items():
        setattr(record, name, value)
    record.updated_at = now
    session.flush()
    recommendation_for_booking(session, booking, now)
    return record


def amend_session_record(session: Session, record: SessionRecord, *, actor: User,
                         now: datetime, text: str) -> SessionAmendment:
    """Append an amendment (its time and author kept); the record itself never changes."""
    booking = record.booking
    if not (actor.id == record.author_id or actor.role == "admin"
            or _is_booking_therapist(session, actor, booking)):
        raise NotFound("Not found.")
    errors: dict[str, str] = {}
    clean = _as_text(text, "text", errors, NOTES_MAX)
    if not errors and not clean:
        errors["text"] = "Write the amendment."
    if errors:
        raise ValidationFailed("The amendment is missing or too long.", fields=errors)
    amendment = SessionAmendment(session_record_id=record.id, author_id=actor.id,
                                 created_at=now, text=clean)
    session.add(amendment)
    session.flush()
    session.refresh(record, ["amendments"])
    return amendment


def get_session_record(session: Session, booking: Booking, viewer: User,
                       now: datetime) -> SessionRecord | None:
    """A booking's record for someone allowed to see it; staff reads are audited."""
    require_health_access(session, viewer, booking.client_id)
    row = session_record_for(session, booking.id)
    if row is not None:
        _audit(session, viewer, "session_record", booking.client_id, row.id, now)
    return row


# --- check-ins ---------------------------------------------------------------------------------


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


def checkin_for(session: Session, booking_id: int, kind: str) -> CheckIn | None:
    """The stored answer to one check-in, if any (internal use)."""
    return session.scalar(
        select(CheckIn).where(CheckIn.booking_id == booking_id, CheckIn.kind == kind)
    )


def submit_checkin(session: Session, booking: Booking, *, kind: str = "24h",
                   soreness: Any = None, red_flags: Any = None, progress: Any = None,
                   still_sore: Any = None, now: datetime) -> CheckIn:
    """Store the client's check-in (once per booking and kind: Conflict
    ``already_submitted`` after that).

    The 24 h check-in needs soreness 0-10; the 72 h one needs "still sore?". A red flag
    alerts the booking's therapist by email at once. The recommendation is recomputed.
    """
    errors: dict[str, str] = {}
    if kind not in CHECKIN_KINDS:
        raise ValidationFailed("Unknown check-in.", fields={"kind": "Use 24h or 72h."})
    if booking.status not in (BookingStatus.BOOKED.value, BookingStatus.COMPLETED.value):
        raise Conflict("There is no session to check in about.", code="not_checkinable")
    if now < booking.start_at:
        raise Conflict("The session has not taken place yet.", code="not_started")
    if checkin_for(session, booking.id, kind) is not None:
        raise Conflict("We already have your answers for this check-in. Thank you!",
                       code="already_submitted")
    rating = _as_int(soreness, "soreness", errors, required=(kind == "24h"))
    flags = _red_flags(red_flags, errors)
    progress_value = _as_choice(progress, "progress", PROGRESS, errors, required=False)
    sore: bool | None = None
    if kind == "72h":
        if not isinstance(still_sore, bool):
            errors["still_sore"] = "Tell us whether you are still sore."
        else:
            sore = still_sore
    if errors:
        raise ValidationFailed("Some answers are missing or invalid.", fields=errors)
    row = CheckIn(booking_id=booking.id, kind=kind, soreness=rating, red_flags=flags,
                  progress=progress_value, still_sore=sore, submitted_at=now)
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
    """Email the therapist at once. The email names no symptom (email is not a safe place
    for health data); the review queue, behind a login, shows them."""
    therapist_user = booking.therapist.user
    message = render_email("red_flag_alert", therapist_user.email, booking=booking,
                           client=booking.client, therapist=therapist_user, kind=checkin.kind,
                           count=len(checkin.red_flags),
                           session_day=local_date(session, booking.start_at))
    enqueue(session, key=f"booking:{booking.id}:red-flag:{checkin.kind}", kind="red_flag_alert",
            message=message, now=now, booking_id=booking.id, user_id=therapist_user.id,
            essential=True)


def checkins_for_booking(session: Session, booking: Booking, viewer: User,
                         now: datetime) -> list[CheckIn]:
    """A booking's check-ins for someone allowed to see them; staff reads are audited."""
    require_health_access(session, viewer, booking.client_id)
    rows = list(session.scalars(
        select(CheckIn).where(CheckIn.booking_id == booking.id).order_by(CheckIn.submitted_at)
    ))
    _audit(session, viewer, "check_ins", booking.client_id, booking.id, now)
    return rows


def red_flag_labels(codes: Iterable[str]) -> list[str]:
    """The client-facing labels of red flag codes, in the checklist's order."""
    wanted = set(codes)
    return [label for code, label in followup.RED_FLAGS.items() if code in wanted]


# --- recommendations ---------------------------------------------------------------------------


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


def _checkins_by_booking(session: Session, booking_ids: list[int]) -> dict[int, dict[str, CheckIn]]:
    out: dict[int, dict[str, CheckIn]] = {}
    if not booking_ids:
        return out
    for row in session.scalars(select(CheckIn).where(CheckIn.booking_id.in_(booking_ids))):
        out.setdefault(row.booking_id, {})[row.kind] = row
    return out


def followup_input(session: Session, record: SessionRecord) -> followup.FollowupInput:
    """The recommender's input for one recorded session, gathered from the database."""
    booking = record.booking
    history = _course_history(session, record.course_id)
    checkins = _checkins_by_booking(session, [b.id for _, b in history])
    day = local_date(session, booking.end_at)
    mine = checkins.get(booking.id, {})
    day1, day3 = mine.get("24h"), mine.get("72h")
    flags: set[str] = set()
    for answer in (day1, day3):
        if answer is not None:
            flags.update(answer.red_flags or [])
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


def current_recommendation(session: Session, client: User | int) -> Recommendation | None:
    """The client's current follow-up window: their newest recommendation row."""
    client_id = client if isinstance(client, int) else client.id
    return session.scalar(
        select(Recommendation).where(Recommendation.client_id == client_id)
        .order_by(Recommendation.created_at.desc(), Recommendation.id.desc()).limit(1)
    )


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
    """The booking's therapist (or an admin) sets their own window, with a reason.

    Kept in the history like every other row; it may go below the rules' 48 h floor,
    which is exactly what an override with a reason is for.
    """
    _require_booking_therapist(session, actor, booking)
    record = session_record_for(session, booking.id)
    if record is None:
        raise Conflict("Complete the session before setting its follow-up.",
                       code="not_completed")
    errors: dict[str, str] = {}
    first = _as_date(earliest, "earliest", errors)
    middle = _as_date(ideal, "ideal", errors)
    last = _as_date(latest, "latest", errors)
    for name, value in (("earliest", first), ("ideal", middle), ("latest", last)):
        if value is None and name not in errors:
            errors[name] = "Enter a date (YYYY-MM-DD)."
    text = _as_text(reason, "reason", errors, REASON_MAX)
    if not text and "reason" not in errors:
        errors["reason"] = "Say why you set this window."
    session_day = local_date(session, booking.end_at)
    if first and first < session_day:
        errors["earliest"] = "The window cannot start before the session."
    if first and middle and middle < first:
        errors["ideal"] = "The ideal date must not be before the earliest."
    if middle and last and last < middle:
        errors["latest"] = "The latest date must not be before the ideal."
    if errors:
        raise ValidationFailed("The window is incomplete or out of order.", fields=errors)
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


def recommendation_history(session: Session, client_id: int) -> list[Recommendation]:
    """All recommendation rows of a client, oldest first."""
    return list(session.scalars(
        select(Recommendation).where(Recommendation.client_id == client_id)
        .order_by(Recommendation.created_at, Recommendation.id)
    ))


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
    _audit(session, viewer, "recommendation", booking.client_id, row.id if row else None, now)
    return row


# --- booking the next session ------------------------------------------------------------------


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
    from clinic_app.services.availability import search_slots

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


def check_early_booking(session: Session, client: User, start: datetime, confirmed: bool,
                        now: datetime) -> bool:
    """Check a new booking's start against the client's window.

    Before ``earliest`` needs the client's explicit confirmation (ValidationFailed
    ``before_earliest`` otherwise); returns True when the booking is early and confirmed,
    so that the caller records it (``early_confirmed=True``). After a referral nothing can
    be booked until a therapist sets a new window (ValidationFailed ``see_clinician_first``).
    """
    rec = current_recommendation(session, client)
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


# --- intake ------------------------------------------------------------------------------------

FLAG_CONFIRM_FIRST = "confirm_first"
FLAG_LIGHT_PRESSURE = "light_pressure"
FLAG_AVOID_AREA = "avoid_area"
FLAG_PREGNANCY = "pregnancy"
FLAG_LABELS = {
    FLAG_CONFIRM_FIRST: "Confirm first: known or suspected blood clot (DVT)",
    FLAG_LIGHT_PRESSURE: "Light pressure only",
    FLAG_AVOID_AREA: "Avoid the affected area",
    FLAG_PREGNANCY: "Pregnancy: therapist trained for it",
}

# The screening from the note (flags for the therapist, not refusals; only "confirm
# first" holds self-booking until a therapist confirms). kind: yesno or text.
INTAKE_QUESTIONS: list[dict[str, str | None]] = [
    {"code": "blood_clot", "kind": "yesno", "flag": FLAG_CONFIRM_FIRST,
     "label": "Have you ever had, or been told you might have, a deep vein thrombosis (DVT) "
              "or another blood clot?"},
    {"code": "anticoagulants", "kind": "yesno", "flag": FLAG_LIGHT_PRESSURE,
     "label": "Do you take blood thinners (anticoagulants such as warfarin, apixaban or "
              "rivaroxaban)?"},
    {"code": "bleeding_disorder", "kind": "yesno", "flag": FLAG_LIGHT_PRESSURE,
     "label": "Do you have a bleeding disorder (for example haemophilia)?"},
    {"code": "low_platelets", "kind": "yesno", "flag": FLAG_LIGHT_PRESSURE,
     "label": "Have you been told you have low platelets?"},
    {"code": "fever", "kind": "yesno", "flag": FLAG_AVOID_AREA,
     "label": "Do you have a fever or feel unwell at the moment?"},
    {"code": "acute_injury", "kind": "yesno", "flag": FLAG_AVOID_AREA,
     "label": "Have you injured yourself in the last six weeks (a sprain, strain or blow)?"},
    {"code": "open_wounds", "kind": "yesno", "flag": FLAG_AVOID_AREA,
     "label": "Do you have open wounds, burns or a skin infection?"},
    {"code": "recent_fracture_surgery", "kind": "yesno", "flag": FLAG_AVOID_AREA,
     "label": "Have you had a broken bone or an operation in the last three months?"},
    {"code": "osteoporosis", "kind": "yesno", "flag": FLAG_AVOID_AREA,
     "label": "Do you have severe osteoporosis (fragile bones)?"},
    {"code": "tumour", "kind": "yesno", "flag": FLAG_AVOID_AREA,
     "label": "Do you have a tumour, or are you being treated for cancer?"},
    {"code": "pregnant", "kind": "yesno", "flag": FLAG_PREGNANCY,
     "label": "Are you pregnant?"},
    {"code": "details", "kind": "text", "flag": None,
     "label": "Anything else your therapist should know (where it hurts, areas to avoid, "
              "conditions, medication)?"},
]
_QUESTIONS = {q["code"]: q for q in INTAKE_QUESTIONS}
_YES = {"y", "yes", "true", "on", "1"}
_NO = {"n", "no", "false", "off", "0", ""}


def screening_flags(answers: Mapping[str, Any]) -> list[str]:
    """The flags a set of (clean) answers raises, in a fixed order."""
    raised = {q["flag"] for q in INTAKE_QUESTIONS
              if q["kind"] == "yesno" and q["flag"] and answers.get(str(q["code"])) is True}
    return [flag for flag in FLAG_LABELS if flag in raised]


def _clean_answers(answers: Any) -> dict[str, Any]:
    if not isinstance(answers, Mapping):
        raise ValidationFailed("Send the answers as an object.")
    errors: dict[str, str] = {}
    clean: dict[str, Any] = {}
    for name in answers:
        if name not in _QUESTIONS:
            errors[str(name)] = "Unknown question."
    for q in INTAKE_QUESTIONS:
        code = str(q["code"])
        value = answers.get(code)
        if q["kind"] == "yesno":
            if isinstance(value, str) and value.strip().lower() in _YES | _NO:
                value = value.strip().lower() in _YES
            if value is None:
                value = False  # an unanswered question counts as "no"
            if not isinstance(value, bool):
                errors[code] = "Answer yes or no."
                continue
            clean[code] = value
        else:
            clean[code] = _as_text(value, code, errors, INTAKE_TEXT_MAX)
    if errors:
        raise ValidationFailed("Some answers are invalid.", fields=errors)
    return clean


def intake_for(session: Session, client_id: int) -> Intake | None:
    """A client's intake row (internal use, no audit)."""
    return session.scalar(select(Intake).where(Intake.client_id == client_id))


def save_intake(session: Session, client: User, answers: Mapping[str, Any],
                now: datetime) -> Intake:
    """The client saves their intake; the screening flags are derived from the answers.

    A new "confirm first" answer needs a therapist's confirmation again; a therapist's
    earlier confirmation stays valid while that answer does not change.
    """
    if client.role != "client":
        raise NotFound("Not found.")
    clean = _clean_answers(answers)
    flags = screening_flags(clean)
    row = intake_for(session, client.id)
    if row is None:
        row = Intake(client_id=client.id, answers={}, flags=[], updated_at=now)
        session.add(row)
    newly_confirm_first = (FLAG_CONFIRM_FIRST in flags
                           and FLAG_CONFIRM_FIRST not in (row.flags or []))
    if newly_confirm_first or FLAG_CONFIRM_FIRST not in flags:
        row.confirmed_by_id = None
        row.confirmed_at = None
    row.answers = clean
    row.flags = flags
    row.updated_at = now
    session.flush()
    return row


def get_intake(session: Session, client: User, viewer: User, now: datetime) -> Intake | None:
    """The intake of ``client`` for someone allowed to see it; staff reads are audited."""
    require_health_access(session, viewer, client.id)
    row = intake_for(session, client.id)
    _audit(session, viewer, "intake", client.id, row.id if row else None, now)
    return row


def needs_confirmation(session: Session, client_id: int) -> bool:
    """True while a "confirm first" flag waits for a therapist."""
    row = intake_for(session, client_id)
    return bool(row and FLAG_CONFIRM_FIRST in (row.flags or []) and row.confirmed_at is None)


def initial_status_for(session: Session, client: User) -> str:
    """The status of a client's new booking: ``pending`` while a "confirm first" intake
    flag waits for a therapist, otherwise ``booked``. (Called by booking's hook.)"""
    if needs_confirmation(session, client.id):
        return BookingStatus.PENDING.value
    return BookingStatus.BOOKED.value


def confirm_intake(session: Session, client: User, actor: User, now: datetime) -> Intake:
    """A treating therapist of the client (or an admin) confirms a "confirm first" intake.

    Only the intake row changes here; ``services.booking.confirm_pending`` calls this and
    then confirms the client's pending bookings (care never changes a booking's status
    except by completing it). Conflict ``nothing_to_confirm`` without that flag."""
    if actor.role not in STAFF_ROLES:
        raise NotFound("Not found.")
    require_health_access(session, actor, client.id)
    row = intake_for(session, client.id)
    if row is None or FLAG_CONFIRM_FIRST not in (row.flags or []):
        raise Conflict("This client's intake needs no confirmation.", code="nothing_to_confirm")
    if row.confirmed_at is None:
        row.confirmed_at = now
        row.confirmed_by_id = actor.id
    session.flush()
    return row


# --- therapist views ---------------------------------------------------------------------------


@dataclass
class ReviewItem:
    """One thing waiting for the therapist: kind is refer, therapist_review, red_flag or
    confirm_first."""

    kind: str
    client: User
    booking: Booking
    at: datetime
    recommendation: Recommendation | None = None
    checkin: CheckIn | None = None
    labels: list[str] = field(default_factory=list)


def review_queue(session: Session, therapist: Therapist | User, now: datetime) -> list[ReviewItem]:
    """What needs the therapist: current review/refer recommendations from their sessions,
    recent red-flag check-ins and pending "confirm first" bookings. Urgent first."""
    if isinstance(therapist, User):
        found = therapist_for_user(session, therapist) if therapist.role == "therapist" else None
        if found is None:
            raise NotFound("Not found.")
        therapist = found
    items: list[ReviewItem] = []
    client_ids = set(session.scalars(
        select(Booking.client_id).where(Booking.therapist_id == therapist.id).distinct()
    ))
    for client_id in sorted(client_ids):
        rec = current_recommendation(session, client_id)
        if rec is None or rec.action not in ("refer", "therapist_review"):
            continue
        booking = session.get(Booking, rec.booking_id)
        if booking is None or booking.therapist_id != therapist.id:
            continue
        items.append(ReviewItem(kind=rec.action, client=booking.client, booking=booking,
                                at=rec.created_at, recommendation=rec))
    since = now - timedelta(days=REVIEW_RED_FLAG_DAYS)
    for checkin, booking in session.execute(
        select(CheckIn, Booking).join(Booking, Booking.id == CheckIn.booking_id)
        .where(Booking.therapist_id == therapist.id, CheckIn.submitted_at >= since)
        .order_by(CheckIn.submitted_at.desc())
    ).all():
        if checkin.red_flags:
            items.append(ReviewItem(kind="red_flag", client=booking.client, booking=booking,
                                    at=checkin.submitted_at, checkin=checkin,
                                    labels=red_flag_labels(checkin.red_flags)))
    for booking in session.scalars(
        select(Booking).where(Booking.therapist_id == therapist.id,
                              Booking.status == BookingStatus.PENDING.value,
                              Booking.end_at > now)
        .order_by(Booking.start_at)
    ):
        if needs_confirmation(session, booking.client_id):
            items.append(ReviewItem(kind="confirm_first", client=booking.client,
                                    booking=booking, at=booking.created_at,
                                    labels=[FLAG_LABELS[FLAG_CONFIRM_FIRST]]))
    order = {"red_flag": 0, "refer": 1, "confirm_first": 2, "therapist_review": 3}
    items.sort(key=lambda i: (order[i.kind], -i.at.timestamp()))
    user = therapist.user
    for client_id in sorted({i.client.id for i in items}):
        record_read(session, user, "read:review_queue", client_id, "review_queue", None, now)
    return items


@dataclass
class Timeline:
    """A client's treatment history for the therapist's page (helper pages draw it)."""

    client: User
    courses: list[dict[str, Any]]
    sessions: list[dict[str, Any]]
    soreness: list[dict[str, Any]]
    recommendations: list[dict[str, Any]]
    intake_flags: list[str]
    current: dict[str, Any]


def client_timeline(session: Session, client: User, viewer: User, now: datetime) -> Timeline:
    """Sessions (with intensity and amendments), the soreness series, every recommendation
    and the intake flags. NotFound for anyone who may not see the client; staff reads are
    audited."""
    require_health_access(session, viewer, client.id)
    zone = clinic_zone(session)
    courses = list(session.scalars(
        select(Course).where(Course.client_id == client.id).order_by(Course.started_at)
    ))
    rows = list(session.execute(
        select(SessionRecord, Booking).join(Booking, Booking.id == SessionRecord.booking_id)
        .where(Booking.client_id == client.id).order_by(Booking.start_at)
    ).all())
    checkins = _checkins_by_booking(session, [b.id for _, b in rows])
    sessions: list[dict[str, Any]] = []
    soreness: list[dict[str, Any]] = []
    for record, booking in rows:
        answers = checkins.get(booking.id, {})
        day1, day3 = answers.get("24h"), answers.get("72h")
        sessions.append({
            "booking_id": booking.id, "record_id": record.id, "course_id": record.course_id,
            "date": booking.start_at.astimezone(zone).date(), "start_at": booking.start_at,
            "therapist": booking.therapist.name, "session_number": record.session_number,
            "intensity": record.intensity, "goal": record.goal,
            "injury_date": record.injury_date, "progress": record.progress,
            "regions": list(record.regions or []), "muscles": list(record.muscles or []),
            "techniques": list(record.techniques or []), "notes": record.notes,
            "author_id": record.author_id, "created_at": record.created_at,
            "editable_until": record.created_at + EDIT_WINDOW,
            "amendments": [{"at": a.created_at, "author_id": a.author_id, "text": a.text}
                           for a in record.amendments],
            "soreness": day1.soreness if day1 else None,
            "still_sore": day3.still_sore if day3 else None,
            "red_flags": red_flag_labels(
                [*(day1.red_flags if day1 else []), *(day3.red_flags if day3 else [])]),
        })
        if day1 is not None and day1.soreness is not None:
            soreness.append({"date": booking.start_at.astimezone(zone).date(),
                             "booking_id": booking.id, "soreness": day1.soreness,
                             "intensity": record.intensity,
                             "session_number": record.session_number})
    recs = [{"id": r.id, "booking_id": r.booking_id, "created_at": r.created_at,
             "source": r.source, "author_id": r.author_id,
             "override_reason": r.override_reason, **recommendation_dict(r)}
            for r in recommendation_history(session, client.id)]
    intake = intake_for(session, client.id)
    _audit(session, viewer, "timeline", client.id, None, now)
    return Timeline(
        client=client,
        courses=[{"id": c.id, "started_at": c.started_at, "goal": c.goal,
                  "injury_date": c.injury_date} for c in courses],
        sessions=sessions,
        soreness=soreness,
        recommendations=recs,
        intake_flags=list(intake.flags or []) if intake else [],
        current=recs[-1] if recs else recommendation_dict(None),
    )
