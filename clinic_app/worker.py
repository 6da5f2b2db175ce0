"""The notification worker: one APScheduler process with a few fixed jobs.

APScheduler job stores cannot be shared between processes, and a scheduler
inside each web worker would send everything once per worker. So there is one
``clinic worker`` process (or, under ``clinic up``, exactly one background
scheduler in the embedded process). Jobs are fixed, not one per booking: the
outbox rows carry their own due times.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from datetime import timedelta
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from flask import Flask
from sqlalchemy import delete
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from clinic_app.extensions import db
from clinic_app.mail.outbox import DispatchResult
from clinic_app.mail.outbox import default_worker_id
from clinic_app.mail.outbox import dispatch
from clinic_app.mail.outbox import purge
from clinic_app.models.accounts import OneTimeToken
from clinic_app.models.outbox import WorkerJobRun
from clinic_app.services import planner  # registers every kind's rule and renderer
from clinic_app.services import waitlist
from clinic_app.services import waitlist_offers
from clinic_app.services.holds import purge_expired_holds
from clinic_app.services.privacy import purge_expired_health_records
from clinic_app.services.settings import get_settings

log = logging.getLogger("clinic_app.worker")

JOB_DEFAULTS = {"coalesce": True, "max_instances": 1, "misfire_grace_time": 300}


# smtplib's timeout bounds each socket operation, and one message takes a handful of them
# (connect, EHLO, STARTTLS, login on the first; MAIL, RCPT, DATA, the final reply): a lease
# renewed right before a send and this many timeouts long outlives that send.
SEND_LEASE_TIMEOUTS = 10


def send_lease(app: Flask) -> timedelta:
    """The lease a worker takes and renews before each send: the configured lease, or
    longer if one SMTP send could outlast it (so no other worker reclaims a row mid-send)."""
    seconds = app.config["OUTBOX_LEASE_SECONDS"]
    if app.config["MAIL_BACKEND"] == "smtp":
        seconds = max(seconds, SEND_LEASE_TIMEOUTS * app.config["SMTP_TIMEOUT"])
    return timedelta(seconds=seconds)


def dispatch_outbox_job(app: Flask, worker_id: str | None = None) -> DispatchResult:
    """Send every due outbox message (one small batch after another until none are due)."""
    total = DispatchResult()
    with app.app_context():
        clock = app.extensions["clock"]
        backend = app.extensions["mail_backend"]
        batch = app.config["OUTBOX_BATCH_SIZE"]
        while True:
            result = dispatch(
                db.session,
                backend,
                now=clock.now(),
                clock=clock.now,
                mail_from=app.config["MAIL_FROM"],
                worker_id=worker_id or default_worker_id(),
                limit=batch,
                lease=send_lease(app),
                max_attempts=app.config["OUTBOX_MAX_ATTEMPTS"],
            )
            for name in ("sent", "failed", "dead", "skipped", "lost"):
                setattr(total, name, getattr(total, name) + getattr(result, name))
            handled = result.sent + result.failed + result.dead + result.skipped + result.lost
            if handled < batch:
                break
        db.session.remove()
    record_job_run(app, "dispatch_outbox",
                   error=f"{total.failed + total.dead} message(s) failed this run"
                   if total.failed or total.dead else None,
                   failures=total.failed + total.dead)
    return total


@contextmanager
def unit_of_work(app: Flask) -> Iterator[tuple[Session, datetime]]:
    """A job's one transaction: an app context, the session and ``now``; commit on
    success, roll back on error, and always hand the connection back."""
    with app.app_context():
        try:
            yield db.session, app.extensions["clock"].now()
            db.session.commit()
        except Exception:
            db.session.rollback()
            raise
        finally:
            db.session.remove()


def record_job_run(app: Flask, job: str, *, error: str | None = None,
                   failures: int = 0) -> None:
    """Store a job's last run (and last error) for the admin outbox page; commits. Never
    raises: the status of a job must not become a second way for it to fail."""
    with app.app_context():
        now = app.extensions["clock"].now()
        for attempt in (1, 2):  # a second worker may insert the job's first row meanwhile
            try:
                row = db.session.get(WorkerJobRun, job) or WorkerJobRun(job=job, failures=0)
                row.last_run_at = now
                row.failures = failures
                if error is None:
                    row.last_ok_at = now
                else:
                    row.last_error_at, row.last_error = now, error[:2000]
                db.session.add(row)
                db.session.commit()
                break
            except IntegrityError:
                db.session.rollback()
                if attempt == 2:
                    log.warning("could not record the run of job %s", job)
            except Exception:  # noqa: BLE001 - logged; the job's own outcome stands
                db.session.rollback()
                log.exception("could not record the run of job %s", job)
                break
        db.session.remove()


@contextmanager
def tracked(app: Flask, job: str) -> Iterator[tuple[Session, datetime]]:
    """``unit_of_work`` that records a failure of the whole job in its status row and
    re-raises (the caller records the success, with its own count of failures)."""
    try:
        with unit_of_work(app) as unit:
            yield unit
    except Exception as exc:
        record_job_run(app, job, error=f"{exc.__class__.__name__}: {exc}")
        raise


def job_status(session: Session) -> list[WorkerJobRun]:
    """Every job's last run, by name (the admin outbox page)."""
    return list(session.scalars(select(WorkerJobRun).order_by(WorkerJobRun.job)))


def plan_due_messages_job(app: Flask) -> planner.PlanResult:
    """Write the messages that depend on later facts ("still sore?", prompts, recalls).

    Each client is planned in its own savepoint (``services.planner``): a client whose
    rows make planning fail is logged and skipped, and the failure is shown with the
    job's status on the admin outbox page."""
    with tracked(app, "plan_due_messages") as (session, now):
        result = planner.plan_due_messages(session, now)
    record_job_run(app, "plan_due_messages",
                   error=result.failures[-1] if result.failures else None,
                   failures=len(result.failures))
    if result.still_sore or result.prompts or result.recalls:
        log.info("planned %s still-sore, %s rebooking prompts, %s recalls",
                 result.still_sore, result.prompts, result.recalls)
    return result


# One-time tokens are kept a week past expiry so that an old link still says "expired"
# or "already used" rather than "not valid"; then they go.
TOKEN_GRACE = timedelta(days=7)


def housekeeping_job(app: Flask) -> dict[str, int]:
    """Delete sent outbox rows older than 90 days, long-expired one-time tokens and holds."""
    with tracked(app, "housekeeping") as (session, now):
        outbox_rows = purge(session, now=now)
        tokens = session.execute(
            delete(OneTimeToken).where(OneTimeToken.expires_at < now - TOKEN_GRACE)
        ).rowcount or 0
        health = purge_expired_health_records(session, now)
        holds = purge_expired_holds(session, now)
    record_job_run(app, "housekeeping")
    if outbox_rows or tokens or health or holds:
        log.info("housekeeping: deleted %s outbox rows, %s old tokens, %s expired health "
                 "records and %s expired holds", outbox_rows, tokens, health, holds)
    return {"outbox": outbox_rows, "tokens": tokens, "health_records": health, "holds": holds}


def expire_waitlist_job(app: Flask) -> int:
    """Mark waitlist entries whose date range has ended as expired (issue 13)."""
    with tracked(app, "waitlist_expiry") as (session, now):
        expired = waitlist.expire_entries(session, now)
    record_job_run(app, "waitlist_expiry")
    return expired


#: Rounds per run of the offer job at most (each round offers RANGES_PER_ROUND queued ranges
#: in its own transaction); what is left waits for the next run, 15 seconds later.
OFFER_ROUNDS = 20


def waitlist_offers_job(app: Flask) -> waitlist_offers.OfferRound:
    """Offer freed time to the waitlist (issue 13.2): expire lapsed offers, then offer the
    queued ranges, one short transaction per round so that SQLite's write lock is never
    held for long while bookings wait."""
    total = waitlist_offers.OfferRound()
    for _ in range(OFFER_ROUNDS):
        with tracked(app, "waitlist_offers") as (session, now):
            result = waitlist_offers.run_round(session, now)
        total.expired += result.expired
        total.withdrawn += result.withdrawn
        total.holds_announced += result.holds_announced
        total.ranges += result.ranges
        total.offers += result.offers
        total.failures += result.failures
        total.pending = result.pending
        if not result.pending or not result.ranges:
            break
    record_job_run(app, "waitlist_offers",
                   error=total.failures[-1] if total.failures else None,
                   failures=len(total.failures))
    if total.offers or total.expired or total.withdrawn:
        log.info("waitlist: %s offers made, %s expired, %s withdrawn", len(total.offers),
                 total.expired, total.withdrawn)
    return total


def daily_agenda_job(app: Flask) -> int:
    """Write today's agenda (clinic zone) for each therapist with bookings; once a day."""
    with tracked(app, "daily_agenda") as (session, now):
        made = planner.daily_agenda(session, now)
    record_job_run(app, "daily_agenda")
    log.info("daily agenda: %s written", made)
    return made


def clinic_timezone(app: Flask) -> str:
    """The clinic's zone from the settings row (the configured default if unreadable)."""
    with app.app_context():
        try:
            zone = get_settings(db.session).timezone
            db.session.commit()
        except SQLAlchemyError as exc:
            db.session.rollback()
            zone = app.config["TIMEZONE"]
            log.warning("clinic zone unreadable (%s); using %s", exc.__class__.__name__, zone)
        finally:
            db.session.remove()
    return zone


# Extra fixed jobs register here: name -> (function(app), trigger kwargs for add_job).
# The daily agenda is added by ``configure`` (its cron needs the clinic's zone). A change
# of the clinic's zone takes effect for the agenda when the worker restarts.
EXTRA_JOBS: dict[str, tuple[Callable[[Flask], Any], dict[str, Any]]] = {
    "plan_due_messages": (plan_due_messages_job, {"trigger": "interval", "minutes": 1}),
    "housekeeping": (housekeeping_job, {"trigger": "interval", "hours": 1}),
    "waitlist_expiry": (expire_waitlist_job, {"trigger": "interval", "hours": 1}),
    # Every 15 s, so a freed slot is offered "within a minute" (issue 13.2).
    "waitlist_offers": (waitlist_offers_job, {"trigger": "interval", "seconds": 15}),
}


def configure(scheduler: BaseScheduler, app: Flask) -> BaseScheduler:
    """Add the fixed jobs to ``scheduler``."""
    scheduler.add_job(
        dispatch_outbox_job,
        "interval",
        seconds=app.config["WORKER_DISPATCH_SECONDS"],
        args=[app],
        id="dispatch_outbox",
        replace_existing=True,
        **JOB_DEFAULTS,
    )
    for name, (func, trigger) in EXTRA_JOBS.items():
        scheduler.add_job(func, args=[app], id=name, replace_existing=True,
                          **{**JOB_DEFAULTS, **trigger})
    scheduler.add_job(
        daily_agenda_job,
        "cron",
        hour=7,
        minute=0,
        timezone=clinic_timezone(app),
        args=[app],
        id="daily_agenda",
        replace_existing=True,
        **JOB_DEFAULTS,
    )
    return scheduler


def start_background(app: Flask) -> BackgroundScheduler:
    """The embedded mode's one scheduler, in a thread of the web process."""
    scheduler = BackgroundScheduler(timezone="UTC", job_defaults=JOB_DEFAULTS)
    configure(scheduler, app)
    scheduler.start()
    log.info("embedded notification worker started")
    return scheduler


def run_blocking(app: Flask) -> None:
    """``clinic worker``: run until SIGTERM or Ctrl-C, then stop cleanly (exit status 0).

    The scheduler runs in a background thread and the main thread waits for a stop
    signal. The handlers only set an event, so a signal that arrives at any moment (even
    between "worker started" and the scheduler's start) ends the wait instead of raising
    inside half-started scheduler code.
    """
    scheduler = BackgroundScheduler(timezone="UTC", job_defaults=JOB_DEFAULTS)
    configure(scheduler, app)
    stop_requested = threading.Event()
    received: list[int] = []

    def stop(signum: int, frame: object) -> None:
        received.append(signum)
        stop_requested.set()

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        log.info("worker started: jobs %s", ", ".join(j.id for j in scheduler.get_jobs()))
        scheduler.start()
        while not stop_requested.wait(timeout=1.0):
            pass
        log.info("worker stopping (signal %s)", received[0])
        scheduler.shutdown(wait=True)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    log.info("worker stopped")
