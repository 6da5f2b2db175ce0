"""Pages: the staff calendar as a time grid (day and week; admin: per therapist or per room).

The grid is server-rendered and readable without JavaScript: every block is placed with
generated row classes (``rs-N``/``re-N`` in ``static/calendar.css``; one row is five minutes),
because the strict CSP forbids inline styles. ``static/calendar.js`` then adds drag to
reschedule (``POST /staff/calendar/bookings/<id>/move``, the booking service's own rules) and
keeps the empty-slot links, which already open the booking form for that time.
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field
from datetime import date
from datetime import datetime
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint
from flask import abort
from flask import current_app
from flask import flash
from flask import jsonify
from flask import redirect
from flask import render_template
from flask import request
from flask import url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response
from wtforms import BooleanField
from wtforms import DateTimeLocalField
from wtforms import SelectField
from wtforms import StringField
from wtforms import TextAreaField
from wtforms.validators import DataRequired
from wtforms.validators import Length
from wtforms.validators import Optional

from clinic_app.errors import DomainError
from clinic_app.extensions import db
from clinic_app.models.booking import Booking
from clinic_app.models.schedule import Therapist
from clinic_app.services import admin as admin_svc
from clinic_app.services import booking as booking_svc
from clinic_app.services import care
from clinic_app.services import clients as clients_svc
from clinic_app.services.settings import clinic_zone
from clinic_app.services.settings import get_settings
from clinic_app.services.staff_calendar import CalendarData
from clinic_app.services.staff_calendar import CalendarEvent
from clinic_app.services.staff_calendar import Covered
from clinic_app.services.staff_calendar import calendar_events
from clinic_app.services.staff_calendar import cancel_covered
from clinic_app.services.staff_calendar import covered_bookings
from clinic_app.services.staff_calendar import local_midnight
from clinic_app.services.staff_calendar import save_private_note
from clinic_app.web.client import parse_start
from clinic_app.web.fields import opts
from clinic_app.web.util import apply_error
from clinic_app.web.util import now

bp = Blueprint("staff_calendar", __name__)

ROW_MINUTES = 5
DEFAULT_FIRST_HOUR = 8
DEFAULT_LAST_HOUR = 19
MAX_ROWS = 24 * 60 // ROW_MINUTES  # the CSS defines rs-1..rs-289 and re-1..re-289


def require_staff() -> Any:
    """Log in first, then therapists and admins only (403 for clients). Shared by the
    staff blueprints (the calendar and the clients at the desk)."""
    if not current_user.is_authenticated:
        return current_app.login_manager.unauthorized()
    if not current_user.has_role("therapist", "admin"):
        abort(403)
    return None


bp.before_request(require_staff)


@dataclass
class Block:
    """One positioned item in a column: rows are 1-based, ``row_end`` exclusive."""

    kind: str  # working, break, time_off, closure, booking, slot, now
    row_start: int
    row_end: int
    label: str = ""
    start: datetime | None = None
    end: datetime | None = None
    event: CalendarEvent | None = None
    href: str = ""
    therapist_id: int | None = None

    @property
    def classes(self) -> str:
        return f"rs-{self.row_start} re-{self.row_end}"


@dataclass
class Column:
    """One column of the grid: a therapist (or a room) on one local date."""

    day: date
    title: str
    subtitle: str
    therapist_id: int | None
    room_id: int | None
    is_today: bool
    blocks: list[Block] = field(default_factory=list)


@dataclass
class Grid:
    first_minute: int  # local minutes after midnight of row 1
    rows: int
    hours: list[tuple[str, int]]  # ("09:00", row) for the time gutter
    columns: list[Column]


def _arg_date(name: str = "date") -> date | None:
    raw = request.args.get(name)
    try:
        return date.fromisoformat(raw) if raw else None
    except ValueError:
        return None


def _arg_int(name: str) -> int | None:
    raw = request.args.get(name, "")
    return int(raw) if raw.isdigit() and 0 < int(raw) <= booking_svc.MAX_ID else None


def _minute_of(moment: datetime, day: date, tz: Any) -> int:
    """Local wall-clock minutes of ``moment`` after ``day``'s midnight (clipped to the day)."""
    local = moment.astimezone(tz)
    if local.date() < day:
        return 0
    if local.date() > day:
        return 24 * 60
    return local.hour * 60 + local.minute


def _bounds(data: CalendarData) -> tuple[int, int]:
    """First and last minute shown: 08:00-19:00, widened to every working hour and booking."""
    first, last = DEFAULT_FIRST_HOUR * 60, DEFAULT_LAST_HOUR * 60
    for event in data.events:
        if event.kind not in ("working", "booking"):
            continue
        day = event.start.astimezone(data.tz).date()
        first = min(first, _minute_of(event.start, day, data.tz) // 60 * 60)
        end = _minute_of(event.end, day, data.tz)
        last = max(last, -(-end // 60) * 60)
    return first, min(last, 24 * 60)


def _row(minute: int, first: int, rows: int) -> int:
    return max(1, min(rows + 1, 1 + (minute - first) // ROW_MINUTES))


def _place(column: Column, kind: str, start: datetime, end: datetime, grid_first: int,
           rows: int, tz: Any, **extra: Any) -> Block | None:
    """A block for ``[start, end)`` clipped to the column's day, or None when off-grid."""
    a = _row(_minute_of(start, column.day, tz), grid_first, rows)
    b = _row(_minute_of(end, column.day, tz) + ROW_MINUTES - 1, grid_first, rows)
    if b <= a:
        if kind != "booking":
            return None
        b = a + 1
    block = Block(kind, a, b, start=start, end=end, **extra)
    column.blocks.append(block)
    return block


def _booking_href(booking_id: int) -> str:
    return url_for("staff_calendar.booking_panel", booking_id=booking_id)


def build_grid(data: CalendarData, *, by_room: bool, rooms: list[tuple[int, str]],
               moment: datetime, step_minutes: int) -> Grid:
    """Columns of blocks for the page: working hours, breaks, time off, closures, bookings,
    bookable slot links (from now on, on the clinic's step) and today's line."""
    tz = data.tz
    first, last = _bounds(data)
    rows = (last - first) // ROW_MINUTES
    today = moment.astimezone(tz).date()
    days = [data.date_from + timedelta(days=i)
            for i in range((data.date_to - data.date_from).days + 1)]
    columns: list[Column] = []
    index: dict[tuple[date, str, int], Column] = {}
    for day in days:
        if by_room:
            for rid, name in rooms:
                col = Column(day, name, day.strftime("%a %d %b"), None, rid, day == today)
                columns.append(col)
                index[(day, "r", rid)] = col
        else:
            for tid, name in data.therapists:
                # One day: the therapists are the columns, so their names head them.
                title, subtitle = ((name, day.strftime("%a %d %b")) if len(days) == 1
                                   else (day.strftime("%a %d %b"), name))
                col = Column(day, title, subtitle, tid, None, day == today)
                columns.append(col)
                index[(day, "t", tid)] = col

    def columns_for(event: CalendarEvent) -> list[Column]:
        out = []
        for day in days:
            if not (event.start < _midnight(day + timedelta(days=1), tz)
                    and event.end > _midnight(day, tz)):
                continue
            if event.kind == "closure":
                out += [c for c in columns if c.day == day]
            elif by_room:
                if event.kind == "booking" and (day, "r", event.room_id) in index:
                    out.append(index[(day, "r", event.room_id or 0)])
            elif (day, "t", event.therapist_id or 0) in index:
                out.append(index[(day, "t", event.therapist_id or 0)])
        return out

    step = timedelta(minutes=step_minutes)
    therapist_names = dict(data.therapists)
    working: dict[int, list[CalendarEvent]] = {}
    # Time held by bookings (buffers included) offers no free slot link.
    held: dict[int | None, list[Any]] = {}
    for event in data.events:
        if event.kind == "booking" and event.held is not None:
            held.setdefault(event.therapist_id, []).append(event.held)

    def is_free(therapist_id: int | None, start: datetime, end: datetime) -> bool:
        return not any(start < h.end and h.start < end for h in held.get(therapist_id, ()))
    for event in data.events:
        for col in columns_for(event):
            if event.kind == "booking":
                _place(col, "booking", event.start, event.end, first, rows, tz,
                       label=event.label, event=event, href=_booking_href(event.booking_id or 0),
                       therapist_id=event.therapist_id)
            elif event.kind == "working":
                _place(col, "working", event.start, event.end, first, rows, tz, label="")
                working.setdefault(id(col), []).append(event)
                slot = event.start
                while slot + step <= event.end:
                    if slot >= moment and is_free(col.therapist_id, slot, slot + step):
                        _place(col, "slot", slot, slot + step, first, rows, tz,
                               href=url_for("staff_calendar.book_form",
                                            therapist=col.therapist_id, start=slot.isoformat()),
                               label=f"Book {slot.astimezone(tz):%H:%M} with "
                                     f"{therapist_names.get(col.therapist_id or 0, '')}",
                               therapist_id=col.therapist_id)
                    slot += step
            else:
                _place(col, event.kind, event.start, event.end, first, rows, tz,
                       label=event.label)
    for col in columns:
        spans = sorted(working.get(id(col), []), key=lambda e: e.start)
        for before, after in zip(spans, spans[1:], strict=False):
            if before.end < after.start:
                _place(col, "break", before.end, after.start, first, rows, tz, label="Break")
        if col.is_today:
            minute = _minute_of(moment, col.day, tz)
            if first <= minute < last:
                r = _row(minute, first, rows)
                col.blocks.append(Block("now", r, r + 1, label="Now"))
        order = {"closure": 0, "time_off": 1, "working": 2, "break": 3, "slot": 4,
                 "booking": 5, "now": 6}
        col.blocks.sort(key=lambda b: (order[b.kind], b.row_start))
    hours = [(f"{m // 60:02d}:00", _row(m, first, rows)) for m in range(first, last, 60)]
    return Grid(first, rows, hours, columns)


def _midnight(day: date, tz: Any) -> datetime:
    return local_midnight(day, tz)


@bp.get("/staff/calendar")
def calendar() -> tuple[str, int]:
    """Day or week grid: a therapist's own column(s); the admin's per therapist or per room."""
    is_admin = current_user.role == "admin"
    view = "week" if request.args.get("view") == "week" else "day"
    by_room = is_admin and request.args.get("by") == "room" and view == "day"
    moment = now()
    settings = get_settings(db.session)
    tz = ZoneInfo(settings.timezone)
    today = moment.astimezone(tz).date()
    anchor = _arg_date() or today
    if view == "week":
        first = anchor - timedelta(days=anchor.weekday())
        last = first + timedelta(days=6)
        move = timedelta(days=7)
    else:
        first = last = anchor
        move = timedelta(days=1)
    therapist_id = _arg_int("therapist") if is_admin else None
    try:
        data = calendar_events(db.session, current_user, date_from=first, date_to=last,
                               now=moment, therapist_id=therapist_id)
    except DomainError:
        db.session.rollback()
        abort(404)
    rooms = [(r.id, r.name) for r in admin_svc.list_rooms(db.session) if r.active] \
        if by_room else []
    grid = build_grid(data, by_room=by_room, rooms=rooms, moment=moment,
                      step_minutes=settings.slot_step_minutes)
    therapists = ([(t.id, t.name) for t in admin_svc.list_therapists(db.session,
                                                                     active_only=True)]
                  if is_admin else [])
    db.session.commit()  # the audit rows of the intake flags shown

    def link(**changes: Any) -> str:
        args = {"view": view, "date": anchor.isoformat()}
        if therapist_id:
            args["therapist"] = str(therapist_id)
        if by_room:
            args["by"] = "room"
        args.update({k: v for k, v in changes.items() if v is not None})
        for key in [k for k, v in changes.items() if v is None]:
            args.pop(key, None)
        return url_for("staff_calendar.calendar", **args)

    return render_template(
        "staff/calendar.html", data=data, grid=grid, view=view, by_room=by_room,
        first=first, last=last, anchor=anchor, today=today, is_admin=is_admin,
        therapists=therapists, therapist_id=therapist_id, link=link,
        prev=(anchor - move).isoformat(), next=(anchor + move).isoformat(), tz=tz,
    ), 200


@bp.post("/staff/calendar/bookings/<int:booking_id>/move")
def move(booking_id: int) -> tuple[Response, int]:
    """Drag and drop: move a booking to ``start`` (and maybe ``therapist_id``), as JSON.

    Same rules as every reschedule (``services.booking.reschedule``); a refusal answers with
    the error's status and message so the script can snap the block back and say why. CSRF:
    the app-wide CSRFProtect checks the ``X-CSRFToken`` header the script sends.
    """
    payload = request.get_json(silent=True)
    payload = payload if isinstance(payload, dict) else {}
    try:
        start = datetime.fromisoformat(str(payload.get("start", "")))
    except ValueError:
        start = None
    if start is None or start.tzinfo is None:
        return jsonify({"error": {"code": "validation_failed", "message": "Pick a time.",
                                  "fields": {"start": "An ISO time with an offset."}}}), 422
    raw_therapist = payload.get("therapist_id")
    therapist_id = raw_therapist if isinstance(raw_therapist, int) else None
    try:
        booking = booking_svc.get_booking_for(db.session, booking_id, current_user)
        booking_svc.reschedule(db.session, booking, new_start=start, actor=current_user,
                               now=now(), therapist_id=therapist_id)
    except DomainError as exc:
        db.session.rollback()
        return jsonify(exc.to_dict()), exc.status
    db.session.commit()
    return jsonify({"id": booking.id, "start": booking.start_at.isoformat(),
                    "message": "Booking moved; the client has been told."}), 200


# --- booking from an empty slot ---------------------------------------------------------------


class StaffBookForm(FlaskForm):
    """Book a client at a chosen time: an existing client, or (admin) a new one."""

    service = SelectField("Service", coerce=str, validators=[DataRequired()])
    # Any id may come back (a client found by a search on another page load); the service's
    # access rule decides, not the list of choices.
    client = SelectField("Client", coerce=str, validators=[Optional()], validate_choice=False)
    new_name = StringField("New client: name", validators=[Optional(), Length(max=120)])
    new_email = StringField("Email", validators=[Optional(), Length(max=254)])
    new_phone = StringField("Phone", validators=[Optional(), Length(max=40)])
    invite = BooleanField("Email them a link to set a password")
    notify = BooleanField("Email the client a confirmation and reminders", default=True)
    override_rules = BooleanField("Book inside the minimum notice or beyond the horizon")
    override_reason = StringField("Reason for the override", validators=[Optional(),
                                                                         Length(max=255)])


def _book_context() -> tuple[Therapist, datetime]:
    """The therapist and start of ``?therapist=&start=`` (404/400 when unusable)."""
    therapist_id = _arg_int("therapist") if request.method == "GET" else \
        (int(request.form.get("therapist", "0")) if request.form.get("therapist", "").isdigit()
         else None)
    therapist = db.session.get(Therapist, therapist_id or 0)
    if therapist is None or not therapist.active:
        abort(404)
    if current_user.role == "therapist":
        own = booking_svc.therapist_for_user(db.session, current_user)
        if own is None or own.id != therapist.id:
            abort(404)
    return therapist, parse_start(request.values.get("start"))


@bp.route("/staff/book", methods=["GET", "POST"])
def book_form() -> tuple[str, int] | Response:
    """The form an empty slot opens: service, client (search, or a new one), options."""
    therapist, start = _book_context()
    is_admin = current_user.role == "admin"
    form = StaffBookForm()
    services = [s for s in therapist.services if s.active]
    form.service.choices = opts([(s.id, f"{s.name} ({s.duration_minutes} min)")
                                 for s in services])
    query = request.values.get("q", "")
    found = clients_svc.search_clients(db.session, current_user, query)
    wanted = request.values.get("client", "")
    form.client.choices = opts([("", "Choose a client")] + [
        (u.id, " · ".join(p for p in (u.name, u.email or "", u.phone or "") if p))
        for u in found])
    if wanted and wanted not in {c.value for c in form.client.choices} and wanted.isdigit():
        try:
            picked = clients_svc.get_client_for(db.session, int(wanted), current_user)
        except DomainError:
            db.session.rollback()
        else:
            form.client.choices.append(opts([(picked.id, picked.name)])[0])
    if request.method == "GET" and wanted:
        form.client.data = wanted
    status = 200
    if request.method == "POST":
        status = 422
        if form.validate_on_submit():
            made = _book_from_form(form, therapist, start, is_admin)
            if made is not None:
                db.session.commit()
                flash(f"Booked {made.client.name} at "
                      f"{made.start_at.astimezone(clinic_zone(db.session)):%a %d %b %H:%M}"
                      + ("; they have been emailed." if made.notify_client and made.client.email
                         else "; no email was sent."), "success")
                day = made.start_at.astimezone(clinic_zone(db.session)).date()
                return redirect(url_for("staff_calendar.calendar", date=day.isoformat(),
                                        view="day"))
    return render_template("staff/book.html", form=form, therapist=therapist, start=start,
                           is_admin=is_admin, query=query, found=found,
                           day=start.astimezone(clinic_zone(db.session)).date()), status


def _book_from_form(form: StaffBookForm, therapist: Therapist, start: datetime,
                    is_admin: bool) -> Booking | None:
    """Create the client when asked, then book; errors go on the form (rolled back)."""
    try:
        if (form.new_name.data or "").strip():
            if not is_admin:
                raise DomainError("Only the front desk creates clients.")
            client = clients_svc.create_client(
                db.session, actor=current_user, name=form.new_name.data or "",
                email=form.new_email.data, phone=form.new_phone.data, now=now(),
                invite=bool(form.invite.data))
        elif (form.client.data or "").isdigit():
            client = clients_svc.get_client_for(db.session, int(form.client.data),
                                                current_user)
        else:
            raise DomainError("Choose a client, or enter a new client's name.",
                              fields={"client": "Choose a client or create one."})
        return booking_svc.book(
            db.session, client=client, service_id=int(form.service.data), start=start,
            now=now(), therapist_id=therapist.id, actor=current_user, early_confirmed=True,
            notify=bool(form.notify.data),
            override_rules=bool(form.override_rules.data) and is_admin,
            override_reason=form.override_reason.data or "")
    except DomainError as exc:
        db.session.rollback()
        mapped = {"name": "new_name", "email": "new_email", "phone": "new_phone"}
        exc.fields = {mapped.get(k, k): v for k, v in exc.fields.items()}
        apply_error(form, exc)
        if exc.fields and exc.message not in form.form_errors:
            form.form_errors.append(exc.message)
        return None


# --- acting on a booking from the calendar ----------------------------------------------------


class CancelForm(FlaskForm):
    reason = StringField("Reason (the client is told)", validators=[DataRequired(),
                                                                    Length(max=255)])


class MoveForm(FlaskForm):
    new_start = DateTimeLocalField("New start", format="%Y-%m-%dT%H:%M",
                                   validators=[DataRequired()])


class NoteForm(FlaskForm):
    private_note = TextAreaField("Private note (staff only, never sent)",
                                 validators=[Optional(), Length(max=5000)])


def _staff_booking(booking_id: int) -> Booking:
    try:
        return booking_svc.get_booking_for(db.session, booking_id, current_user)
    except DomainError:
        db.session.rollback()
        abort(404)


def _panel(booking: Booking, *, cancel_form: CancelForm | None = None,
           move_form: MoveForm | None = None, status: int = 200) -> tuple[str, int]:
    """The booking as staff act on it; from a completed session, the follow-up slots."""
    tz = clinic_zone(db.session)
    followup = None
    own_slots: list[Any] = []
    other_slots: list[Any] = []
    if booking.status == "completed":
        moment = now()
        followup = care.followup_for_booking(db.session, booking, current_user, moment)
        options = care.next_session_options(db.session, booking.client, moment,
                                            service_id=booking.service_id)
        if options.bookable:
            own_slots = [s for s in options.same_therapist
                         if s.therapist_id == booking.therapist_id][:FOLLOWUP_SLOTS]
            if current_user.role == "admin":
                other_slots = options.other_therapists[:FOLLOWUP_SLOTS]
    names = {t.id: t.name for t in admin_svc.list_therapists(db.session)}
    page = render_template(
        "staff/booking.html", b=booking, tz=tz, followup=followup, own_slots=own_slots,
        other_slots=other_slots, names=names, is_admin=current_user.role == "admin",
        cancel_form=cancel_form or CancelForm(formdata=None),
        move_form=move_form or MoveForm(formdata=None,
                                        new_start=booking.start_at.astimezone(tz).replace(
                                            tzinfo=None)),
        note_form=NoteForm(formdata=None, private_note=booking.private_note),
        full_url=(url_for("admin.booking", booking_id=booking.id)
                  if current_user.role == "admin"
                  else url_for("therapist.booking", booking_id=booking.id)),
    )
    db.session.commit()  # the audit row of the recommendation read
    return page, status


FOLLOWUP_SLOTS = 8


@bp.get("/staff/bookings/<int:booking_id>")
def booking_panel(booking_id: int) -> tuple[str, int]:
    """Move, cancel, annotate; book the follow-up from a completed session."""
    return _panel(_staff_booking(booking_id))


@bp.post("/staff/bookings/<int:booking_id>/cancel")
def booking_cancel(booking_id: int) -> tuple[str, int] | Response:
    """Cancel with a reason; the client gets the normal cancellation email."""
    booking = _staff_booking(booking_id)
    form = CancelForm()
    if form.validate_on_submit():
        try:
            booking_svc.cancel(db.session, booking, actor=current_user, now=now(),
                               reason=form.reason.data or "")
        except DomainError as exc:
            db.session.rollback()
            apply_error(form, exc)
        else:
            db.session.commit()
            flash("Booking cancelled; the client has been told.", "success")
            return redirect(url_for("staff_calendar.booking_panel", booking_id=booking_id))
    return _panel(_staff_booking(booking_id), cancel_form=form, status=422)


@bp.post("/staff/bookings/<int:booking_id>/reschedule")
def booking_reschedule(booking_id: int) -> tuple[str, int] | Response:
    """Move to a local date and time (same therapist), through the booking rules."""
    booking = _staff_booking(booking_id)
    form = MoveForm()
    if form.validate_on_submit() and form.new_start.data is not None:
        tz = clinic_zone(db.session)
        start = form.new_start.data.replace(tzinfo=tz)
        try:
            booking_svc.reschedule(db.session, booking, new_start=start, actor=current_user,
                                   now=now())
        except DomainError as exc:
            db.session.rollback()
            form.new_start.errors = [*form.new_start.errors, exc.message]
        else:
            db.session.commit()
            flash("Booking moved; the client has been told.", "success")
            return redirect(url_for("staff_calendar.booking_panel", booking_id=booking_id))
    return _panel(_staff_booking(booking_id), move_form=form, status=422)


@bp.post("/staff/bookings/<int:booking_id>/note")
def booking_note(booking_id: int) -> tuple[str, int] | Response:
    """Save the private note (the booking's therapist or an admin)."""
    booking = _staff_booking(booking_id)
    form = NoteForm()
    if form.validate_on_submit():
        try:
            save_private_note(db.session, booking, actor=current_user,
                              text=form.private_note.data or "", now=now())
        except DomainError as exc:
            db.session.rollback()
            abort(exc.status)
        db.session.commit()
        flash("Note saved.", "success")
        return redirect(url_for("staff_calendar.booking_panel", booking_id=booking_id))
    return _panel(booking, status=422)


# --- time off and closures over bookings ------------------------------------------------------


class CoveredForm(FlaskForm):
    message = TextAreaField("Message to the clients", validators=[Optional(),
                                                                  Length(max=255)])


@bp.route("/staff/covered/<kind>/<int:item_id>", methods=["GET", "POST"])
def covered(kind: str, item_id: int) -> tuple[str, int] | Response:
    """After saving time off or a closure: the bookings it covers; cancel some or all with a
    message, or keep them (the grid shows them as conflicts until they are resolved)."""
    moment = now()
    try:
        found = covered_bookings(db.session, current_user, kind=kind, item_id=item_id,
                                 now=moment)
    except DomainError:
        db.session.rollback()
        abort(404)
    form = CoveredForm()
    status = 200
    if request.method == "POST" and form.validate_on_submit():
        if request.form.get("action") == "keep":
            flash(f"Kept {len(found.bookings)} booking(s); they show as conflicts on the "
                  "calendar until moved or cancelled.", "success")
            return redirect(_calendar_at(found))
        wanted = [int(v) for v in request.form.getlist("booking_ids") if v.isdigit()]
        if request.form.get("action") == "cancel_all":
            wanted = [b.id for b in found.bookings]
        try:
            done = cancel_covered(db.session, current_user, found, wanted,
                                  message=form.message.data or "", now=moment)
        except DomainError as exc:
            db.session.rollback()
            apply_error(form, exc)
            if exc.message not in form.form_errors:
                form.form_errors.append(exc.message)
            status = 422
            found = covered_bookings(db.session, current_user, kind=kind, item_id=item_id,
                                     now=moment)
        else:
            db.session.commit()
            flash(f"Cancelled {len(done)} booking(s); the clients have been told.", "success")
            return redirect(url_for("staff_calendar.covered", kind=kind, item_id=item_id))
    elif request.method == "POST":
        status = 422
    return render_template("staff/covered.html", c=found, form=form,
                           tz=clinic_zone(db.session), calendar_url=_calendar_at(found)), status


def _calendar_at(found: Covered) -> str:
    first = found.bookings[0].start_at.astimezone(clinic_zone(db.session)).date() \
        if found.bookings else None
    return url_for("staff_calendar.calendar", view="week",
                   date=first.isoformat() if first else None)
