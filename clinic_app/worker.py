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
from collections.abc import Callable
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from datetime import timedelta
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from flask import Flask
from sqlalchemy.orm import Session

from clinic_app.extensions import db
from clinic_app.mail.outbox import DispatchResult
from clinic_app.mail.outbox import default_worker_id
from clinic_app.mail.outbox import dispatch
from clinic_app.mail.outbox import purge
from clinic_app.services import notifications  # registers the send checks

log = logging.getLogger("clinic_app.worker")

JOB_DEFAULTS = {"coalesce": True, "max_instances": 1, "misfire_grace_time": 300}


def dispatch_outbox_job(app: Flask, worker_id: str | None = None) -> DispatchResult:
    """Send every due outbox message (one batch after another until none are due)."""
    total = DispatchResult()
    with app.app_context():
        clock = app.extensions["clock"]
        backend = app.extensions["mail_backend"]
        while True:
            result = dispatch(
                db.session,
                backend,
                now=clock.now(),
                mail_from=app.config["MAIL_FROM"],
                worker_id=worker_id or default_worker_id(),
                limit=app.config["OUTBOX_BATCH_SIZE"],
                lease=timedelta(seconds=app.config["OUTBOX_LEASE_SECONDS"]),
                max_attempts=app.config["OUTBOX_MAX_ATTEMPTS"],
            )
            for name in ("sent", "failed", "dead", "skipped"):
                setattr(total, name, getattr(total, name) + getattr(result, name))
            handled = result.sent + result.failed + result.dead + result.skipped
            if handled < app.config["OUTBOX_BATCH_SIZE"]:
                break
        db.session.remove()
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


def plan_due_messages_job(app: Flask) -> notifications.PlanResult:
    """Write the messages that depend on later facts ("still sore?", prompts, recalls)."""
    with unit_of_work(app) as (session, now):
        result = notifications.plan_due_messages(session, now)
    if result.still_sore or result.prompts or result.recalls:
        log.info("planned %s still-sore, %s rebooking prompts, %s recalls",
                 result.still_sore, result.prompts, result.recalls)
    return result


# One-time tokens are kept a week past expiry so that an old link still says "expired"
# or "already used" rather than "not valid"; then they go.
TOKEN_GRACE = timedelta(days=7)


def housekeeping_job(app: Flask) -> dict[str, int]:
    """Delete sent outbox rows older than 90 days, long-expired one-time tokens and holds."""
    from sqlalchemy import delete

    from clinic_app.models.accounts import OneTimeToken
    from clinic_app.services.holds import purge_expired_holds
    from clinic_app.services.privacy import purge_expired_health_records

    with unit_of_work(app) as (session, now):
        outbox_rows = purge(session, now=now)
        tokens = session.execute(
            delete(OneTimeToken).where(OneTimeToken.expires_at < now - TOKEN_GRACE)
        ).rowcount or 0
        health = purge_expired_health_records(session, now)
        holds = purge_expired_holds(session, now)
    if outbox_rows or tokens or health or holds:
        log.info("housekeeping: deleted %s outbox rows, %s old tokens, %s expired health "
                 "records and %s expired holds", outbox_rows, tokens, health, holds)
    return {"outbox": outbox_rows, "tokens": tokens, "health_records": health, "holds": holds}


def daily_agenda_job(app: Flask) -> int:
    """Write today's agenda (clinic zone) for each therapist with bookings; once a day."""
    with unit_of_work(app) as (session, now):
        made = notifications.daily_agenda(session, now)
    log.info("daily agenda: %s written", made)
    return made


def clinic_timezone(app: Flask) -> str:
    """The clinic's zone from the settings row (the configured default if unreadable)."""
    from sqlalchemy.exc import SQLAlchemyError

    from clinic_app.services.settings import get_settings

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
    """``clinic worker``: run until SIGTERM or Ctrl-C, then stop cleanly."""
    scheduler = BlockingScheduler(timezone="UTC", job_defaults=JOB_DEFAULTS)
    configure(scheduler, app)

    def stop(signum: int, frame: object) -> None:
        log.info("worker stopping (signal %s)", signum)
        scheduler.shutdown(wait=True)

    signal.signal(signal.SIGTERM, stop)
    log.info("worker started: jobs %s", ", ".join(j.id for j in scheduler.get_jobs()))
    try:
        scheduler.start()
    except (KeyboardInterrupt, SystemExit):
        pass
    log.info("worker stopped")
