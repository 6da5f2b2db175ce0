"""Slot search benchmark: seed a year of bookings, then time ``search_slots`` in-process.

Usage (from the repository root, with the project installed)::

    python bench/availability.py --db sqlite                      # a temporary SQLite file
    python bench/availability.py --db postgresql --url postgresql+psycopg://postgres@127.0.0.1/bench
    python bench/availability.py --db sqlite --shape clinic --runs 500

WARNING: with ``--db postgresql`` every table of the models in the target database is DROPPED
and recreated. Point ``--url`` at a scratch database.

Shapes (both: 10 therapists working Mon-Sat 09:00-17:00 local with a 12:00-13:00 break,
Europe/London, bookings from 195 days before "now" to 195 days after):

* ``peer`` (default): the shape of the peers' measurements in engineering.md -- one 60-minute
  service without buffers, 6 one-hour bookings per therapist-day (09, 10, 11, 13, 14, 15 local;
  16:00 stays free), about 20,000 bookings. Each therapist has a room of their own, so the room
  check runs but never decides (10 therapists booked at the same hour need 10 rooms: the
  PostgreSQL room exclusion constraint would refuse them in 4).
* ``clinic``: the same therapists sharing **4 rooms**, four services (30, 60, 75 and 90
  minutes, 15-minute buffer after), bookings filling about 85% of the room time plus 10%
  cancelled rows, about 7,000 bookings. Room availability decides the slots here.

Measured (``--runs`` times each, after a warm-up): ``search_slots`` for the 60-minute service,
all therapists, 14 days; one therapist, one day; all therapists, one day. Each call ends its
transaction (as a request does); the time includes that. "client CPU" is the calling thread's
CPU time (``time.thread_time``): unlike wall time it hardly moves when other processes compete
for the CPUs, but it leaves out the PostgreSQL server's own work. SQL statements are counted with a
``before_cursor_execute`` engine event (``BEGIN``/``COMMIT`` excluded).
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import sqlite3
import statistics
import sys
import tempfile
import time as _time
from collections.abc import Callable
from datetime import UTC
from datetime import date
from datetime import datetime
from datetime import time
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import event
from sqlalchemy import func
from sqlalchemy import insert
from sqlalchemy import select
from sqlalchemy import text
from sqlalchemy.orm import Session

ZONE = ZoneInfo("Europe/London")
# "Now" for the measurements: a Monday 08:00 local, in winter (GMT), well inside the data.
NOW = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
DAYS_BACK = 195
DAYS_AHEAD = 195
THERAPISTS = 10
HOURS = [(time(9), time(12)), (time(13), time(17))]
PEER_STARTS = [time(9), time(10), time(11), time(13), time(14), time(15)]


def utc(day: date, at: time) -> datetime:
    """Local wall-clock ``at`` on ``day`` in the clinic zone, as UTC (DST-correct)."""
    return datetime.combine(day, at, tzinfo=ZONE).astimezone(UTC)


def working_days() -> list[date]:
    today = NOW.astimezone(ZONE).date()
    days = [today + timedelta(days=d) for d in range(-DAYS_BACK, DAYS_AHEAD + 1)]
    return [d for d in days if d.weekday() < 6]


def build_app(url: str, instance: str) -> Any:
    from clinic_app import create_app

    return create_app({
        "DATABASE_URL": url,
        "INSTANCE_PATH": instance,
        "SECRET_KEY": "benchmark-secret-key-long-enough",
        "TIMEZONE": "Europe/London",
        "RATELIMIT_STORAGE_URL": "memory://",
    })


def reset_schema(engine: Any) -> None:
    from clinic_app import models  # noqa: F401  (complete metadata)
    from clinic_app.db import Base

    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.execute(text("CREATE EXTENSION IF NOT EXISTS btree_gist"))
    Base.metadata.drop_all(engine)
    Base.metadata.create_all(engine)


def seed(session: Session, shape: str) -> dict[str, Any]:
    """Bulk-insert the data set with Core statements; returns ids and counts."""
    from clinic_app.models import Booking
    from clinic_app.models import ClinicSettings
    from clinic_app.models import Room
    from clinic_app.models import Service
    from clinic_app.models import Therapist
    from clinic_app.models import User
    from clinic_app.models import WeeklyHours
    from clinic_app.models.schedule import service_rooms
    from clinic_app.models.schedule import service_therapists

    rng = random.Random(20261123)
    created = NOW - timedelta(days=DAYS_BACK + 1)
    session.execute(insert(ClinicSettings), [{
        "name": "Benchmark Clinic", "timezone": ZONE.key, "min_notice_minutes": 240,
        "horizon_days": 90, "slot_step_minutes": 15, "cancel_cutoff_hours": 24,
        "max_upcoming_per_client": 6, "reminder_offsets_hours": "48,24", "retention_years": 8,
        "address": "", "phone": ""}])
    user_rows = [{"email": f"therapist{i}@bench.example", "name": f"Therapist {i}",
                  "role": "therapist", "created_at": created} for i in range(THERAPISTS)]
    user_rows += [{"email": f"client{i}@bench.example", "name": f"Client {i}",
                   "role": "client", "created_at": created} for i in range(300)]
    session.execute(insert(User), user_rows)
    users = dict(session.execute(select(User.email, User.id)).all())
    client_ids = [users[f"client{i}@bench.example"] for i in range(300)]
    session.execute(insert(Therapist), [
        {"user_id": users[f"therapist{i}@bench.example"], "feed_token": f"bench-feed-{i}",
         "bio": "", "active": True} for i in range(THERAPISTS)])
    therapist_ids = list(session.scalars(select(Therapist.id).order_by(Therapist.id)))
    session.execute(insert(WeeklyHours), [
        {"therapist_id": t, "weekday": wd, "start_time": a, "end_time": b,
         "effective_from": date(2025, 1, 1)}
        for t in therapist_ids for wd in range(6) for a, b in HOURS])
    n_rooms = THERAPISTS if shape == "peer" else 4
    session.execute(insert(Room), [{"name": f"Room {i + 1}", "active": True}
                                   for i in range(n_rooms)])
    room_ids = list(session.scalars(select(Room.id).order_by(Room.id)))
    if shape == "peer":
        services = [("Trigger point 60", 60, 0)]
    else:
        services = [("Trigger point 60", 60, 15), ("Trigger point 30", 30, 15),
                    ("Trigger point 90", 90, 15), ("First visit 75", 75, 15)]
    session.execute(insert(Service), [
        {"name": n, "duration_minutes": m, "buffer_before_minutes": 0, "buffer_after_minutes": a,
         "price_cents": 65 * m, "active": True, "is_first_visit": m == 75, "description": ""}
        for n, m, a in services])
    service_ids = dict(session.execute(select(Service.name, Service.id)).all())
    session.execute(insert(service_therapists), [
        {"service_id": s, "therapist_id": t} for s in service_ids.values() for t in therapist_ids])
    session.execute(insert(service_rooms), [
        {"service_id": s, "room_id": r} for s in service_ids.values() for r in room_ids])

    def row(client: int, therapist: int, service: int, room: int, start: datetime,
            minutes: int, after: int, status: str = "booked") -> dict[str, Any]:
        end = start + timedelta(minutes=minutes)
        return {"client_id": client, "therapist_id": therapist, "service_id": service,
                "room_id": room, "start_at": start, "end_at": end, "blocked_start": start,
                "blocked_end": end + timedelta(minutes=after),
                "status": status if start > NOW or status == "cancelled" else "completed",
                "late_cancel": False, "cancel_reason": "", "early_confirmed": False,
                "price_cents": 65 * minutes, "sequence": 0, "note": "",
                "created_at": created, "updated_at": created,
                "cancelled_at": created if status == "cancelled" else None}

    bookings: list[dict[str, Any]] = []
    if shape == "peer":
        sid = service_ids["Trigger point 60"]
        for day in working_days():
            for ti, t in enumerate(therapist_ids):
                for at in PEER_STARTS:
                    bookings.append(row(rng.choice(client_ids), t, sid, room_ids[ti],
                                        utc(day, at), 60, 0))
    else:
        # Every room runs the same five sessions a day; session k in room r goes to a
        # therapist that no other room has at that time, so nothing overlaps.
        plan = [(time(9, 0), "Trigger point 60"), (time(10, 15), "Trigger point 90"),
                (time(13, 0), "First visit 75"), (time(14, 30), "Trigger point 30"),
                (time(15, 15), "Trigger point 60")]
        minutes = {n: m for n, m, _ in services}
        for di, day in enumerate(working_days()):
            for ri, r in enumerate(room_ids):
                for k, (at, name) in enumerate(plan):
                    t = therapist_ids[(ri + 4 * k + di) % THERAPISTS]
                    start = utc(day, at)
                    if rng.random() < 0.10:  # a cancelled booking that once held the time
                        bookings.append(row(rng.choice(client_ids), t, service_ids[name], r,
                                            start, minutes[name], 15, "cancelled"))
                    if rng.random() < 0.85:
                        bookings.append(row(rng.choice(client_ids), t, service_ids[name], r,
                                            start, minutes[name], 15))
    for i in range(0, len(bookings), 5000):
        session.execute(insert(Booking), bookings[i:i + 5000])
    session.commit()
    return {"therapist_ids": therapist_ids, "service_id": service_ids["Trigger point 60"],
            "rooms": len(room_ids), "services": len(service_ids)}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def measure(session: Session, engine: Any, call: Callable[[], Any], runs: int,
            warmup: int) -> dict[str, Any]:
    """Time ``call`` (plus the end of its transaction) ``runs`` times; count its statements."""
    statements: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        head = statement.lstrip()[:8].upper()
        if not (head.startswith("BEGIN") or head.startswith("COMMIT")
                or head.startswith("ROLLBACK")):
            statements.append(statement)

    for _ in range(warmup):
        call()
        session.rollback()
    timings: list[float] = []
    cpu: list[float] = []
    slots = 0
    event.listen(engine, "before_cursor_execute", count)
    try:
        for _ in range(runs):
            started = _time.perf_counter()
            cpu_started = _time.thread_time()
            _, found = call()
            session.rollback()
            timings.append((_time.perf_counter() - started) * 1000)
            cpu.append((_time.thread_time() - cpu_started) * 1000)
            slots = len(found)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    return {
        "p50": statistics.median(timings),
        "p95": percentile(timings, 0.95),
        "max": max(timings),
        "cpu_p50": statistics.median(cpu),
        "statements": len(statements) / runs,
        "slots": slots,
    }


def machine(engine: Any) -> dict[str, str]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            server = "PostgreSQL " + str(conn.execute(text("SHOW server_version")).scalar())
        else:
            server = "SQLite " + sqlite3.sqlite_version
    return {"cpus": str(os.cpu_count()), "cpu": cpu, "python": platform.python_version(),
            "database": server, "platform": platform.platform()}


def _load() -> str:
    """The 1-minute load average: other work on the machine shows up in the timings."""
    try:
        return f"{os.getloadavg()[0]:.2f}"
    except OSError:
        return "n/a"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--url", help="database URL (required for postgresql; DROPS tables)")
    parser.add_argument("--shape", choices=("peer", "clinic"), default="peer")
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    args = parser.parse_args(argv)

    tmp = tempfile.TemporaryDirectory(prefix="clinic-bench-")
    url = args.url
    if args.db == "sqlite" and not url:
        url = f"sqlite:///{tmp.name}/bench.sqlite3"
    if args.db == "postgresql" and not url:
        parser.error("--db postgresql needs --url postgresql+psycopg://user@host/scratch_db")
    app = build_app(url, str(Path(tmp.name) / "instance"))

    from clinic_app.extensions import db
    from clinic_app.models import Booking
    from clinic_app.services.availability import search_slots

    with app.app_context():
        engine = db.engine
        reset_schema(engine)
        started = _time.perf_counter()
        info = seed(db.session, args.shape)
        seeded_in = _time.perf_counter() - started
        with engine.begin() as conn:
            conn.execute(text("ANALYZE"))
        session = db.session
        total = session.scalar(select(func.count(Booking.id)))
        active = session.scalar(select(func.count(Booking.id)).where(
            Booking.status != "cancelled"))
        session.rollback()
        today = NOW.astimezone(ZONE).date()
        sid = info["service_id"]
        calls = {
            "all therapists, 14 days": lambda: search_slots(
                session, service_id=sid, date_from=today, date_to=today + timedelta(days=13),
                now=NOW),
            "one therapist, one day": lambda: search_slots(
                session, service_id=sid, date_from=today + timedelta(days=1),
                date_to=today + timedelta(days=1), therapist_id=info["therapist_ids"][0],
                now=NOW),
            "all therapists, one day": lambda: search_slots(
                session, service_id=sid, date_from=today + timedelta(days=1),
                date_to=today + timedelta(days=1), now=NOW),
        }
        load_before = _load()
        results = {name: measure(session, engine, call, args.runs, args.warmup)
                   for name, call in calls.items()}
        box = machine(engine)

    print(f"# slot search benchmark: {args.db}, shape {args.shape}")
    print(f"machine: {box['cpus']} CPUs, {box['cpu']}; Python {box['python']}; "
          f"{box['database']}; {box['platform']}")
    print(f"data: {THERAPISTS} therapists, {info['rooms']} rooms, {info['services']} services, "
          f"{total} bookings ({active} active), {DAYS_BACK} days back to {DAYS_AHEAD} ahead; "
          f"seeded in {seeded_in:.1f} s")
    print(f"runs: {args.runs} per call after {args.warmup} warm-up; now = {NOW.isoformat()}; "
          f"load average before/after: {load_before} / {_load()}")
    print()
    print("| call | p50 ms | p95 ms | max ms | client CPU p50 ms | SQL statements | slots |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, r in results.items():
        print(f"| {name} | {r['p50']:.2f} | {r['p95']:.2f} | {r['max']:.2f} | "
              f"{r['cpu_p50']:.2f} | {r['statements']:g} | {r['slots']} |")
    tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
