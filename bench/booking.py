"""One booking end to end, in-process: ``POST /api/v1/bookings`` through the Flask app
(token auth, validation, the booking service, the outbox intents, the commit) with the
test client, on SQLite and PostgreSQL. Prints p50/p95 latency and SQL statements per
booking.

    python bench/booking.py                      # SQLite file in a temporary folder
    python bench/booking.py --database-url postgresql+psycopg://postgres@127.0.0.1/bench_db
    python bench/booking.py --count 300

The PostgreSQL database's schema is DROPPED and recreated: use a scratch database.
Targets (issue 10): p50 <= 8 ms on SQLite, <= 12 ms on PostgreSQL.
"""

from __future__ import annotations

import argparse
import contextvars
import cProfile
import logging
import os
import pstats
import statistics
import sys
import tempfile
import time
import traceback
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy import select
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from clinic_app import create_app  # noqa: E402
from clinic_app.clock import FrozenClock  # noqa: E402
from clinic_app.extensions import db  # noqa: E402
from clinic_app.models import OutboxMessage  # noqa: E402
from clinic_app.models import Service  # noqa: E402
from clinic_app.models import User  # noqa: E402
from clinic_app.services.accounts import issue_api_token  # noqa: E402
from clinic_app.services.availability import search_slots  # noqa: E402
from clinic_app.services.demo import seed  # noqa: E402
from clinic_app.services.settings import clinic_zone  # noqa: E402

NOW = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)  # Monday morning, GMT
CLIENTS = 25


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _origin() -> str:
    """Where in the app a statement comes from: the innermost clinic_app frames."""
    frames = [f for f in traceback.extract_stack() if f"{os.sep}clinic_app{os.sep}" in f.filename]
    return " <- ".join(f"{Path(f.filename).name}:{f.lineno} {f.name}" for f in frames[::-1][:3])


def run(database_url: str | None, count: int, warmup: int,
        profile: list[cProfile.Profile] | None = None,
        trace: list[tuple[str, str]] | None = None) -> dict[str, Any]:
    tmp = tempfile.mkdtemp(prefix="booking-bench-")
    url = database_url or f"sqlite:///{tmp}/bench.sqlite3"
    app = create_app({
        "DATABASE_URL": url, "INSTANCE_PATH": f"{tmp}/instance",
        "SECRET_KEY": "bench-secret-key-that-is-long-enough", "MAIL_BACKEND": "dev",
        "DEV_MAILBOX_DIR": f"{tmp}/mailbox", "RATELIMIT_ENABLED": False,
        "CLOCK": FrozenClock(NOW),
    })
    logging.getLogger("clinic_app").setLevel(logging.WARNING)
    with app.app_context():
        if url.startswith("postgresql"):
            with db.engine.begin() as conn:
                conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
                conn.execute(text("CREATE SCHEMA public"))
                conn.execute(text("CREATE EXTENSION IF NOT EXISTS btree_gist"))
        db.create_all()
        seed(db.session, NOW)
        db.session.commit()
        service = db.session.scalars(select(Service).where(Service.active.is_(True))
                                     .order_by(Service.id)).first()
        assert service is not None
        headers = []
        for n in range(CLIENTS):
            user = User(email=f"bench{n}@example.com", name=f"Bench Client {n}", role="client",
                        created_at=NOW, email_verified_at=NOW, consent_at=NOW)
            db.session.add(user)
            db.session.flush()
            raw, _ = issue_api_token(db.session, user, NOW, 30)
            headers.append({"Authorization": f"Bearer {raw}"})
        zone = clinic_zone(db.session)
        today = NOW.astimezone(zone).date()
        _, slots = search_slots(db.session, service_id=service.id, date_from=today,
                                date_to=today + timedelta(days=60), now=NOW)
        db.session.commit()
        service_id = service.id
        db.session.remove()
    # One slot per therapist and time, spread out so that bookings rarely share a room.
    wanted = [s for s in slots][: (count + warmup) * 3]
    statements = [0]

    def counter(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements[0] += 1
        if trace is not None:
            trace.append((" ".join(statement.split()), _origin()))

    timings: list[float] = []
    # This process's CPU time: on a loaded machine it moves far less than the wall clock
    # (time waiting for the CPU or for PostgreSQL's server process is not in it).
    cpu_times: list[float] = []
    counts: list[int] = []
    refused = 0
    client = app.test_client()
    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", counter)
    made = 0
    last_made: list[tuple[str, str]] = []
    for i, slot in enumerate(wanted):
        if made >= count + warmup:
            break
        body = {"service_id": service_id, "start": slot.start.isoformat(),
                "therapist_id": slot.therapist_id}
        statements[0] = 0
        if trace is not None:
            trace[:] = []
        one = cProfile.Profile() if profile is not None and made >= warmup else None
        started, cpu_started = time.perf_counter(), time.process_time()
        if one is not None:
            one.enable()
        response = contextvars.Context().run(client.post, "/api/v1/bookings", json=body,
                                             headers=headers[i % CLIENTS])
        if one is not None:
            one.disable()
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu_started
        if response.status_code != 201:
            refused += 1  # the room or therapist is taken by an earlier booking
            if trace is not None:
                trace[:] = last_made  # --statements lists the last booking that was made
            continue
        if trace is not None:
            last_made = list(trace)
        made += 1
        if made > warmup:
            if one is not None and profile is not None:
                profile.append(one)  # refused requests are left out of the profile
            timings.append(elapsed * 1000)
            cpu_times.append(cpu * 1000)
            counts.append(statements[0])
    event.remove(engine, "before_cursor_execute", counter)
    with app.app_context():
        intents = db.session.scalar(select(db.func.count()).select_from(OutboxMessage)
                                    .where(OutboxMessage.body_text.is_(None)))
        db.session.remove()
        db.engine.dispose()
    return {
        "database": "postgresql" if url.startswith("postgresql") else "sqlite",
        "bookings": len(timings), "refused": refused,
        "p50_ms": statistics.median(timings), "p95_ms": _percentile(timings, 0.95),
        "mean_ms": statistics.fmean(timings), "cpu_p50_ms": statistics.median(cpu_times),
        "statements": statistics.median(counts), "statements_max": max(counts),
        "unrendered_outbox_rows": intents,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", help="PostgreSQL scratch database (schema dropped)")
    parser.add_argument("--count", type=int, default=200, help="bookings measured")
    parser.add_argument("--warmup", type=int, default=20, help="bookings before measuring")
    parser.add_argument("--profile", action="store_true",
                        help="cProfile the measured bookings; print the top functions")
    parser.add_argument("--statements", action="store_true",
                        help="list the SQL statements of the last booking and their origin")
    args = parser.parse_args()
    profile: list[cProfile.Profile] | None = [] if args.profile else None
    trace: list[tuple[str, str]] | None = [] if args.statements else None
    r = run(args.database_url, args.count, args.warmup, profile=profile, trace=trace)
    if trace is not None:
        for n, (statement, origin) in enumerate(trace, 1):
            print(f"{n:2}. {statement[:110]}\n      {origin}")
    if profile:
        # Totals over the measured bookings (divide by their number for one booking).
        stats = pstats.Stats(*profile)
        stats.sort_stats("cumulative").print_stats(60)
        stats.sort_stats("tottime").print_stats(30)
    print(f"{r['database']}: {r['bookings']} bookings (refused {r['refused']}), "
          f"p50 {r['p50_ms']:.1f} ms, p95 {r['p95_ms']:.1f} ms, mean {r['mean_ms']:.1f} ms, "
          f"CPU p50 {r['cpu_p50_ms']:.1f} ms, "
          f"{r['statements']:.0f} SQL statements per booking (max {r['statements_max']}); "
          f"{r['unrendered_outbox_rows']} outbox rows written as intents (not rendered)")


if __name__ == "__main__":
    main()
