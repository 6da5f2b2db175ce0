"""Slot search benchmark: ours beside the floor, in-process and over HTTP, interleaved.

Usage (from the repository root, with the project installed)::

    python bench/availability.py                                  # SQLite, shape peers
    python bench/availability.py --http                           # + waitress and gunicorn
    python bench/availability.py --db postgresql --url postgresql+psycopg://postgres@127.0.0.1/bench
    python bench/availability.py --shape clinic --runs 500 --json out.json

WARNING: with ``--db postgresql`` every table of the models in the target database is DROPPED
and recreated. Point ``--url`` at a scratch database.

Shapes:

* ``peers`` (default): the peers' data shape exactly as issue 14 gives it (``random.seed(42)``,
  today-180 .. today+180 without Sundays, 6 random one-hour bookings per therapist-day, one
  60-minute service, Mon-Sat 09-17 without a break, 30-minute step; queries from today+10),
  measured beside the floor (``bench/floor.py``: plain sqlite3 or psycopg, two statements, a
  plain walk) on the same database; over HTTP the floor is a bare WSGI app under the same
  server. Ratios ours / floor at p50 are printed per call.
* ``peer``: the older fixed shape (6 bookings per day at fixed hours, a 12-13 break).
* ``clinic``: 10 therapists sharing **4 rooms**, four services with buffers, ~85% room
  occupancy plus 10% cancelled rows: room availability decides the slots.

Calls: one therapist one day, all therapists one day, all therapists 14 days. Each case runs
once per round in rotating order, so machine noise hits every case alike. In-process calls run
inside ``read_only()`` and end their transaction, as a GET request does. SQL statements are
counted with a ``before_cursor_execute`` engine event (``BEGIN``/``COMMIT`` excluded).
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


# --------------------------------------------------------------------------- peers shape


def seed_peers(session: Session, today: date) -> dict[str, Any]:
    """The peers' data shape, exactly as issue 14 gives it (``random.seed(42)``).

    Dates today-180 .. today+180 without Sundays; for each date and therapist 1..10,
    ``sorted(random.sample(range(9, 17), 6))`` one-hour bookings; one 60-minute service without
    buffers; Mon-Sat 09:00-17:00 without a break; 30-minute step. One room per therapist (the
    room check runs but never decides, as in the peers, who have no rooms).
    """
    from clinic_app.models import Booking
    from clinic_app.models import ClinicSettings
    from clinic_app.models import Room
    from clinic_app.models import Service
    from clinic_app.models import Therapist
    from clinic_app.models import User
    from clinic_app.models import WeeklyHours
    from clinic_app.models.schedule import service_rooms
    from clinic_app.models.schedule import service_therapists

    random.seed(42)
    created = utc(today - timedelta(days=200), time(0))
    session.execute(insert(ClinicSettings), [{
        "name": "Benchmark Clinic", "timezone": ZONE.key, "min_notice_minutes": 240,
        "horizon_days": 90, "slot_step_minutes": 30, "cancel_cutoff_hours": 24,
        "max_upcoming_per_client": 6, "reminder_offsets_hours": "48,24", "retention_years": 8,
        "address": "", "phone": ""}])
    session.execute(insert(User), [
        {"email": f"therapist{i}@bench.example", "name": f"Therapist {i}", "role": "therapist",
         "created_at": created} for i in range(THERAPISTS)]
        + [{"email": "client@bench.example", "name": "Client", "role": "client",
            "created_at": created}])
    users = dict(session.execute(select(User.email, User.id)).all())
    session.execute(insert(Therapist), [
        {"user_id": users[f"therapist{i}@bench.example"], "feed_token": f"bench-feed-{i}",
         "bio": "", "active": True} for i in range(THERAPISTS)])
    therapist_ids = list(session.scalars(select(Therapist.id).order_by(Therapist.id)))
    session.execute(insert(WeeklyHours), [
        {"therapist_id": t, "weekday": wd, "start_time": time(9), "end_time": time(17),
         "effective_from": today - timedelta(days=365)}
        for t in therapist_ids for wd in range(6)])
    session.execute(insert(Room), [{"name": f"Room {i + 1}", "active": True}
                                   for i in range(THERAPISTS)])
    room_ids = list(session.scalars(select(Room.id).order_by(Room.id)))
    session.execute(insert(Service), [{
        "name": "Trigger point 60", "duration_minutes": 60, "buffer_before_minutes": 0,
        "buffer_after_minutes": 0, "price_cents": 6500, "active": True, "is_first_visit": False,
        "description": ""}])
    sid = session.scalar(select(Service.id))
    session.execute(insert(service_therapists),
                    [{"service_id": sid, "therapist_id": t} for t in therapist_ids])
    session.execute(insert(service_rooms), [{"service_id": sid, "room_id": r} for r in room_ids])
    client = users["client@bench.example"]
    now = datetime.now(UTC)
    rows: list[dict[str, Any]] = []
    for offset in range(-180, 181):
        day = today + timedelta(days=offset)
        if day.weekday() == 6:
            continue
        for ti, t in enumerate(therapist_ids):
            for hour in sorted(random.sample(range(9, 17), 6)):
                start = utc(day, time(hour))
                end = start + timedelta(hours=1)
                rows.append({
                    "client_id": client, "therapist_id": t, "service_id": sid,
                    "room_id": room_ids[ti], "start_at": start, "end_at": end,
                    "blocked_start": start, "blocked_end": end,
                    "status": "booked" if start > now else "completed", "late_cancel": False,
                    "cancel_reason": "", "early_confirmed": False, "price_cents": 6500,
                    "sequence": 0, "note": "", "created_at": created, "updated_at": created,
                    "cancelled_at": None})
    for i in range(0, len(rows), 5000):
        session.execute(insert(Booking), rows[i:i + 5000])
    session.commit()
    return {"therapist_ids": therapist_ids, "service_id": sid, "rooms": len(room_ids),
            "services": 1}


# --------------------------------------------------------------------------- interleaved runs


class Timer:
    """Wall-time samples of one measured call, with the statements it ran."""

    def __init__(self) -> None:
        self.samples: list[float] = []
        self.statements = 0.0
        self.slots = 0

    def summary(self) -> dict[str, Any]:
        return {"p50": statistics.median(self.samples), "p95": percentile(self.samples, 0.95),
                "max": max(self.samples), "statements": self.statements, "slots": self.slots}


def interleave(cases: dict[str, Callable[[], int]], runs: int, warmup: int,
               count: Callable[[str], Any] | None = None) -> dict[str, Timer]:
    """Run every case once per round, in rotating order, so machine noise hits all alike.

    Each case returns its number of slots; ``count(name)`` (optional) is a context manager
    counting the SQL statements of one call.
    """
    names = list(cases)
    timers = {name: Timer() for name in names}
    for _ in range(warmup):
        for name in names:
            cases[name]()
    for i in range(runs):
        order = names[i % len(names):] + names[:i % len(names)]
        for name in order:
            started = _time.perf_counter()
            slots = cases[name]()
            timers[name].samples.append((_time.perf_counter() - started) * 1000)
            timers[name].slots = slots
    if count is not None:
        for name in names:
            timers[name].statements = count(name)
    return timers


def statement_counter(engine: Any) -> Callable[[Callable[[], Any]], float]:
    """Statements (BEGIN/COMMIT/ROLLBACK excluded) that one call of ``fn`` runs."""

    def counted(fn: Callable[[], Any]) -> float:
        seen: list[str] = []

        def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            if not statement.lstrip()[:8].upper().startswith(("BEGIN", "COMMIT", "ROLLBACK")):
                seen.append(statement)

        event.listen(engine, "before_cursor_execute", count)
        try:
            fn()
        finally:
            event.remove(engine, "before_cursor_execute", count)
        return float(len(seen))

    return counted


def check_same_slots(timers: dict[str, Timer]) -> None:
    """Ours and the floor must find the same number of slots, or the ratio means nothing."""
    for call in CALLS:
        ours, floor = timers.get(f"ours | {call}"), timers.get(f"floor | {call}")
        if ours is not None and floor is not None and ours.slots != floor.slots:
            raise SystemExit(f"{call}: ours found {ours.slots} slots, the floor {floor.slots}")


# --------------------------------------------------------------------------- HTTP servers


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


WAITRESS = (
    "import sys, importlib; sys.path.insert(0, sys.argv[3]); from waitress import serve;"
    "mod, name = sys.argv[1].split(':'); app = getattr(importlib.import_module(mod), name);"
    "serve(app, host='127.0.0.1', port=int(sys.argv[2]), threads=8, _quiet=True)"
)


class Server:
    """A WSGI app (``module:attr``) under waitress (as ``clinic up``) or gunicorn (sync)."""

    def __init__(self, kind: str, target: str, env: dict[str, str], chdir: Path) -> None:
        import subprocess

        self.port = free_port()
        full_env = {**os.environ, **env}
        if kind == "waitress":
            cmd = [sys.executable, "-c", WAITRESS, target, str(self.port), str(chdir)]
        else:
            cmd = [sys.executable, "-m", "gunicorn", "--chdir", str(chdir), "--bind",
                   f"127.0.0.1:{self.port}", "--workers", "2", "--worker-class", "sync",
                   "--log-level", "warning", target]
        self.proc = subprocess.Popen(cmd, env=full_env, cwd=str(chdir),
                                     start_new_session=True)
        self.kind = kind
        self._wait()

    def _wait(self) -> None:
        import http.client

        deadline = _time.monotonic() + 60
        while _time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"{self.kind} exited with {self.proc.returncode}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/healthz")
                conn.getresponse().read()
                conn.close()
                return
            except OSError:
                _time.sleep(0.2)
        self.stop()
        raise SystemExit(f"{self.kind} did not start")

    def stop(self) -> None:
        import signal

        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except Exception:  # noqa: BLE001 - kill what does not stop
                self.proc.kill()
                self.proc.wait()


class HttpCaller:
    """GET over one keep-alive connection; returns the number of slots in the answer."""

    def __init__(self, port: int) -> None:
        import http.client

        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def __call__(self, path: str) -> int:
        import json

        self.conn.request("GET", path)
        response = self.conn.getresponse()
        body = response.read()
        if response.status != 200:
            raise SystemExit(f"GET {path}: {response.status} {body[:200]!r}")
        return len(json.loads(body)["slots"])


# --------------------------------------------------------------------------- main

CALLS = ("one therapist, one day", "all therapists, one day", "all therapists, 14 days")


def main(argv: list[str] | None = None) -> int:
    import json

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--url", help="database URL (required for postgresql; DROPS tables)")
    parser.add_argument("--shape", choices=("peers", "peer", "clinic"), default="peers")
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--http", action="store_true",
                        help="also measure over HTTP (waitress as under `clinic up`, gunicorn)")
    parser.add_argument("--json", help="write the results to this file too")
    args = parser.parse_args(argv)

    tmp = tempfile.TemporaryDirectory(prefix="clinic-bench-")
    url = args.url
    if args.db == "sqlite" and not url:
        url = f"sqlite:///{tmp.name}/bench.sqlite3"
    if args.db == "postgresql" and not url:
        parser.error("--db postgresql needs --url postgresql+psycopg://user@host/scratch_db")
    if args.http and args.db != "sqlite":
        parser.error("--http measures SQLite (the floor is plain sqlite3)")
    app = build_app(url, str(Path(tmp.name) / "instance"))

    from clinic_app.db import read_only
    from clinic_app.extensions import db
    from clinic_app.models import Booking
    from clinic_app.services.availability import search_slots

    peers = args.shape == "peers"
    now = datetime.now(UTC) if peers else NOW
    today = now.astimezone(ZONE).date()
    first = today + timedelta(days=10) if peers else today + timedelta(days=1)
    with app.app_context():
        engine = db.engine
        reset_schema(engine)
        started = _time.perf_counter()
        info = seed_peers(db.session, today) if peers else seed(db.session, args.shape)
        seeded_in = _time.perf_counter() - started
        with engine.begin() as conn:
            conn.execute(text("ANALYZE"))
        session = db.session
        total = session.scalar(select(func.count(Booking.id)))
        active = session.scalar(select(func.count(Booking.id)).where(
            Booking.status != "cancelled"))
        session.rollback()
        sid = info["service_id"]
        tids = info["therapist_ids"]
        ranges = {CALLS[0]: (first, first, tids[0]), CALLS[1]: (first, first, None),
                  CALLS[2]: (first if peers else today, (first if peers else today)
                             + timedelta(days=13), None)}

        def ours(name: str) -> Callable[[], int]:
            d1, d2, tid = ranges[name]

            def call() -> int:
                with read_only():  # as a GET request runs it
                    _, found = search_slots(session, service_id=sid, date_from=d1, date_to=d2,
                                            therapist_id=tid, now=now)
                    session.rollback()
                return len(found)

            return call

        cases: dict[str, Callable[[], int]] = {f"ours | {n}": ours(n) for n in CALLS}
        floor_conn: Any = None
        if peers:
            sys.path.insert(0, str(Path(__file__).resolve().parent))
            from floor import floor_slots

            if args.db == "sqlite":
                floor_conn = sqlite3.connect(url.removeprefix("sqlite:///"))
            else:
                import psycopg

                floor_conn = psycopg.connect(
                    url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True)

            def floor(name: str) -> Callable[[], int]:
                d1, d2, tid = ranges[name]
                ids = [tid] if tid is not None else list(tids)

                def call() -> int:
                    return len(floor_slots(floor_conn, ids, d1, d2, timedelta(minutes=60),
                                           timedelta(minutes=30), ZONE))

                return call

            cases.update({f"floor | {n}": floor(n) for n in CALLS})
        counter = statement_counter(engine)
        load_before = _load()
        timers = interleave(cases, args.runs, args.warmup,
                            lambda name: counter(cases[name]) if name.startswith("ours")
                            else 2.0)
        check_same_slots(timers)
        box = machine(engine)
        session.remove()
        engine.dispose()

    http_timers: dict[str, dict[str, Timer]] = {}
    if args.http:
        repo = Path(__file__).resolve().parents[1]
        db_file = url.removeprefix("sqlite:///")
        env = {"CLINIC_DATABASE_URL": url, "CLINIC_SECRET_KEY": "benchmark-secret-key-long-enough",
               "CLINIC_INSTANCE_PATH": f"{tmp.name}/served", "CLINIC_ENV": "development",
               "CLINIC_RATELIMIT_STORAGE_URL": "memory://", "CLINIC_TIMEZONE": ZONE.key,
               "FLOOR_DB": db_file, "FLOOR_TIDS": ",".join(map(str, tids))}
        for kind in ("waitress", "gunicorn"):
            servers = [Server(kind, "wsgi:app", env, repo),
                       Server(kind, "floor:app", env, repo / "bench")]
            try:
                ours_http, floor_http = HttpCaller(servers[0].port), HttpCaller(servers[1].port)
                http_cases: dict[str, Callable[[], int]] = {}
                for name in CALLS:
                    d1, d2, tid = ranges[name]
                    q = f"from={d1.isoformat()}&to={d2.isoformat()}"
                    if tid is not None:
                        q += f"&therapist_id={tid}"
                    http_cases[f"ours | {name}"] = (
                        lambda q=q, get=ours_http: get(
                            f"/api/v1/availability?service_id={sid}&{q}"))
                    http_cases[f"floor | {name}"] = lambda q=q, get=floor_http: get(f"/?{q}")
                http_timers[kind] = interleave(http_cases, args.runs, args.warmup)
                check_same_slots(http_timers[kind])
            finally:
                for server in servers:
                    server.stop()

    results: dict[str, Any] = {
        "db": args.db, "shape": args.shape, "machine": box, "runs": args.runs,
        "warmup": args.warmup, "bookings": total, "active": active,
        "rooms": info["rooms"], "services": info["services"], "therapists": THERAPISTS,
        "seeded_s": seeded_in, "now": now.isoformat(), "first_day": first.isoformat(),
        "load_before": load_before, "load_after": _load(),
        "in_process": {name: t.summary() for name, t in timers.items()},
        "http": {kind: {name: t.summary() for name, t in ts.items()}
                 for kind, ts in http_timers.items()},
    }
    print(render(results))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    if floor_conn is not None:
        floor_conn.close()
    tmp.cleanup()
    return 0


def _table(rows: dict[str, dict[str, Any]], label: str) -> list[str]:
    has_floor = any(name.startswith("floor") for name in rows)
    head = f"| call ({label}) | p50 ms | p95 ms | SQL statements | slots |"
    rule = "|---|---:|---:|---:|---:|"
    if has_floor:
        head += " floor p50 ms | floor p95 ms | ratio p50 |"
        rule += "---:|---:|---:|"
    lines = [head, rule]
    for call in CALLS:
        ours = rows.get(f"ours | {call}")
        if ours is None:
            continue
        line = (f"| {call} | {ours['p50']:.2f} | {ours['p95']:.2f} | {ours['statements']:g} "
                f"| {ours['slots']} |")
        floor = rows.get(f"floor | {call}")
        if floor is not None:
            line += (f" {floor['p50']:.2f} | {floor['p95']:.2f} | "
                     f"{ours['p50'] / floor['p50']:.2f}x |")
        lines.append(line)
    return lines


def render(results: dict[str, Any]) -> str:
    """The Markdown report of one run."""
    box = results["machine"]
    lines = [
        f"# slot search benchmark: {results['db']}, shape {results['shape']}",
        f"machine: {box['cpus']} CPUs, {box['cpu']}; Python {box['python']}; "
        f"{box['database']}; {box['platform']}",
        f"data: {results['therapists']} therapists, {results['rooms']} rooms, "
        f"{results['services']} services, {results['bookings']} bookings "
        f"({results['active']} active); seeded in {results['seeded_s']:.1f} s; "
        f"first queried day {results['first_day']}",
        f"runs: {results['runs']} per call after {results['warmup']} warm-up, interleaved; "
        f"load average before/after: {results['load_before']} / {results['load_after']}",
        "",
    ]
    lines += _table(results["in_process"], "in-process")
    for kind, rows in results["http"].items():
        lines += ["", *_table(rows, f"HTTP, {kind}")]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
