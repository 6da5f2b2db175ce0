"""Reads never take the write lock: read-only requests and jobs begin read-only transactions.

SQLite: GET/HEAD/OPTIONS requests and jobs under ``read_only()`` begin a deferred transaction
(a WAL snapshot, no write lock); everything else begins ``IMMEDIATE``. PostgreSQL: read-only
transactions run in autocommit, so there is no BEGIN/ROLLBACK round trip around the SELECTs.
A write inside a read-only request is refused before it runs and the view restarts in a write
transaction; inside a read-only job it fails loudly.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
import time
from datetime import UTC
from datetime import datetime
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from sqlalchemy import event
from sqlalchemy import func
from sqlalchemy import insert
from sqlalchemy import select
from sqlalchemy import text

from clinic_app.db import WriteInReadTransaction
from clinic_app.db import read_only
from clinic_app.db import transaction_is_read_only
from clinic_app.models import Booking
from clinic_app.models.schedule import ClinicSettings
from clinic_app.models.schedule import Room
from clinic_app.services.accounts import issue_api_token
from tests.factories import make_room
from tests.factories import make_service
from tests.factories import make_therapist
from tests.factories import make_user
from tests.factories import now_of

# These tests are about how transactions begin on real connections: no savepoint mode.
pytestmark = pytest.mark.real_db

ROOT = Path(__file__).resolve().parents[2]
# Wednesday 25 November 2026 10:00 London (= UTC in winter): bookable from the frozen clock.
START = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


def _sqlite_path(app) -> str | None:
    url = app.config["DATABASE_URL"]
    return url.removeprefix("sqlite:///") if url.startswith("sqlite") else None


def _write_lock_free(path: str) -> bool:
    """True if another connection could take SQLite's write lock right now (no waiting)."""
    probe = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        probe.execute("BEGIN IMMEDIATE")
        probe.execute("ROLLBACK")
        return True
    except sqlite3.OperationalError as exc:
        assert "locked" in str(exc)
        return False
    finally:
        probe.close()


def _check_sqlite_write_lock(db, path: str) -> None:
    with read_only():
        assert transaction_is_read_only()
        db.session.scalar(select(func.count(Room.id)))  # the transaction is open now
        assert _write_lock_free(path)
        db.session.rollback()
    assert not transaction_is_read_only()
    db.session.scalar(select(func.count(Room.id)))  # IMMEDIATE: the write lock is held
    assert not _write_lock_free(path)
    db.session.rollback()
    assert _write_lock_free(path)


def _check_postgresql_autocommit(db) -> None:
    seen: list[tuple[bool, str]] = []

    def record(conn, cursor, statement, *args):
        raw = conn.connection.dbapi_connection
        seen.append((raw.autocommit, raw.info.transaction_status.name))

    event.listen(db.engine, "after_cursor_execute", record)
    try:
        with read_only():
            db.session.scalar(select(func.count(Room.id)))
            db.session.scalar(select(func.count(Room.id)))
            db.session.rollback()
        read_seen = list(seen)
        seen.clear()
        db.session.scalar(select(func.count(Room.id)))
        write_seen = list(seen)
        db.session.rollback()
    finally:
        event.remove(db.engine, "after_cursor_execute", record)
    # Autocommit: after each SELECT the connection is idle, so no ROLLBACK is sent either.
    assert read_seen == [(True, "IDLE"), (True, "IDLE")]
    assert write_seen == [(False, "INTRANS")]


def test_read_only_transaction_takes_no_write_lock_and_no_transaction_block(app, db):
    """SQLite: another connection can take the write lock while a read-only transaction is
    open, and cannot while a write transaction is. PostgreSQL: reads run in autocommit."""
    db.session.commit()
    path = _sqlite_path(app)
    if path is not None:
        _check_sqlite_write_lock(db, path)
    else:
        _check_postgresql_autocommit(db)


def test_write_in_a_read_only_job_is_refused_before_it_runs(app, db):
    db.session.commit()
    with read_only(), pytest.raises(WriteInReadTransaction):
        db.session.scalar(select(func.count(Room.id)))
        db.session.add(Room(name="Never saved"))
        db.session.flush()
    db.session.rollback()
    assert db.session.scalar(select(func.count(Room.id)).where(Room.name == "Never saved")) == 0


def test_a_write_inside_a_cte_is_refused_in_a_read_only_job(app, db):
    db.session.commit()
    new_room = (insert(Room).values(name="Never saved", active=True)
                .returning(Room.id).cte("new_room"))
    with read_only(), pytest.raises(WriteInReadTransaction):
        db.session.execute(select(new_room.c.id))
    db.session.rollback()
    assert db.session.scalar(select(func.count(Room.id)).where(Room.name == "Never saved")) == 0
    with read_only():  # a plain CTE is a read
        plain = select(Room.id).cte("rooms_read")
        db.session.execute(select(plain.c.id)).all()
    db.session.rollback()


def test_get_request_that_writes_restarts_in_a_write_transaction(app, db, client):
    # A GET whose first use creates the settings row: it reads, then writes.
    db.session.execute(ClinicSettings.__table__.delete())
    db.session.commit()
    modes: list[bool] = []

    @app.get("/_probe/settings")
    def _probe():
        from clinic_app.services.settings import get_settings

        modes.append(transaction_is_read_only())
        db.session.scalar(select(func.count(Room.id)))
        zone = get_settings(db.session).timezone
        db.session.commit()
        return zone

    response = client.get("/_probe/settings")
    assert response.status_code == 200, response.data
    assert response.data.decode() == app.config["TIMEZONE"]
    assert modes == [True, False]  # ran read-only, refused the INSERT, ran again for writing
    db.session.rollback()
    assert db.session.scalar(select(func.count(ClinicSettings.id))) == 1
    # The next GET finds the row and never writes: one run, read-only.
    modes.clear()
    assert client.get("/_probe/settings").status_code == 200
    assert modes == [True]


def test_the_mode_of_a_request_does_not_outlive_it(app, db):
    """A plain (non-isolated) test client runs requests in the caller's context: after a
    GET, the caller's next transaction must begin for writing again."""
    modes: list[bool] = []

    @app.get("/_probe/read")
    def _probe_read():
        modes.append(transaction_is_read_only())
        return "ok"

    db.session.commit()
    plain = FlaskClient(app)
    assert plain.get("/_probe/read").status_code == 200
    assert modes == [True]
    assert not transaction_is_read_only()
    db.session.add(Room(name="Written after a GET"))
    db.session.commit()  # would raise WriteInReadTransaction if the mode had leaked
    with read_only():
        assert plain.get("/_probe/read").status_code == 200
        assert transaction_is_read_only()  # the caller's own marker is restored too


def test_post_request_begins_a_write_transaction(app, db, client):
    modes: list[bool] = []

    @app.post("/_probe/mode")
    def _probe_post():
        modes.append(transaction_is_read_only())
        return "ok"

    assert client.post("/_probe/mode").status_code == 200
    assert modes == [False]


HOLDER = textwrap.dedent("""
    import sys
    from sqlalchemy import func, select
    from clinic_app import create_app
    from clinic_app.db import read_only
    from clinic_app.extensions import db
    from clinic_app.models import Booking

    app = create_app({"DATABASE_URL": sys.argv[1], "INSTANCE_PATH": sys.argv[2],
                      "SECRET_KEY": "holder-secret-key-long-enough", "TESTING": True,
                      "RATELIMIT_STORAGE_URL": "memory://"})
    with app.app_context(), read_only():
        count = db.session.scalar(select(func.count(Booking.id)))  # transaction open now
        print("holding", count, flush=True)
        sys.stdin.readline()  # keep it open until the test says so
        db.session.rollback()
    print("released", flush=True)
""")


def test_reader_in_another_process_holding_its_transaction_blocks_nobody(app, db, client,
                                                                         tmp_path):
    therapist = make_therapist(app)
    room = make_room(app)
    service = make_service(app, therapists=[therapist], rooms=[room], minutes=60)
    user = make_user(app)
    token, _ = issue_api_token(db.session, user, now_of(app), days=30)
    db.session.commit()
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, app.config["DATABASE_URL"], str(tmp_path / "holder")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        line = holder.stdout.readline()
        assert line.startswith("holding"), line
        started = time.monotonic()
        found = client.get(f"/api/v1/availability?service_id={service.id}"
                           f"&from=2026-11-25&to=2026-11-25")
        booked = client.post("/api/v1/bookings", headers={"Authorization": f"Bearer {token}"},
                             json={"service_id": service.id, "start": START.isoformat(),
                                   "therapist_id": therapist.id})
        again = client.get(f"/api/v1/availability?service_id={service.id}"
                           f"&from=2026-11-25&to=2026-11-25")
        elapsed = time.monotonic() - started
        assert holder.poll() is None, "the reader must still hold its transaction"
    finally:
        holder.stdin.write("\n")
        holder.stdin.flush()
        out, _ = holder.communicate(timeout=30)
    assert found.status_code == 200, found.data
    assert booked.status_code == 201, booked.data
    assert again.status_code == 200, again.data
    starts = {datetime.fromisoformat(s["start"]) for s in again.get_json()["slots"]}
    assert START in {datetime.fromisoformat(s["start"]) for s in found.get_json()["slots"]}
    assert START not in starts
    assert len(again.get_json()["slots"]) < len(found.get_json()["slots"])
    assert elapsed < 5, f"requests waited {elapsed:.1f} s behind a reader"
    assert "released" in out
    db.session.rollback()
    assert db.session.scalar(select(func.count(Booking.id))) == 1
    assert db.session.execute(text("SELECT 1")).scalar() == 1
