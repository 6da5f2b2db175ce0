"""Waitlist offers: a freed slot goes to the waiting client who needs it most (issue 13.2).

The flow:

1. A change frees time and queues it (``services.freed_time``: one INSERT in its request).
2. The worker's offer job (every 15 s) calls :func:`run_round`: it expires lapsed offers
   (their holds are released and the time queued again), announces expired sign-up holds
   once, then for each queued range finds the free starts of that therapist inside it with
   the slot search (``services.availability.search_slots``), for every service the therapist
   offers that has live entries on those dates. Each start is ranked with
   ``services.waitlist.candidates_for_freed_slot`` (in-window first, then past ``latest``, then
   the rest by join time; never before ``earliest``), leaving out clients with an open offer
   and clients who were already offered that time. The best match gets the slot held for
   ``offer_minutes`` (``services.holds.place_hold``, purpose ``offer``), an offer row and an
   outbox intent (kind ``waitlist_offer``).
3. The client accepts (:func:`accept`: the hold becomes their booking through
   ``holds.convert_hold``, which runs every booking check) or declines (:func:`decline`: the
   hold is released and the time queued, so the next match gets it on the next run).

Invariants: one open offer per client (the job, and a partial unique index); one offer per
slot at a time (the hold blocks the slot like a booking, for everyone); at most one email per
client per freed slot (a client once offered a time is never offered an overlapping start of
that therapist again). Two answers to one offer: a conditional UPDATE (``WHERE status =
'open'``) lets exactly one through. Services never commit: the caller does.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from dataclasses import field
from datetime import date
from datetime import datetime
from datetime import timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import and_
from sqlalchemy import exists
from sqlalchemy import func
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.orm import Session

from clinic_app.errors import Conflict
from clinic_app.errors import DomainError
from clinic_app.errors import NotFound
from clinic_app.errors import SlotTaken
from clinic_app.errors import ValidationFailed
from clinic_app.models.accounts import User
from clinic_app.models.booking import INCLUDE_HOLDS
from clinic_app.models.booking import MAX_BLOCKED_MINUTES
from clinic_app.models.booking import MAX_ID
from clinic_app.models.booking import Booking
from clinic_app.models.booking import BookingStatus
from clinic_app.models.booking import HoldPurpose
from clinic_app.models.schedule import Service
from clinic_app.models.schedule import service_therapists
from clinic_app.models.waitlist import FreedReason
from clinic_app.models.waitlist import FreedTime
from clinic_app.models.waitlist import OfferStatus
from clinic_app.models.waitlist import WaitlistEntry
from clinic_app.models.waitlist import WaitlistOffer
from clinic_app.models.waitlist import WaitlistStatus
from clinic_app.scheduling.availability import Slot
from clinic_app.scheduling.waitlist import WaitingEntry
from clinic_app.services import freed_time
from clinic_app.services import holds
from clinic_app.services import waitlist
from clinic_app.services.availability import MAX_RANGE_DAYS
from clinic_app.services.availability import search_slots
from clinic_app.services.notify import events as notifications
from clinic_app.services.settings import get_settings

__all__ = [
    "RANGES_PER_ROUND",
    "OfferExpired",
    "OfferRound",
    "accept",
    "announce_expired_holds",
    "close_lapsed_offers",
    "decline",
    "get_offer_for",
    "hold_for",
    "offer_freed_time",
    "open_offers_for",
    "run_round",
]

log = logging.getLogger("clinic_app.waitlist")

#: Queued ranges handled per round (one transaction); the job runs rounds until none is left.
#: Small, because on SQLite a round holds the write lock (about 0.1-0.2 s a range, measured
#: by bench/waitlist.py) and bookings wait behind it.
RANGES_PER_ROUND = 5
_MAX_BLOCKED = timedelta(minutes=MAX_BLOCKED_MINUTES)


class OfferExpired(Conflict):
    """409: the offer has expired or was already answered; the slot may be gone."""

    code = "offer_expired"


def _expired() -> OfferExpired:
    return OfferExpired("This offer has expired or was already answered. Please pick another "
                        "time.")


# --- reading offers ---------------------------------------------------------------------------


def open_offers_for(session: Session, client: User, now: datetime) -> list[WaitlistOffer]:
    """The client's live offers (open, not yet expired), soonest slot first."""
    return list(session.scalars(
        select(WaitlistOffer)
        .where(WaitlistOffer.client_id == client.id,
               WaitlistOffer.status == OfferStatus.OPEN.value, WaitlistOffer.expires_at > now)
        .order_by(WaitlistOffer.start_at, WaitlistOffer.id)))


def get_offer_for(session: Session, offer_id: int, client: User) -> WaitlistOffer:
    """The client's own offer ``offer_id`` (in any state); NotFound for anybody else's, so
    nobody learns that someone else's offer exists."""
    offer = session.get(WaitlistOffer, offer_id) if 0 < offer_id <= MAX_ID else None
    if offer is None or offer.client_id != client.id:
        raise NotFound("There is no such offer.")
    return offer


def hold_for(session: Session, offer: WaitlistOffer, *, lock: bool = False) -> Booking | None:
    """The hold that keeps the offered slot, if it is still there (``offer.is_held_by``:
    matched on its contents, since SQLite may have given a deleted hold's id to another)."""
    hold = holds.get_hold(session, offer.hold_id, lock=lock)
    return hold if offer.is_held_by(hold) else None


# --- answering --------------------------------------------------------------------------------


def _answer(session: Session, offer: WaitlistOffer, status: str, now: datetime) -> None:
    """Move an open, unexpired offer to ``status`` with a conditional UPDATE: of two answers
    at once exactly one changes the row (on PostgreSQL the second waits for the first's
    commit, then finds the status changed), the other gets OfferExpired."""
    changed = session.execute(
        update(WaitlistOffer)
        .where(WaitlistOffer.id == offer.id, WaitlistOffer.status == OfferStatus.OPEN.value,
               WaitlistOffer.expires_at > now)
        .values(status=status, responded_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    if changed != 1:
        raise _expired()
    session.refresh(offer)


def accept(session: Session, offer: WaitlistOffer, *, client: User, now: datetime) -> Booking:
    """The client takes the offered slot: the hold becomes their booking (same row, so the
    slot is never free in between; ``holds.convert_hold`` runs every check of a new booking
    and writes the confirmation), the offer is ``accepted`` and the entry ``booked``.

    Raises NotFound (not their offer), OfferExpired (409: expired, answered, or the hold
    lapsed) or the booking's ValidationFailed (e.g. ``over_cap``)."""
    if offer.client_id != client.id:
        raise NotFound("There is no such offer.")
    _answer(session, offer, OfferStatus.ACCEPTED.value, now)
    hold = hold_for(session, offer)
    if hold is None:
        raise _expired()
    try:
        booking = holds.convert_hold(session, hold, client=client, actor=client, now=now)
    except holds.HoldExpired:
        raise _expired() from None
    offer.booking_id = booking.id
    session.execute(
        update(WaitlistEntry)
        .where(WaitlistEntry.id == offer.entry_id,
               WaitlistEntry.status == WaitlistStatus.WAITING.value)
        .values(status=WaitlistStatus.BOOKED.value, updated_at=now)
        .execution_options(synchronize_session=False))
    session.flush()
    return booking


def decline(session: Session, offer: WaitlistOffer, *, client: User, now: datetime) -> None:
    """The client says no: the offer is ``declined``, the hold released and the time queued
    again (the next match is offered it on the job's next run; this client never is).
    Raises NotFound (not their offer) or OfferExpired (409)."""
    if offer.client_id != client.id:
        raise NotFound("There is no such offer.")
    _answer(session, offer, OfferStatus.DECLINED.value, now)
    hold = hold_for(session, offer)
    if hold is not None:
        holds.release_hold(session, hold, now, reason=FreedReason.OFFER_DECLINED)
    session.flush()


# --- the job ----------------------------------------------------------------------------------


@dataclass
class OfferRound:
    """What one round of the offer job did."""

    expired: int = 0
    withdrawn: int = 0
    holds_announced: int = 0
    ranges: int = 0
    offers: list[int] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)  # "freed time 12: ValueError: ..."
    pending: int = 0  # queued ranges left for the next round


def close_lapsed_offers(session: Session, now: datetime, *,
                        client_id: int | None = None) -> tuple[int, int]:
    """Expire the open offers past ``expires_at`` and withdraw those whose entry was left or
    whose client's account closed; each hold is released and its time queued again.
    ``client_id``: only that client's offers (closing an account withdraws them at once
    rather than on the job's next round). Returns ``(expired, withdrawn)``."""
    stmt = (
        select(WaitlistOffer)
        .join(WaitlistEntry, WaitlistEntry.id == WaitlistOffer.entry_id)
        .join(User, User.id == WaitlistOffer.client_id)
        .where(WaitlistOffer.status == OfferStatus.OPEN.value,
               or_(WaitlistOffer.expires_at <= now,
                   WaitlistEntry.status != WaitlistStatus.WAITING.value,
                   User.is_active.is_(False), User.anonymised_at.is_not(None))))
    if client_id is not None:
        stmt = stmt.where(WaitlistOffer.client_id == client_id)
    lapsed = session.scalars(
        stmt.order_by(WaitlistOffer.id)
        # An offer being answered right now is skipped, not waited for (next round).
        .with_for_update(of=WaitlistOffer, skip_locked=True)).all()
    expired = withdrawn = 0
    for offer in lapsed:
        if offer.expires_at <= now:
            offer.status, reason = OfferStatus.EXPIRED.value, FreedReason.OFFER_EXPIRED
            expired += 1
        else:
            offer.status, reason = OfferStatus.WITHDRAWN.value, FreedReason.OFFER_WITHDRAWN
            withdrawn += 1
        hold = hold_for(session, offer)
        if hold is not None:
            holds.release_hold(session, hold, now, reason=reason)
    session.flush()
    return expired, withdrawn


def announce_expired_holds(session: Session, now: datetime) -> int:
    """Queue the time of sign-up holds that expired unused, once each (the queue row names
    the hold in ``source_booking_id``). Returns how many."""
    announced = exists().where(FreedTime.source_booking_id == Booking.id,
                               FreedTime.reason == FreedReason.HOLD_EXPIRED.value)
    expired = session.scalars(
        select(Booking)
        .where(Booking.status == BookingStatus.HELD.value,
               Booking.hold_purpose == HoldPurpose.SIGNUP.value,
               Booking.expires_at <= now, Booking.blocked_end > now, ~announced)
        .execution_options(**{INCLUDE_HOLDS: True})).all()
    for hold in expired:
        freed_time.booking_freed(session, hold, FreedReason.HOLD_EXPIRED, now)
    return len(expired)


@dataclass
class _Candidate:
    """The best verified match for one start of one service."""

    rank: tuple[int, datetime, int]  # tier, join time, entry id: lower is better
    service_id: int
    slot: Slot
    entry: WaitlistEntry
    client: User


class _Run:
    """The state one queued range is offered with (read once, kept up to date)."""

    def __init__(self, session: Session, therapist_id: int, start: datetime, end: datetime,
                 now: datetime, service_ids: set[int]) -> None:
        self.session, self.therapist_id, self.now = session, therapist_id, now
        self.starts: dict[datetime, list[tuple[str, datetime]]] = {}
        self.open_clients: set[int] = set(session.scalars(
            select(WaitlistOffer.client_id).where(
                WaitlistOffer.status == OfferStatus.OPEN.value)))
        # Buffers widen an appointment to the time it blocks (two slots compete for the same
        # freed time when their blocked times overlap).
        self.buffers: dict[int, tuple[timedelta, timedelta]] = {}
        # Earlier offers of this therapist's time around the range: never ask twice.
        self.earlier: list[tuple[int, datetime, datetime, str, datetime]] = []
        rows = session.execute(
            select(WaitlistOffer.client_id, WaitlistOffer.start_at, WaitlistOffer.end_at,
                   WaitlistOffer.status, WaitlistOffer.freed_at, WaitlistOffer.service_id)
            .where(WaitlistOffer.therapist_id == therapist_id,
                   WaitlistOffer.start_at < end + _MAX_BLOCKED,
                   WaitlistOffer.end_at > start - _MAX_BLOCKED)).all()
        wanted = service_ids | {row.service_id for row in rows}
        for sid, before, after in session.execute(
                select(Service.id, Service.buffer_before_minutes, Service.buffer_after_minutes)
                .where(Service.id.in_(wanted))):
            self.buffers[sid] = (timedelta(minutes=before), timedelta(minutes=after))
        for client, o_start, o_end, status, freed, sid in rows:
            self.remember(client, sid, o_start, o_end, status, freed)
        self.verdicts: dict[int, User | None] = {}
        # The live entries of a service covering a day, read once for all its starts (the
        # round does not change entries; open offers are excluded per start instead).
        self.entries: dict[tuple[int, date], list[WaitingEntry]] = {}

    def entries_on(self, service_id: int, day: date) -> list[WaitingEntry]:
        key = (service_id, day)
        if key not in self.entries:
            self.entries[key] = waitlist.ranking_entries(self.session, service_id, self.now,
                                                         on_date=day)
        return self.entries[key]

    def blocked(self, service_id: int, start: datetime, end: datetime
                ) -> tuple[datetime, datetime]:
        before, after = self.buffers.get(service_id, (timedelta(0), timedelta(0)))
        return start - before, end + after

    def remember(self, client_id: int, service_id: int, start: datetime, end: datetime,
                 status: str, freed_at: datetime) -> None:
        """Note an offer (earlier, or just made) by the time it blocked."""
        b_start, b_end = self.blocked(service_id, start, end)
        self.earlier.append((client_id, b_start, b_end, status, freed_at))
        self.starts.setdefault(start, []).append((status, freed_at))

    def offered_before(self, service_id: int, slot: Slot) -> set[int]:
        """Clients already offered a time of this therapist that competes with ``slot``
        (their blocked times overlap): at most one offer per client per freed slot."""
        b_start, b_end = self.blocked(service_id, slot.start, slot.end)
        return {client for client, start, end, _, _ in self.earlier
                if start < b_end and end > b_start}

    def freed_at(self, slot: Slot, queued_at: datetime) -> datetime:
        """When the slot first became free: a slot passed on after a decline or expiry
        has been empty since the first offer's freeing, not since the decline."""
        passed_on = [freed for status, freed in self.starts.get(slot.start, ())
                     if status != OfferStatus.ACCEPTED.value]
        return min([queued_at, *passed_on])

    def reachable(self, client_id: int, day: date) -> User | None:
        """The client, if an offer can go to them now: an active account with an email
        address, allowed to book (no referral, no pending review)."""
        if client_id not in self.verdicts:
            client = self.session.get(User, client_id)
            ok = (client is not None and client.is_active and client.anonymised_at is None
                  and bool(client.email))
            if ok:
                try:
                    waitlist.require_may_wait(self.session, client, day, self.now)
                except ValidationFailed:
                    ok = False
            self.verdicts[client_id] = client if ok else None
        return self.verdicts[client_id]


def _free_starts(session: Session, run: _Run, dates_by_service: dict[int, set[date]],
                 start: datetime, end: datetime, zone: ZoneInfo
                 ) -> dict[datetime, list[tuple[int, Slot]]]:
    """The therapist's free starts inside ``[start, end)``, per start the services that fit
    there, from the slot search (one search per service and up to 62 days)."""
    free: dict[datetime, list[tuple[int, Slot]]] = {}
    for service_id, dates in sorted(dates_by_service.items()):
        chunk = min(dates)
        while chunk <= max(dates):
            last = min(chunk + timedelta(days=MAX_RANGE_DAYS - 1), max(dates))
            try:
                _, slots = search_slots(session, service_id=service_id, date_from=chunk,
                                        date_to=last, therapist_id=run.therapist_id,
                                        now=run.now)
            except DomainError:
                slots = []  # the service stopped, or the therapist no longer gives it
            for slot in slots:
                if start <= slot.start < end and slot.start.astimezone(zone).date() in dates:
                    free.setdefault(slot.start, []).append((service_id, slot))
            chunk = last + timedelta(days=1)
    return free


def _best(run: _Run, options: list[tuple[int, Slot]],
          clients_by_service: dict[int, set[int]], zone: ZoneInfo) -> _Candidate | None:
    """The best reachable match for one start over every service that fits there."""
    best: _Candidate | None = None
    for service_id, slot in options:
        exclude = run.open_clients | run.offered_before(service_id, slot)
        if clients_by_service[service_id] <= exclude:
            continue  # everyone waiting for this service has been asked or has an offer
        day = slot.start.astimezone(zone).date()
        ranked = waitlist.candidates_for_freed_slot(
            run.session, service_id=service_id, therapist_id=run.therapist_id,
            start=slot.start, now=run.now, exclude_clients=frozenset(exclude),
            entries=run.entries_on(service_id, day))
        for candidate in ranked:
            client = run.reachable(candidate.entry.client_id, day)
            if client is None:
                continue
            rank = (int(candidate.tier), candidate.entry.joined_at, candidate.entry.entry_id)
            if best is None or rank < best.rank:
                entry = run.session.get(WaitlistEntry, candidate.entry.entry_id)
                assert entry is not None  # just read by the ranking
                best = _Candidate(rank, service_id, slot, entry, client)
            break
    return best


def offer_freed_time(session: Session, row: FreedTime, now: datetime) -> list[WaitlistOffer]:
    """Offer the free slots inside one queued range to the best matches (see the module
    docstring). Returns the offers made; does not mark the row processed."""
    settings = get_settings(session)
    zone = ZoneInfo(settings.timezone)
    today = now.astimezone(zone).date()
    start, end = max(row.start_at, now), row.end_at
    if end <= start:
        return []
    first = start.astimezone(zone).date()
    last = min((end - timedelta(microseconds=1)).astimezone(zone).date(),
               today + timedelta(days=settings.horizon_days))
    # Live entries that could take this therapist's time on those dates (one query).
    wanted = session.execute(
        select(WaitlistEntry.service_id, WaitlistEntry.client_id, WaitlistEntry.date_from,
               WaitlistEntry.date_to)
        .join(service_therapists, and_(
            service_therapists.c.service_id == WaitlistEntry.service_id,
            service_therapists.c.therapist_id == row.therapist_id))
        .where(WaitlistEntry.status == WaitlistStatus.WAITING.value,
               WaitlistEntry.date_from <= last, WaitlistEntry.date_to >= max(first, today),
               or_(WaitlistEntry.therapist_id.is_(None),
                   WaitlistEntry.therapist_id == row.therapist_id))).all()
    if not wanted or first > last:
        return []
    dates_by_service: dict[int, set[date]] = {}
    clients_by_service: dict[int, set[int]] = {}
    for service_id, client_id, date_from, date_to in wanted:
        days = dates_by_service.setdefault(service_id, set())
        day = max(date_from, first)
        while day <= min(date_to, last):
            days.add(day)
            day += timedelta(days=1)
        clients_by_service.setdefault(service_id, set()).add(client_id)
    run = _Run(session, row.therapist_id, start, end, now, set(dates_by_service))
    made: list[WaitlistOffer] = []
    free = _free_starts(session, run, dates_by_service, start, end, zone)
    for slot_start in sorted(free):
        best = _best(run, free[slot_start], clients_by_service, zone)
        if best is None:
            continue
        # Held for offer_minutes, but never past the slot's start (a long setting on a
        # slot later today).
        minutes = min(settings.offer_minutes, int((slot_start - now).total_seconds() // 60))
        if minutes < 1:
            continue
        try:
            hold = holds.place_hold(
                session, service_id=best.service_id, start=slot_start,
                therapist_id=run.therapist_id, client_id=best.client.id,
                purpose=HoldPurpose.OFFER.value, minutes=minutes, now=now)
        except (SlotTaken, ValidationFailed):
            continue  # an offer made a moment ago holds it now, or it is too soon: next start
        assert hold.expires_at is not None  # every hold has one (CHECK hold_expires)
        offer = WaitlistOffer(
            entry_id=best.entry.id, client_id=best.client.id, service_id=best.service_id,
            therapist_id=run.therapist_id, start_at=hold.start_at, end_at=hold.end_at,
            hold_id=hold.id, status=OfferStatus.OPEN.value,
            freed_at=run.freed_at(best.slot, row.created_at), created_at=now,
            expires_at=hold.expires_at)
        session.add(offer)
        session.flush()
        notifications.waitlist_offer_made(session, offer, now)
        run.open_clients.add(best.client.id)
        run.remember(best.client.id, best.service_id, offer.start_at, offer.end_at,
                     offer.status, offer.freed_at)
        made.append(offer)
    return made


def run_round(session: Session, now: datetime, *, limit: int = RANGES_PER_ROUND) -> OfferRound:
    """One round of the offer job: close lapsed offers, announce expired sign-up holds, then
    offer up to ``limit`` queued ranges, oldest first, each in its own savepoint (a range
    whose offering fails is logged, recorded and marked processed, so it cannot block the
    queue). Does not commit."""
    result = OfferRound()
    result.expired, result.withdrawn = close_lapsed_offers(session, now)
    result.holds_announced = announce_expired_holds(session, now)
    session.flush()
    rows = session.scalars(
        select(FreedTime).where(FreedTime.processed_at.is_(None))
        .order_by(FreedTime.created_at, FreedTime.id).limit(limit)
        .with_for_update(skip_locked=True)).all()
    for row in rows:
        row_id = row.id
        try:
            with session.begin_nested():
                result.offers += [o.id for o in offer_freed_time(session, row, now)]
        except Exception as exc:  # noqa: BLE001 - one bad range must not stop the others
            log.exception("offering freed time %s failed; skipped", row_id)
            result.failures.append(f"freed time {row_id}: {exc.__class__.__name__}: {exc}"[:300])
        session.execute(update(FreedTime).where(FreedTime.id == row_id)
                        .values(processed_at=now).execution_options(synchronize_session=False))
    result.ranges = len(rows)
    result.pending = session.scalar(
        select(func.count(FreedTime.id)).where(FreedTime.processed_at.is_(None))) or 0
    return result
