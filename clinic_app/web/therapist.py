"""Pages: the therapist's day and week, hours and time off, bookings, clients, review queue
and calendar feed. A therapist only ever sees their own bookings and their own clients."""

from __future__ import annotations

from datetime import date
from datetime import datetime
from datetime import time
from datetime import timedelta
from typing import Any

from flask import Blueprint
from flask import abort
from flask import current_app
from flask import flash
from flask import redirect
from flask import render_template
from flask import request
from flask import url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import func
from sqlalchemy import select
from werkzeug.wrappers import Response
from wtforms import TextAreaField
from wtforms.validators import DataRequired
from wtforms.validators import Length

from clinic_app.errors import DomainError
from clinic_app.extensions import db
from clinic_app.models.accounts import User
from clinic_app.models.booking import Booking
from clinic_app.models.booking import BookingStatus
from clinic_app.models.care import Intake
from clinic_app.models.care import SessionRecord
from clinic_app.models.schedule import Therapist
from clinic_app.services import booking as booking_service
from clinic_app.services import calendar as calendar_service
from clinic_app.services import care
from clinic_app.services import schedule
from clinic_app.services.audit import record_read
from clinic_app.services.settings import clinic_zone
from clinic_app.services.staff_calendar import covered_bookings
from clinic_app.web.fields import query_date
from clinic_app.web.forms import ConfirmForm
from clinic_app.web.forms_booking import WEEKDAYS
from clinic_app.web.forms_booking import DeclineForm
from clinic_app.web.forms_booking import HoursForm
from clinic_app.web.forms_booking import OverrideForm
from clinic_app.web.forms_booking import SessionRecordForm
from clinic_app.web.forms_booking import TimeOffForm
from clinic_app.web.forms_booking import format_ranges
from clinic_app.web.forms_booking import parse_ranges
from clinic_app.web.forms_booking import split_list
from clinic_app.web.util import apply_error
from clinic_app.web.util import now
from clinic_app.web.util import saving

bp = Blueprint("therapist", __name__)

Page = str | Response | tuple[str, int]


@bp.before_request
def _therapists_only() -> Any:
    """Every page here: log in first, then therapists only (403 for other roles)."""
    if not current_user.is_authenticated:
        return current_app.login_manager.unauthorized()
    if not current_user.has_role("therapist"):
        abort(403)
    return None


def _me() -> Therapist:
    therapist = db.session.scalar(select(Therapist).where(Therapist.user_id == current_user.id))
    if therapist is None:
        abort(404)
    return therapist


def _today() -> date:
    return now().astimezone(clinic_zone(db.session)).date()


def _arg_date(name: str = "date") -> date | None:
    return query_date(name)


def _local_midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=clinic_zone(db.session))


def _bookings_between(therapist: Therapist, first: date, last: date) -> list[Booking]:
    return list(db.session.scalars(
        select(Booking).where(Booking.therapist_id == therapist.id,
                              Booking.start_at >= _local_midnight(first),
                              Booking.start_at < _local_midnight(last + timedelta(days=1)))
        .order_by(Booking.start_at)
    ))


def _annotations(bookings: list[Booking]) -> tuple[dict[int, list[str]], set[int]]:
    """Intake flag labels per client and the ids of first-visit bookings, in two queries.

    Showing the flags is a staff read of health data: it is audited per client shown.
    """
    client_ids = {b.client_id for b in bookings}
    if not client_ids:
        return {}, set()
    flags: dict[int, list[str]] = {}
    moment = now()
    # Flags are health data: only for the clients this therapist treats (THE health rule).
    treated = care.treated_client_ids(db.session, _me().id, client_ids)
    for row in db.session.scalars(select(Intake).where(Intake.client_id.in_(treated))):
        if row.flags:
            flags[row.client_id] = [care.FLAG_LABELS.get(f, f) for f in row.flags]
            record_read(db.session, current_user, "read:intake_flags", row.client_id,
                        "intake", row.id, moment)
    firsts = {client_id: first for client_id, first in db.session.execute(
        select(Booking.client_id, func.min(Booking.start_at))
        .where(Booking.client_id.in_(client_ids),
               Booking.status != BookingStatus.CANCELLED.value)
        .group_by(Booking.client_id)
    )}
    first_ids = {b.id for b in bookings if b.status != BookingStatus.CANCELLED.value
                 and firsts.get(b.client_id) is not None
                 and _same_instant(firsts[b.client_id], b.start_at)}
    return flags, first_ids


def _same_instant(a: datetime, b: datetime) -> bool:
    # SQLite's MIN() hands back the stored text parsed without the decorator: compare in UTC.
    if a.tzinfo is None:
        a = a.replace(tzinfo=b.tzinfo)
    return a == b


# --- day and week -----------------------------------------------------------------------------


@bp.get("/therapist/")
def day() -> str:
    """One day of the therapist's bookings, moving by date."""
    therapist = _me()
    day_ = _arg_date() or _today()
    bookings = _bookings_between(therapist, day_, day_)
    flags, firsts = _annotations(bookings)
    db.session.commit()
    return render_template("therapist/day.html", day=day_, bookings=bookings, flags=flags,
                           firsts=firsts, prev=day_ - timedelta(days=1),
                           next=day_ + timedelta(days=1), today=_today())


@bp.get("/therapist/week")
def week() -> str:
    """Monday to Sunday of the therapist's bookings, moving by week."""
    therapist = _me()
    monday = (_arg_date() or _today())
    monday = monday - timedelta(days=monday.weekday())
    bookings = _bookings_between(therapist, monday, monday + timedelta(days=6))
    flags, firsts = _annotations(bookings)
    zone = clinic_zone(db.session)
    days = [(monday + timedelta(days=i), []) for i in range(7)]
    by_day: dict[date, list[Booking]] = {d: items for d, items in days}
    for b in bookings:
        by_day[b.start_at.astimezone(zone).date()].append(b)
    db.session.commit()
    return render_template("therapist/week.html", monday=monday, days=days, flags=flags,
                           firsts=firsts, prev=monday - timedelta(days=7),
                           next=monday + timedelta(days=7), today=_today())


# --- hours and time off -----------------------------------------------------------------------


def _hours_page(hours_form: HoursForm, off_form: TimeOffForm, status: int = 200) -> Page:
    therapist = _me()
    today = _today()
    upcoming = schedule.upcoming_hours(db.session, therapist, today)
    changes: dict[date, dict[int, str]] = {}
    for row in upcoming:
        changes.setdefault(row.effective_from, {})
    for when in changes:
        changes[when] = format_ranges(r for r in upcoming if r.effective_from == when)
    return render_template(
        "therapist/hours.html", form=hours_form, off_form=off_form, weekdays=WEEKDAYS,
        time_off=schedule.list_time_off(db.session, therapist, today), changes=changes,
        delete_form=ConfirmForm(),
    ), status


@bp.route("/therapist/hours", methods=["GET", "POST"])
def hours() -> Page:
    """Weekly hours (several ranges per weekday), from a date; time off below."""
    therapist = _me()
    today = _today()
    if request.method == "GET":
        current = format_ranges(schedule.current_hours(db.session, therapist, today))
        form = HoursForm(formdata=None, effective_from=today,
                         **{f"day_{d}": current.get(d, "") for d in range(7)})
        return _hours_page(form, TimeOffForm(formdata=None))
    form = HoursForm()
    if form.validate_on_submit():
        ranges: list[tuple[int, time, time]] = []
        for d in range(7):
            parsed, error = parse_ranges(getattr(form, f"day_{d}").data or "")
            if error:
                getattr(form, f"day_{d}").errors = [error]
            ranges += [(d, s, e) for s, e in parsed]
        if not form.errors and not any(f.errors for f in form.day_fields()):
            try:
                schedule.replace_weekly_hours(db.session, therapist, ranges,
                                              form.effective_from.data, now())
            except DomainError as exc:
                db.session.rollback()
                for key, message in exc.fields.items():
                    if key.startswith("hours.") and key[6:].isdigit():
                        getattr(form, f"day_{key[6:]}").errors = [message]
                    elif key == "effective_from":
                        form.effective_from.errors = [message]
                    else:
                        form.form_errors.append(message)
            else:
                db.session.commit()
                flash("Your working hours are saved.", "success")
                return redirect(url_for("therapist.hours"))
    return _hours_page(form, TimeOffForm(formdata=None), 422)


@bp.post("/therapist/time-off")
def time_off_new() -> Page:
    """Add time off (whole days, or some hours of them)."""
    therapist = _me()
    form = TimeOffForm()
    if form.validate_on_submit():
        with saving(form) as saved:
            row = schedule.add_time_off(db.session, therapist, form.start_date.data,
                                        form.end_date.data, form.start_time.data,
                                        form.end_time.data, reason=form.reason.data or "",
                                        now=now())
        if saved:
            # --- issue 11: list the bookings the time off covers (cancel or keep them) ---
            if row.kind == "off" and covered_bookings(db.session, current_user, kind="time_off",
                                                      item_id=row.id, now=now()).bookings:
                flash("Time off added. Some bookings fall in it: cancel or keep them.",
                      "success")
                return redirect(url_for("staff_calendar.covered", kind="time_off",
                                        item_id=row.id))
            flash("Time off added.", "success")
            return redirect(url_for("therapist.hours"))
    current = format_ranges(schedule.current_hours(db.session, therapist, _today()))
    hours_form = HoursForm(formdata=None, effective_from=_today(),
                           **{f"day_{d}": current.get(d, "") for d in range(7)})
    return _hours_page(hours_form, form, 422)


@bp.post("/therapist/time-off/<int:override_id>/delete")
def time_off_delete(override_id: int) -> Response:
    """Remove one of the therapist's own time-off entries (404 for anyone else's)."""
    if not ConfirmForm().validate_on_submit():
        abort(400)
    schedule.delete_time_off(db.session, _me(), override_id, now=now())
    db.session.commit()
    flash("Time off removed.", "success")
    return redirect(url_for("therapist.hours"))


# --- one booking ------------------------------------------------------------------------------


def _my_booking(booking_id: int) -> Booking:
    return booking_service.get_booking_for(db.session, booking_id, current_user)


class AmendmentForm(FlaskForm):
    """A dated addition to a session record once its 24 h edit window has passed."""

    text = TextAreaField("Amendment", validators=[DataRequired(), Length(max=5000)])


def _record_form_from(record: SessionRecord) -> SessionRecordForm:
    """The edit form filled with the record as it stands."""
    return SessionRecordForm(
        formdata=None, regions=", ".join(record.regions), muscles=", ".join(record.muscles),
        techniques=", ".join(record.techniques), intensity=record.intensity,
        goal=record.goal, injury_date=record.injury_date, progress=record.progress or "",
        notes=record.notes)


def _record_from_form(form: SessionRecordForm) -> dict[str, Any]:
    """The service's record fields from the completion/edit form."""
    return {
        "regions": split_list(form.regions.data), "muscles": split_list(form.muscles.data),
        "techniques": split_list(form.techniques.data), "intensity": form.intensity.data,
        "notes": form.notes.data or "", "goal": form.goal.data,
        "injury_date": form.injury_date.data.isoformat() if form.injury_date.data else None,
        "progress": form.progress.data or None,
    }


def _editable(record: SessionRecord, moment: datetime) -> bool:
    return record.author_id == current_user.id and moment - record.created_at <= care.EDIT_WINDOW


def _booking_page(b: Booking, record_form: SessionRecordForm | None = None,
                  override_form: OverrideForm | None = None, status: int = 200,
                  edit_form: SessionRecordForm | None = None,
                  amend_form: AmendmentForm | None = None) -> Page:
    moment = now()
    intake = care.get_intake(db.session, b.client, current_user, moment)
    record = care.get_session_record(db.session, b, current_user, moment)
    rec = care.followup_for_booking(db.session, b, current_user, moment) if record else None
    if record_form is None:
        course = care.current_course(db.session, b.client_id)
        record_form = SessionRecordForm(formdata=None, goal=course.goal if course else
                                        "chronic")
    editable = record is not None and _editable(record, moment)
    if record is not None and edit_form is None and editable:
        edit_form = _record_form_from(record)
    names = {}
    if record is not None:
        ids = {record.author_id, *(a.author_id for a in record.amendments)}
        names = dict(db.session.execute(select(User.id, User.name).where(User.id.in_(ids))).all())
    db.session.commit()
    return render_template(
        "therapist/booking.html", b=b, intake=intake, record=record, rec=rec,
        form=record_form, override_form=override_form or OverrideForm(formdata=None),
        confirm_form=ConfirmForm(), decline_form=DeclineForm(), flag_labels=care.FLAG_LABELS,
        questions=care.INTAKE_QUESTIONS, started=b.start_at <= moment,
        editable=editable, edit_form=edit_form,
        editable_until=record.created_at + care.EDIT_WINDOW if record else None,
        amend_form=amend_form or AmendmentForm(formdata=None), author_names=names,
    ), status


@bp.get("/therapist/bookings/<int:booking_id>")
def booking(booking_id: int) -> Page:
    """Booking details: client, intake, session record form, no-show, follow-up."""
    return _booking_page(_my_booking(booking_id))


@bp.post("/therapist/bookings/<int:booking_id>/complete")
def complete(booking_id: int) -> Page:
    """Complete the session with its record; the follow-up window is computed."""
    b = _my_booking(booking_id)
    form = SessionRecordForm()
    if form.validate_on_submit():
        record = _record_from_form(form)
        with saving(form) as saved:
            care.complete_session(db.session, b, actor=current_user, now=now(), record=record)
        if saved.error:
            return _booking_page(_my_booking(booking_id), record_form=form,
                                 status=saved.error.status)
        flash("Session completed. The client gets their aftercare email.", "success")
        return redirect(url_for("therapist.booking", booking_id=b.id))
    return _booking_page(b, record_form=form, status=422)


def _my_record(b: Booking) -> SessionRecord:
    record = care.get_session_record(db.session, b, current_user, now())
    if record is None:
        abort(404)
    return record


def _change_record(booking_id: int, form: FlaskForm, form_name: str, change: Any,
                   done: str) -> Page:
    """Apply ``change(record)`` to the booking's session record from a posted ``form``.

    Field errors go back next to the fields with the input kept; NotFound stays a 404.
    """
    b = _my_booking(booking_id)
    record = _my_record(b)
    if not form.validate_on_submit():
        return _booking_page(b, status=422, **{form_name: form})
    try:
        change(record)
    except DomainError as exc:
        db.session.rollback()
        if exc.status == 404:
            raise
        apply_error(form, exc)
        return _booking_page(_my_booking(booking_id), status=exc.status, **{form_name: form})
    db.session.commit()
    flash(done, "success")
    return redirect(url_for("therapist.booking", booking_id=booking_id))


@bp.post("/therapist/bookings/<int:booking_id>/record")
def edit_record(booking_id: int) -> Page:
    """Change the session record within 24 h of writing it (its author only)."""
    form = SessionRecordForm()
    return _change_record(
        booking_id, form, "edit_form",
        lambda record: care.edit_session_record(db.session, record, actor=current_user,
                                                now=now(), changes=_record_from_form(form)),
        "Session record updated; the follow-up window was recomputed.")


@bp.post("/therapist/bookings/<int:booking_id>/amendments")
def amend_record(booking_id: int) -> Page:
    """Add a dated amendment to the session record (the record itself stays as written)."""
    form = AmendmentForm()
    return _change_record(
        booking_id, form, "amend_form",
        lambda record: care.amend_session_record(db.session, record, actor=current_user,
                                                 now=now(), text=form.text.data or ""),
        "Amendment added to the session record.")


@bp.post("/therapist/bookings/<int:booking_id>/no-show")
def no_show(booking_id: int) -> Response:
    """Record that the client did not come."""
    b = _my_booking(booking_id)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    with saving() as saved:
        booking_service.mark_no_show(db.session, b, actor=current_user, now=now())
    if saved:
        flash("Marked as a no-show.", "success")
    return redirect(url_for("therapist.booking", booking_id=booking_id))


@bp.post("/therapist/bookings/<int:booking_id>/followup")
def followup(booking_id: int) -> Page:
    """Override the recommended window for the next session, with a reason."""
    b = _my_booking(booking_id)
    form = OverrideForm()
    if form.validate_on_submit():
        with saving(form) as saved:
            care.override_recommendation(db.session, b, actor=current_user,
                                         earliest=form.earliest.data, ideal=form.ideal.data,
                                         latest=form.latest.data, reason=form.reason.data,
                                         now=now())
        if saved.error:
            return _booking_page(_my_booking(booking_id), override_form=form,
                                 status=saved.error.status)
        flash("Follow-up window saved.", "success")
        return redirect(url_for("therapist.booking", booking_id=booking_id))
    return _booking_page(b, override_form=form, status=422)


@bp.post("/therapist/bookings/<int:booking_id>/decline")
def decline(booking_id: int) -> Response:
    """Decline a pending booking (after reading the intake); the client is told."""
    b = _my_booking(booking_id)
    if not DeclineForm().validate_on_submit():
        abort(400)
    with saving() as saved:
        booking_service.decline_pending(db.session, b, actor=current_user, now=now())
    if saved:
        flash("Booking declined; the client has been told.", "success")
    return redirect(request.form.get("back") == "review" and url_for("therapist.review")
                    or url_for("therapist.booking", booking_id=booking_id))


# --- clients and the review queue -------------------------------------------------------------


def _my_client(client_id: int) -> User:
    return care.get_client(db.session, client_id, current_user)


@bp.get("/therapist/clients/<int:client_id>")
def client(client_id: int) -> str:
    """A client's treatment timeline, with the soreness trend drawn as SVG."""
    person = _my_client(client_id)
    timeline = care.client_timeline(db.session, person, current_user, now())
    db.session.commit()
    return render_template("therapist/client.html", t=timeline, person=person,
                           chart=_trend(timeline.soreness), flag_labels=care.FLAG_LABELS,
                           confirm_form=ConfirmForm(),
                           needs_confirmation=care.needs_confirmation(db.session, person.id))


def _trend(points: list[dict[str, Any]]) -> dict[str, Any]:
    """Coordinates for an inline SVG line chart of next-day soreness (and intensity) 0-10."""
    width, height, pad = 600, 200, 30
    n = len(points)
    if not n:
        return {"points": [], "width": width, "height": height}
    step = (width - 2 * pad) / max(n - 1, 1)

    def y(v: int) -> float:
        return round(height - pad - (height - 2 * pad) * v / 10, 1)

    out = [{"x": round(pad + i * step, 1), "y": y(p["soreness"]), "yi": y(p["intensity"]),
            "label": p["date"].strftime("%d %b"), "soreness": p["soreness"],
            "intensity": p["intensity"]} for i, p in enumerate(points)]
    return {
        "points": out, "width": width, "height": height, "pad": pad,
        "line": " ".join(f"{p['x']},{p['y']}" for p in out),
        "iline": " ".join(f"{p['x']},{p['yi']}" for p in out),
        "grid": [{"v": v, "y": y(v)} for v in (0, 5, 10)],
    }


@bp.post("/therapist/clients/<int:client_id>/confirm-intake")
def confirm_intake(client_id: int) -> Response:
    """Confirm a "confirm first" intake: the client's pending bookings become booked."""
    person = _my_client(client_id)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    with saving() as saved:
        confirmed = booking_service.confirm_pending(db.session, person, actor=current_user,
                                                    now=now())
    if saved:
        flash(f"Intake confirmed; {len(confirmed)} booking(s) confirmed and the client told.",
              "success")
    if request.form.get("back") == "review":
        return redirect(url_for("therapist.review"))
    return redirect(url_for("therapist.client", client_id=client_id))


@bp.get("/therapist/review")
def review() -> str:
    """Pending "confirm first" bookings, red flags, referrals and reviews, urgent first."""
    items = care.review_queue(db.session, _me(), now())
    db.session.commit()
    return render_template("therapist/review.html", items=items, confirm_form=ConfirmForm(),
                           decline_form=DeclineForm())


# --- calendar feed ----------------------------------------------------------------------------


@bp.get("/therapist/calendar")
def calendar() -> str:
    """The private calendar feed URL, to copy into a calendar app."""
    return render_template("therapist/calendar.html", url=calendar_service.feed_url(_me()),
                           form=ConfirmForm())


@bp.post("/therapist/calendar/regenerate")
def calendar_regenerate() -> Response:
    """A new feed URL; the old one stops working at once."""
    if not ConfirmForm().validate_on_submit():
        abort(400)
    calendar_service.regenerate_feed_token(db.session, _me())
    db.session.commit()
    flash("New calendar address created. The old one no longer works: update your calendar "
          "app.", "success")
    return redirect(url_for("therapist.calendar"))
