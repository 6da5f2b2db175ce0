"""Waitlist benchmark: 1,000 waiting entries, a day of cancellations, the ranking work per
freed slot and the offer job's work per cancellation (issue 13 item 6).

Usage (from the repository root, with the project installed)::

    python bench/waitlist.py                      # a temporary SQLite file
    python bench/waitlist.py --db postgresql --url postgresql+psycopg://postgres@127.0.0.1/bench

WARNING: with ``--db postgresql`` every table of the models in the target database is DROPPED
and recreated. Point ``--url`` at a scratch database.

Data: the slot search benchmark's ``peer`` shape (bench/availability.py: 10 therapists, a
year of bookings, 300 clients), plus 1,000 more clients, each with one waitlist entry for the
60-minute service (a random 3-30-day range starting in the next two weeks, any therapist or
one, random parts of the day) and, for 70 % of them, a current recommendation window (their
newest ``recommendations`` row) around the next days.

Measured: for each of the day's cancellations (every bookable hour of the next working day,
for every therapist: 70 freed slots), ``services.waitlist.candidates_for_freed_slot`` -- read
the live entries of the service with each client's current window and rank them with the
pure rules -- ending its transaction. This is the work between a cancellation and knowing
who gets the offer.

Then the offers themselves: every booking of the next working day is cancelled, one at a time
(``services.booking.cancel``, committed: that queues the freed time), and right after each
commit one round of the worker's offer job runs (``services.waitlist_offers.run_round``,
committed): the freed range's free starts from the slot search, each ranked, the best match's
hold placed, the offer row and its outbox intent (due at once) written. The time of that round
is the time from a cancellation's commit to the offer email being due, less the wait for the
job's next run (it runs every 15 s). Clients who got an offer keep it open, so later
cancellations go to the next matches, as in a real day.

Ranking measured on 2026-12-01 (2 shared CPUs, other work running): SQLite p50 23.5 ms, p95 63.8 ms;
PostgreSQL 15 p50 27.6 ms, p95 42.7 ms; 5-6 statements per freed slot (target: p95 < 1 s).
Before the windows were read in one query (one ``current_recommendation`` per waiting
client): SQLite p50 1.4 s, p95 2.1 s, about 1,000 statements.

Offer job measured on 2026-12-01 (2 shared CPUs, about five other sessions running tests: the
times are an upper bound, the statement counts are exact): 60 cancellations, 52 offers (the
other 8 slots had no client left who was free to be asked). SQLite p50 84 ms, p95 200 ms;
PostgreSQL 15 p50 145 ms, p95 300 ms; 31-32 statements per cancellation (p50), at most 53:
the expiry scan, the queue, the live entries, one slot search, two statements per ranked
start, the candidate's booking checks (referral, review), the hold (the booking re-check and
its flush), the offer and its intent. Target: p95 < 1 s. Since the live entries are read
once per service and day (not per ranked start): 29 statements p50, at most 41 (SQLite,
2026-12-01, a CI run alongside: p50 18 ms, p95 35 ms).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time as _time
from datetime import timedelta
from pathlib import Path

from sqlalchemy import event
from sqlalchemy import func
from sqlalchemy import insert
from sqlalchemy import select

sys.path.insert(0, str(Path(__file__).resolve().parent))  # run as a script from anywhere

from availability import HOURS  # noqa: E402
from availability import NOW  # noqa: E402
from availability import ZONE  # noqa: E402
from availability import build_app  # noqa: E402
from availability import machine  # noqa: E402
from availability import percentile  # noqa: E402
from availability import reset_schema  # noqa: E402
from availability import seed  # noqa: E402
from availability import utc  # noqa: E402

ENTRIES = 1000
WITH_WINDOW = 0.7


def seed_waitlist(session, info: dict, rng: random.Random) -> None:
    """1,000 clients with one entry each; 70 % with a recommendation window."""
    from clinic_app.models import Booking
    from clinic_app.models import Recommendation
    from clinic_app.models import User
    from clinic_app.models import WaitlistEntry

    created = NOW - timedelta(days=30)
    session.execute(insert(User), [
        {"email": f"waiting{i}@bench.example", "name": f"Waiting {i}", "role": "client",
         "created_at": created} for i in range(ENTRIES)])
    ids = [uid for (uid,) in session.execute(
        select(User.id).where(User.email.like("waiting%")).order_by(User.id))]
    past_booking = session.scalar(select(Booking.id).where(Booking.start_at < NOW).limit(1))
    today = NOW.astimezone(ZONE).date()
    entries, recs = [], []
    for n, uid in enumerate(ids):
        start = today + timedelta(days=rng.randint(0, 14))
        entries.append({
            "client_id": uid, "service_id": info["service_id"],
            "therapist_id": rng.choice([None, None, *info["therapist_ids"]]),
            "date_from": start, "date_to": start + timedelta(days=rng.randint(3, 30)),
            "parts_of_day": rng.sample(["morning", "afternoon", "evening"], rng.randint(0, 2)),
            "status": "waiting", "created_at": created + timedelta(minutes=n),
            "updated_at": created + timedelta(minutes=n)})
        if rng.random() < WITH_WINDOW:
            earliest = today + timedelta(days=rng.randint(-5, 10))
            recs.append({
                "client_id": uid, "booking_id": past_booking, "created_at": created,
                "earliest": earliest, "ideal": earliest + timedelta(days=2),
                "latest": earliest + timedelta(days=6), "action": "book",
                "intensity_advice": "keep", "reasons": [], "source": "rules",
                "override_reason": ""})
    session.execute(insert(WaitlistEntry), entries)
    session.execute(insert(Recommendation), recs)
    session.commit()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--url", help="database URL (required for postgresql; DROPS tables)")
    args = parser.parse_args(argv)
    tmp = tempfile.TemporaryDirectory(prefix="clinic-bench-")
    url = args.url
    if args.db == "sqlite" and not url:
        url = f"sqlite:///{tmp.name}/bench.sqlite3"
    if args.db == "postgresql" and not url:
        parser.error("--db postgresql needs --url postgresql+psycopg://user@host/scratch_db")
    app = build_app(url, str(Path(tmp.name) / "instance"))

    from clinic_app.extensions import db
    from clinic_app.services.waitlist import candidates_for_freed_slot

    with app.app_context():
        session = db.session
        reset_schema(db.engine)
        info = seed(session, "peer")
        seed_waitlist(session, info, random.Random(13))
        tomorrow = NOW.astimezone(ZONE).date() + timedelta(days=1)
        freed = [(t, utc(tomorrow, start.replace(hour=h)))
                 for t in info["therapist_ids"]
                 for start, end in HOURS for h in range(start.hour, end.hour)]
        statements: list[str] = []
        event.listen(db.engine, "before_cursor_execute",
                     lambda conn, cursor, statement, *a: statements.append(statement))
        timings: list[float] = []
        offered = 0
        for therapist_id, start in freed:
            began = _time.perf_counter()
            ranked = candidates_for_freed_slot(session, service_id=info["service_id"],
                                               therapist_id=therapist_id, start=start, now=NOW)
            session.rollback()
            timings.append((_time.perf_counter() - began) * 1000)
            offered += bool(ranked)
        box = machine(db.engine)
    print(f"# waitlist benchmark: {args.db}")
    print(f"machine: {box['cpus']} CPUs, {box['cpu']}; Python {box['python']}; "
          f"{box['database']}")
    print(f"data: {ENTRIES} waiting entries ({int(WITH_WINDOW * 100)} % with a window); "
          f"{len(freed)} freed slots on {tomorrow}")
    print(f"per freed slot: p50 {statistics.median(timings):.1f} ms, "
          f"p95 {percentile(timings, 0.95):.1f} ms, max {max(timings):.1f} ms; "
          f"{len(statements) / len(freed):.0f} statements; {offered} slots had a match")
    offer_day(app, info, tomorrow)
    return 0


def offer_day(app, info: dict, day) -> None:
    """Cancel every booking of ``day`` one by one; time the offer job's round after each."""
    from clinic_app.extensions import db
    from clinic_app.models import Booking
    from clinic_app.models import OutboxMessage
    from clinic_app.services import booking as booking_service
    from clinic_app.services.waitlist_offers import run_round

    with app.app_context():
        session = db.session
        first, last = utc(day, HOURS[0][0]), utc(day, HOURS[-1][1])
        bookings = session.scalars(select(Booking).where(
            Booking.start_at >= first, Booking.start_at < last,
            Booking.status == "booked").order_by(Booking.start_at, Booking.therapist_id)).all()
        statements: list[str] = []
        event.listen(db.engine, "before_cursor_execute",
                     lambda conn, cursor, statement, *a: statements.append(statement))
        timings: list[float] = []
        counts: list[int] = []
        made = 0
        for booking in bookings:
            booking_service.cancel(session, booking, actor=booking.client, now=NOW)
            session.commit()
            statements.clear()
            began = _time.perf_counter()
            result = run_round(session, NOW)
            session.commit()
            timings.append((_time.perf_counter() - began) * 1000)
            counts.append(len(statements))
            made += len(result.offers)
            assert not result.failures, result.failures
        due = session.scalar(select(func.count(OutboxMessage.id)).where(
            OutboxMessage.kind == "waitlist_offer", OutboxMessage.due_at <= NOW))
    print(f"offers: {len(bookings)} cancellations on {day}, {made} offers made, "
          f"{due} offer emails due at once")
    print(f"per cancellation, commit to offer email due (the job's round): "
          f"p50 {statistics.median(timings):.1f} ms, p95 {percentile(timings, 0.95):.1f} ms, "
          f"max {max(timings):.1f} ms (target p95 < 1000 ms); statements p50 "
          f"{statistics.median(counts):.0f}, max {max(counts)}")


if __name__ == "__main__":
    sys.exit(main())
