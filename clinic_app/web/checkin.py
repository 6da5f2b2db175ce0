"""The soreness check-in page: a signed link from the +24 h / +72 h email, no login.

GET shows the questions (soreness 0-10, the red-flag checklist, progress; the 72 h
variant asks "still sore?"), POST stores the answers once. A red flag shows the
seek-care text; otherwise the client sees the recommended window. Once submitted, the
link shows only "thank you": it needs no login, so it must not show the answers again.
"""

from __future__ import annotations

from flask import Blueprint
from flask import render_template
from flask import request
from flask_wtf import FlaskForm
from wtforms import RadioField
from wtforms.validators import InputRequired
from wtforms.validators import Optional

from clinic_app.errors import BadRequest
from clinic_app.errors import Conflict
from clinic_app.errors import ValidationFailed
from clinic_app.extensions import db
from clinic_app.scheduling.followup import RED_FLAGS
from clinic_app.services import care
from clinic_app.web.fields import CheckboxList
from clinic_app.web.fields import opts
from clinic_app.web.util import now
from clinic_app.web.util import saving

bp = Blueprint("checkin", __name__)

SORENESS_CHOICES = opts((n, str(n)) for n in range(11))
PROGRESS_CHOICES = opts([("better", "Better"), ("same", "About the same"), ("worse", "Worse")])


class CheckinForm(FlaskForm):
    soreness = RadioField(
        "How sore are you today? 0 = not at all, 10 = the worst you can imagine",
        choices=SORENESS_CHOICES, validators=[InputRequired("Choose a number from 0 to 10.")])
    red_flags = CheckboxList(
        "Do you have any of these? Tick all that apply (most people have none)",
        choices=opts(RED_FLAGS.items()), validators=[Optional()])
    progress = RadioField(
        "Compared with before your first session in this course, your problem is",
        choices=PROGRESS_CHOICES, validators=[Optional()])


class StillSoreForm(FlaskForm):
    still_sore = RadioField("Are you still sore from your session?",
                            choices=opts([("yes", "Yes, still sore"), ("no", "No, it has passed")]),
                            validators=[InputRequired("Tell us whether you are still sore.")])
    soreness = RadioField("If you are, how sore? 0-10 (optional)", choices=SORENESS_CHOICES,
                          validators=[Optional()])
    red_flags = CheckinForm.red_flags
    progress = CheckinForm.progress


def _done(booking, checkin, status: int = 200, already: bool = False):  # type: ignore[no-untyped-def]
    """The answer to a submission. ``already``: the link is used again after its check-in
    was submitted; whoever holds it then sees only "thank you" (no answers, red flags,
    advice or window: the link needs no login)."""
    if already:
        return render_template("checkin/done.html", already=True, red_flag=False), status
    rec = care.current_recommendation(db.session, booking.client_id)
    if rec is not None and rec.booking_id != booking.id:
        rec = None  # not recorded yet: an older session's window would mislead
    page = render_template(
        "checkin/done.html", booking=booking, checkin=checkin, already=already,
        red_flag=bool(checkin.red_flags), labels=care.red_flag_labels(checkin.red_flags or []),
        seek_care=care.SEEK_CARE_TEXT, rec=rec)
    return page, status


@bp.route("/check-in/<token>", methods=["GET", "POST"])
def form(token: str):  # type: ignore[no-untyped-def]
    """The check-in for the booking and kind named in the signed token."""
    try:
        booking, kind = care.booking_for_checkin_token(db.session, token, now())
    except BadRequest as exc:
        db.session.rollback()
        return render_template("checkin/invalid.html", message=exc.message,
                               expired=exc.code == "expired_link"), 400
    existing = care.checkin_for(db.session, booking.id, kind)
    if existing is not None:
        # A second submission is a conflict, shown as a friendly "already received".
        return _done(booking, existing, status=409 if request.method == "POST" else 200,
                     already=True)
    page_form = CheckinForm() if kind == "24h" else StillSoreForm()
    status = 200
    if page_form.validate_on_submit():
        still = None
        if kind == "72h":
            still = page_form.still_sore.data == "yes"
        soreness = page_form.soreness.data
        try:
            with saving(page_form, catch=ValidationFailed) as saved:
                row = care.submit_checkin(
                    db.session, booking, kind=kind,
                    soreness=int(soreness) if soreness not in (None, "", "None") else None,
                    red_flags=page_form.red_flags.data or [],
                    progress=page_form.progress.data or None, still_sore=still, now=now())
        except Conflict as exc:  # not a form error: its own page
            db.session.rollback()
            if exc.code == "already_submitted":
                existing = care.checkin_for(db.session, booking.id, kind)
                if existing is not None:
                    return _done(booking, existing, status=409, already=True)
            return render_template("checkin/invalid.html", message=exc.message,
                                   expired=False), 409
        if saved:
            return _done(booking, row)
        status = 422
    elif page_form.is_submitted():
        status = 422
    session_day = care.local_date(db.session, booking.start_at)
    return render_template("checkin/form.html", form=page_form, kind=kind, booking=booking,
                           session_day=session_day), status
