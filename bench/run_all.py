"""Rerun every benchmark and rewrite the generated tables of ``docs/performance.md``.

Usage (from the repository root, with the project installed, PostgreSQL and Redis running)::

    python bench/run_all.py            # the full run (about 15-25 minutes on 2 CPUs)
    python bench/run_all.py --quick    # a short smoke run: same tables, fewer samples
    python bench/run_all.py --pg-url postgresql+psycopg://postgres@127.0.0.1:5432/bench \\
        --load-url postgresql+psycopg://postgres@127.0.0.1:5432/bench_load

WARNING: ``--pg-url`` and ``--load-url`` name scratch databases: their tables (or their
``public`` schema) are DROPPED.

What runs, each in its own process (a failure is reported in the document, not hidden):

1. ``bench/availability.py`` on SQLite (in-process and over HTTP: waitress as under
   ``clinic up``, and gunicorn) and on PostgreSQL, shape ``peers``, each beside the floor;
2. ``bench/load.py``: 200 users with 1 s think time, then 50 users in a closed loop, then
   one worker's memory after 10,000 requests (``--quick``: shorter runs, 1,000 requests);
3. ``bench/outbox.py`` (10,000 emails; ``--quick``: 1,000);
4. ``bench/booking.py`` (SQLite, then PostgreSQL at ``--pg-url``) and ``bench/timing.py``
   when present (written separately); a missing one is skipped with a printed note.

Each script writes JSON (``--json``); this script turns it into Markdown and replaces what
lies between ``<!-- run_all:NAME:start -->`` and ``<!-- run_all:NAME:end -->`` in the document,
leaving every other line alone.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
from datetime import UTC
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "performance.md"
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/bench_availability"
LOAD_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/bench_load"

# The peers' own figures (their set-up, this machine kind): quoted, never rerun here.
PEERS = """\
| call | Easy!Appointments 1.5.1 (PHP + MariaDB) | django-appointment 3.12 (Django + SQLite) |
|---|---|---|
| one therapist, one day | 8.7 ms, 12 queries | 6.1 ms, 18 queries |
| all therapists, one day | 54 ms, 85 queries | 62 ms, 181 queries |
| all therapists, 14 days | ~780 ms, ~1,190 queries | ~780 ms, 2,201 queries |"""

TARGETS = {  # (context, call) -> the largest ratio to the floor allowed
    ("in-process", "sqlite", "all therapists, 14 days"): 2.0,
    ("in-process", "postgresql", "all therapists, 14 days"): 3.0,
    ("in-process", "sqlite", "one therapist, one day"): 5.0,
    ("in-process", "sqlite", "all therapists, one day"): 5.0,
    ("waitress", "sqlite", "all therapists, 14 days"): 3.0,
    ("gunicorn", "sqlite", "all therapists, 14 days"): 3.0,
}


def run(cmd: list[str], what: str, timeout: float) -> tuple[bool, str]:
    """Run one benchmark; (ok, its output). Output is echoed as it comes."""
    print(f"\n=== {what}: {' '.join(cmd)}", flush=True)
    try:
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                              check=False)
    except subprocess.TimeoutExpired:
        return False, f"timed out after {timeout:.0f} s"
    out = proc.stdout + (f"\n{proc.stderr[-2000:]}" if proc.returncode else "")
    print(proc.stdout[-3000:], flush=True)
    return proc.returncode == 0, out


def load_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def availability_tables(runs: dict[str, dict[str, Any]]) -> str:
    """One table: every call, in-process SQLite / PostgreSQL and over HTTP, with ratios."""
    lines = ["| call | where | p50 ms | p95 ms | SQL statements | slots | floor p50 ms "
             "| ratio p50 | target |", "|---|---|---:|---:|---:|---:|---:|---:|---|"]
    calls = ("one therapist, one day", "all therapists, one day", "all therapists, 14 days")
    for db_name, result in runs.items():
        contexts = [("in-process", result["in_process"])]
        contexts += [(kind, rows) for kind, rows in result.get("http", {}).items()]
        for context, rows in contexts:
            for call in calls:
                ours, floor = rows.get(f"ours | {call}"), rows.get(f"floor | {call}")
                if ours is None:
                    continue
                ratio = ours["p50"] / floor["p50"] if floor else None
                limit = TARGETS.get((context, db_name, call))
                verdict = "" if limit is None or ratio is None else (
                    f"<= {limit:g}x: {'met' if ratio <= limit else 'MISSED'}")
                where = f"{'SQLite' if db_name == 'sqlite' else 'PostgreSQL'}, {context}"
                statements = f"{ours['statements']:g}" if context == "in-process" else "-"
                lines.append(
                    f"| {call} | {where} | {ours['p50']:.2f} | {ours['p95']:.2f} | {statements} "
                    f"| {ours['slots']} | {floor['p50']:.2f} | {ratio:.2f}x | {verdict} |"
                    if floor else
                    f"| {call} | {where} | {ours['p50']:.2f} | {ours['p95']:.2f} | {statements} "
                    f"| {ours['slots']} | - | - | |")
    first = next(iter(runs.values()))
    head = (f"Data (`--shape peers`): {first['therapists']} therapists, {first['rooms']} rooms, "
            f"{first['services']} service, {first['bookings']:,} bookings; first queried day "
            f"{first['first_day']}; {first['runs']} interleaved runs per call after "
            f"{first['warmup']} warm-up. Load average before/after: " + "; ".join(
                f"{name} {r['load_before']} / {r['load_after']}" for name, r in runs.items()))
    return head + "\n\n" + "\n".join(lines)


def load_table(results: dict[str, dict[str, Any]]) -> str:
    lines = ["| run | users | think s | requests/s | availability p95 ms | booking p95 ms "
             "| errors | worker RSS MiB | targets |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for name, r in results.items():
        avail = r["headline"]["availability"]["p95"]
        book = r["headline"]["booking"]["p95"]
        verdict = (f"availability < 100: {'met' if avail < 100 else 'MISSED'}, booking < 200: "
                   f"{'met' if book < 200 else 'MISSED'}, 0 errors: "
                   f"{'met' if r['headline']['errors'] == 0 else 'MISSED'}"
                   if r["think"] else "throughput run")
        lines.append(f"| {name} | {r['users']} | {r['think']:g} | {r['rate']:.1f} | {avail:.0f} "
                     f"| {book:.0f} | {r['headline']['errors']} "
                     f"| {max(r['rss_mib'], default=0):.0f} | {verdict} |")
    memory = next((r["memory"] for r in results.values() if r.get("memory")), None)
    out = "\n".join(lines)
    if memory:
        out += (f"\n\nOne worker after {memory['requests']:,} requests: "
                f"**{memory['rss_mib']:.1f} MiB** RSS (at start {memory['rss_start_mib']:.1f} MiB;"
                f" target < 120 MiB: {'met' if memory['rss_mib'] < 120 else 'MISSED'}), "
                f"{memory['errors']} errors.")
    for name, r in results.items():
        out += f"\n\n<details><summary>{name}: full report</summary>\n\n{r['report']}\n\n</details>"
    return out


def replace_section(text: str, name: str, body: str) -> str:
    start, end = f"<!-- run_all:{name}:start -->", f"<!-- run_all:{name}:end -->"
    block = f"{start}\n{body.strip()}\n{end}"
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.S)
    if pattern.search(text):
        return pattern.sub(lambda _: block, text)
    return text.rstrip() + f"\n\n{block}\n"


def versions() -> str:
    import sqlite3

    import sqlalchemy

    parts = [f"Python {platform.python_version()}", f"SQLAlchemy {sqlalchemy.__version__}",
             f"SQLite {sqlite3.sqlite_version}"]
    for package in ("psycopg", "Flask", "gunicorn", "waitress"):
        try:
            parts.append(f"{package} {metadata.version(package)}")
        except metadata.PackageNotFoundError:
            continue
    return ", ".join(parts)


def machine_line() -> str:
    model = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} CPUs ({model}), {platform.platform()}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short runs (a smoke test)")
    parser.add_argument("--pg-url", default=PG_URL, help="scratch PostgreSQL (tables DROPPED)")
    parser.add_argument("--load-url", default=LOAD_URL,
                        help="scratch PostgreSQL for the load run (schema DROPPED)")
    parser.add_argument("--doc", default=str(DOC), help="the document to rewrite")
    parser.add_argument("--skip", default="", help="comma-separated: availability,load,"
                        "outbox,booking,timing")
    args = parser.parse_args()
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    py = sys.executable
    tmp = Path(tempfile.mkdtemp(prefix="run-all-"))
    runs = 40 if args.quick else 300
    sections: dict[str, str] = {}
    notes: list[str] = []
    started = datetime.now(UTC)

    if "availability" not in skip:
        avail: dict[str, dict[str, Any]] = {}
        for db_name, extra in (("sqlite", ["--http"]),
                               ("postgresql", ["--url", args.pg_url])):
            out = tmp / f"availability-{db_name}.json"
            ok, text = run([py, "bench/availability.py", "--db", db_name, "--shape", "peers",
                            "--runs", str(runs), "--json", str(out), *extra],
                           f"availability ({db_name})", 3600)
            data = load_json(out)
            if ok and data:
                avail[db_name] = data
            else:
                notes.append(f"availability on {db_name} failed: {text[-300:]!r}")
        if avail:
            sections["availability"] = availability_tables(avail)

    if "load" not in skip:
        seconds = "20" if args.quick else "60"
        plans = [("200 users, think 1 s",
                  ["--users", "200", "--think", "1", "--seconds", seconds,
                   "--rss-requests", "1000" if args.quick else "10000"]),
                 ("50 users, closed loop",
                  ["--users", "50", "--think", "0", "--seconds", seconds])]
        results: dict[str, dict[str, Any]] = {}
        for n, (name, extra) in enumerate(plans):
            out = tmp / f"load-{n}.json"
            ok, text = run([py, "bench/load.py", "--url", args.load_url, "--json", str(out),
                            *extra], f"load: {name}", 3600)
            data = load_json(out)
            if ok and data:
                # The server set-up as the run reports it (bench/load.py's default workers).
                results[f"gunicorn {data['worker_class']} x {data['workers']}, {name}"] = data
            else:
                notes.append(f"load run '{name}' failed: {text[-300:]!r}")
        if results:
            sections["load"] = load_table(results)

    if "outbox" not in skip:
        ok, text = run([py, "bench/outbox.py", "--count", "1000" if args.quick else "10000"],
                       "outbox (SQLite)", 3600)
        sections["outbox"] = ("```\n" + text.strip()[-2500:] + "\n```" if ok
                              else f"outbox benchmark failed: `{text[-300:]}`")

    for name in ("booking", "timing"):
        script = ROOT / "bench" / f"{name}.py"
        if name in skip:
            continue
        if not script.exists():
            print(f"\n=== {name}: bench/{name}.py is not in this checkout; skipped", flush=True)
            notes.append(f"bench/{name}.py absent: skipped")
            continue
        out = tmp / f"{name}.json"
        helptext = subprocess.run([py, str(script), "--help"], cwd=ROOT, capture_output=True,
                                  text=True, check=False).stdout
        cmd = [py, str(script)]
        if "--json" in helptext:
            cmd += ["--json", str(out)]
        if args.quick and "--quick" in helptext:
            cmd.append("--quick")
        ok, text = run(cmd, name, 3600)
        if ok and name == "booking":
            # The booking's targets are per database: PostgreSQL too (its schema is dropped).
            ok, pg_text = run(cmd + ["--database-url", args.pg_url], "booking (postgresql)", 3600)
            text = text.strip() + "\n" + pg_text.strip()
        sections[name] = ("```\n" + text.strip()[-3000:] + "\n```" if ok
                          else f"bench/{name}.py failed: `{text[-300:]}`")

    finished = datetime.now(UTC)
    sections["machine"] = "\n".join([
        f"- generated by `python bench/run_all.py{' --quick' if args.quick else ''}`, "
        f"{started:%Y-%m-%d %H:%M} - {finished:%H:%M} UTC",
        f"- machine: {machine_line()}",
        f"- versions: {versions()}",
        f"- load average at the end: {', '.join(f'{x:.2f}' for x in os.getloadavg())}",
        *(f"- note: {n}" for n in notes),
    ])
    sections["peers"] = PEERS
    doc = Path(args.doc)
    text = doc.read_text() if doc.exists() else "# Performance\n"
    for name, body in sections.items():
        text = replace_section(text, name, body)
    doc.write_text(text)
    print(f"\nrewrote {doc} ({', '.join(sections)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
