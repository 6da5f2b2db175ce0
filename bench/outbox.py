"""Outbox dispatcher benchmark: N due messages through ``dispatch_outbox_job`` into a local
SMTP server (aiosmtpd), counting Message-IDs at the server.

    python bench/outbox.py                       # SQLite file in a temporary folder
    python bench/outbox.py --database-url postgresql+psycopg://postgres@127.0.0.1/bench_db
    python bench/outbox.py --count 10000 --workers 2

The PostgreSQL database's schema is DROPPED and recreated: use a scratch database.
Prints messages per second and duplicates (must be 0).
"""

from __future__ import annotations

import argparse
import contextvars
import multiprocessing
import re
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from sqlalchemy import insert
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from clinic_app import create_app  # noqa: E402
from clinic_app.clock import FrozenClock  # noqa: E402
from clinic_app.extensions import db  # noqa: E402
from clinic_app.models import OutboxMessage  # noqa: E402
from clinic_app.worker import dispatch_outbox_job  # noqa: E402

_MESSAGE_ID = re.compile(rb"^Message-ID:\s*(\S+)", re.IGNORECASE | re.MULTILINE)


class CountingSink:
    """Counts Message-IDs of accepted messages (cheap: no full MIME parse)."""

    def __init__(self) -> None:
        self.ids: Counter[bytes] = Counter()
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd API
        match = _MESSAGE_ID.search(envelope.content)
        with self.lock:
            self.ids[match.group(1) if match else b"?"] += 1
        return "250 OK"


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(port: int, ready: Any, stop: Any, results: Any) -> None:
    """The SMTP server, in its own process (as a real one would be): no GIL shared."""
    sink = CountingSink()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    ready.set()
    stop.wait()
    controller.stop()
    results.put(dict(sink.ids))


def run(database_url: str | None, count: int, workers: int, batch: int) -> dict[str, float]:
    """One run; returns the figures."""
    ctx = multiprocessing.get_context("spawn")
    ready, stop, results = ctx.Event(), ctx.Event(), ctx.Queue()
    port = _free_port()
    server = ctx.Process(target=_serve, args=(port, ready, stop, results), daemon=True)
    server.start()
    if not ready.wait(30):
        raise RuntimeError("the SMTP server did not start")
    tmp = tempfile.mkdtemp(prefix="outbox-bench-")
    url = database_url or f"sqlite:///{tmp}/bench.sqlite3"
    now = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
    app = create_app({
        "DATABASE_URL": url, "INSTANCE_PATH": f"{tmp}/instance",
        "SECRET_KEY": "bench-secret-key-that-is-long-enough", "MAIL_BACKEND": "smtp",
        "SMTP_HOST": "127.0.0.1", "SMTP_PORT": port, "OUTBOX_BATCH_SIZE": batch,
        "CLOCK": FrozenClock(now),
    })
    import logging

    logging.getLogger("clinic_app.mail").setLevel(logging.WARNING)  # no line per message here
    with app.app_context():
        if url.startswith("postgresql"):
            with db.engine.begin() as conn:
                conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
                conn.execute(text("CREATE SCHEMA public"))
                conn.execute(text("CREATE EXTENSION IF NOT EXISTS btree_gist"))
        db.create_all()
        due = now - timedelta(minutes=1)
        rows = [{
            "key": f"bench:{i}", "kind": "bench", "to_addr": f"client{i}@example.com",
            "subject": f"Reminder {i}: your appointment", "essential": True,
            "body_text": "Hello,\n\nA reminder of your appointment tomorrow at 10:00.\n" * 5,
            "body_html": "<p>Hello,</p><p>A reminder of your appointment.</p>" * 5,
            "attachments": [], "headers": {}, "status": "pending", "due_at": due,
            "next_attempt_at": due, "attempts": 0, "created_at": due,
        } for i in range(count)]
        for start in range(0, count, 2000):
            db.session.execute(insert(OutboxMessage), rows[start:start + 2000])
        db.session.commit()
        db.session.remove()

    started = time.perf_counter()
    threads = [
        threading.Thread(target=lambda n=n: contextvars.Context().run(
            dispatch_outbox_job, app, f"bench-{n}"))
        for n in range(workers)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    stop.set()
    ids: dict[bytes, int] = results.get(timeout=60)
    server.join(timeout=30)
    with app.app_context():
        sent = db.session.scalar(
            text("SELECT count(*) FROM outbox WHERE status = 'sent'"))
        db.session.remove()
        db.engine.dispose()
    received = sum(ids.values())
    return {
        "sent": sent, "received": received, "unique": len(ids),
        "duplicates": received - len(ids), "seconds": elapsed,
        "per_second": received / elapsed if elapsed else 0.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=1, help="dispatcher threads")
    parser.add_argument("--batch", type=int, default=200, help="OUTBOX_BATCH_SIZE")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    rates = []
    for _ in range(args.repeat):
        r = run(args.database_url, args.count, args.workers, args.batch)
        rates.append(r["per_second"])
        print(f"{r['received']:.0f} received ({r['unique']:.0f} unique, "
              f"{r['duplicates']:.0f} duplicates), {r['sent']:.0f} rows sent, "
              f"{r['seconds']:.2f} s, {r['per_second']:.0f} messages/s")
        if r["duplicates"] or r["unique"] != args.count or r["sent"] != args.count:
            sys.exit("FAILED: duplicates or missing messages")
    if args.repeat > 1:
        print(f"median {statistics.median(rates):.0f} messages/s")


if __name__ == "__main__":
    main()
