"""Who gets a freed slot: ranking waitlist entries by clinical need (issue 13, item 2).

Every other clinic product offers a freed slot first come, first served. We know when a client
*should* come back (the follow-up recommender's window ``[earliest, latest]``), so the order is:

1. entries whose recommended window contains the slot's date (they are due now);
2. entries already past their ``latest`` (they are overdue; the slot is still welcome);
3. every other matching entry (no recommendation, or no ``latest``);

and within each tier by join time (then entry id, so the order is total and stable). A slot on
a date before a client's ``earliest`` is never offered to them (R5 in
shared/notes/followup-spacing.md: never earlier than ``earliest`` without an explicit
confirmation).

The module is pure: standard library only, no clock (``today`` is passed in) and no time
zones — the caller gives the slot's start as a clinic-local wall time, because parts of the day
and recommended windows are clinic-local notions.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from dataclasses import field
from datetime import date
from datetime import datetime
from datetime import time
from enum import IntEnum
from enum import StrEnum

__all__ = [
    "AFTERNOON_STARTS",
    "EVENING_STARTS",
    "FreedSlot",
    "PartOfDay",
    "RankedEntry",
    "Tier",
    "WaitingEntry",
    "matches",
    "part_of_day",
    "rank",
    "tier_for",
]

# Clinic-local boundaries of the parts of the day a client can ask for.
AFTERNOON_STARTS = time(12, 0)
EVENING_STARTS = time(17, 0)


class PartOfDay(StrEnum):
    """When in the day a client can come (the API's ``parts_of_day`` values)."""

    MORNING = "morning"
    AFTERNOON = "afternoon"
    EVENING = "evening"


class Tier(IntEnum):
    """Ranking tier of an entry for one slot; lower comes first."""

    IN_WINDOW = 0
    PAST_LATEST = 1
    OTHER = 2


def part_of_day(local_start: time) -> PartOfDay:
    """The part of the day a clinic-local start time falls in."""
    if local_start < AFTERNOON_STARTS:
        return PartOfDay.MORNING
    if local_start < EVENING_STARTS:
        return PartOfDay.AFTERNOON
    return PartOfDay.EVENING


@dataclass(frozen=True)
class FreedSlot:
    """A slot that just became free: what, with whom, and when (clinic-local wall time)."""

    service_id: int
    therapist_id: int
    local_start: datetime

    @property
    def local_date(self) -> date:
        """The slot's calendar date in the clinic's zone."""
        return self.local_start.date()


@dataclass(frozen=True)
class WaitingEntry:
    """One waiting client's wish plus their current recommended window.

    ``therapist_id`` None means any therapist; an empty ``parts_of_day`` means any time of day.
    ``earliest`` / ``latest`` come from the client's current follow-up recommendation (None
    when there is none, or no date). ``joined_at`` is when the entry was created (aware UTC).
    """

    entry_id: int
    client_id: int
    service_id: int
    therapist_id: int | None
    date_from: date
    date_to: date
    joined_at: datetime
    parts_of_day: frozenset[PartOfDay] = field(default_factory=frozenset)
    earliest: date | None = None
    latest: date | None = None


@dataclass(frozen=True)
class RankedEntry:
    """An entry that may be offered the slot, with the tier that placed it."""

    entry: WaitingEntry
    tier: Tier


def matches(entry: WaitingEntry, slot: FreedSlot, today: date) -> bool:
    """Whether the entry asked for this slot at all (service, therapist, dates, part of day).

    An entry whose range has ended (``date_to < today``) has expired and matches nothing.
    """
    if entry.date_to < today:
        return False
    if entry.service_id != slot.service_id:
        return False
    if entry.therapist_id is not None and entry.therapist_id != slot.therapist_id:
        return False
    if not entry.date_from <= slot.local_date <= entry.date_to:
        return False
    if entry.parts_of_day and part_of_day(slot.local_start.time()) not in entry.parts_of_day:
        return False
    return True


def tier_for(entry: WaitingEntry, slot_date: date) -> Tier | None:
    """The entry's tier for a slot on ``slot_date``; None when it is before ``earliest`` (R5)."""
    if entry.earliest is not None and slot_date < entry.earliest:
        return None
    if entry.latest is not None and slot_date > entry.latest:
        return Tier.PAST_LATEST
    if entry.earliest is not None and entry.latest is not None:
        return Tier.IN_WINDOW
    return Tier.OTHER


def rank(
    entries: Iterable[WaitingEntry],
    slot: FreedSlot,
    today: date,
    *,
    exclude_clients: frozenset[int] = frozenset(),
) -> list[RankedEntry]:
    """The entries that may be offered ``slot``, best first, at most one per client.

    ``exclude_clients`` are clients who must not get this offer now (for example those who
    already hold an open offer: one open offer per client at a time). A client with several
    matching entries appears once, with their best-ranked entry.
    """
    candidates: list[RankedEntry] = []
    for entry in entries:
        if entry.client_id in exclude_clients or not matches(entry, slot, today):
            continue
        tier = tier_for(entry, slot.local_date)
        if tier is not None:
            candidates.append(RankedEntry(entry, tier))
    candidates.sort(key=lambda r: (r.tier, r.entry.joined_at, r.entry.entry_id))
    seen_clients: set[int] = set()
    ranked: list[RankedEntry] = []
    for candidate in candidates:
        if candidate.entry.client_id in seen_clients:
            continue
        seen_clients.add(candidate.entry.client_id)
        ranked.append(candidate)
    return ranked
