"""Load benchmark: gunicorn + PostgreSQL, concurrent API users on 127.0.0.1.

Usage (from the repository root, with the project installed, PostgreSQL and Redis running)::

    python bench/load.py                                  # 50 users, 60 s, scratch db bench_load
    python bench/load.py --users 200 --think 1 --rss-requests 10000     # the target run
    python bench/load.py --url postgresql+psycopg://postgres@127.0.0.1:5432/bench_load \\
        --workers 5 --threads 4 --worker-class gthread

WARNING: the database named by ``--url`` is created if missing, and its ``public`` schema is
DROPPED and recreated. Point ``--url`` at a scratch database.

Steps:

1. Build the schema with the real migrations (``flask_migrate.upgrade``, as ``clinic db
   upgrade`` does), seed the demo clinic (``services.demo.seed``), add 7 therapists (Mon-Sat
   09:00-17:00 local, break 12:00-13:00) and 8 rooms so there are 10 of each, 200 background
   clients holding a few thousand bookings (8 weeks back to 9 weeks ahead, bulk Core inserts;
   each therapist's seeded bookings use a room of their own so the exclusion constraints hold),
   and ``--users`` verified clients with API tokens (``accounts.issue_api_token``).
2. Start gunicorn (``nproc + 1`` workers by default: on 2 CPUs 3 workers gave lower tails
   than gunicorn's usual ``2 x nproc + 1``, see docs/performance.md) on a free port with
   ``CLINIC_ENV=production``, rate limits in Redis db 14, and wait for ``/healthz``. The
   default is sync workers (one request at a time each, no keep-alive): measured 3-4x better
   than ``--worker-class gthread --threads 4`` at the same load (docs/performance.md).
3. ``--users`` threads, each with its own keep-alive ``http.client`` connection, loop for
   ``--warmup`` + ``--seconds``: ``GET /api/v1/availability`` for a random service over 7
   days starting 0-21 days ahead (public); then one time in four ``POST /api/v1/bookings``
   for one of the returned slots (409 "just taken" is expected and counted apart); one time
   in eight (or when the user holds 5 upcoming bookings, the per-client cap being 6)
   ``POST /api/v1/bookings/<id>/cancel`` for one of its bookings. ``--think`` seconds
   (exponential mean) between iterations; 0 is a closed loop at full speed. With think time
   each user also starts after one such pause, so the first requests arrive spread out as
   the later ones do, not as one burst of ``--users`` requests at once into workers that
   have served nothing yet. Only the ``--seconds`` after the ``--warmup`` (default 5 s) are
   measured; the warm-up's own figures are printed on a line of their own. The load
   generator's garbage collector is off during the run (its pauses would stop every user
   thread at once and land in the latencies).
4. Print machine, server set-up, data size, per endpoint count, p50/p95/p99 latency as the
   client saw it and as gunicorn measured it (access log ``%(D)s``: time in the worker,
   without the wait for a free thread), requests/s, statuses, errors (5xx and connection
   errors) and the error rate with 409/429 left out, CPU seconds used by gunicorn, PostgreSQL
   and this load generator, as a Markdown table, and each worker's resident memory; stop
   gunicorn with SIGTERM and wait.
5. With ``--rss-requests N``: start gunicorn again with ONE worker, send N requests of the same
   mix from 4 users without think time and report that worker's resident memory.
   ``--json PATH`` writes the headline figures (used by ``bench/run_all.py``).

The load generator runs on the same machine as gunicorn and PostgreSQL and competes with them
for the CPUs: its Python threads cost CPU time (shown in the CPU line).
"""

from __future__ import annotations

import argparse
import gc
import http.client
import json
import os
import platform
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from collections import defaultdict
from datetime import UTC
from datetime import date
from datetime import datetime
from datetime import time as dtime
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import create_engine
from sqlalchemy import func
from sqlalchemy import insert
from sqlalchemy import select
from sqlalchemy import text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from clinic_app import create_app  # noqa: E402
from clinic_app.extensions import db  # noqa: E402
from clinic_app.models.accounts import Role  # noqa: E402
from clinic_app.models.accounts import User  # noqa: E402
from clinic_app.models.booking import Booking  # noqa: E402
from clinic_app.models.schedule import Room  # noqa: E402
from clinic_app.models.schedule import Service  # noqa: E402
from clinic_app.models.schedule import Therapist  # noqa: E402
from clinic_app.models.schedule import WeeklyHours  # noqa: E402
from clinic_app.models.schedule import service_rooms  # noqa: E402
from clinic_app.models.schedule import service_therapists  # noqa: E402
from clinic_app.security import hash_password  # noqa: E402
from clinic_app.security import new_token  # noqa: E402
from clinic_app.services.accounts import issue_api_token  # noqa: E402
from clinic_app.services.demo import seed as seed_demo  # noqa: E402
from clinic_app.services.settings import get_settings  # noqa: E402

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/bench_load"
SECRET = "load-bench-secret-key-0123456789abcdef"  # noqa: S105 - scratch server only
EXTRA_THERAPISTS = 7
EXTRA_ROOMS = 8
BACKGROUND_CLIENTS = 200
DAYS_BACK = 56
DAYS_AHEAD = 63
FILL = 0.65  # chance that a seeded slot of a therapist's day is booked
CAP_MARGIN = 5  # cancel instead of booking once a user holds this many (the cap is 6)


# --------------------------------------------------------------------------- database


def ensure_database(url: str) -> None:
    """Create the database named in ``url`` if it does not exist (AUTOCOMMIT admin link)."""
    target = make_url(url)
    name = target.database
    for admin_db in ("postgres", "test"):
        engine = create_engine(target.set(database=admin_db), isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                exists = conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"),
                                     {"n": name})
                if not exists:
                    conn.execute(text(f'CREATE DATABASE "{name}"'))
            return
        except Exception:  # noqa: BLE001 - try the next admin database
            continue
        finally:
            engine.dispose()
    raise SystemExit(f"cannot reach an admin database next to {name!r}")


def _local(day: date, at: dtime, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, at, tzinfo=zone).astimezone(UTC)


def build_and_seed(url: str, users: int, rng: random.Random,
                   instance: str) -> dict[str, Any]:
    """Drop the schema, run the migrations, seed; returns tokens and data sizes."""
    ensure_database(url)
    os.environ["CLINIC_DATABASE_URL"] = url
    app = create_app({"DATABASE_URL": url, "SECRET_KEY": SECRET, "INSTANCE_PATH": instance})
    from flask_migrate import upgrade

    with app.app_context():
        with db.engine.begin() as conn:
            conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        upgrade()  # the real migrations, as `clinic db upgrade`
        session = db.session
        now = app.extensions["clock"].now()
        seed_demo(session, now)
        settings = get_settings(session)
        zone = ZoneInfo(settings.timezone)
        password = hash_password("load-bench-password-2026")

        # Rooms and therapists up to 10 each; the newcomers offer every service.
        for i in range(EXTRA_ROOMS):
            session.add(Room(name=f"Room {3 + i}"))
        monday = (now.astimezone(zone) - timedelta(days=now.astimezone(zone).weekday())).date()
        for i in range(EXTRA_THERAPISTS):
            user = User(email=f"therapist{i}@bench.example", name=f"Bench Therapist {i}",
                        role=Role.THERAPIST.value, password_hash=password,
                        email_verified_at=now, consent_at=now, created_at=now)
            session.add(user)
            session.flush()
            therapist = Therapist(user_id=user.id, bio="", feed_token=new_token())
            session.add(therapist)
            session.flush()
            for weekday in range(6):
                for begin, end in ((dtime(9), dtime(12)), (dtime(13), dtime(17))):
                    session.add(WeeklyHours(therapist_id=therapist.id, weekday=weekday,
                                            start_time=begin, end_time=end,
                                            effective_from=monday - timedelta(days=DAYS_BACK)))
        session.flush()
        services = session.scalars(select(Service).order_by(Service.id)).all()
        therapist_ids = list(session.scalars(select(Therapist.id).order_by(Therapist.id)))
        room_ids = list(session.scalars(select(Room.id).order_by(Room.id)))
        for service in services:
            have_t = {t.id for t in service.therapists}
            have_r = {r.id for r in service.rooms}
            rows_t = [{"service_id": service.id, "therapist_id": t}
                      for t in therapist_ids if t not in have_t]
            rows_r = [{"service_id": service.id, "room_id": r} for r in room_ids if r not in have_r]
            if rows_t:
                session.execute(insert(service_therapists), rows_t)
            if rows_r:
                session.execute(insert(service_rooms), rows_r)
        # The demo hours start this week; start them with the seeded history instead.
        session.execute(WeeklyHours.__table__.update().values(
            effective_from=monday - timedelta(days=DAYS_BACK)))

        # Background clients who hold the existing bookings (bulk: the cap does not apply).
        session.execute(insert(User), [{
            "email": f"background{i}@bench.example", "name": f"Background {i}",
            "role": Role.CLIENT.value, "password_hash": password, "email_verified_at": now,
            "consent_at": now, "created_at": now} for i in range(BACKGROUND_CLIENTS)])
        background = list(session.scalars(
            select(User.id).where(User.email.like("background%@bench.example"))))

        # Existing bookings: each therapist's working ranges filled back to back (service,
        # then its 15-minute buffer), each slot taken with probability FILL, in the room of
        # the same rank as the therapist so no two seeded bookings share a room at once.
        regular = [s for s in services if not s.is_first_visit]
        hours: dict[int, dict[int, list[tuple[dtime, dtime]]]] = defaultdict(
            lambda: defaultdict(list))
        for row in session.scalars(select(WeeklyHours)):
            hours[row.therapist_id][row.weekday].append((row.start_time, row.end_time))
        today = now.astimezone(zone).date()
        # The demo's own bookings (its course history and coming week) keep their times:
        # a seeded booking that would overlap one of them, for its therapist or its room,
        # is left out (PostgreSQL's exclusion constraints would refuse the whole insert).
        taken: dict[tuple[str, int], list[tuple[datetime, datetime]]] = defaultdict(list)
        for b in session.execute(select(Booking.therapist_id, Booking.room_id,
                                        Booking.blocked_start, Booking.blocked_end)):
            taken[("t", b.therapist_id)].append((b.blocked_start, b.blocked_end))
            taken[("r", b.room_id)].append((b.blocked_start, b.blocked_end))

        def free(key: tuple[str, int], begin: datetime, end: datetime) -> bool:
            return all(end <= s or begin >= e for s, e in taken.get(key, ()))

        rows: list[dict[str, Any]] = []
        for rank, tid in enumerate(therapist_ids):
            room_id = room_ids[rank % len(room_ids)]
            for offset in range(-DAYS_BACK, DAYS_AHEAD + 1):
                day = today + timedelta(days=offset)
                for begin, end in sorted(hours[tid].get(day.weekday(), [])):
                    cursor = _local(day, begin, zone)
                    limit = _local(day, end, zone)
                    while True:
                        service = rng.choice(regular)
                        start = cursor + timedelta(minutes=service.buffer_before_minutes)
                        finish = start + timedelta(minutes=service.duration_minutes)
                        blocked_end = finish + timedelta(minutes=service.buffer_after_minutes)
                        if blocked_end > limit:
                            break
                        cursor = blocked_end
                        if rng.random() > FILL:
                            continue
                        held_from = start - timedelta(minutes=service.buffer_before_minutes)
                        if not (free(("t", tid), held_from, blocked_end)
                                and free(("r", room_id), held_from, blocked_end)):
                            continue
                        past = finish <= now
                        rows.append({
                            "client_id": rng.choice(background), "therapist_id": tid,
                            "service_id": service.id, "room_id": room_id,
                            "start_at": start, "end_at": finish,
                            "blocked_start": start - timedelta(
                                minutes=service.buffer_before_minutes),
                            "blocked_end": blocked_end,
                            "status": "completed" if past else "booked",
                            "price_cents": service.price_cents, "sequence": 0,
                            "late_cancel": False, "cancel_reason": "", "note": "",
                            "early_confirmed": False, "created_at": now - timedelta(days=60),
                            "updated_at": now - timedelta(days=60),
                        })
        for start_at in range(0, len(rows), 2000):
            session.execute(insert(Booking), rows[start_at:start_at + 2000])

        tokens: list[str] = []
        for i in range(users):
            user = User(email=f"load{i}@bench.example", name=f"Load User {i}",
                        role=Role.CLIENT.value, password_hash=password,
                        email_verified_at=now, consent_at=now, created_at=now)
            session.add(user)
            session.flush()
            raw, _ = issue_api_token(session, user, now, 30)
            tokens.append(raw)
        session.commit()
        sizes = {
            "therapists": len(therapist_ids), "rooms": len(room_ids),
            "services": len(services),
            "clients": session.scalar(select(func.count()).select_from(User).where(
                User.role == Role.CLIENT.value)),
            "bookings": session.scalar(select(func.count()).select_from(Booking)),
            "upcoming": session.scalar(select(func.count()).select_from(Booking).where(
                Booking.start_at >= now)),
        }
        service_ids = [s.id for s in services]
        bookable_ids = [s.id for s in regular]
        tz_name = zone.key
        db.session.remove()
        db.engine.dispose()
    return {"tokens": tokens, "sizes": sizes, "service_ids": service_ids,
            "bookable_ids": bookable_ids, "today": today, "timezone": tz_name}


# --------------------------------------------------------------------------- gunicorn


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_gunicorn(args: argparse.Namespace, port: int, tmp: str) -> subprocess.Popen[bytes]:
    """Start gunicorn in its own process group and wait until /healthz answers 200."""
    env = dict(os.environ)
    env.update({
        "CLINIC_DATABASE_URL": args.url, "CLINIC_SECRET_KEY": SECRET,
        "CLINIC_ENV": "production", "CLINIC_BASE_URL": f"http://127.0.0.1:{port}",
        "CLINIC_RATELIMIT_STORAGE_URL": args.redis, "CLINIC_INSTANCE_PATH": f"{tmp}/instance",
    })
    cmd = [sys.executable, "-m", "gunicorn", "--chdir", str(ROOT),
           "--bind", f"127.0.0.1:{port}", "--workers", str(args.workers),
           "--worker-class", args.worker_class, "--keep-alive", "10",
           "--access-logfile", f"{tmp}/access.log",
           # method path status microseconds-in-worker
           "--access-logformat", "%(m)s %(U)s %(s)s %(D)s",
           "--error-logfile", f"{tmp}/error.log"]
    if args.worker_class == "gthread":
        cmd += ["--threads", str(args.threads)]
    cmd.append("wsgi:app")
    proc = subprocess.Popen(cmd, env=env, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"gunicorn exited with {proc.returncode}; see {tmp}/error.log")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                if r.status == 200:
                    return proc
        except OSError:
            pass
        time.sleep(0.2)
    stop_gunicorn(proc)
    raise SystemExit("gunicorn did not answer /healthz within 60 s")


def stop_gunicorn(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the master (graceful: workers finish their requests), then wait."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# --------------------------------------------------------------------------- CPU accounting


def _proc_stat(pid: int) -> tuple[str, int, float] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    comm = raw[raw.index("(") + 1:raw.rindex(")")]
    fields = raw[raw.rindex(")") + 2:].split()
    tick = os.sysconf("SC_CLK_TCK")
    return comm, int(fields[1]), (int(fields[11]) + int(fields[12])) / tick


def cpu_snapshot(master: int | None) -> dict[str, dict[int, float]]:
    """CPU seconds so far of gunicorn (master + workers; none without ``master``) and of
    PostgreSQL's processes, by pid."""
    out: dict[str, dict[int, float]] = {"gunicorn": {}, "postgres": {}}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        stat = _proc_stat(int(entry))
        if stat is None:
            continue
        comm, ppid, cpu = stat
        if master is not None and (int(entry) == master or ppid == master):
            out["gunicorn"][int(entry)] = cpu
        elif comm.startswith("postgres"):
            out["postgres"][int(entry)] = cpu
    return out


def cpu_used(before: dict[str, dict[int, float]],
             after: dict[str, dict[int, float]]) -> dict[str, float]:
    """CPU seconds per group between two snapshots (processes that ended are lost)."""
    return {group: sum(cpu - before[group].get(pid, 0.0) for pid, cpu in after[group].items())
            for group in after}


def worker_rss(master: int) -> dict[int, float]:
    """Resident set size in MiB of each gunicorn worker (children of ``master``)."""
    out: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        stat = _proc_stat(int(entry))
        if stat is None or stat[1] != master:
            continue
        try:
            for line in Path(f"/proc/{entry}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    out[int(entry)] = int(line.split()[1]) / 1024
        except OSError:
            continue
    return out


# --------------------------------------------------------------------------- load


class Recorder:
    """Collects (endpoint, status, seconds) from every user thread.

    Until ``recording`` is set (the end of the warm-up) samples go to ``warmup_samples``
    instead, so the report covers the steady state only and says what the warm-up saw.
    """

    def __init__(self, recording: bool = True) -> None:
        self.lock = threading.Lock()
        self.samples: list[tuple[str, int, float]] = []
        self.warmup_samples: list[tuple[str, int, float]] = []
        self.recording = recording
        self.last_at = 0.0  # time.monotonic() of the last sample recorded
        self.reconnects = 0
        self.errors: Counter[str] = Counter()

    def add(self, endpoint: str, status: int, seconds: float) -> None:
        with self.lock:
            (self.samples if self.recording else self.warmup_samples).append(
                (endpoint, status, seconds))
            self.last_at = time.monotonic()


class User_:  # noqa: N801 - a load-test user, not the model
    """One simulated API client with its own keep-alive connection."""

    def __init__(self, port: int, token: str, plan: dict[str, Any], rec: Recorder,
                 rng: random.Random) -> None:
        self.port, self.token, self.plan, self.rec, self.rng = port, token, plan, rec, rng
        self.conn: http.client.HTTPConnection | None = None
        self.mine: list[int] = []
        self.stop = False  # set by the RSS phase once enough requests were made

    def request(self, endpoint: str, method: str, path: str,
                body: dict[str, Any] | None = None, auth: bool = False) -> tuple[int, Any]:
        """One request, timed; one retry on a fresh connection if the kept one was closed."""
        headers = {"Accept": "application/json"}
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if auth:
            headers["Authorization"] = f"Bearer {self.token}"
        for attempt in (1, 2):
            fresh = self.conn is None
            if fresh:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            started = time.perf_counter()
            try:
                self.conn.request(method, path, body=payload, headers=headers)
                response = self.conn.getresponse()
                data = response.read()
            except (http.client.HTTPException, OSError) as exc:
                self.conn.close()
                self.conn = None
                if attempt == 1 and not fresh and isinstance(
                        exc, (http.client.RemoteDisconnected, ConnectionResetError,
                              BrokenPipeError)):
                    with self.rec.lock:
                        self.rec.reconnects += 1  # the server closed an idle keep-alive
                    continue
                elapsed = time.perf_counter() - started
                with self.rec.lock:
                    self.rec.errors[type(exc).__name__] += 1
                self.rec.add(endpoint, 0, elapsed)
                return 0, None
            elapsed = time.perf_counter() - started
            self.rec.add(endpoint, response.status, elapsed)
            if response.getheader("Connection", "").lower() == "close":
                self.conn.close()
                self.conn = None
            try:
                return response.status, json.loads(data) if data else None
            except ValueError:
                return response.status, None
        return 0, None

    def iteration(self) -> None:
        """Availability, then sometimes a booking, sometimes a cancellation."""
        plan, rng = self.plan, self.rng
        service = rng.choice(plan["service_ids"])
        first = plan["today"] + timedelta(days=rng.randint(0, 21))
        status, data = self.request(
            "availability", "GET",
            f"/api/v1/availability?service_id={service}&from={first.isoformat()}"
            f"&to={(first + timedelta(days=6)).isoformat()}")
        want_cancel = len(self.mine) >= CAP_MARGIN or (self.mine and rng.random() < 1 / 8)
        if want_cancel:
            booking_id = self.mine.pop(rng.randrange(len(self.mine)))
            self.request("cancel", "POST", f"/api/v1/bookings/{booking_id}/cancel",
                         body={"reason": "load test"}, auth=True)
        elif rng.random() < 1 / 4 and status == 200 and data and data.get("slots"):
            if service not in plan["bookable_ids"]:
                service = rng.choice(plan["bookable_ids"])
                status, data = self.request(
                    "availability", "GET",
                    f"/api/v1/availability?service_id={service}&from={first.isoformat()}"
                    f"&to={(first + timedelta(days=6)).isoformat()}")
                if status != 200 or not data or not data.get("slots"):
                    return
            slot = rng.choice(data["slots"])
            status, answer = self.request(
                "booking", "POST", "/api/v1/bookings", auth=True,
                body={"service_id": service, "start": slot["start"],
                      "therapist_id": slot["therapist_id"]})
            if status == 201 and answer:
                self.mine.append(answer["id"])

    def run(self, deadline: float, iterations: int, think: float, go: threading.Event) -> None:
        """Loop until the deadline (or ``iterations``), then close the connection."""
        go.wait()
        if think > 0:
            # Start as if just back from thinking: the users' first requests then arrive
            # spread out like all the later ones, not as one burst of --users requests.
            time.sleep(min(self.rng.expovariate(1 / think), think * 5))
        done = 0
        while (time.monotonic() < deadline and (iterations <= 0 or done < iterations)
               and not self.stop):
            self.iteration()
            done += 1
            if think > 0:
                time.sleep(min(self.rng.expovariate(1 / think), think * 5))
        if self.conn is not None:
            self.conn.close()


# --------------------------------------------------------------------------- report


def pct(values: list[float], q: float) -> float:
    """The q-th percentile (nearest rank) of ``values``, 0 when empty."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


def server_times(path: str, skip_bytes: int = 0) -> dict[str, list[float]]:
    """Seconds spent in the worker per endpoint, from the access log (``%(D)s`` in µs),
    leaving out its first ``skip_bytes`` (the lines written during the warm-up)."""
    out: dict[str, list[float]] = defaultdict(list)
    try:
        with open(path, "rb") as handle:
            handle.seek(skip_bytes)
            lines = handle.read().decode(errors="replace").splitlines()
    except OSError:
        return out
    for line in lines:
        parts = line.split()
        if len(parts) != 4 or not parts[3].isdigit():
            continue
        method, url = parts[0], parts[1]
        if url.startswith("/api/v1/availability"):
            name = "availability"
        elif url == "/api/v1/bookings" and method == "POST":
            name = "booking"
        elif url.endswith("/cancel"):
            name = "cancel"
        else:
            continue
        out[name].append(int(parts[3]) / 1e6)
    return out


def machine() -> str:
    """nproc, CPU model, Python and load average, one line."""
    model = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (f"{os.cpu_count()} CPUs ({model}), Python {platform.python_version()}, "
            f"load average before the run {load}")


def report(rec: Recorder, elapsed: float, info: dict[str, Any], server: dict[str, list[float]],
           cpu: dict[str, float]) -> tuple[str, dict[str, Any]]:
    """The Markdown report and the headline figures."""
    by: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for endpoint, status, seconds in rec.samples:
        by[endpoint].append((status, seconds))
    total = len(rec.samples)
    statuses = Counter(status for _, status, _ in rec.samples)
    expected = statuses[409] + statuses[429]
    errors = sum(n for s, n in statuses.items() if s >= 500 or s == 0)
    rate = errors / (total - expected) if total > expected else 0.0
    lines = [
        f"- machine: {info['machine']}",
        f"- server: gunicorn {info['workers']} workers, {info['worker_class']}"
        + (f" x {info['threads']} threads" if info["worker_class"] == "gthread" else "")
        + f", PostgreSQL {info['pg_version']}, Redis rate-limit storage",
        f"- data: {info['sizes']['therapists']} therapists, {info['sizes']['rooms']} rooms, "
        f"{info['sizes']['services']} services, {info['sizes']['clients']} clients, "
        f"{info['sizes']['bookings']} bookings ({info['sizes']['upcoming']} upcoming)",
        f"- load: {info['users']} users, {elapsed:.1f} s measured after a {info['warmup']:g} s "
        f"warm-up, think time {info['think']} s; {total} requests, "
        f"{total / elapsed:.1f} requests/s",
        "",
        "| endpoint | count | req/s | p50 ms | p95 ms | p99 ms | max ms "
        "| in worker p50 / p95 ms | statuses |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    headline: dict[str, Any] = {}
    for endpoint in ("availability", "booking", "cancel"):
        samples = by.get(endpoint, [])
        secs = [s for _, s in samples]
        mix = Counter(st for st, _ in samples)
        srv = server.get(endpoint, [])
        headline[endpoint] = {"p95": pct(secs, 95) * 1000, "count": len(secs)}
        lines.append(
            f"| {endpoint} | {len(secs)} | {len(secs) / elapsed:.1f} "
            f"| {pct(secs, 50) * 1000:.1f} | {pct(secs, 95) * 1000:.1f} "
            f"| {pct(secs, 99) * 1000:.1f} | {max(secs, default=0) * 1000:.1f} "
            f"| {pct(srv, 50) * 1000:.1f} / {pct(srv, 95) * 1000:.1f} "
            f"| {', '.join(f'{k}: {v}' for k, v in sorted(mix.items()))} |")
    lines += [
        "",
        f"- errors (5xx + connection errors): {errors} of {total - expected} requests "
        f"(409/429 left out) = {rate:.3%}; connection errors: {dict(rec.errors) or 0}; "
        f"keep-alive reconnects (retried, not errors): {rec.reconnects}",
        f"- 409 (slot just taken): {statuses[409]}; 429: {statuses[429]}; "
        f"422: {statuses[422]}",
        f"- CPU seconds during the run: gunicorn {cpu.get('gunicorn', 0):.1f}, PostgreSQL "
        f"{cpu.get('postgres', 0):.1f}, load generator {cpu.get('client', 0):.1f} "
        f"(of {elapsed * (os.cpu_count() or 1):.0f} available)",
    ]
    if rec.warmup_samples:
        warm = [seconds for _, _, seconds in rec.warmup_samples]
        lines.append(f"- warm-up, not counted above: {len(warm)} requests in the first "
                     f"{info['warmup']:g} s, p50 {pct(warm, 50) * 1000:.1f} ms, p95 "
                     f"{pct(warm, 95) * 1000:.1f} ms, max {max(warm) * 1000:.1f} ms")
    headline.update({"error_rate": rate, "errors": errors, "conflicts": statuses[409]})
    return "\n".join(lines), headline


def rss_after(args: argparse.Namespace, plan: dict[str, Any], tmp: str,
              requests: int) -> dict[str, Any]:
    """One gunicorn worker, ``requests`` requests of the usual mix from 4 users, then its RSS."""
    one = argparse.Namespace(**{**vars(args), "workers": 1})
    Path(f"{tmp}/rss").mkdir(exist_ok=True)
    port = free_port()
    proc = start_gunicorn(one, port, f"{tmp}/rss")
    try:
        rss_start = max(worker_rss(proc.pid).values(), default=0.0)
        rec = Recorder()
        go = threading.Event()
        users = [User_(port, token, plan, rec, random.Random(i))
                 for i, token in enumerate(plan["tokens"][:4])]
        stop_at = time.monotonic() + 3600
        threads = [threading.Thread(target=u.run, args=(stop_at, 0, 0.0, go), daemon=True)
                   for u in users]
        for t in threads:
            t.start()
        go.set()
        while len(rec.samples) < requests and any(t.is_alive() for t in threads):
            time.sleep(0.2)
        for u in users:
            u.stop = True
        for t in threads:
            t.join(timeout=60)
        rss = worker_rss(proc.pid)
    finally:
        stop_gunicorn(proc)
    statuses = Counter(status for _, status, _ in rec.samples)
    return {"requests": len(rec.samples), "rss_start_mib": rss_start,
            "rss_mib": max(rss.values(), default=0.0),
            "errors": sum(n for st, n in statuses.items() if st >= 500 or st == 0)}


# --------------------------------------------------------------------------- main


def main() -> None:
    """Parse arguments, seed, serve, load, report, stop."""
    cores = os.cpu_count() or 1
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default=DEFAULT_URL,
                        help="scratch PostgreSQL database (its schema is DROPPED)")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/14",
                        help="rate-limit storage for the server")
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60.0,
                        help="length of the measured run, after the warm-up")
    parser.add_argument("--warmup", type=float, default=5.0,
                        help="seconds of load before measuring (requests made, not counted; "
                             "0: measure from the first request)")
    parser.add_argument("--iterations", type=int, default=0,
                        help="stop each user after this many iterations (0: only --seconds)")
    parser.add_argument("--think", type=float, default=0.0,
                        help="mean think time between a user's iterations, seconds")
    parser.add_argument("--workers", type=int, default=cores + 1,
                        help="gunicorn workers (default nproc + 1)")
    parser.add_argument("--worker-class", default="sync", choices=("gthread", "sync"))
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--rss-requests", type=int, default=0,
                        help="afterwards, serve this many requests with ONE worker and "
                             "report its resident memory (the target: < 120 MiB after 10,000)")
    parser.add_argument("--json", help="also write the headline figures to this file")
    parser.add_argument("--keep-logs", action="store_true",
                        help="print the temporary folder holding gunicorn's logs")
    args = parser.parse_args()
    if not args.url.startswith("postgresql"):
        raise SystemExit("--url must be a PostgreSQL URL (postgresql+psycopg://...)")
    if args.seconds <= 0 or args.seconds > 3600 or not 1 <= args.users <= 500:
        raise SystemExit("--seconds must be in (0, 3600] and --users in 1..500")
    if args.rss_requests and args.users < 4:
        raise SystemExit("--rss-requests needs at least 4 --users (their tokens are reused)")

    rng = random.Random(args.seed)
    tmp = tempfile.mkdtemp(prefix="load-bench-")
    info: dict[str, Any] = {"machine": machine(), "workers": args.workers,
                            "worker_class": args.worker_class, "threads": args.threads,
                            "users": args.users, "think": args.think, "warmup": args.warmup}
    print(f"seeding {args.url} ...", flush=True)
    t0 = time.perf_counter()
    plan = build_and_seed(args.url, args.users, rng, f"{tmp}/seed-instance")
    info["sizes"] = plan["sizes"]
    engine = create_engine(args.url)
    with engine.connect() as conn:
        info["pg_version"] = conn.scalar(text("SHOW server_version")).split()[0]
    engine.dispose()
    print(f"seeded in {time.perf_counter() - t0:.1f} s: {plan['sizes']}", flush=True)

    port = free_port()
    proc = start_gunicorn(args, port, tmp)
    try:
        rec = Recorder(recording=args.warmup <= 0)
        go = threading.Event()
        users = [User_(port, token, plan, rec, random.Random(rng.random()))
                 for token in plan["tokens"]]
        # The load generator's own garbage collector would stop all its threads at once,
        # adding its pause to every request in flight: everything made so far (the app
        # built for seeding, the plan) is frozen out of it and it is off during the run.
        gc.collect()
        gc.freeze()
        gc.disable()
        begun = time.monotonic()
        threads = [threading.Thread(target=u.run,
                                    args=(begun + args.warmup + args.seconds, args.iterations,
                                          args.think, go), daemon=True) for u in users]
        for t in threads:
            t.start()
        go.set()
        if args.warmup > 0:
            time.sleep(args.warmup)
        before = cpu_snapshot(proc.pid)
        client_before = time.process_time()
        started = time.monotonic()
        with rec.lock:
            rec.recording = True
        try:  # a line being written now may be cut: server_times skips malformed lines
            log_offset = os.path.getsize(f"{tmp}/access.log")
        except OSError:
            log_offset = 0
        for t in threads:
            t.join(timeout=args.warmup + args.seconds + 120)
        # Up to the last answer: the users' last think pauses after it are not load.
        elapsed = max(rec.last_at, started + 1e-3) - started
        cpu = cpu_used(before, cpu_snapshot(proc.pid))
        cpu["client"] = time.process_time() - client_before
        rss = worker_rss(proc.pid)
        gc.enable()
    finally:
        stop_gunicorn(proc)
    text_report, headline = report(rec, elapsed, info,
                                   server_times(f"{tmp}/access.log", log_offset), cpu)
    print()
    print(text_report)
    print()
    avail, book = headline["availability"]["p95"], headline["booking"]["p95"]
    print(f"targets: availability p95 {avail:.0f} ms (< 100: {'met' if avail < 100 else 'MISSED'}),"
          f" booking p95 {book:.0f} ms (< 200: {'met' if book < 200 else 'MISSED'}), error rate "
          f"{headline['error_rate']:.3%} (< 0.1%: "
          f"{'met' if headline['error_rate'] < 0.001 else 'MISSED'})")
    errors_log = Path(f"{tmp}/error.log")
    if errors_log.exists() and "Traceback" in errors_log.read_text():
        print(f"gunicorn logged tracebacks: see {errors_log}")
    if args.keep_logs:
        print(f"logs: {tmp}")
    print(f"median of all latencies: {statistics.median([s for _, _, s in rec.samples]) * 1000:.1f}"
          " ms" if rec.samples else "no requests")
    print(f"worker RSS after the run: {', '.join(f'{v:.0f}' for v in sorted(rss.values()))} MiB "
          f"({len(rec.samples)} requests over {len(rss)} workers)")
    memory = None
    if args.rss_requests > 0:
        memory = rss_after(args, plan, tmp, args.rss_requests)
        print(f"one worker after {memory['requests']} requests: {memory['rss_mib']:.1f} MiB RSS "
              f"(at start {memory['rss_start_mib']:.1f} MiB; target < 120: "
              f"{'met' if memory['rss_mib'] < 120 else 'MISSED'}); errors {memory['errors']}")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "report": text_report, "headline": headline, "elapsed_s": elapsed,
            "requests": len(rec.samples), "rate": len(rec.samples) / elapsed,
            "users": args.users, "think": args.think, "workers": args.workers,
            "worker_class": args.worker_class, "rss_mib": sorted(rss.values()),
            "memory": memory, "machine": info["machine"], "sizes": info["sizes"],
        }, indent=2, default=str))


if __name__ == "__main__":
    main()
