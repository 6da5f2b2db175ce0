"""No double booking under concurrency: real threads against a real threaded HTTP server.

Both tests run on SQLite (``BEGIN IMMEDIATE`` plus the service's re-check) and on PostgreSQL
(exclusion constraints). The final word is a SQL query over the bookings table: no two active
bookings of one therapist, or of one room, overlap in their blocked time (buffers included).
"""

from __future__ import annotations

import http.client
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy import text

from clinic_app.models import Booking
from clinic_app.services.accounts import issue_api_token
from clinic_app.services.settings import get_settings
from tests.factories import make_room
from tests.factories import make_service
from tests.factories import make_therapist
from tests.factories import make_user
from tests.factories import now_of
from tests.live_server import LiveServer
from tests.live_server import live_server  # noqa: F401  (fixture)
from tests.live_server import live_server_factory  # noqa: F401  (fixture)

ROOT = Path(__file__).resolve().parents[2]

# Wednesday 25 November 2026: two days after the frozen clock (Mon 23 Nov 08:00 UTC), past the
# minimum notice and the cancellation cutoff; London is on GMT, so local time = UTC.
DAY = datetime(2026, 11, 25, tzinfo=UTC)

OVERLAPS_SQL = text(
    """
    SELECT count(*) FROM bookings a JOIN bookings b
      ON a.id < b.id
     AND (a.therapist_id = b.therapist_id OR a.room_id = b.room_id)
     AND a.blocked_start < b.blocked_end AND b.blocked_start < a.blocked_end
    WHERE a.status <> 'cancelled' AND b.status <> 'cancelled'
    """
)


class Api:
    """A tiny JSON client over ``http.client``: one connection per call, like separate users."""

    def __init__(self, server: LiveServer) -> None:
        self.host, self.port = server.host, server.port

    def call(self, method: str, path: str, token: str | None = None,
             body: dict[str, Any] | None = None) -> tuple[int, Any]:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=120)
        headers = {"Accept": "application/json"}
        payload = None
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if body is not None:
            payload = json.dumps(body)
            headers["Content-Type"] = "application/json"
        try:
            conn.request(method, "/api/v1" + path, body=payload, headers=headers)
            response = conn.getresponse()
            raw = response.read()
        finally:
            conn.close()
        try:
            data = json.loads(raw) if raw else None
        except ValueError:
            data = raw.decode(errors="replace")
        return response.status, data


def clients_with_tokens(app: Any, db: Any, n: int, prefix: str) -> list[str]:
    """``n`` verified clients and a bearer token for each (created before the server starts)."""
    tokens = []
    for i in range(n):
        user = make_user(app, email=f"{prefix}{i}@example.com", name=f"{prefix} {i}")
        raw, _ = issue_api_token(db.session, user, now_of(app), days=30)
        tokens.append(raw)
    db.session.commit()
    return tokens


def iso(value: datetime) -> str:
    return value.isoformat()


def test_twenty_clients_one_slot_exactly_one_wins(app, db, live_server_factory):  # noqa: F811
    therapist = make_therapist(app)
    room = make_room(app)
    service = make_service(app, therapists=[therapist], rooms=[room], minutes=60)
    tokens = clients_with_tokens(app, db, 20, "racer")
    start = DAY.replace(hour=10)
    # Plain ids: ORM attributes expire on commit and worker threads have no app context.
    service_id, therapist_id = service.id, therapist.id
    server = live_server_factory(app)
    api = Api(server)
    barrier = threading.Barrier(len(tokens))

    def attempt(token: str) -> tuple[int, Any]:
        barrier.wait(timeout=30)  # all 20 requests leave together
        return api.call("POST", "/bookings", token, {
            "service_id": service_id, "start": iso(start), "therapist_id": therapist_id})

    with ThreadPoolExecutor(max_workers=len(tokens)) as pool:
        results = list(pool.map(attempt, tokens))

    statuses = Counter(status for status, _ in results)
    assert statuses == {201: 1, 409: 19}, results
    (winner,) = [body for status, body in results if status == 201]
    assert winner["status"] in ("booked", "pending") and winner["therapist_id"] == therapist_id
    assert datetime.fromisoformat(winner["start"]) == start
    for status, body in results:
        if status == 409:
            assert body["error"]["code"] == "slot_taken", body
    db.session.rollback()
    active = db.session.scalar(select(func.count(Booking.id)).where(
        Booking.therapist_id == therapist_id, Booking.status != "cancelled"))
    assert active == 1
    assert db.session.scalar(OVERLAPS_SQL) == 0


def test_api_through_live_server_refuses_missing_token(app, db, live_server):  # noqa: F811
    status, body = Api(live_server).call("POST", "/bookings", None,
                                          {"service_id": 1, "start": iso(DAY)})
    assert status == 401 and body["error"]["code"] == "not_authenticated"


# Starts on a 15-minute step, overlapping each other (60 min + 15 min buffer after), in both
# working ranges (09:00-12:00, 13:00-17:00).
STARTS = [DAY.replace(hour=h, minute=m) for h, m in (
    (9, 0), (9, 15), (9, 45), (10, 0), (10, 30), (11, 0), (13, 0), (13, 30), (14, 15), (15, 0))]
THREADS = 8
OPS_PER_THREAD = 15


def test_randomized_books_cancels_reschedules_never_overlap(app, db, live_server_factory):  # noqa: F811
    """8 clients x 15 random operations on 2 therapists sharing 1 room: no overlap, no 500."""
    settings = get_settings(db.session)
    settings.max_upcoming_per_client = 50  # contention, not the cap, is under test
    db.session.commit()
    therapists = [make_therapist(app), make_therapist(app)]
    room = make_room(app)
    service = make_service(app, therapists=therapists, rooms=[room], minutes=60, after=15)
    tokens = clients_with_tokens(app, db, THREADS, "random")
    service_id, therapist_ids = service.id, [t.id for t in therapists]
    server = live_server_factory(app)
    api = Api(server)
    seed = int(os.environ.get("CLINIC_RACE_SEED", random.randrange(1_000_000)))
    barrier = threading.Barrier(THREADS)
    log: list[tuple[str, int, Any]] = []
    log_lock = threading.Lock()

    def worker(index: int) -> None:
        rng = random.Random(seed + index)
        token = tokens[index]
        mine: list[int] = []  # this client's bookings believed active
        barrier.wait(timeout=30)
        for _ in range(OPS_PER_THREAD):
            op = rng.choice(["book", "book", "cancel", "reschedule"]) if mine else "book"
            if op == "book":
                body: dict[str, Any] = {"service_id": service_id,
                                        "start": iso(rng.choice(STARTS))}
                pick = rng.choice([None, *therapist_ids])
                if pick is not None:
                    body["therapist_id"] = pick
                status, data = api.call("POST", "/bookings", token, body)
                if status == 201:
                    mine.append(data["id"])
            elif op == "cancel":
                booking_id = rng.choice(mine)
                status, data = api.call("POST", f"/bookings/{booking_id}/cancel", token, {})
                if status == 200:
                    assert data["status"] == "cancelled" and data["late"] is False
                    mine.remove(booking_id)
            else:
                booking_id = rng.choice(mine)
                status, data = api.call("POST", f"/bookings/{booking_id}/reschedule", token,
                                        {"start": iso(rng.choice(STARTS))})
                if status == 200:
                    assert data["id"] == booking_id
            with log_lock:
                log.append((op, status, data))

    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        for future in [pool.submit(worker, i) for i in range(THREADS)]:
            future.result()

    outcomes = Counter((op, status) for op, status, _ in log)
    note = f"seed={seed} outcomes={dict(outcomes)}"
    assert len(log) == THREADS * OPS_PER_THREAD, note
    server_errors = [entry for entry in log if entry[1] >= 500]
    assert not server_errors, f"{note} {server_errors[:3]}"
    allowed = {"book": {201, 409}, "cancel": {200}, "reschedule": {200, 409}}
    unexpected = [e for e in log if e[1] not in allowed[e[0]]]
    assert not unexpected, f"{note} {unexpected[:3]}"
    assert outcomes[("book", 201)] >= 1 and outcomes[("book", 409)] >= 1, note

    db.session.rollback()
    assert db.session.scalar(OVERLAPS_SQL) == 0, note
    active = db.session.execute(
        select(Booking.therapist_id, Booking.room_id, Booking.blocked_start, Booking.blocked_end)
        .where(Booking.status != "cancelled").order_by(Booking.blocked_start)
    ).all()
    # The same proof in Python, per therapist and per room, so a wrong SQL check cannot hide one.
    for key in (0, 1):
        by_owner: dict[int, list[Any]] = {}
        for row in active:
            by_owner.setdefault(row[key], []).append(row)
        for rows in by_owner.values():
            for a, b in zip(rows, rows[1:], strict=False):
                assert a.blocked_end <= b.blocked_start, f"{note} overlap {a} {b}"


@pytest.fixture(autouse=True)
def _quiet_request_log(caplog):
    # 429/409 answers are expected here; keep the failure output readable.
    caplog.set_level("WARNING", logger="werkzeug")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.real_db  # gunicorn processes need the committed database
def test_storm_on_four_gunicorn_processes_has_exactly_one_winner(app, db, tmp_path):
    """20 simultaneous bookings of one slot through 4 gunicorn worker processes (separate
    SQLite connections in separate processes, reads no longer holding the write lock): one
    201, nineteen 409, no 500, and one active booking."""
    therapist = make_therapist(app)
    room = make_room(app)
    service = make_service(app, therapists=[therapist], rooms=[room], minutes=60)
    tokens = clients_with_tokens(app, db, 20, "storm")
    service_id, therapist_id = service.id, therapist.id
    db.session.commit()
    # gunicorn runs on the real clock: a 10:00 London slot on a weekday 3+ days from now.
    zone = ZoneInfo("Europe/London")
    day = datetime.now(UTC).astimezone(zone).date() + timedelta(days=3)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    start = datetime.combine(day, datetime.min.time().replace(hour=10), tzinfo=zone)
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLINIC_")}
    env.update({"CLINIC_DATABASE_URL": app.config["DATABASE_URL"],
                "CLINIC_SECRET_KEY": app.config["SECRET_KEY"],
                "CLINIC_INSTANCE_PATH": str(tmp_path / "gunicorn-instance"),
                "CLINIC_RATELIMIT_STORAGE_URL": "memory://", "CLINIC_MAIL_BACKEND": "dev",
                "CLINIC_DEV_MAILBOX_DIR": str(tmp_path / "mailbox")})
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--chdir", str(ROOT), "--bind",
         f"127.0.0.1:{port}", "--workers", "4", "--worker-class", "sync", "--log-level",
         "warning", "--error-logfile", str(tmp_path / "gunicorn.log"), "wsgi:app"],
        env=env, start_new_session=True)
    server = SimpleNamespace(host="127.0.0.1", port=port)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, (tmp_path / "gunicorn.log").read_text()
            try:
                if Api(server).call("GET", "/services")[0] == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "gunicorn did not start"
            time.sleep(0.2)
        api = Api(server)
        # Warm every worker (each imports the app and opens its own SQLite connection).
        for _ in range(8):
            assert api.call("GET", f"/availability?service_id={service_id}"
                                   f"&from={day.isoformat()}&to={day.isoformat()}")[0] == 200
        barrier = threading.Barrier(len(tokens))

        def attempt(token: str) -> tuple[int, Any]:
            barrier.wait(timeout=30)
            return api.call("POST", "/bookings", token, {
                "service_id": service_id, "start": start.isoformat(),
                "therapist_id": therapist_id})

        with ThreadPoolExecutor(max_workers=len(tokens)) as pool:
            results = list(pool.map(attempt, tokens))
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    statuses = Counter(status for status, _ in results)
    assert statuses == {201: 1, 409: 19}, results
    db.session.rollback()
    assert db.session.scalar(select(func.count(Booking.id)).where(
        Booking.therapist_id == therapist_id, Booking.status != "cancelled")) == 1
    assert db.session.scalar(OVERLAPS_SQL) == 0
    assert "Traceback" not in (tmp_path / "gunicorn.log").read_text()
