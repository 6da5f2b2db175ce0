"""Waitlist use cases: join, change, leave, list, expire (issue 13, item 1).

Who may join is the booking rule, not a copy of it: a client who could not book now (after a
referral, ``care.check_early_booking`` refuses with ``see_clinician_first``) cannot join, and
neither can a client awaiting a therapist's review (the recommendation says
``therapist_review``, or the intake's "confirm first" makes every new booking ``pending``).
Staff join for a client exactly when they may book for them (``booking.may_book_for``).

Entries expire at the end of their range: :func:`expire_entries` (the worker) marks them, and
every read ignores an entry whose range has ended even before that runs.

Services never commit: the caller does.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from datetime import datetime
from datetime import time
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.orm import Session

from clinic_app.errors import NotFound
from clinic_app.errors import ValidationFailed
from clinic_app.models.accounts import Role
from clinic_app.models.accounts import User
from clinic_app.models.booking import MAX_ID
from clinic_app.models.booking import BookingStatus
from clinic_app.models.care import Recommendation
from clinic_app.models.waitlist import WaitlistEntry
from clinic_app.models.waitlist import WaitlistStatus
from clinic_app.scheduling import followup
from clinic_app.scheduling import waitlist as pure
from clinic_app.services import booking as booking_service
from clinic_app.services import care
from clinic_app.services.availability import bookable_service
from clinic_app.services.booking_access import is_staff
from clinic_app.services.settings import clinic_zone
from clinic_app.services.settings import get_settings

__all__ = [
    "candidates_for_freed_slot",
    "entries_for",
    "expire_entries",
    "get_entry_for",
    "join",
    "leave",
    "leave_all",
    "ranking_entries",
    "require_may_wait",
    "status_of",
    "update_entry",
]


def _today(session: Session, now: datetime) -> date:
    return now.astimezone(clinic_zone(session)).date()


def _parts(values: Iterable[str]) -> list[str]:
    """Parts of the day as stored: known values only, in the day's order, no duplicates."""
    wanted = set(values)
    unknown = sorted(wanted - {p.value for p in pure.PartOfDay})
    if unknown:
        raise ValidationFailed(
            "Parts of the day are morning, afternoon and evening.",
            fields={"parts_of_day": f"Unknown: {', '.join(unknown)}."},
        )
    return [p.value for p in pure.PartOfDay if p.value in wanted]


def _check_range(session: Session, date_from: date, date_to: date, now: datetime) -> None:
    today = _today(session, now)
    horizon = today + timedelta(days=get_settings(session).horizon_days)
    if date_from < today:
        raise ValidationFailed("The range cannot start in the past.", code="invalid_range",
                               fields={"from": "Today or later."})
    if date_to < date_from:
        raise ValidationFailed("'from' must not be after 'to'.", code="invalid_range",
                               fields={"to": "Must not be before 'from'."})
    if date_to > horizon:
        raise ValidationFailed(
            f"Wait for dates up to {horizon.isoformat()} (the booking horizon).",
            code="beyond_horizon", fields={"to": f"At most {horizon.isoformat()}."})


def require_may_wait(session: Session, client: User, date_from: date, now: datetime) -> None:
    """Refuse a client who could not book now (the booking rule) or who awaits a review
    (joining, and again before a freed slot is offered to them)."""
    if client.role != Role.CLIENT.value or not client.is_active:
        raise ValidationFailed("Waitlist entries are for client accounts.", code="not_a_client",
                               fields={"client_id": "Not a client account."})
    first_start = datetime.combine(date_from, time(12, 0), tzinfo=clinic_zone(session))
    # The booking rule itself: raises see_clinician_first after a referral. "Confirmed"
    # because a waitlist entry may reach back before earliest; the ranking never offers such
    # a slot (R5).
    care.check_early_booking(session, client, max(first_start, now), True, now)
    rec = care.current_recommendation(session, client)
    awaiting = rec is not None and rec.action == followup.Action.THERAPIST_REVIEW.value
    if awaiting or booking_service.initial_status_for(session, client) == (
        BookingStatus.PENDING.value
    ):
        raise ValidationFailed(
            "Your therapist wants to look at how you are doing before your next session; "
            "the clinic will contact you.", code="awaiting_review",
            fields={"client_id": "Awaiting the therapist's review."})


def join(
    session: Session,
    *,
    client: User,
    actor: User,
    service_id: int,
    date_from: date,
    date_to: date,
    now: datetime,
    therapist_id: int | None = None,
    parts_of_day: Iterable[str] = (),
) -> WaitlistEntry:
    """Put ``client`` on the waitlist (by ``actor``: the client, or staff who may book for
    them). Raises NotFound (client, service), ValidationFailed (invalid_range,
    beyond_horizon, not_offered, inactive_service, see_clinician_first, awaiting_review,
    not_a_client)."""
    if actor.id != client.id and not booking_service.may_book_for(session, actor, client):
        raise booking_service.client_not_found()
    parts = _parts(parts_of_day)
    _check_range(session, date_from, date_to, now)
    bookable_service(session, service_id, therapist_id)
    require_may_wait(session, client, date_from, now)
    entry = WaitlistEntry(
        client_id=client.id, service_id=service_id, therapist_id=therapist_id,
        date_from=date_from, date_to=date_to, parts_of_day=parts,
        status=WaitlistStatus.WAITING.value, created_by_id=actor.id,
        created_at=now, updated_at=now,
    )
    session.add(entry)
    session.flush()
    return entry


def _live(session: Session, now: datetime) -> object:
    """SQL condition: waiting and the range has not ended."""
    return (WaitlistEntry.status == WaitlistStatus.WAITING.value) & (
        WaitlistEntry.date_to >= _today(session, now))


def entries_for(session: Session, client: User, now: datetime) -> list[WaitlistEntry]:
    """The client's live entries, soonest range first."""
    return list(session.scalars(
        select(WaitlistEntry)
        .where(WaitlistEntry.client_id == client.id, _live(session, now))  # type: ignore[arg-type]
        .order_by(WaitlistEntry.date_from, WaitlistEntry.id)
    ))


def get_entry_for(session: Session, entry_id: int, user: User, now: datetime) -> WaitlistEntry:
    """A live entry the user may act on: their own, or (staff) one of a client they may book
    for. NotFound for everything else, so nobody learns that someone else's entry exists."""
    entry = session.get(WaitlistEntry, entry_id) if 0 < entry_id <= MAX_ID else None
    if entry is None or entry.status != WaitlistStatus.WAITING.value or (
        entry.date_to < _today(session, now)
    ):
        raise NotFound("There is no such waitlist entry.")
    if entry.client_id == user.id:
        return entry
    if is_staff(user) and booking_service.may_book_for(session, user, entry.client):
        return entry
    raise NotFound("There is no such waitlist entry.")


def update_entry(
    session: Session,
    entry: WaitlistEntry,
    *,
    date_from: date,
    date_to: date,
    now: datetime,
    therapist_id: int | None = None,
    parts_of_day: Iterable[str] = (),
) -> WaitlistEntry:
    """Change an entry's dates, therapist or parts of the day (same checks as joining)."""
    parts = _parts(parts_of_day)
    _check_range(session, date_from, date_to, now)
    bookable_service(session, entry.service_id, therapist_id)
    entry.date_from, entry.date_to = date_from, date_to
    entry.therapist_id = therapist_id
    entry.parts_of_day = parts
    entry.updated_at = now
    session.flush()
    return entry


def leave(session: Session, entry: WaitlistEntry, now: datetime) -> None:
    """The client leaves the waitlist (the row stays, for the adherence figures)."""
    entry.status = WaitlistStatus.LEFT.value
    entry.updated_at = now
    session.flush()


def leave_all(session: Session, client: User, now: datetime) -> int:
    """Every waiting entry of ``client`` is left (their account closes); returns how many.
    Their open offers are withdrawn by ``waitlist_offers.close_lapsed_offers``."""
    result = session.execute(
        update(WaitlistEntry)
        .where(WaitlistEntry.client_id == client.id,
               WaitlistEntry.status == WaitlistStatus.WAITING.value)
        .values(status=WaitlistStatus.LEFT.value, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def status_of(session: Session, entry: WaitlistEntry, now: datetime) -> str:
    """The entry's status as the client should read it: a waiting entry whose range has
    ended is expired, even before :func:`expire_entries` has marked it."""
    if entry.status == WaitlistStatus.WAITING.value and entry.date_to < _today(session, now):
        return WaitlistStatus.EXPIRED.value
    return entry.status


def expire_entries(session: Session, now: datetime) -> int:
    """Mark waiting entries whose range has ended as expired; returns how many."""
    result = session.execute(
        update(WaitlistEntry)
        .where(WaitlistEntry.status == WaitlistStatus.WAITING.value,
               WaitlistEntry.date_to < _today(session, now))
        .values(status=WaitlistStatus.EXPIRED.value, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def _current_windows(session: Session,
                     client_ids: set[int]) -> dict[int, tuple[date | None, date | None]]:
    """Each client's current window in one query: the newest recommendation row per client,
    in the same order as ``care.current_recommendation`` (created_at, then id), which would
    cost one query per waiting client (a freed slot must be ranked in well under a second)."""
    windows: dict[int, tuple[date | None, date | None]] = {}
    if not client_ids:
        return windows
    rows = session.execute(
        select(Recommendation.client_id, Recommendation.earliest, Recommendation.latest)
        .where(Recommendation.client_id.in_(client_ids))
        .order_by(Recommendation.client_id, Recommendation.created_at.desc(),
                  Recommendation.id.desc()))
    for client_id, earliest, latest in rows:
        windows.setdefault(client_id, (earliest, latest))
    return windows


def ranking_entries(session: Session, service_id: int, now: datetime, *,
                    on_date: date | None = None) -> list[pure.WaitingEntry]:
    """The live entries of a service (covering ``on_date`` when given) with each client's
    current window, as the pure ranking (``scheduling.waitlist.rank``) takes them."""
    stmt = select(WaitlistEntry).where(WaitlistEntry.service_id == service_id,
                                       _live(session, now))  # type: ignore[arg-type]
    if on_date is not None:
        stmt = stmt.where(WaitlistEntry.date_from <= on_date, WaitlistEntry.date_to >= on_date)
    rows = session.scalars(stmt).all()
    windows = _current_windows(session, {row.client_id for row in rows})
    out: list[pure.WaitingEntry] = []
    for row in rows:
        earliest, latest = windows.get(row.client_id, (None, None))
        out.append(pure.WaitingEntry(
            entry_id=row.id, client_id=row.client_id, service_id=row.service_id,
            therapist_id=row.therapist_id, date_from=row.date_from, date_to=row.date_to,
            joined_at=row.created_at,
            parts_of_day=frozenset(pure.PartOfDay(p) for p in row.parts_of_day or ()),
            earliest=earliest, latest=latest,
        ))
    return out


def candidates_for_freed_slot(
    session: Session,
    *,
    service_id: int,
    therapist_id: int,
    start: datetime,
    now: datetime,
    exclude_clients: frozenset[int] = frozenset(),
    entries: list[pure.WaitingEntry] | None = None,
) -> list[pure.RankedEntry]:
    """Who may be offered a slot that just freed (a cancellation, a move, a released hold,
    time off removed, hours added), best first: the pure ranking over the service's live
    entries. ``exclude_clients``: clients who must not get it now (an open offer already).
    ``entries``: the service's live entries covering the slot's day, when the caller has
    read them already (``ranking_entries``; one read for every start of that day)."""
    slot = pure.FreedSlot(service_id=service_id, therapist_id=therapist_id,
                          local_start=start.astimezone(clinic_zone(session)).replace(tzinfo=None))
    if entries is None:
        entries = ranking_entries(session, service_id, now, on_date=slot.local_date)
    return pure.rank(entries, slot, _today(session, now), exclude_clients=exclude_clients)
