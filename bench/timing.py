"""Account enumeration by timing: known and unknown emails, interleaved, for sign-up,
log-in and password reset (issue 9 item 5).

    python bench/timing.py                       # SQLite file in a temporary folder
    python bench/timing.py --database-url postgresql+psycopg://postgres@127.0.0.1/bench_db
    python bench/timing.py --rounds 150 --json timing.json

Each round sends one request for a registered address and one for an unknown address, in a
random order, through the in-process test client (full request handling: form, service,
database, commit), with the production argon2 parameters and the real clock. Log-in uses a
wrong password for the known account (what someone probing addresses has). Prints the
median time of each side and the gap (the target: under 10 ms for every flow), the median
of the back-to-back pairs' differences, and the gap with the time inside argon2 taken out
(both paths run the same argon2 calls; on a busy machine argon2's variance hides the rest).

The PostgreSQL database's schema is DROPPED and recreated: use a scratch database.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import argon2
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from clinic_app import create_app  # noqa: E402
from clinic_app import security  # noqa: E402
from clinic_app.extensions import db  # noqa: E402
from clinic_app.models import User  # noqa: E402
from clinic_app.services.settings import get_settings  # noqa: E402

PASSWORD = "bench-password-2026"
TARGET_MS = 10.0
UNLIMITED = "1000000 per minute"


def build_app(database_url: str | None, instance: Path) -> Any:
    config: dict[str, Any] = {
        "INSTANCE_PATH": str(instance),
        "DEV_MAILBOX_DIR": str(instance / "mailbox"),
        "DATABASE_URL": database_url or f"sqlite:///{instance / 'bench.sqlite3'}",
        "SECRET_KEY": "bench-secret-key-that-is-long-enough",
        "BASE_URL": "http://clinic.bench",
        "WTF_CSRF_ENABLED": False,
        "LOGIN_LIMIT_PER_ACCOUNT": UNLIMITED,
        "LOGIN_LIMIT_PER_IP": UNLIMITED,
        "RATELIMIT_STORAGE_URL": "memory://",
    }
    app = create_app(config)
    with app.app_context():
        if database_url:
            with db.engine.begin() as conn:
                conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
                conn.execute(text("CREATE SCHEMA public"))
                conn.execute(text("CREATE EXTENSION IF NOT EXISTS btree_gist"))
        db.create_all()
        get_settings(db.session)
        db.session.commit()
    return app


def make_known_users(app: Any, count: int) -> list[str]:
    """Verified clients; one argon2 hash shared (hashing 450 of them would take minutes)."""
    password_hash = security.hash_password(PASSWORD)
    now = app.extensions["clock"].now()
    emails = [f"known{i}@clinic.bench" for i in range(count)]
    with app.app_context():
        db.session.add_all(
            User(email=email, name=f"Known {i}", role="client", password_hash=password_hash,
                 email_verified_at=now, consent_at=now, created_at=now)
            for i, email in enumerate(emails)
        )
        db.session.commit()
    return emails


class Argon2Clock:
    """Time spent inside argon2 (hash and verify), so that it can be taken out.

    Both paths of every flow run the same argon2 calls (tests/integration/
    test_enumeration.py asserts it), and on a busy machine argon2's own variance
    (hundreds of ms) hides the few ms in which the paths really differ; the gap
    without argon2 shows those.
    """

    def __init__(self) -> None:
        self.spent_ms = 0.0

    def install(self) -> None:
        clock = self

        def wrap(real: Callable[..., Any]) -> Callable[..., Any]:
            def timed_call(*args: Any, **kwargs: Any) -> Any:
                started = time.perf_counter()
                try:
                    return real(*args, **kwargs)
                finally:
                    clock.spent_ms += (time.perf_counter() - started) * 1000
            return timed_call

        argon2.PasswordHasher.hash = wrap(argon2.PasswordHasher.hash)  # type: ignore[method-assign]
        argon2.PasswordHasher.verify = wrap(argon2.PasswordHasher.verify)  # type: ignore[method-assign]


ARGON2 = Argon2Clock()


def timed(send: Callable[[], Any], expect: int) -> tuple[float, float]:
    """(wall ms, wall ms minus the time inside argon2) of one request."""
    before = ARGON2.spent_ms
    started = time.perf_counter()
    response = send()
    elapsed = (time.perf_counter() - started) * 1000
    if response.status_code != expect:
        raise SystemExit(f"unexpected {response.status_code} (wanted {expect})")
    return elapsed, elapsed - (ARGON2.spent_ms - before)


def run_flow(app: Any, flow: str, known: list[str], spare: str, rng: random.Random
             ) -> dict[str, float]:
    """Time ``len(known)`` known and as many unknown requests, each pair in random order."""
    client = app.test_client()

    def request(email: str) -> Callable[[], Any]:
        if flow == "signup":
            return lambda: client.post("/signup", data={
                "name": "Bench", "email": email, "password": "a-good-long-password",
                "consent": "y"})
        if flow == "login":
            return lambda: client.post("/login", data={"email": email,
                                                       "password": "wrong-password-1"})
        return lambda: client.post("/password/forgot", data={"email": email})

    expect = 401 if flow == "login" else 200
    # Warm-up: first-request costs (template compilation, connection) are not the gap.
    for n in range(3):
        timed(request(f"warm-{flow}-{n}@clinic.bench"), expect)
        timed(request(spare), expect)
    samples: dict[str, list[tuple[float, float]]] = {"known": [], "unknown": []}
    for i, address in enumerate(known):
        pair = [("known", address), ("unknown", f"nobody-{flow}-{i}@clinic.bench")]
        rng.shuffle(pair)
        for side, email in pair:
            samples[side].append(timed(request(email), expect))
    known_ms = [wall for wall, _ in samples["known"]]
    unknown_ms = [wall for wall, _ in samples["unknown"]]
    known_median = statistics.median(known_ms)
    unknown_median = statistics.median(unknown_ms)
    # Each pair ran back to back, so its difference is less exposed to load drifting
    # during the run than the two medians are.
    paired = statistics.median(k - u for k, u in zip(known_ms, unknown_ms, strict=True))
    rest_gap = (statistics.median(rest for _, rest in samples["known"])
                - statistics.median(rest for _, rest in samples["unknown"]))
    return {"known_median_ms": round(known_median, 2),
            "unknown_median_ms": round(unknown_median, 2),
            "gap_ms": round(abs(known_median - unknown_median), 2),
            "paired_median_diff_ms": round(paired, 2),
            "gap_without_argon2_ms": round(abs(rest_gap), 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", help="PostgreSQL URL (schema is dropped!)")
    parser.add_argument("--rounds", type=int, default=150)
    parser.add_argument("--flows", default="signup,login,reset")
    parser.add_argument("--seed", type=int, default=9)
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    ARGON2.install()
    hasher = security.password_hasher()
    print(f"argon2id time_cost={hasher.time_cost} memory_cost={hasher.memory_cost} KiB "
          f"parallelism={hasher.parallelism}; {args.rounds} known + {args.rounds} unknown "
          f"per flow, interleaved")
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        app = build_app(args.database_url, Path(tmp))
        flows = [f.strip() for f in args.flows.split(",") if f.strip()]
        known = make_known_users(app, (args.rounds + 1) * len(flows))
        for n, flow in enumerate(flows):
            # Each flow gets its own registered addresses, and one spare for the warm-up.
            mine = known[n * (args.rounds + 1):(n + 1) * (args.rounds + 1)]
            results[flow] = run_flow(app, flow, mine[1:], mine[0], rng)
            r = results[flow]
            verdict = "ok" if r["gap_ms"] < TARGET_MS else "OVER TARGET"
            print(f"{flow:7} known p50 {r['known_median_ms']:7.2f} ms   unknown p50 "
                  f"{r['unknown_median_ms']:7.2f} ms   gap {r['gap_ms']:6.2f} ms   "
                  f"{verdict}\n{'':7} paired difference p50 {r['paired_median_diff_ms']:+6.2f} ms"
                  f"   gap without argon2 {r['gap_without_argon2_ms']:5.2f} ms")
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
