"""CPU per request in one worker: the load run's request mix replayed in-process.

``bench/load.py`` measures latency over HTTP, which on a shared 2-CPU machine mostly measures
the other processes. This replays the same mix (``GET /api/v1/availability`` for a random
service over 7 days, then 1 in 4 a ``POST /api/v1/bookings`` for a returned slot, 1 in 8 or at
5 held a cancellation) straight through the WSGI application, as a gunicorn sync worker calls
it, with the production set-up (``CLINIC_ENV=production``, rate limits in Redis), and reports
per endpoint the process CPU time (``time.process_time``: far less noisy than wall time when
other processes share the CPUs), the wall time and the SQL statements of each request, and
the CPU time PostgreSQL's processes spent meanwhile (from /proc: sampled clock ticks, so
meaningful per endpoint, not per request; it counts any other PostgreSQL user too).

    python bench/request_cpu.py --url postgresql+psycopg://postgres@127.0.0.1/bench_load
    python bench/request_cpu.py --url ... --requests 5000
    python bench/request_cpu.py --url ... --profile /tmp/req.prof   # + cProfile (CPU time)
    python bench/request_cpu.py --url ... --statements              # each endpoint's SQL

Every run DROPS the ``public`` schema of ``--url`` and seeds it as ``bench/load.py`` does (its
``build_and_seed``), so two runs replay the same requests on the same data. The HTTP server's
own work (gunicorn parsing, access log) is not in these figures; ``bench/load.py`` reports the
server's CPU seconds per request for that. ``--profile`` uses a CPU-time clock, so waiting
for PostgreSQL is not counted; with it the times are inflated by the profiler.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import random
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections import defaultdict
from datetime import date
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import event
from werkzeug.test import EnvironBuilder

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import load  # noqa: E402  (bench/load.py: the same seed and the same mix)


def pct(values: list[float], q: float) -> float:
    """The q-th percentile (nearest rank), 0 when empty."""
    return load.pct(values, q)


def postgres_cpu_seconds() -> float:
    """CPU seconds used so far by every PostgreSQL process of this machine (Linux /proc).

    Clock ticks are sampled, so one request's share is coarse; summed over an endpoint's
    requests it is the server-side CPU that endpoint causes (its backend, WAL writer etc.).
    """
    return sum(load.cpu_snapshot(None)["postgres"].values())


class Replay:
    """Calls the WSGI app as gunicorn does and records CPU, wall time and statements."""

    def __init__(self, app: Any, engine: Any, profile: bool, keep_sql: bool) -> None:
        self.app = app
        self.cpu: dict[str, list[float]] = defaultdict(list)
        self.wall: dict[str, list[float]] = defaultdict(list)
        self.stmts: dict[str, list[int]] = defaultdict(list)
        self.statuses: dict[str, Counter[int]] = defaultdict(Counter)
        self.sql: dict[str, Counter[str]] = defaultdict(Counter)
        self.profiles: dict[str, cProfile.Profile] = {}
        self.profile = profile
        self.keep_sql = keep_sql
        self._seen: list[str] = []
        self.pg_cpu: dict[str, float] = defaultdict(float)
        event.listen(engine, "before_cursor_execute", self._count)

    def _count(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        self._seen.append(statement)

    def __call__(self, endpoint: str, method: str, path: str, token: str | None = None,
                 body: dict[str, Any] | None = None) -> tuple[int, Any]:
        headers = {"Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        builder = EnvironBuilder(path=path, method=method, headers=headers,
                                 data=json.dumps(body) if body is not None else None,
                                 content_type="application/json" if body is not None else None,
                                 environ_base={"REMOTE_ADDR": "127.0.0.1"})
        environ = builder.get_environ()
        builder.close()
        status_line: list[str] = []

        def start_response(status: str, headers: list[Any], exc_info: Any = None) -> Any:
            status_line.append(status)
            return lambda data: None

        self._seen = []
        prof = None
        if self.profile:
            prof = self.profiles.setdefault(endpoint, cProfile.Profile(time.process_time))
            prof.enable()
        pg0 = postgres_cpu_seconds()
        wall0, cpu0 = time.perf_counter(), time.process_time()
        result = self.app(environ, start_response)
        try:
            data = b"".join(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        cpu1, wall1 = time.process_time(), time.perf_counter()
        if prof is not None:
            prof.disable()
        self.pg_cpu[endpoint] += postgres_cpu_seconds() - pg0
        status = int(status_line[0].split()[0])
        self.cpu[endpoint].append(cpu1 - cpu0)
        self.wall[endpoint].append(wall1 - wall0)
        self.stmts[endpoint].append(len(self._seen))
        self.statuses[endpoint][status] += 1
        if self.keep_sql:
            for statement in self._seen:
                self.sql[endpoint][" ".join(statement.split())[:160]] += 1
        try:
            return status, json.loads(data) if data else None
        except ValueError:
            return status, None


class InProcessUser:
    """``load.User_``'s iteration, through :class:`Replay` instead of a socket."""

    def __init__(self, token: str, plan: dict[str, Any], rng: random.Random,
                 call: Replay) -> None:
        self.token, self.plan, self.rng, self.call = token, plan, rng, call
        self.mine: list[int] = []

    def _availability(self, service: int, first: date) -> tuple[int, Any]:
        return self.call("availability", "GET",
                         f"/api/v1/availability?service_id={service}&from={first.isoformat()}"
                         f"&to={(first + timedelta(days=6)).isoformat()}")

    def iteration(self) -> None:
        plan, rng = self.plan, self.rng
        service = rng.choice(plan["service_ids"])
        first = plan["today"] + timedelta(days=rng.randint(0, 21))
        status, data = self._availability(service, first)
        want_cancel = len(self.mine) >= load.CAP_MARGIN or (self.mine and rng.random() < 1 / 8)
        if want_cancel:
            booking_id = self.mine.pop(rng.randrange(len(self.mine)))
            self.call("cancel", "POST", f"/api/v1/bookings/{booking_id}/cancel",
                      token=self.token, body={"reason": "load test"})
        elif rng.random() < 1 / 4 and status == 200 and data and data.get("slots"):
            if service not in plan["bookable_ids"]:
                service = rng.choice(plan["bookable_ids"])
                status, data = self._availability(service, first)
                if status != 200 or not data or not data.get("slots"):
                    return
            slot = rng.choice(data["slots"])
            status, answer = self.call(
                "booking", "POST", "/api/v1/bookings", token=self.token,
                body={"service_id": service, "start": slot["start"],
                      "therapist_id": slot["therapist_id"]})
            if status == 201 and answer:
                self.mine.append(answer["id"])


def production_app(url: str, redis: str, instance: str) -> Any:
    """The app as ``bench/load.py`` starts it under gunicorn (the same CLINIC_* variables)."""
    os.environ.update({
        "CLINIC_DATABASE_URL": url, "CLINIC_SECRET_KEY": load.SECRET,
        "CLINIC_ENV": "production", "CLINIC_BASE_URL": "http://127.0.0.1:8000",
        "CLINIC_RATELIMIT_STORAGE_URL": redis, "CLINIC_INSTANCE_PATH": instance,
    })
    from clinic_app import create_app

    return create_app()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default=load.DEFAULT_URL,
                        help="scratch PostgreSQL database (its schema is DROPPED)")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/14")
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--rng", type=int, default=7)
    parser.add_argument("--profile", help="write cProfile stats per endpoint to PATH.<endpoint>"
                                          " and print the top functions")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--statements", action="store_true",
                        help="list the SQL statements of each endpoint with their counts")
    args = parser.parse_args()
    if not args.url.startswith("postgresql"):
        raise SystemExit("--url must be a PostgreSQL URL (postgresql+psycopg://...)")
    tmp = tempfile.mkdtemp(prefix="request-cpu-")
    plan = load.build_and_seed(args.url, args.users, random.Random(args.rng),
                               f"{tmp}/seed-instance")

    app = production_app(args.url, args.redis, f"{tmp}/instance")
    import logging

    logging.getLogger("clinic_app").setLevel(logging.WARNING)
    from clinic_app.extensions import db

    with app.app_context():
        engine = db.engine
    # Statements are counted per request; the warm-up fills caches as a worker's first
    # requests do, then a fresh Replay measures.
    rng = random.Random(args.rng)
    warm = Replay(app, engine, profile=False, keep_sql=False)
    users = [InProcessUser(t, plan, random.Random(rng.random()), warm) for t in plan["tokens"]]
    while sum(len(v) for v in warm.cpu.values()) < args.warmup:
        rng.choice(users).iteration()
    event.remove(engine, "before_cursor_execute", warm._count)
    replay = Replay(app, engine, profile=bool(args.profile), keep_sql=args.statements)
    for u in users:
        u.call = replay
    cpu_start = time.process_time()
    wall_start = time.perf_counter()
    while sum(len(v) for v in replay.cpu.values()) < args.requests:
        rng.choice(users).iteration()
    cpu_total = time.process_time() - cpu_start
    wall_total = time.perf_counter() - wall_start
    n = sum(len(v) for v in replay.cpu.values())

    print(f"{n} requests in-process (after {args.warmup} warm-up), load average "
          f"{', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print()
    print("| endpoint | share | CPU mean ms | CPU p50 ms | CPU p95 ms | wall p50 ms "
          "| PostgreSQL CPU mean ms | statements mean (min-max) | statuses |")
    print("|---|---:|---:|---:|---:|---:|---:|---|---|")
    for endpoint in ("availability", "booking", "cancel"):
        cpu, wall, st = replay.cpu[endpoint], replay.wall[endpoint], replay.stmts[endpoint]
        if not cpu:
            continue
        print(f"| {endpoint} | {len(cpu) / n:.0%} | {statistics.fmean(cpu) * 1000:.2f} "
              f"| {pct(cpu, 50) * 1000:.2f} | {pct(cpu, 95) * 1000:.2f} "
              f"| {pct(wall, 50) * 1000:.2f} "
              f"| {replay.pg_cpu[endpoint] / len(cpu) * 1000:.2f} | {statistics.fmean(st):.2f} "
              f"({min(st)}-{max(st)}) "
              f"| {', '.join(f'{k}: {v}' for k, v in sorted(replay.statuses[endpoint].items()))} |")
    measured = sum(sum(v) for v in replay.cpu.values())
    print()
    print(f"PostgreSQL CPU per request (mix): {sum(replay.pg_cpu.values()) / n * 1000:.2f} ms")
    print(f"CPU per request (mix): {measured / n * 1000:.2f} ms inside the app; "
          f"{cpu_total / n * 1000:.2f} ms with this replay's own work; wall "
          f"{wall_total / n * 1000:.2f} ms")
    if args.statements:
        for endpoint, counter in replay.sql.items():
            count = len(replay.stmts[endpoint])
            print(f"\n{endpoint}: statements per request")
            for statement, times in counter.most_common():
                print(f"  {times / count:5.2f}  {statement}")
    if args.profile:
        for endpoint, prof in replay.profiles.items():
            prof.dump_stats(f"{args.profile}.{endpoint}")
            out = io.StringIO()
            stats = pstats.Stats(prof, stream=out)
            stats.sort_stats("tottime").print_stats(args.top)
            stats.sort_stats("cumulative").print_stats(args.top)
            print(f"\n===== {endpoint} ({len(replay.cpu[endpoint])} requests)")
            print(out.getvalue())


if __name__ == "__main__":
    main()
