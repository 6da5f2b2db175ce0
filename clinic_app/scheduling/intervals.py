"""A tiny interval algebra on timezone-aware UTC datetimes.

Every interval is half-open, ``[start, end)``: an interval ending at 10:00 and one starting at
10:00 touch but do not overlap. Aware datetimes in other zones are accepted and normalised to UTC
when an :class:`Interval` is built, so comparisons always take CPython's fast same-tzinfo path.

Two layers are offered:

* :class:`Interval` values with :func:`merge`, :func:`subtract`, :func:`overlaps`,
  :func:`contains` and :func:`intersect`, for readable code and tests;
* the ``*_pairs`` functions and :class:`BusyIndex`, which work on plain ``(start, end)`` tuples
  without building an object per interval, for the hot path of the slot search.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from datetime import timedelta

Pair = tuple[datetime, datetime]


def as_utc(value: datetime) -> datetime:
    """Return ``value`` as an aware UTC datetime; raise ``ValueError`` if it is naive."""
    tzinfo = value.tzinfo
    if tzinfo is UTC:
        return value
    if tzinfo is None or tzinfo.utcoffset(value) is None:
        raise ValueError(f"naive datetime not allowed: {value!r}")
    return value.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class Interval:
    """A half-open span of time ``[start, end)`` with ``start < end``, stored in UTC."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        """Normalise both ends to UTC and reject naive or empty intervals."""
        start = as_utc(self.start)
        end = as_utc(self.end)
        if not start < end:
            raise ValueError(f"interval must have start < end: {start} .. {end}")
        object.__setattr__(self, "start", start)
        object.__setattr__(self, "end", end)

    @property
    def duration(self) -> timedelta:
        """Length of the interval as a ``timedelta``."""
        return self.end - self.start

    def as_pair(self) -> Pair:
        """Return ``(start, end)``."""
        return (self.start, self.end)


def overlaps(a: Interval, b: Interval) -> bool:
    """True if the half-open intervals share at least one instant (touching is not overlap)."""
    return a.start < b.end and b.start < a.end


def contains(outer: Interval, inner: Interval) -> bool:
    """True if ``inner`` lies entirely inside ``outer``."""
    return outer.start <= inner.start and inner.end <= outer.end


def intersect(a: Interval, b: Interval) -> Interval | None:
    """The common part of ``a`` and ``b``, or ``None`` if they do not overlap."""
    start = max(a.start, b.start)
    end = min(a.end, b.end)
    return Interval(start, end) if start < end else None


def merge_pairs(pairs: Iterable[Pair]) -> list[Pair]:
    """Sort ``(start, end)`` pairs and fuse overlapping or touching ones.

    Empty pairs (``start >= end``) are dropped. The result is sorted, disjoint and non-touching,
    so both its starts and its ends are strictly increasing.
    """
    ordered = sorted(pairs)
    out: list[Pair] = []
    i = 0
    n = len(ordered)
    while i < n and not ordered[i][0] < ordered[i][1]:
        i += 1
    if i == n:
        return out
    cur_start, cur_end = ordered[i]
    for start, end in ordered[i + 1 :]:
        if start >= end:
            continue
        if start <= cur_end:
            if end > cur_end:
                cur_end = end
        else:
            out.append((cur_start, cur_end))
            cur_start, cur_end = start, end
    out.append((cur_start, cur_end))
    return out


def subtract_pairs(base: list[Pair], holes: list[Pair]) -> list[Pair]:
    """Remove ``holes`` from ``base``; both must be merged (sorted, disjoint) pair lists."""
    if not holes:
        return list(base)
    out: list[Pair] = []
    n = len(holes)
    h = 0
    for start, end in base:
        while h < n and holes[h][1] <= start:
            h += 1
        cur = start
        j = h
        while j < n and holes[j][0] < end:
            hole_start, hole_end = holes[j]
            if hole_start > cur:
                out.append((cur, hole_start))
            if hole_end > cur:
                cur = hole_end
            if cur >= end:
                break
            j += 1
        if cur < end:
            out.append((cur, end))
    return out


def merge(intervals: Iterable[Interval]) -> list[Interval]:
    """Sorted union of ``intervals``; overlapping and touching intervals are fused."""
    return [Interval(s, e) for s, e in merge_pairs((iv.start, iv.end) for iv in intervals)]


def subtract(base: Iterable[Interval], holes: Iterable[Interval]) -> list[Interval]:
    """The parts of ``base`` covered by no interval of ``holes``, sorted and merged.

    Inputs may be unsorted and overlapping.
    """
    pieces = subtract_pairs(
        merge_pairs((iv.start, iv.end) for iv in base),
        merge_pairs((iv.start, iv.end) for iv in holes),
    )
    return [Interval(s, e) for s, e in pieces]


class BusyIndex:
    """Sorted, merged busy time answering "is ``[start, end)`` free?" with one bisection.

    Built once per call from an unsorted sequence of :class:`Interval` (or anything with
    ``start``/``end`` aware datetimes); each query is O(log n).
    """

    __slots__ = ("starts", "ends")

    def __init__(self, intervals: Iterable[Interval] = ()) -> None:
        """Merge ``intervals`` and keep their starts and ends as two sorted lists."""
        pairs = []
        for iv in intervals:
            start = iv.start
            end = iv.end
            if start.tzinfo is not UTC or end.tzinfo is not UTC:
                start = as_utc(start)
                end = as_utc(end)
            pairs.append((start, end))
        pairs = merge_pairs(pairs)
        self.starts: list[datetime] = [p[0] for p in pairs]
        self.ends: list[datetime] = [p[1] for p in pairs]

    def __len__(self) -> int:
        """Number of merged busy intervals."""
        return len(self.starts)

    def conflict_end(self, start: datetime, end: datetime) -> datetime | None:
        """End of the merged busy interval overlapping ``[start, end)``, or ``None`` if free.

        The returned instant is the earliest time a blocked interval could start again.
        """
        ends = self.ends
        i = bisect_right(ends, start)
        if i < len(ends) and self.starts[i] < end:
            return ends[i]
        return None

    def is_free(self, start: datetime, end: datetime) -> bool:
        """True if ``[start, end)`` overlaps no busy interval."""
        ends = self.ends
        i = bisect_right(ends, start)
        return i == len(ends) or not self.starts[i] < end
