"""The floor for the slot search: plain ``sqlite3``, two statements, a plain interval walk.

No ORM, no validation, no overrides, closures, rooms, notice or horizon: what any slot search
has to do at least on the peers' data shape (one service, weekly hours only), so that our
search can be measured as a ratio to it in the same run (``bench/availability.py``).

``floor_slots`` is the in-process floor; ``app`` is the same work as a bare WSGI application
(JSON like ``GET /api/v1/availability``), served by the same HTTP servers as ours:
``FLOOR_DB=/path/bench.sqlite3 FLOOR_TIDS=1,2,3 gunicorn --chdir bench floor:app``.
"""

from __future__ import annotations

import json
import os
import sqlite3
from bisect import bisect_right
from datetime import UTC
from datetime import date
from datetime import datetime
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs
from zoneinfo import ZoneInfo

HOURS_SQL = (
    "SELECT therapist_id, weekday, start_time, end_time FROM weekly_hours"
    " WHERE therapist_id IN ({marks})"
)
# Bounded on both sides of blocked_start (its index) and by blocked_end (the true filter).
BUSY_SQL = (
    "SELECT therapist_id, blocked_start, blocked_end FROM bookings"
    " WHERE status != 'cancelled' AND blocked_start > ? AND blocked_start < ?"
    " AND blocked_end > ? AND therapist_id IN ({marks})"
)
MAX_BLOCKED = timedelta(hours=24)  # the model's longest hold (MAX_BLOCKED_MINUTES)


def _text(value: datetime) -> str:
    """The naive UTC text SQLite stores (``YYYY-MM-DD HH:MM:SS.ffffff``)."""
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ")


def floor_slots(conn: Any, therapist_ids: list[int], first: date, last: date,
                duration: timedelta, step: timedelta, tz: ZoneInfo) -> list[tuple[datetime, int]]:
    """(start UTC, therapist id) of every free start, sorted by start then therapist.

    ``conn`` is a plain ``sqlite3`` connection or a plain psycopg one (same two statements).
    """
    sqlite = isinstance(conn, sqlite3.Connection)
    mark = "?" if sqlite else "%s"
    marks = ",".join([mark] * len(therapist_ids))
    hours: dict[int, dict[int, list[tuple[Any, Any]]]] = {t: {} for t in therapist_ids}
    for tid, weekday, start, end in conn.execute(HOURS_SQL.format(marks=marks), therapist_ids):
        if not sqlite:  # psycopg returns time objects
            start, end = start.isoformat(), end.isoformat()
        hours[tid].setdefault(weekday, []).append((start, end))
    lo = datetime.combine(first, datetime.min.time(), tzinfo=tz).astimezone(UTC)
    hi = datetime.combine(last + timedelta(days=1), datetime.min.time(),
                          tzinfo=tz).astimezone(UTC) + duration
    busy: dict[int, list[tuple[datetime, datetime]]] = {t: [] for t in therapist_ids}
    bounds = [lo - MAX_BLOCKED, hi, lo]
    rows = conn.execute(BUSY_SQL.format(marks=marks).replace("?", mark),
                        [*(map(_text, bounds) if sqlite else bounds), *therapist_ids])
    for tid, start, end in rows.fetchall():
        if sqlite:
            start = datetime.fromisoformat(start + "+00:00")
            end = datetime.fromisoformat(end + "+00:00")
        else:  # psycopg gives the session's zone; UTC keeps comparisons on the fast path
            start, end = start.astimezone(UTC), end.astimezone(UTC)
        busy[tid].append((start, end))
    found: list[tuple[datetime, int]] = []
    for tid in therapist_ids:
        spans = sorted(busy[tid])
        ends = [e for _, e in spans]
        day = first
        while day <= last:
            for start, end in hours[tid].get(day.weekday(), ()):
                s = datetime.combine(day, datetime.strptime(start[:5], "%H:%M").time(),
                                     tzinfo=tz).astimezone(UTC)
                stop = datetime.combine(day, datetime.strptime(end[:5], "%H:%M").time(),
                                        tzinfo=tz).astimezone(UTC)
                while s + duration <= stop:
                    i = bisect_right(ends, s)
                    if i == len(spans) or not spans[i][0] < s + duration:
                        found.append((s, tid))
                    s += step
            day += timedelta(days=1)
    found.sort()
    return found


_CONN: sqlite3.Connection | None = None


def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    """``GET /?from=YYYY-MM-DD&to=YYYY-MM-DD[&therapist_id=N]``: the floor as JSON."""
    global _CONN
    if _CONN is None:  # one connection per process (WSGI servers import once, then fork)
        _CONN = sqlite3.connect(os.environ["FLOOR_DB"], check_same_thread=False)
    query = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
    tz = ZoneInfo(os.environ.get("FLOOR_TZ", "Europe/London"))
    if "therapist_id" in query:
        tids = [int(query["therapist_id"])]
    else:  # the benchmark passes the ids: the floor has two statements, no catalogue read
        tids = [int(t) for t in os.environ["FLOOR_TIDS"].split(",")]
    slots = floor_slots(_CONN, tids, date.fromisoformat(query["from"]),
                        date.fromisoformat(query["to"]), timedelta(minutes=60),
                        timedelta(minutes=30), tz)
    hour = timedelta(minutes=60)
    body = json.dumps({"timezone": tz.key, "slots": [
        {"start": s.astimezone(tz).isoformat(), "end": (s + hour).astimezone(tz).isoformat(),
         "therapist_id": t} for s, t in slots]}).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(body)))])
    return [body]
