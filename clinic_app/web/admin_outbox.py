"""Pages: the admin's view of the outbox: failed and dead messages (with a retry
button), the worker's jobs (last run, last error) and messages retired at send time
with the reason."""

from __future__ import annotations

from flask import Blueprint
from flask import flash
from flask import redirect
from flask import render_template
from flask import url_for
from sqlalchemy import func
from sqlalchemy import select
from werkzeug.wrappers import Response

from clinic_app.auth import roles_required
from clinic_app.errors import DomainError
from clinic_app.extensions import db
from clinic_app.mail import outbox
from clinic_app.models.outbox import OutboxMessage
from clinic_app.models.outbox import WorkerJobRun
from clinic_app.web.forms import ConfirmForm
from clinic_app.web.util import now

bp = Blueprint("admin_outbox", __name__, url_prefix="/admin/outbox")


@bp.get("/")
@roles_required("admin")
def index() -> str:
    rows = outbox.failed_and_dead(db.session)
    counts = dict(
        db.session.execute(
            select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)
        ).all()
    )
    jobs = list(db.session.scalars(select(WorkerJobRun).order_by(WorkerJobRun.job)))
    return render_template("admin_outbox/index.html", rows=rows, counts=counts, jobs=jobs,
                           retired=outbox.recently_retired(db.session), form=ConfirmForm())


@bp.post("/<int:message_id>/retry")
@roles_required("admin")
def retry(message_id: int) -> Response:
    form = ConfirmForm()
    if not form.validate_on_submit():
        flash("The form expired; please try again.", "error")
        return redirect(url_for("admin_outbox.index"))
    try:
        row = outbox.retry(db.session, message_id, now=now())
    except DomainError as exc:
        db.session.rollback()
        if exc.status == 404:
            raise
        flash(exc.message, "error")
    else:
        db.session.commit()
        flash(f"Message to {row.to_addr} queued again; it goes with the next dispatch.",
              "success")
    return redirect(url_for("admin_outbox.index"))
