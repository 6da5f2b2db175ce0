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
from datetime import timedelta
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from flask import Flask

from clinic_app.extensions import db
from clinic_app.mail.outbox import DispatchResult
from clinic_app.mail.outbox import default_worker_id
from clinic_app.mail.outbox import dispatch

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


# Extra fixed jobs (planner, housekeeping, daily agenda) register here:
# name -> (function(app), trigger kwargs for add_job).
EXTRA_JOBS: dict[str, tuple[Callable[[Flask], Any], dict[str, Any]]] = {}


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
