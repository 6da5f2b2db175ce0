"""The slot search as it was before the epoch-microsecond fast path (reference only).

Kept, verbatim apart from its name, so that tests can prove the new
:func:`clinic_app.scheduling.availability.find_slots_epoch` path (and the cached database path
of ``search_slots``) offers exactly the same slots on random data. Not used by the app.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Mapping
from collections.abc import Sequence
from datetime import date
from datetime import datetime
from datetime import timedelta

from clinic_app.scheduling.availability import ONE_DAY
from clinic_app.scheduling.availability import Rules
from clinic_app.scheduling.availability import ServiceSpec
from clinic_app.scheduling.availability import Slot
from clinic_app.scheduling.availability import TherapistSchedule
from clinic_app.scheduling.availability import _Clock
from clinic_app.scheduling.availability import _closed_days
from clinic_app.scheduling.availability import _Prepared
from clinic_app.scheduling.intervals import BusyIndex
from clinic_app.scheduling.intervals import Interval
from clinic_app.scheduling.intervals import as_utc


def _grid_at_or_after(anchor: datetime, instant: datetime, step: timedelta) -> datetime:
    """First ``anchor + k * step`` (k >= 0) that is not before ``instant``."""
    if instant <= anchor:
        return anchor
    return anchor - ((anchor - instant) // step) * step


def reference_find_slots(
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
    now = as_utc(now)
    tz = rules.tz
    step = rules.step
    earliest = now + rules.min_notice
    first_day = max(date_from, earliest.astimezone(tz).date())
    last_day = min(date_to, (now + rules.horizon).astimezone(tz).date())
    if first_day > last_day:
        return []
    rooms = [(r, BusyIndex(room_busy.get(r, ()))) for r in sorted(set(service.room_ids))]
    if not rooms:
        return []
    closed = _closed_days(closures, first_day, last_day)
    days = []
    day = first_day
    while day <= last_day:
        if day not in closed:
            days.append(day)
        day += ONE_DAY
    if not days:
        return []

    duration = service.duration
    before = service.buffer_before
    tail = duration + service.buffer_after
    clock = _Clock(tz)
    found: list[tuple[datetime, int, int]] = []
    append = found.append
    for schedule in therapists:
        tid = schedule.therapist_id
        prepared = _Prepared(schedule, first_day, last_day)
        busy = BusyIndex(therapist_busy.get(tid, ()))
        busy_ends = busy.ends
        busy_starts = busy.starts
        n_busy = len(busy_ends)
        for day in days:
            for w_start, w_end, anchor in prepared.working(day, clock):
                last = w_end - duration
                s = _grid_at_or_after(anchor, w_start if w_start > earliest else earliest, step)
                while s <= last:
                    b_start = s - before
                    b_end = s + tail
                    i = bisect_right(busy_ends, b_start)
                    if i < n_busy and busy_starts[i] < b_end:
                        # Jump past the busy interval: next s with s - before >= its end.
                        nxt = busy_ends[i] + before
                        s = anchor - ((anchor - nxt) // step) * step if nxt > anchor else anchor
                        continue
                    for room_id, room in rooms:
                        if room.is_free(b_start, b_end):
                            append((s, tid, room_id))
                            break
                    s += step
    found.sort()
    return [Slot(s, s + duration, tid, room_id) for s, tid, room_id in found]
