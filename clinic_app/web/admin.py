"""Pages: the admin back office (services, rooms, therapists, settings, bookings, dashboard)."""

from __future__ import annotations

from datetime import date
from datetime import timedelta
from decimal import Decimal
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
from werkzeug.wrappers import Response

from clinic_app.errors import DomainError
from clinic_app.extensions import db
from clinic_app.models.booking import Booking
from clinic_app.models.schedule import Service
from clinic_app.services import accounts
from clinic_app.services import admin as svc
from clinic_app.services import audit
from clinic_app.services import care
from clinic_app.services.booking_access import get_booking_for
from clinic_app.services.continuity import continuity_panel
from clinic_app.services.settings import clinic_zone
from clinic_app.services.settings import get_settings
from clinic_app.validation import parse_id
from clinic_app.validation import price_to_cents
from clinic_app.web.fields import opts
from clinic_app.web.fields import query_id
from clinic_app.web.forms import ConfirmForm
from clinic_app.web.forms_admin import BookingFilterForm
from clinic_app.web.forms_admin import ClosureForm
from clinic_app.web.forms_admin import InviteForm
from clinic_app.web.forms_admin import OnBehalfForm
from clinic_app.web.forms_admin import RoomForm
from clinic_app.web.forms_admin import ServiceForm
from clinic_app.web.forms_admin import SettingsForm
from clinic_app.web.forms_admin import WeekForm
from clinic_app.web.util import apply_error
from clinic_app.web.util import now

bp = Blueprint("admin", __name__)

Page = str | Response | tuple[str, int]


@bp.before_request
def _admins_only() -> Any:
    """Every page here: log in first, then admins only (403 for other roles)."""
    if not current_user.is_authenticated:
        return current_app.login_manager.unauthorized()
    if not current_user.has_role("admin"):
        abort(403)
    return None


def _today() -> date:
    return now().astimezone(clinic_zone(db.session)).date()




# --- dashboard --------------------------------------------------------------------------------


@bp.get("/admin/")
def dashboard() -> Page:
    """The week at a glance: utilisation per therapist, bookings, late cancels, no-shows, and
    the continuity panel. A bad ``?week=`` shows this week with the message on the chooser:
    400 when it is not a date at all, 422 for a real date outside the accepted window."""
    form = WeekForm(request.args)
    status = 200
    if not form.validate():
        status = 400 if form.week.data is None else 422
    week = svc.week_start_of(form.week.data if status == 200 and form.week.data else _today())
    if status == 200 and form.week.data is None:
        form.week.data = week  # the chooser shows the week on screen (a bad value stays)
    zone = clinic_zone(db.session)
    figures = svc.dashboard(db.session, week, zone)
    panel = continuity_panel(db.session, week, zone, now=now())
    db.session.commit()
    return render_template("admin/dashboard.html", f=figures, continuity=panel, form=form,
                           prev_week=week - timedelta(days=7),
                           next_week=week + timedelta(days=7)), status


# --- services ---------------------------------------------------------------------------------


def _service_form(service: Service | None) -> ServiceForm:
    form = ServiceForm(obj=service) if service is not None and request.method == "GET" \
        else ServiceForm()
    if service is not None and request.method == "GET":
        form.price.data = Decimal(service.price_cents) / 100
        form.therapist_ids.data = [t.id for t in service.therapists]
        form.room_ids.data = [r.id for r in service.rooms]
    form.therapist_ids.choices = opts((t.id, t.name + ("" if t.active else " (inactive)"))
                                      for t in svc.list_therapists(db.session))
    form.room_ids.choices = opts((r.id, r.name + ("" if r.active else " (not in use)"))
                                 for r in svc.list_rooms(db.session))
    return form


def _save_service(service: Service | None) -> Page:
    form = _service_form(service)
    if form.validate_on_submit():
        try:
            saved = svc.save_service(
                db.session, service,
                name=form.name.data or "", description=form.description.data or "",
                duration_minutes=form.duration_minutes.data,
                buffer_before_minutes=form.buffer_before_minutes.data,
                buffer_after_minutes=form.buffer_after_minutes.data,
                price_cents=price_to_cents(form.price.data)[0],
                active=bool(form.active.data), is_first_visit=bool(form.is_first_visit.data),
                therapist_ids=list(form.therapist_ids.data or []),
                room_ids=list(form.room_ids.data or []),
            )
        except DomainError as exc:
            db.session.rollback()
            apply_error(form, exc)
        else:
            db.session.commit()
            flash(f"Saved the service “{saved.name}”.", "success")
            return redirect(url_for("admin.services"))
    status = 422 if request.method == "POST" else 200
    return render_template("admin/service_form.html", form=form, service=service), status


@bp.get("/admin/services")
def services() -> str:
    """Services and rooms."""
    return render_template("admin/services.html", services=svc.list_services(db.session),
                           rooms=svc.list_rooms(db.session), room_form=RoomForm())


@bp.route("/admin/services/new", methods=["GET", "POST"])
def service_new() -> Page:
    """Create a service."""
    return _save_service(None)


@bp.route("/admin/services/<int:service_id>", methods=["GET", "POST"])
def service_edit(service_id: int) -> Page:
    """Edit a service: details, who offers it, which rooms."""
    return _save_service(svc.get_service(db.session, service_id))


# --- rooms ------------------------------------------------------------------------------------


@bp.post("/admin/rooms")
def room_new() -> Page:
    """Add a room (the form sits on the services page)."""
    form = RoomForm()
    if form.validate_on_submit():
        try:
            room = svc.save_room(db.session, None, name=form.name.data or "",
                                 active=bool(form.active.data))
        except DomainError as exc:
            db.session.rollback()
            apply_error(form, exc)
        else:
            db.session.commit()
            flash(f"Added the room “{room.name}”.", "success")
            return redirect(url_for("admin.services"))
    return render_template("admin/services.html", services=svc.list_services(db.session),
                           rooms=svc.list_rooms(db.session), room_form=form), 422


@bp.route("/admin/rooms/<int:room_id>", methods=["GET", "POST"])
def room_edit(room_id: int) -> Page:
    """Rename a room or take it out of use."""
    room = svc.get_room(db.session, room_id)
    form = RoomForm(obj=room) if request.method == "GET" else RoomForm()
    if form.validate_on_submit():
        try:
            svc.save_room(db.session, room, name=form.name.data or "",
                          active=bool(form.active.data))
        except DomainError as exc:
            db.session.rollback()
            apply_error(form, exc)
        else:
            db.session.commit()
            flash("Room saved.", "success")
            return redirect(url_for("admin.services"))
    status = 422 if request.method == "POST" else 200
    return render_template("admin/room_form.html", form=form, room=room), status


# --- therapists -------------------------------------------------------------------------------


@bp.route("/admin/therapists", methods=["GET", "POST"])
def therapists() -> Page:
    """Therapists, with the invitation form."""
    form = InviteForm()
    if form.validate_on_submit():
        try:
            user = accounts.invite_therapist(db.session, name=form.name.data or "",
                                             email=form.email.data or "", now=now())
        except DomainError as exc:
            db.session.rollback()
            apply_error(form, exc)
        else:
            db.session.commit()
            flash(f"Invitation sent to {user.email}.", "success")
            return redirect(url_for("admin.therapists"))
    status = 422 if request.method == "POST" else 200
    return render_template("admin/therapists.html", therapists=svc.list_therapists(db.session),
                           form=form), status


@bp.get("/admin/therapists/<int:therapist_id>")
def therapist(therapist_id: int) -> str:
    """One therapist: services, future bookings, deactivate/reactivate."""
    t = svc.get_therapist(db.session, therapist_id)
    return render_template("admin/therapist.html", t=t,
                           bookings=svc.future_bookings(db.session, t, now()),
                           form=ConfirmForm())


@bp.post("/admin/therapists/<int:therapist_id>/active")
def therapist_active(therapist_id: int) -> Response:
    """Deactivate or reactivate; the future bookings stay listed for reassignment."""
    t = svc.get_therapist(db.session, therapist_id)
    form = ConfirmForm()
    if not form.validate_on_submit():
        abort(400)
    active = request.form.get("active") == "1"
    left = svc.set_therapist_active(db.session, t, active, now())
    db.session.commit()
    if active:
        flash(f"{t.name} is active again.", "success")
    elif left:
        flash(f"{t.name} is deactivated. Move or cancel the {len(left)} future booking(s) "
              "listed below.", "info")
    else:
        flash(f"{t.name} is deactivated.", "success")
    return redirect(url_for("admin.therapist", therapist_id=t.id))


@bp.post("/admin/therapists/<int:therapist_id>/resend")
def therapist_resend(therapist_id: int) -> Response:
    """Send the invitation link again (only while no password is set)."""
    t = svc.get_therapist(db.session, therapist_id)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    if t.user.password_hash is None:
        accounts.send_invitation(db.session, t.user, now())
        db.session.commit()
        flash("Invitation sent again.", "success")
    return redirect(url_for("admin.therapist", therapist_id=t.id))


# --- settings and closures --------------------------------------------------------------------


SETTING_FIELDS = ("name", "address", "phone", "timezone", "min_notice_minutes", "horizon_days",
                  "slot_step_minutes", "cancel_cutoff_hours", "max_upcoming_per_client",
                  "reminder_offsets_hours", "retention_years", "offer_minutes")


def _settings_page(form: SettingsForm, closure_form: ClosureForm, status: int = 200) -> Page:
    return render_template("admin/settings.html", form=form, closure_form=closure_form,
                           closures=svc.list_closures(db.session, _today()),
                           delete_form=ConfirmForm()), status


@bp.route("/admin/settings", methods=["GET", "POST"])
def settings() -> Page:
    """Clinic details, booking and cancellation policy, reminders, retention; closures."""
    row = get_settings(db.session)
    form = SettingsForm(obj=row) if request.method == "GET" else SettingsForm()
    if form.validate_on_submit():
        try:
            svc.update_settings(db.session, now=now(),
                                **{k: getattr(form, k).data for k in SETTING_FIELDS})
        except DomainError as exc:
            db.session.rollback()
            apply_error(form, exc)
        else:
            db.session.commit()
            flash("Settings saved.", "success")
            return redirect(url_for("admin.settings"))
    return _settings_page(form, ClosureForm(formdata=None),
                          422 if request.method == "POST" else 200)


@bp.post("/admin/closures")
def closure_new() -> Page:
    """Close the clinic on some days; bookings already on them are listed."""
    form = ClosureForm()
    if form.validate_on_submit():
        try:
            closure = svc.add_closure(db.session, start_date=form.start_date.data,
                                      end_date=form.end_date.data, today=_today(),
                                      reason=form.reason.data or "")
        except DomainError as exc:
            db.session.rollback()
            apply_error(form, exc)
        else:
            clashing = svc.bookings_on_closed_days(db.session, closure, clinic_zone(db.session))
            db.session.commit()
            flash("Closure added.", "success")
            if clashing:
                # --- issue 11: cancel the bookings on those days with a message, or keep them
                flash(f"{len(clashing)} booking(s) already fall on those days: cancel or keep "
                      "them.", "error")
                return redirect(url_for("staff_calendar.covered", kind="closure",
                                        item_id=closure.id))
            return redirect(url_for("admin.settings"))
    row = get_settings(db.session)
    return _settings_page(SettingsForm(obj=row, formdata=None), form, 422)


@bp.post("/admin/closures/<int:closure_id>/delete")
def closure_delete(closure_id: int) -> Response:
    """Reopen: remove a closure."""
    if not ConfirmForm().validate_on_submit():
        abort(400)
    svc.delete_closure(db.session, closure_id, now=now())
    db.session.commit()
    flash("Closure removed.", "success")
    return redirect(url_for("admin.settings"))


# --- bookings ---------------------------------------------------------------------------------


@bp.get("/admin/bookings")
def bookings() -> Page:
    """All bookings, filtered by local date range, therapist, status and client."""
    form = BookingFilterForm(request.args)
    therapists = svc.list_therapists(db.session)
    form.therapist.choices = opts([("", "Any therapist")] + [(t.id, t.name) for t in therapists])
    today = _today()
    status = 200
    if request.args and not form.validate():
        status = 422
    date_from = form.date_from.data if not form.date_from.errors else None
    date_to = form.date_to.data if not form.date_to.errors else None
    if not request.args.get("date_from") and not form.date_from.errors:
        date_from = today
        form.date_from.data = today
    if date_from and date_to and date_to < date_from:
        form.date_to.errors = [*form.date_to.errors, "The end is before the start."]
        status = 422
        date_to = None
    therapist_id = parse_id(form.therapist.data) if not form.therapist.errors else None
    rows = svc.search_bookings(db.session, tz=clinic_zone(db.session), date_from=date_from,
                               date_to=date_to, therapist_id=therapist_id,
                               status=form.status.data or None, client_query=form.q.data or "")
    return render_template("admin/bookings.html", form=form, bookings=rows), status


def _booking(booking_id: int) -> Booking:
    """THE booking rule (an admin sees every booking; the id guard makes a huge id a 404)."""
    return get_booking_for(db.session, booking_id, current_user)


@bp.get("/admin/bookings/<int:booking_id>")
def booking(booking_id: int) -> str:
    """One booking with cancel and reschedule on the client's behalf."""
    b = _booking(booking_id)
    return render_template("admin/booking.html", b=b, form=ConfirmForm(),
                           late=_is_late(b))


def _is_late(b: Booking) -> bool:
    cutoff = timedelta(hours=get_settings(db.session).cancel_cutoff_hours)
    return b.start_at - now() < cutoff


@bp.post("/admin/bookings/<int:booking_id>/cancel")
def booking_cancel(booking_id: int) -> Page:
    """Cancel on the client's behalf (the client is emailed)."""
    from clinic_app.services import booking as booking_svc

    b = _booking(booking_id)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    reason = (request.form.get("reason") or "").strip()[:255]
    try:
        booking_svc.cancel(db.session, b, actor=current_user, now=now(), reason=reason)
    except DomainError as exc:
        db.session.rollback()
        flash(exc.message, "error")
        return redirect(url_for("admin.booking", booking_id=booking_id))
    db.session.commit()
    flash("Booking cancelled; the client has been told.", "success")
    return redirect(url_for("admin.booking", booking_id=booking_id))


@bp.get("/admin/bookings/<int:booking_id>/reschedule")
def booking_reschedule(booking_id: int) -> Page:
    """Pick a new time (and maybe another therapist) for a booking."""
    from clinic_app.web.client import build_picker
    from clinic_app.web.client import therapist_choice

    b = _booking(booking_id)
    therapist_id = therapist_choice(request.args.get("therapist"), default=b.therapist_id)
    picker = build_picker(b.service_id, therapist_id, exclude_booking_id=b.id)
    return render_template(
        "admin/reschedule.html", b=b, picker=picker, therapist_id=therapist_id,
        therapists=[t for t in b.service.therapists if t.active],
        time_url=lambda slot: url_for("admin.booking_reschedule_confirm", booking_id=b.id,
                                      start=slot.start.isoformat(),
                                      therapist=slot.therapist_id),
        day_url=lambda first, day: url_for("admin.booking_reschedule", booking_id=b.id,
                                           therapist=therapist_id or "any",
                                           first=first, day=day),
    )


@bp.route("/admin/bookings/<int:booking_id>/reschedule/confirm", methods=["GET", "POST"])
def booking_reschedule_confirm(booking_id: int) -> Page:
    """Confirm the move (GET shows it, POST does it)."""
    from clinic_app.services import booking as booking_svc
    from clinic_app.web.client import parse_start

    b = _booking(booking_id)
    start = parse_start(request.values.get("start"))
    therapist_id = therapist_choice_int(request.values.get("therapist"))
    form = ConfirmForm()
    if request.method == "POST" and form.validate_on_submit():
        try:
            booking_svc.reschedule(db.session, b, new_start=start, actor=current_user,
                                   now=now(), therapist_id=therapist_id)
        except DomainError as exc:
            db.session.rollback()
            flash(exc.message, "error")
            return redirect(url_for("admin.booking_reschedule", booking_id=booking_id))
        db.session.commit()
        flash("Booking moved; the client has been told.", "success")
        return redirect(url_for("admin.booking", booking_id=booking_id))
    from clinic_app.models.schedule import Therapist

    new_therapist = db.session.get(Therapist, therapist_id) if therapist_id else b.therapist
    return render_template("admin/reschedule_confirm.html", b=b, start=start, form=form,
                           new_therapist=new_therapist, therapist_id=therapist_id)


# --- who read a client's health data ---------------------------------------------------------


@bp.get("/admin/clients/<int:client_id>/access-log")
def client_access_log(client_id: int) -> str:
    """Every staff read of one client's health data: who, what, when (newest first)."""
    person = care.get_client(db.session, client_id, current_user)  # 404 for a non-client
    lines = audit.access_log(db.session, person.id)
    return render_template("admin/access_log.html", person=person, lines=lines)


def therapist_choice_int(raw: str | None) -> int | None:
    return query_id(raw)


@bp.get("/admin/book")
def book() -> Page:
    """Book on a client's behalf: choose client, service, therapist; then a time."""
    from clinic_app.web.client import build_picker

    form = OnBehalfForm(request.args)
    form.client.choices = opts([("", "Choose a client")] + [
        (u.id, f"{u.name} <{u.email or u.phone}>") for u in svc.list_clients(db.session)])
    form.service.choices = opts([("", "Choose a service")] + [
        (s.id, s.name) for s in svc.list_services(db.session) if s.active])
    form.therapist.choices = opts([("any", "First available")] + [
        (t.id, t.name) for t in svc.list_therapists(db.session, active_only=True)])
    picker = None
    status = 200
    if "client" in request.args or "service" in request.args:
        if form.validate():
            therapist_id = therapist_choice_int(form.therapist.data)
            picker = build_picker(int(form.service.data), therapist_id)
        else:
            status = 422
    args = {k: request.args.get(k) for k in ("client", "service", "therapist")}
    return render_template(
        "admin/book.html", form=form, picker=picker,
        time_url=lambda slot: url_for("admin.book_confirm", start=slot.start.isoformat(),
                                      therapist_slot=slot.therapist_id, **args),
        day_url=lambda first, day: url_for("admin.book", first=first, day=day, **args),
    ), status


@bp.route("/admin/book/confirm", methods=["GET", "POST"])
def book_confirm() -> Page:
    """Confirm and make the booking for the client."""
    from clinic_app.models.accounts import User
    from clinic_app.services import booking as booking_svc
    from clinic_app.web.client import parse_start

    client = db.session.get(User, therapist_choice_int(request.values.get("client")) or 0)
    service = db.session.get(Service, therapist_choice_int(request.values.get("service")) or 0)
    if client is None or client.role != "client" or service is None:
        abort(404)
    start = parse_start(request.values.get("start"))
    chosen = therapist_choice_int(request.values.get("therapist"))
    slot_therapist = therapist_choice_int(request.values.get("therapist_slot"))
    form = ConfirmForm()
    # Before the client's recommended earliest date: the admin confirms it knowingly, and
    # only then is the booking flagged "booked before the recommended date".
    earliest = care.recommended_earliest(db.session, client, start)
    early_ok = request.form.get("early_ok") == "y"
    early_error = None
    status = 200
    if request.method == "POST" and form.validate_on_submit() and earliest and not early_ok:
        early_error = "Tick this box to book before the recommended date."
        status = 422
    elif request.method == "POST" and form.validate_on_submit():
        try:
            made = booking_svc.book(db.session, client=client, service_id=service.id,
                                    start=start, now=now(),
                                    therapist_id=chosen or slot_therapist, actor=current_user,
                                    early_confirmed=bool(earliest and early_ok))
        except DomainError as exc:
            db.session.rollback()
            flash(exc.message, "error")
            return redirect(url_for("admin.book", client=client.id, service=service.id,
                                    therapist=chosen or "any"))
        db.session.commit()
        flash(f"Booked for {client.name}; they have been emailed.", "success")
        return redirect(url_for("admin.booking", booking_id=made.id))
    from clinic_app.models.schedule import Therapist

    therapist_row = db.session.get(Therapist, chosen or slot_therapist or 0)
    return render_template("admin/book_confirm.html", client=client, service=service,
                           start=start, therapist=therapist_row, form=form,
                           chosen=chosen, slot_therapist=slot_therapist, earliest=earliest,
                           early_ok=early_ok, early_error=early_error), status
