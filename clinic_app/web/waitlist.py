"""Pages: the client's waitlist entries (join, change, leave), the offers of freed slots
(accept or decline, also from the email's links without logging in) and planning a course.

The same use cases as the API (``services.waitlist``, ``services.waitlist_offers``,
``services.courses``); plain forms, no JavaScript. Opening an offer link (GET) never changes
anything, because mail scanners follow links: only the page's buttons (POST, CSRF) answer.
"""

from __future__ import annotations

from datetime import datetime
from datetime import timedelta
from typing import Any

from flask import Blueprint
from flask import current_app
from flask import flash
from flask import redirect
from flask import render_template
from flask import request
from flask import url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import select
from werkzeug.wrappers import Response
from wtforms import DateField
from wtforms import HiddenField
from wtforms import IntegerField
from wtforms import SelectField
from wtforms.validators import InputRequired
from wtforms.validators import NumberRange

from clinic_app.auth import roles_required
from clinic_app.errors import DomainError
from clinic_app.errors import NotFound
from clinic_app.extensions import db
from clinic_app.models.accounts import User
from clinic_app.models.booking import Booking
from clinic_app.models.schedule import Service
from clinic_app.models.schedule import Therapist
from clinic_app.models.waitlist import WaitlistOffer
from clinic_app.scheduling.waitlist import PartOfDay
from clinic_app.services import booking as booking_service
from clinic_app.services import booking_links
from clinic_app.services import courses as course_service
from clinic_app.services import offer_links
from clinic_app.services import waitlist as waitlist_service
from clinic_app.services import waitlist_offers as offer_service
from clinic_app.services.booking_access import get_booking_for
from clinic_app.services.settings import clinic_zone
from clinic_app.web.fields import CheckboxList
from clinic_app.web.fields import opts
from clinic_app.web.util import apply_error
from clinic_app.web.util import now

bp = Blueprint("waitlist", __name__)

Page = str | Response | tuple[str, int]
# The API's field names -> this form's, so domain errors land next to the right field.
_FIELD_NAMES = {"from": "date_from", "to": "date_to"}


class WaitlistForm(FlaskForm):
    service_id = SelectField("Treatment", validators=[InputRequired()])
    therapist_id = SelectField("Therapist")
    date_from = DateField("From", validators=[InputRequired()])
    date_to = DateField("To", validators=[InputRequired()])
    parts_of_day = CheckboxList("Times of day (none ticked: any time)",
                                choices=opts((p.value, p.value.capitalize()) for p in PartOfDay))


class LeaveForm(FlaskForm):
    pass


class OfferAnswerForm(FlaskForm):
    """Accept or decline an offer: a button, with CSRF."""


class PlanForm(FlaskForm):
    sessions = IntegerField("How many sessions", default=3, validators=[
        InputRequired(), NumberRange(1, course_service.MAX_PLANNED)])


class BookCourseForm(FlaskForm):
    service_id = HiddenField()
    # "start|therapist_id" pairs, one per line: exactly the proposals the client saw.
    plan = HiddenField()


def _choices(form: WaitlistForm) -> None:
    services = db.session.scalars(
        select(Service).where(Service.active.is_(True)).order_by(Service.name)).all()
    therapists = db.session.scalars(
        select(Therapist).where(Therapist.active.is_(True)).order_by(Therapist.id)).all()
    form.service_id.choices = opts((s.id, s.name) for s in services)
    form.therapist_id.choices = opts([("any", "Any therapist")]
                                     + [(t.id, t.name) for t in therapists])


def _apply(form: FlaskForm, exc: DomainError) -> None:
    exc.fields = {_FIELD_NAMES.get(k, k): v for k, v in exc.fields.items()}
    apply_error(form, exc)


def _therapist(raw: str | None) -> int | None:
    return int(raw) if raw and raw.isdigit() else None


def _render_list(form: WaitlistForm, status: int = 200) -> Page:
    entries = waitlist_service.entries_for(db.session, current_user, now())
    return render_template("waitlist/index.html", form=form, entries=entries,
                           leave_form=LeaveForm(),
                           offers=offer_service.open_offers_for(db.session, current_user, now()),
                           answer_form=OfferAnswerForm()), status


@bp.route("/waitlist", methods=["GET", "POST"])
@roles_required("client")
def index() -> Page:
    """The client's entries and the form to join."""
    form = WaitlistForm()
    _choices(form)
    if request.method == "GET":
        today = now().astimezone(clinic_zone(db.session)).date()
        form.date_from.data = form.date_from.data or today
        form.date_to.data = form.date_to.data or today + timedelta(days=14)
        if request.args.get("service", "").isdigit():
            form.service_id.data = request.args["service"]
        return _render_list(form)
    if not form.validate_on_submit():
        return _render_list(form, 422)
    try:
        waitlist_service.join(
            db.session, client=current_user, actor=current_user,
            service_id=int(form.service_id.data), therapist_id=_therapist(form.therapist_id.data),
            date_from=form.date_from.data, date_to=form.date_to.data,
            parts_of_day=form.parts_of_day.data or [], now=now())
    except DomainError as exc:
        db.session.rollback()
        _apply(form, exc)
        return _render_list(form, exc.status)
    db.session.commit()
    flash("You are on the waitlist. We email you when a matching time frees up.", "success")
    return redirect(url_for("waitlist.index"))


@bp.route("/waitlist/<int:entry_id>/edit", methods=["GET", "POST"])
@roles_required("client")
def edit(entry_id: int) -> Page:
    """Change an entry's dates, therapist or times of day."""
    entry = waitlist_service.get_entry_for(db.session, entry_id, current_user, now())
    form = WaitlistForm(obj=entry if request.method == "GET" else None)
    _choices(form)
    form.service_id.choices = opts([(entry.service_id, entry.service.name)])
    if request.method == "GET":
        form.service_id.data = str(entry.service_id)
        form.therapist_id.data = str(entry.therapist_id) if entry.therapist_id else "any"
        form.parts_of_day.data = list(entry.parts_of_day or [])
        return render_template("waitlist/edit.html", form=form, entry=entry)
    if not form.validate_on_submit():
        return render_template("waitlist/edit.html", form=form, entry=entry), 422
    try:
        waitlist_service.update_entry(
            db.session, entry, therapist_id=_therapist(form.therapist_id.data),
            date_from=form.date_from.data, date_to=form.date_to.data,
            parts_of_day=form.parts_of_day.data or [], now=now())
    except DomainError as exc:
        db.session.rollback()
        _apply(form, exc)
        entry = waitlist_service.get_entry_for(db.session, entry_id, current_user, now())
        return render_template("waitlist/edit.html", form=form, entry=entry), exc.status
    db.session.commit()
    flash("Your waitlist entry is updated.", "success")
    return redirect(url_for("waitlist.index"))


@bp.post("/waitlist/<int:entry_id>/leave")
@roles_required("client")
def leave(entry_id: int) -> Page:
    form = LeaveForm()
    entry = waitlist_service.get_entry_for(db.session, entry_id, current_user, now())
    if not form.validate_on_submit():
        return redirect(url_for("waitlist.index"))
    waitlist_service.leave(db.session, entry, now())
    db.session.commit()
    flash("You have left that waitlist.", "success")
    return redirect(url_for("waitlist.index"))


# --- offers of freed slots -------------------------------------------------------------------


def _picker_url(offer: WaitlistOffer) -> str:
    """The booking picker on the offered day, with the same therapist."""
    day = offer.start_at.astimezone(clinic_zone(db.session)).date()
    return url_for("client.book_times", service_id=offer.service_id,
                   therapist=offer.therapist_id, day=day.isoformat())


def _offer_page(offer: WaitlistOffer, *, status: int | None = None, error: str | None = None,
                form: OfferAnswerForm | None = None) -> Page:
    """An offer as its link shows it: open (with Accept and Decline), or what became of it.
    A link of an offer that is no longer open answers 410 (gone), like a dead booking link."""
    moment = now()
    state = "open" if offer.lives(moment) else (
        "expired" if offer.status == "open" else offer.status)
    secret = current_app.config["SECRET_KEY"]
    booking_url = None
    if state == "accepted" and offer.booking_id is not None:
        booking = db.session.get(Booking, offer.booking_id)
        if booking is not None and booking.status in ("pending", "booked") and (
                booking.start_at > moment):
            booking_url = url_for("links.booking",
                                  token=booking_links.make_token(secret, booking, "view"))
    return render_template(
        "waitlist/offer.html", offer=offer, state=state, error=error,
        form=form or OfferAnswerForm(), picker_url=_picker_url(offer), booking_url=booking_url,
        accept_url=url_for("waitlist.offer_link",
                           token=offer_links.make_token(secret, offer, "accept")),
        decline_url=url_for("waitlist.offer_link",
                            token=offer_links.make_token(secret, offer, "decline")),
    ), status or (200 if state == "open" else 410)


def _answer(offer: WaitlistOffer, client: User, purpose: str) -> Page:
    """Accept or decline, then show the booking (accepted) or say it is passed on."""
    mine = current_user.is_authenticated and current_user.id == client.id
    try:
        if purpose == "accept":
            booking = offer_service.accept(db.session, offer, client=client, now=now())
        else:
            offer_service.decline(db.session, offer, client=client, now=now())
    except DomainError as exc:
        db.session.rollback()
        return _offer_page(offer, status=exc.status, error=exc.message)
    db.session.commit()
    if purpose == "accept":
        flash("You're booked. A confirmation email is on its way.", "success")
        if mine:
            return redirect(url_for("client.booking_done", booking_id=booking.id))
        token = booking_links.make_token(current_app.config["SECRET_KEY"], booking, "view")
        return redirect(url_for("links.booking", token=token))
    flash("Thank you: we offer that time to the next person waiting. You stay on the "
          "waitlist.", "success")
    if mine:
        return redirect(url_for("waitlist.index"))
    return _offer_page(offer, status=200)


@bp.route("/waitlist/offers/<token>", methods=["GET", "POST"])
def offer_link(token: str) -> Page:
    """An offer email's link, no log-in needed: the offer with Accept and Decline (each
    button posts to its own single-purpose link); a dead offer says so and links to the
    booking picker."""
    try:
        offer, purpose = offer_links.offer_for_token(db.session,
                                                     current_app.config["SECRET_KEY"], token)
    except NotFound as exc:
        return render_template("waitlist/offer.html", offer=None, state="invalid",
                               error=exc.message), 404
    form = OfferAnswerForm()
    if request.method == "POST":
        if not form.validate_on_submit():
            return _offer_page(offer, status=400, form=form,
                               error="The form expired; please press the button again.")
        return _answer(offer, offer.client, purpose)
    return _offer_page(offer, form=form)


@bp.post("/waitlist/offers/<int:offer_id>/<any(accept, decline):purpose>")
@roles_required("client")
def offer_answer(offer_id: int, purpose: str) -> Page:
    """The same two buttons on the logged-in client's waitlist page."""
    offer = offer_service.get_offer_for(db.session, offer_id, current_user)
    if not OfferAnswerForm().validate_on_submit():
        return redirect(url_for("waitlist.index"))
    return _answer(offer, current_user, purpose)


# --- planning a course ------------------------------------------------------------------------


def _plan_page(form: PlanForm, planned: list[Any], error: str | None = None,
               book_form: BookCourseForm | None = None, status: int = 200,
               conflicts: dict[str, str] | None = None) -> Page:
    return render_template("courses/plan.html", form=form, planned=planned, error=error,
                           book_form=book_form, zone=clinic_zone(db.session),
                           conflicts=conflicts or {}), status


@bp.get("/courses/plan")
@roles_required("client")
def plan() -> Page:
    """Choose N; the page proposes N sessions, each inside its window, to book in one go."""
    form = PlanForm(request.args, meta={"csrf": False})
    if "sessions" not in request.args:
        return _plan_page(form, [])
    if not form.validate():
        return _plan_page(form, [], status=422)
    try:
        planned = course_service.plan_course(db.session, current_user,
                                             sessions=form.sessions.data, now=now())
    except DomainError as exc:
        db.session.rollback()
        return _plan_page(form, [], error=exc.message, status=exc.status)
    service_id = course_service.planned_service_id(db.session, current_user)
    book_form = BookCourseForm(formdata=None, service_id=str(service_id),
                               plan="\n".join(f"{p.start.isoformat()}|{p.therapist_id}"
                                              for p in planned))
    return _plan_page(form, planned, book_form=book_form)


@bp.post("/courses/book")
@roles_required("client")
def book() -> Page:
    """Book every proposed session, all or nothing."""
    book_form = BookCourseForm()
    try:
        if not book_form.validate_on_submit():
            raise ValueError("form")
        pairs = []
        for line in (book_form.plan.data or "").splitlines():
            start, _, therapist = line.partition("|")
            pairs.append((datetime.fromisoformat(start), _therapist(therapist)))
        service_id = int(book_form.service_id.data or "")
    except ValueError:
        flash("That plan could not be read; please plan again.", "error")
        return redirect(url_for("waitlist.plan"))
    try:
        course_service.book_course(db.session, client=current_user, actor=current_user,
                                   service_id=service_id, sessions=pairs, now=now())
    except DomainError as exc:
        db.session.rollback()
        form = PlanForm(formdata=None, sessions=len(pairs))
        return _plan_page(form, [], error=exc.message + " Plan again to see new times.",
                          status=exc.status, conflicts=exc.fields)
    db.session.commit()
    flash(f"{len(pairs)} sessions booked. We have emailed you the confirmations.", "success")
    return redirect(url_for("client.appointments"))


# --- a booked next session the new window no longer fits ---------------------------------------


class MoveForm(FlaskForm):
    pass


@bp.app_template_global()
def window_flag(client_id: int) -> course_service.OutOfWindow | None:
    """For the client's and the therapist's pages: the next session if it is now outside the
    recommended window (templates/courses/_window_flag.html shows it with a one-click move)."""
    return course_service.next_session_outside_window(db.session, client_id, now())


@bp.app_template_global()
def window_move_form() -> MoveForm:
    return MoveForm()


@bp.post("/courses/move/<int:booking_id>")
@roles_required("client", "therapist")
def move_into_window(booking_id: int) -> Page:
    """Move the flagged session to the first free time inside the new window (recomputed
    now, so the click moves it to a time that is free at this moment)."""
    booking = get_booking_for(db.session, booking_id, current_user)
    back = (url_for("therapist.client", client_id=booking.client_id)
            if current_user.role == "therapist" else url_for("client.appointments"))
    if not MoveForm().validate_on_submit():
        return redirect(back)
    flag = course_service.next_session_outside_window(db.session, booking.client_id, now())
    if flag is None or flag.booking.id != booking.id or flag.suggestion is None:
        flash("That session needs no move now, or there is no free time inside the window; "
              "pick a time yourself.", "error")
        return redirect(back)
    try:
        booking_service.reschedule(db.session, booking, new_start=flag.suggestion.start,
                                   therapist_id=flag.suggestion.therapist_id,
                                   actor=current_user, now=now())
    except DomainError as exc:
        db.session.rollback()
        flash(exc.message, "error")
        return redirect(back)
    db.session.commit()
    flash("The session is moved into the recommended window. We have emailed the new time.",
          "success")
    return redirect(back)
