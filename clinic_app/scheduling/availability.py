"""Slot search over plain data: weekly hours, overrides, closures, busy time and rooms.

Everything here is a pure function of its arguments: no Flask, no database and no clock (the
caller passes ``now``). The caller loads each table with one indexed range query and hands the
rows over as the small frozen dataclasses below; busy time is a list of :class:`Interval` per
therapist and per room, already including the buffers of the bookings it comes from.

Semantics, in the order they apply to one therapist on one local date ``d`` (clinic zone):

1. **Weekly hours.** Among the :class:`WeeklyRange` rows, the applicable set is the rows with
   the greatest ``effective_from <= d``; a new set supersedes the old one entirely from its date.
   A weekday with no row in that set is a day off. Breaks are the gaps between ranges;
   overlapping or touching ranges are fused.
2. **"hours" overrides** covering ``d`` replace that day's weekly hours (several rows on one
   date give several ranges).
3. **"off" overrides** covering ``d`` are subtracted: the whole day when ``start_time`` is
   ``None``, otherwise ``[start_time, end_time)`` on each date of the row.
4. **Closures** (inclusive local date ranges) remove whole days for everyone.

Wall-clock times become UTC per local date with :mod:`zoneinfo` and ``fold=0``: on DST days the
day has 23 or 25 hours and 09:00-17:00 local stays 09:00-17:00 local. An ambiguous time (fall
back) means its first occurrence; a time that does not exist (spring-forward gap) is read with
the offset in force before the gap, so it maps *forward* by the size of the gap (Europe/London
2026-03-29 01:30 becomes 01:30 UTC = 02:30 BST).

Candidate starts lie on a grid of ``step`` (elapsed time) anchored at the start of each working
*range*, i.e. the fused hours of step 1/2 before time off is subtracted, so partial time off
does not shift the grid (off 10:00-10:20 with a 30-minute step resumes at 10:30, not 10:20).
Elapsed and local-clock grids agree except inside a range that spans a DST transition.
A start ``s`` is offered when:

* the appointment ``[s, s + duration)`` lies inside one working interval (after time off);
* the blocked interval ``[s - buffer_before, s + duration + buffer_after)`` overlaps none of
  the therapist's busy intervals, and one room of ``service.room_ids`` is free for it (the
  lowest free room id is chosen);
* ``s >= now + min_notice`` and the local date of ``s`` is not after the local date of
  ``now + horizon``.

The search is O((busy + candidates) * log busy): busy lists are sorted and merged once per
call, and a conflict jumps straight past the busy interval. Bisections are made per stretch,
not per candidate: one finds how long the therapist stays free, one per room tried finds the
lowest free room and how long that stays the answer (its own next booking; the end of the
booking holding each lower room), and the starts of that stretch are emitted directly.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC
from datetime import date
from datetime import datetime
from datetime import time
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

from clinic_app.scheduling.intervals import BusyIndex
from clinic_app.scheduling.intervals import Interval
from clinic_app.scheduling.intervals import as_utc
from clinic_app.scheduling.intervals import merge_pairs
from clinic_app.scheduling.intervals import subtract_pairs

__all__ = [
    "ERROR_CODES",
    "HoursOverride",
    "Rules",
    "ServiceSpec",
    "Slot",
    "SlotError",
    "TherapistSchedule",
    "Triple",
    "WeeklyRange",
    "check_start",
    "find_slot_starts",
    "find_slots",
    "find_slots_epoch",
    "from_micros",
    "slots_from_starts",
    "to_micros",
    "working_intervals",
    "working_micros",
]

ONE_DAY = timedelta(days=1)
ZERO = timedelta(0)

#: Every code :class:`SlotError` may carry, in the order :func:`check_start` tests them.
ERROR_CODES = (
    "in_past",
    "too_soon",
    "beyond_horizon",
    "closed",
    "outside_hours",
    "not_on_step",
    "therapist_busy",
    "no_room",
)


def _check_wall_range(start: time, end: time) -> None:
    if start.tzinfo is not None or end.tzinfo is not None:
        raise ValueError("wall-clock times must be naive (they are read in the clinic zone)")
    if not start < end:
        raise ValueError(f"range must have start < end: {start} .. {end}")


@dataclass(frozen=True)
class WeeklyRange:
    """One working range on a weekday (0 = Monday), in local wall-clock time.

    The range applies from ``effective_from`` until a later ``effective_from`` supersedes the
    whole weekly set. ``start < end``; a range cannot cross midnight.
    """

    weekday: int
    start: time
    end: time
    effective_from: date

    def __post_init__(self) -> None:
        """Validate the weekday and the range."""
        if not 0 <= self.weekday <= 6:
            raise ValueError(f"weekday must be 0..6, got {self.weekday}")
        _check_wall_range(self.start, self.end)


@dataclass(frozen=True)
class HoursOverride:
    """An exception to the weekly hours on the local dates ``start_date..end_date`` (inclusive).

    ``kind="off"``: time off, whole days when ``start_time`` is ``None``, otherwise
    ``[start_time, end_time)`` on each of those dates. ``kind="hours"``: replaces the weekly
    hours on those dates with ``[start_time, end_time)``; several rows on a date give several
    ranges. "off" rows are applied after "hours" rows.
    """

    start_date: date
    end_date: date
    kind: str
    start_time: time | None = None
    end_time: time | None = None

    def __post_init__(self) -> None:
        """Validate the kind, the dates and the times."""
        if self.kind not in ("off", "hours"):
            raise ValueError(f"kind must be 'off' or 'hours', got {self.kind!r}")
        if self.start_date > self.end_date:
            raise ValueError("start_date must not be after end_date")
        if (self.start_time is None) != (self.end_time is None):
            raise ValueError("give both start_time and end_time, or neither")
        if self.start_time is None:
            if self.kind == "hours":
                raise ValueError("an 'hours' override needs start_time and end_time")
        else:
            _check_wall_range(self.start_time, self.end_time)


@dataclass(frozen=True)
class TherapistSchedule:
    """A therapist's weekly hours (all versions) and overrides."""

    therapist_id: int
    weekly: tuple[WeeklyRange, ...]
    overrides: tuple[HoursOverride, ...] = ()


@dataclass(frozen=True)
class Rules:
    """Clinic-wide booking rules: zone, minimum notice, horizon and slot grid step."""

    tz: ZoneInfo
    min_notice: timedelta
    horizon: timedelta
    step: timedelta

    def __post_init__(self) -> None:
        """Reject a non-positive step and negative notice or horizon."""
        if self.step <= ZERO:
            raise ValueError("step must be positive")
        if self.min_notice < ZERO or self.horizon < ZERO:
            raise ValueError("min_notice and horizon must not be negative")


@dataclass(frozen=True)
class ServiceSpec:
    """What a booking of one service needs: its length, buffers and the rooms it may use."""

    duration: timedelta
    buffer_before: timedelta
    buffer_after: timedelta
    room_ids: tuple[int, ...]

    def __post_init__(self) -> None:
        """Reject a non-positive duration and negative buffers."""
        if self.duration <= ZERO:
            raise ValueError("duration must be positive")
        if self.buffer_before < ZERO or self.buffer_after < ZERO:
            raise ValueError("buffers must not be negative")

    def blocked(self, start: datetime) -> Interval:
        """The interval a booking starting at ``start`` blocks: buffers included."""
        return Interval(start - self.buffer_before, start + self.duration + self.buffer_after)


@dataclass(frozen=True)
class Slot:
    """A bookable appointment ``[start, end)`` (UTC, buffers excluded) with its room."""

    start: datetime
    end: datetime
    therapist_id: int
    room_id: int


class SlotError(ValueError):
    """A requested start is not bookable; ``code`` is one of :data:`ERROR_CODES`."""

    def __init__(self, code: str, message: str | None = None) -> None:
        """Keep the machine-readable ``code``; the message defaults to it."""
        assert code in ERROR_CODES, code
        super().__init__(message or code)
        self.code = code


# --------------------------------------------------------------------------------------------
# Expansion of schedules to UTC working intervals


class _Clock:
    """Per-call caches for local -> UTC conversion, shared by all therapists of a call."""

    __slots__ = ("tz", "_instants", "_ranges", "_ranges_micros")

    def __init__(self, tz: ZoneInfo) -> None:
        self.tz = tz
        self._instants: dict[tuple[date, time], datetime] = {}
        self._ranges: dict[tuple[date, tuple], list[tuple[datetime, datetime, datetime]]] = {}
        self._ranges_micros: dict[tuple[date, tuple], list[tuple[int, int, int]]] = {}

    def instant(self, day: date, wall: time) -> datetime:
        """UTC instant of wall-clock ``wall`` on local ``day`` (fold=0)."""
        key = (day, wall)
        value = self._instants.get(key)
        if value is None:
            value = datetime.combine(day, wall, tzinfo=self.tz).astimezone(UTC)
            self._instants[key] = value
        return value

    def ranges(self, day: date, walls: tuple) -> list[tuple[datetime, datetime, datetime]]:
        """Fused UTC ranges for wall-clock ``walls`` on ``day``, as (start, end, anchor)."""
        key = (day, walls)
        value = self._ranges.get(key)
        if value is None:
            instant = self.instant
            pairs = merge_pairs((instant(day, s), instant(day, e)) for s, e in walls)
            value = [(s, e, s) for s, e in pairs]
            self._ranges[key] = value
        return value

    def ranges_micros(self, day: date, walls: tuple) -> list[tuple[int, int, int]]:
        """:meth:`ranges` in epoch microseconds."""
        key = (day, walls)
        value = self._ranges_micros.get(key)
        if value is None:
            value = _micros_triples(self.ranges(day, walls))
            self._ranges_micros[key] = value
        return value


class _Prepared:
    """One therapist's schedule indexed for the local dates ``first..last``."""

    __slots__ = ("eff_dates", "eff_weeks", "hours", "off", "off_all_day")

    def __init__(self, schedule: TherapistSchedule, first: date, last: date) -> None:
        by_eff: dict[date, list[list[tuple[time, time]]]] = {}
        for row in schedule.weekly:
            week = by_eff.setdefault(row.effective_from, [[] for _ in range(7)])
            week[row.weekday].append((row.start, row.end))
        self.eff_dates = sorted(by_eff)
        self.eff_weeks = [tuple(tuple(sorted(d)) for d in by_eff[e]) for e in self.eff_dates]
        self.hours: dict[date, list[tuple[time, time]]] = {}
        self.off: dict[date, list[tuple[time, time]]] = {}
        self.off_all_day: set[date] = set()
        for row in schedule.overrides:
            day = max(row.start_date, first)
            stop = min(row.end_date, last)
            while day <= stop:
                if row.kind == "hours":
                    self.hours.setdefault(day, []).append((row.start_time, row.end_time))
                elif row.start_time is None:
                    self.off_all_day.add(day)
                else:
                    self.off.setdefault(day, []).append((row.start_time, row.end_time))
                day += ONE_DAY

    def walls(self, day: date) -> tuple:
        """Wall-clock ranges of ``day`` before time off: overrides first, then weekly hours."""
        rows = self.hours.get(day)
        if rows is not None:
            return tuple(sorted(rows))
        i = bisect_right(self.eff_dates, day) - 1
        if i < 0:
            return ()
        return self.eff_weeks[i][day.weekday()]

    def working_micros(self, day: date, clock: _Clock) -> list[tuple[int, int, int]]:
        """:meth:`working` in epoch microseconds (the common no-time-off case cached)."""
        if day in self.off_all_day:
            return []
        walls = self.walls(day)
        if not walls:
            return []
        if not self.off.get(day):
            return clock.ranges_micros(day, walls)
        return _micros_triples(self.working(day, clock))

    def working(self, day: date, clock: _Clock) -> list[tuple[datetime, datetime, datetime]]:
        """UTC working intervals of ``day`` as (start, end, grid anchor), sorted."""
        if day in self.off_all_day:
            return []
        walls = self.walls(day)
        if not walls:
            return []
        base = clock.ranges(day, walls)
        off = self.off.get(day)
        if not off:
            return base
        holes = merge_pairs((clock.instant(day, s), clock.instant(day, e)) for s, e in off)
        out = []
        for start, end, anchor in base:
            for s, e in subtract_pairs([(start, end)], holes):
                out.append((s, e, anchor))
        return out


def _micros_triples(
    triples: list[tuple[datetime, datetime, datetime]],
) -> list[tuple[int, int, int]]:
    return [(to_micros(s), to_micros(e), to_micros(a)) for s, e, a in triples]


def working_intervals(schedule: TherapistSchedule, day: date, tz: ZoneInfo) -> list[Interval]:
    """UTC working intervals of ``schedule`` on the local date ``day`` in zone ``tz``.

    Weekly hours (version in force on ``day``), "hours" overrides and "off" overrides are
    applied; closures are not (they are clinic-wide, see :func:`find_slots`).
    """
    prepared = _Prepared(schedule, day, day)
    return [Interval(s, e) for s, e, _ in prepared.working(day, _Clock(tz))]


#: One working interval in epoch microseconds: ``(start, end, grid anchor)``.
Triple = tuple[int, int, int]


def working_micros(
    schedules: Iterable[TherapistSchedule], days: Sequence[date], tz: ZoneInfo
) -> dict[int, dict[date, tuple[Triple, ...]]]:
    """Working intervals per therapist id and local date in ``days``, in epoch microseconds.

    What :func:`find_slots_epoch` walks: ``(start, end, grid anchor)``, sorted; closures are
    not applied. They depend on the schedules and the zone alone, so a caller holding those
    fixed (the service layer's catalogue) may keep the result and pass it back in.
    """
    out: dict[int, dict[date, tuple[Triple, ...]]] = {}
    if not days:
        return {schedule.therapist_id: {} for schedule in schedules}
    first, last = min(days), max(days)
    clock = _Clock(tz)  # shared: therapists with the same hours convert each wall time once
    for schedule in schedules:
        prepared = _Prepared(schedule, first, last)
        out[schedule.therapist_id] = {
            day: tuple(prepared.working_micros(day, clock)) for day in days}
    return out


def _closed_days(closures: Sequence[tuple[date, date]], first: date, last: date) -> set[date]:
    closed: set[date] = set()
    for start, end in closures:
        day = max(start, first)
        stop = min(end, last)
        while day <= stop:
            closed.add(day)
            day += ONE_DAY
    return closed


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def to_micros(value: datetime) -> int:
    """``value`` (aware) as whole microseconds since the Unix epoch: exact, unlike floats."""
    return (value - _EPOCH) // _MICROSECOND


def from_micros(value: int) -> datetime:
    """The aware UTC datetime of epoch microseconds ``value``."""
    return _EPOCH + timedelta(microseconds=value)


# Later than any instant a datetime can hold (year 9999 is ~2.5e17 microseconds).
_FAR = 1 << 62


def _merged_micros(pairs: Iterable[tuple[int, int]]) -> tuple[list[int], list[int]]:
    """Sorted starts and ends of the union of ``pairs`` (epoch microseconds), each ending
    with a sentinel ``_FAR``: ``starts[bisect_right(ends, a)] < b`` is then the whole test
    "``[a, b)`` overlaps a busy interval", with no bounds check."""
    merged = merge_pairs(pairs)
    starts = [p[0] for p in merged]
    ends = [p[1] for p in merged]
    starts.append(_FAR)
    ends.append(_FAR)
    return starts, ends


def find_slots(
    *,
    service: ServiceSpec,
    rules: Rules,
    now: datetime,
    date_from: date,
    date_to: date,
    therapists: Sequence[TherapistSchedule],
    closures: Sequence[tuple[date, date]],
    therapist_busy: Mapping[int, Sequence[Interval]],
    room_busy: Mapping[int, Sequence[Interval]],
) -> list[Slot]:
    """Every bookable slot on the local dates ``date_from..date_to`` (inclusive).

    See the module docstring for the rules. Busy lists may be unsorted and overlapping; a
    therapist or room missing from its mapping is free. The result is sorted by
    ``(start, therapist_id)``; each slot carries the lowest free room id.
    """

    def micros(busy: Mapping[int, Sequence[Interval]]) -> dict[int, list[tuple[int, int]]]:
        return {key: [(to_micros(as_utc(iv.start)), to_micros(as_utc(iv.end))) for iv in ivs]
                for key, ivs in busy.items()}

    return find_slots_epoch(
        service=service, rules=rules, now=now, date_from=date_from, date_to=date_to,
        therapists=therapists, closures=closures, therapist_busy=micros(therapist_busy),
        room_busy=micros(room_busy))


def find_slots_epoch(
    *,
    service: ServiceSpec,
    rules: Rules,
    now: datetime,
    date_from: date,
    date_to: date,
    therapists: Sequence[TherapistSchedule],
    closures: Sequence[tuple[date, date]],
    therapist_busy: Mapping[int, Sequence[tuple[int, int]]],
    room_busy: Mapping[int, Sequence[tuple[int, int]]],
    working: Mapping[int, Mapping[date, Sequence[Triple]]] | None = None,
) -> list[Slot]:
    """:func:`find_slots` with busy time as ``(start, end)`` epoch microseconds.

    The hot path: the database computes those numbers, so no datetime is built per busy
    interval, and the walk compares integers. ``working`` is as for :func:`find_slot_starts`.
    """
    return slots_from_starts(
        find_slot_starts(
            service=service, rules=rules, now=now, date_from=date_from, date_to=date_to,
            therapists=therapists, closures=closures, therapist_busy=therapist_busy,
            room_busy=room_busy, working=working),
        service.duration // _MICROSECOND)


def find_slot_starts(
    *,
    service: ServiceSpec,
    rules: Rules,
    now: datetime,
    date_from: date,
    date_to: date,
    therapists: Sequence[TherapistSchedule],
    closures: Sequence[tuple[date, date]],
    therapist_busy: Mapping[int, Sequence[tuple[int, int]]],
    room_busy: Mapping[int, Sequence[tuple[int, int]]],
    working: Mapping[int, Mapping[date, Sequence[Triple]]] | None = None,
) -> list[tuple[int, int, int]]:
    """The slots of :func:`find_slots_epoch` as sorted ``(start, therapist_id, room_id)``.

    ``start`` is in epoch microseconds; each slot ends ``service.duration`` later (see
    :func:`slots_from_starts`). ``working`` is :func:`working_micros` of ``therapists`` for
    (at least) every date of ``date_from..date_to``, e.g. a caller's memo; None computes it.
    Each room's index is built only when a candidate the therapist is free for reaches that
    room.
    """
    now = as_utc(now)
    tz = rules.tz
    step = rules.step // _MICROSECOND
    earliest_dt = now + rules.min_notice
    earliest = to_micros(earliest_dt)
    first_day = max(date_from, earliest_dt.astimezone(tz).date())
    last_day = min(date_to, (now + rules.horizon).astimezone(tz).date())
    if first_day > last_day:
        return []
    room_ids = sorted(set(service.room_ids))
    if not room_ids:
        return []
    # [room id, starts, ends] in room order; starts/ends are built (_merged_micros) only when
    # a candidate the therapist is free for reaches that room.
    rooms: list[list[Any]] = [[room_id, None, None] for room_id in room_ids]
    closed = _closed_days(closures, first_day, last_day)
    days = []
    day = first_day
    while day <= last_day:
        if day not in closed:
            days.append(day)
        day += ONE_DAY
    if not days:
        return []
    if working is None:
        working = working_micros(therapists, days, tz)

    duration = service.duration // _MICROSECOND
    before = service.buffer_before // _MICROSECOND
    tail = duration + service.buffer_after // _MICROSECOND
    found: list[tuple[int, int, int]] = []
    append = found.append
    for schedule in therapists:
        tid = schedule.therapist_id
        by_day = working[tid]
        busy_starts, busy_ends = _merged_micros(therapist_busy.get(tid, ()))
        for day in days:
            for w_start, w_end, anchor in by_day[day]:
                last = w_end - duration
                lo = w_start if w_start > earliest else earliest
                s = anchor if lo <= anchor else anchor - ((anchor - lo) // step) * step
                while s <= last:
                    i = bisect_right(busy_ends, s - before)
                    if busy_starts[i] < s + tail:
                        # Jump past the busy interval: next s with s - before >= its end.
                        nxt = busy_ends[i] + before
                        s = anchor - ((anchor - nxt) // step) * step if nxt > anchor else anchor
                        continue
                    # The therapist is free for every start up to the next busy interval.
                    free_last = busy_starts[i] - tail
                    if free_last > last:
                        free_last = last
                    while s <= free_last:
                        # The lowest free room at s, and how long that stays the answer: up
                        # to its own next busy interval, and while every lower room stays
                        # held by the interval that blocks it now (until a start of `until`).
                        b_start = s - before
                        b_end = s + tail
                        until = _FAR
                        room_id = None
                        for room in rooms:
                            r_ends = room[2]
                            if r_ends is None:
                                room[1], room[2] = _merged_micros(room_busy.get(room[0], ()))
                                r_ends = room[2]
                            j = bisect_right(r_ends, b_start)
                            next_start = room[1][j]
                            if next_start >= b_end:
                                room_id = room[0]
                                hold = next_start - tail
                                break
                            if r_ends[j] + before < until:
                                until = r_ends[j] + before
                        if room_id is None:  # every room is held until `until` at least
                            s = anchor - ((anchor - until) // step) * step
                            continue
                        stop = free_last if free_last < hold else hold
                        if stop >= until:
                            stop = until - 1
                        while s <= stop:
                            append((s, tid, room_id))
                            s += step
    found.sort()
    return found


def slots_from_starts(found: Iterable[tuple[int, int, int]], duration: int) -> list[Slot]:
    """:class:`Slot` values of :func:`find_slot_starts`'s result; ``duration`` in microseconds.

    One datetime per distinct instant: slots of several therapists share starts and ends.
    """
    instants: dict[int, datetime] = {}

    def instant(micros: int) -> datetime:
        value = instants.get(micros)
        if value is None:
            value = instants[micros] = from_micros(micros)
        return value

    return [Slot(instant(s), instant(s + duration), tid, room_id) for s, tid, room_id in found]


def check_start(
    *,
    start: datetime,
    therapist_id: int,
    service: ServiceSpec,
    rules: Rules,
    now: datetime,
    therapists: Sequence[TherapistSchedule],
    closures: Sequence[tuple[date, date]],
    therapist_busy: Mapping[int, Sequence[Interval]],
    room_busy: Mapping[int, Sequence[Interval]],
) -> Slot:
    """Re-check one requested start server-side and return its :class:`Slot`.

    Accepts exactly the starts :func:`find_slots` would offer for the same data. Otherwise
    raises :class:`SlotError` with the first failing code, in the order of
    :data:`ERROR_CODES`. An unknown therapist is ``outside_hours``. When moving a booking,
    leave that booking out of the busy lists.
    """
    start = as_utc(start)
    now = as_utc(now)
    tz = rules.tz
    if start < now:
        raise SlotError("in_past")
    if start < now + rules.min_notice:
        raise SlotError("too_soon")
    day = start.astimezone(tz).date()
    if day > (now + rules.horizon).astimezone(tz).date():
        raise SlotError("beyond_horizon")
    if any(first <= day <= last for first, last in closures):
        raise SlotError("closed")
    schedule = next((t for t in therapists if t.therapist_id == therapist_id), None)
    if schedule is None:
        raise SlotError("outside_hours", "unknown therapist")
    end = start + service.duration
    working = _Prepared(schedule, day, day).working(day, _Clock(tz))
    anchor = next((a for s, e, a in working if s <= start and end <= e), None)
    if anchor is None:
        raise SlotError("outside_hours")
    if (start - anchor) % rules.step:
        raise SlotError("not_on_step")
    b_start = start - service.buffer_before
    b_end = end + service.buffer_after
    if not BusyIndex(therapist_busy.get(therapist_id, ())).is_free(b_start, b_end):
        raise SlotError("therapist_busy")
    for room_id in sorted(set(service.room_ids)):
        if BusyIndex(room_busy.get(room_id, ())).is_free(b_start, b_end):
            return Slot(start, end, therapist_id, room_id)
    raise SlotError("no_room")
