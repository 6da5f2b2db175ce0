"""Pages: the client's booking journey, "My appointments" and the health intake.

The booking path is plain links and forms (works without JavaScript):
service -> therapist or "first available" -> 14-day date view -> times -> confirm -> done.
The same date/time picker (:func:`build_picker`) serves rescheduling and the admin's
booking on a client's behalf.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field
from datetime import UTC
from datetime import date
from datetime import datetime
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from flask import Blueprint
from flask import abort
from flask import current_app
from flask import flash
from flask import redirect
from flask import render_template
from flask import request
from flask import url_for
from flask_login import current_user
from sqlalchemy import select
from werkzeug.wrappers import Response

from clinic_app.auth import roles_required
from clinic_app.errors import DomainError
from clinic_app.extensions import db
from clinic_app.extensions import limiter
from clinic_app.models.booking import Booking
from clinic_app.models.booking import BookingStatus
from clinic_app.models.booking import HoldPurpose
from clinic_app.models.care import Intake
from clinic_app.models.schedule import Service
from clinic_app.models.schedule import Therapist
from clinic_app.scheduling.availability import Slot
from clinic_app.services import accounts
from clinic_app.services import booking as booking_service
from clinic_app.services import holds
from clinic_app.services.booking import initial_status_for
from clinic_app.services.booking_access import get_booking_for
from clinic_app.services.care import SEEK_CARE_TEXT
from clinic_app.services.care import red_flag_labels
from clinic_app.services.care import report_problem as store_problem_report
from clinic_app.services.care import report_window_open
from clinic_app.services.notify.messages import booking_terms
from clinic_app.services.settings import clinic_zone
from clinic_app.services.settings import get_settings
from clinic_app.web.fields import query_date
from clinic_app.web.fields import query_id
from clinic_app.web.forms import ConfirmForm
from clinic_app.web.forms import SignupForm
from clinic_app.web.forms_booking import CancelForm
from clinic_app.web.forms_booking import ConfirmBookingForm
from clinic_app.web.forms_booking import ReportProblemForm
from clinic_app.web.util import apply_error
from clinic_app.web.util import now
from clinic_app.web.util import safe_next
from clinic_app.web.util import saving

bp = Blueprint("client", __name__)

Page = str | Response | tuple[str, int]
WINDOW_DAYS = 14


# --- the shared date/time picker --------------------------------------------------------------


@dataclass
class Picker:
    """A window of openings (14 days, or one calendar month with ``?view=month``) and the
    times on the selected day (clinic zone). ``?until=`` caps the window (the follow-up
    window's last day, from the "your next session" card)."""

    zone: ZoneInfo
    first: date
    last: date
    days: list[tuple[date, int]] = field(default_factory=list)  # (local date, start times)
    day: date | None = None
    times: list[Slot] = field(default_factory=list)
    error: str | None = None
    therapist_names: dict[int, str] = field(default_factory=dict)
    today: date | None = None
    month: bool = False
    until: date | None = None
    chosen_day: bool = False  # the visitor picked the day (bring its times into view)

    @property
    def can_go_back(self) -> bool:
        return self.today is None or self.first > self.today

    @property
    def can_go_forward(self) -> bool:
        return self.until is None or self.last < self.until

    @property
    def prev_first(self) -> date:
        if self.month:
            return (self.first.replace(day=1) - timedelta(days=1)).replace(day=1)
        return self.first - timedelta(days=WINDOW_DAYS)

    @property
    def next_first(self) -> date:
        if self.month:
            return _month_end(self.first) + timedelta(days=1)
        return self.first + timedelta(days=WINDOW_DAYS)

    @property
    def any_openings(self) -> bool:
        return any(n for _, n in self.days)

    @property
    def weeks(self) -> list[list[tuple[date, int] | None]]:
        """The window's days as Monday-first weeks for the month grid (None pads)."""
        cells: list[tuple[date, int] | None] = [None] * self.first.weekday() + list(self.days)
        cells += [None] * (-len(cells) % 7)
        return [cells[i:i + 7] for i in range(0, len(cells), 7)]

    @property
    def time_groups(self) -> list[tuple[str, list[Slot]]]:
        """The selected day's times as morning (before 12:00), afternoon (before 17:00) and
        evening, local time; empty parts left out."""
        groups: dict[str, list[Slot]] = {"Morning": [], "Afternoon": [], "Evening": []}
        for slot in self.times:
            hour = self.local(slot.start).hour
            groups["Morning" if hour < 12 else "Afternoon" if hour < 17 else "Evening"] \
                .append(slot)
        return [(label, slots) for label, slots in groups.items() if slots]

    def keep(self, url: str, month: bool | None = None) -> str:
        """``url`` (a picker link built by the page) with this picker's view (or ``month``)
        and cap kept."""
        month = self.month if month is None else month
        extra = ([("view", "month")] if month else []) + \
            ([("until", self.until.isoformat())] if self.until else [])
        if not extra:
            return url
        return url + ("&" if "?" in url else "?") + urlencode(extra)

    def local(self, moment: datetime) -> datetime:
        return moment.astimezone(self.zone)


def _month_end(day: date) -> date:
    return (day.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)


def _arg_date(name: str) -> date | None:
    return query_date(name)


def build_picker(service_id: int, therapist_id: int | None,
                 exclude_booking_id: int | None = None) -> Picker:
    """Search 14 days from ``?first=`` (default today), or the calendar month of ``?first=``
    with ``?view=month``, never past ``?until=``; pick ``?day=`` (default the first day with
    openings). One slot search per page, whatever the number of days."""
    from clinic_app.services.availability import search_slots

    zone = clinic_zone(db.session)
    today = now().astimezone(zone).date()
    month = request.args.get("view") == "month"
    until = _arg_date("until")
    if until is not None and until < today:
        until = None  # a window that has passed limits nothing
    asked = _arg_date("first") or today
    if month:
        first, last = max(asked.replace(day=1), today), _month_end(asked)
        if last < today:
            first, last = today, _month_end(today)
    else:
        first = max(asked, today)
        last = first + timedelta(days=WINDOW_DAYS - 1)
    if until is not None:
        first = min(first, until)
        last = min(last, until)
    picker = Picker(zone=zone, first=first, last=last, today=today, month=month, until=until)
    try:
        zone, slots = search_slots(db.session, service_id=service_id, date_from=first,
                                   date_to=last, therapist_id=therapist_id, now=now(),
                                   exclude_booking_id=exclude_booking_id)
    except DomainError as exc:
        db.session.rollback()
        picker.error = exc.message
        return picker
    by_day: dict[date, dict[datetime, Slot]] = {}
    for slot in slots:
        # "First available": one entry per start time, the first therapist free then.
        by_day.setdefault(slot.start.astimezone(zone).date(), {}).setdefault(slot.start, slot)
    span = (last - first).days + 1
    picker.days = [(first + timedelta(days=i),
                    len(by_day.get(first + timedelta(days=i), {}))) for i in range(span)]
    wanted = _arg_date("day")
    picker.chosen_day = wanted is not None and first <= wanted <= last
    if not picker.chosen_day:
        wanted = next((d for d, n in picker.days if n), None)
    picker.day = wanted
    picker.times = sorted(by_day.get(wanted, {}).values(), key=lambda s: s.start) \
        if wanted else []
    ids = {s.therapist_id for s in picker.times}
    if ids:
        picker.therapist_names = {t.id: t.name for t in db.session.scalars(
            select(Therapist).where(Therapist.id.in_(ids)))}
    db.session.commit()
    return picker


def parse_start(raw: str | None) -> datetime:
    """An ISO start from a link (aware); 400 page when missing or malformed."""
    try:
        # A "+" typed into a URL by hand arrives as a space.
        value = datetime.fromisoformat((raw or "").strip().replace(" ", "+"))
    except ValueError:
        abort(400)
    if value.tzinfo is None:
        abort(400)
    return value.astimezone(UTC)


def therapist_choice(raw: str | None, default: int | None = None) -> int | None:
    """``?therapist=`` as an id; "any" (first available) gives None."""
    if raw == "any":
        return None
    return query_id(raw) or default


def spread_offers(usual: list[Slot], others: list[Slot], zone: ZoneInfo, *,
                  ideal: date | None, per_day: int = 3, max_days: int = 4,
                  ) -> list[tuple[date, list[Slot]]]:
    """A few times on each of a few days across a follow-up window, for the "your next
    session" card (not the first eight times of one morning).

    Days: the ideal day first, then the days nearest to it (earlier first on a tie), at most
    ``max_days``, shown in date order after the ideal one. Times per day: the usual
    therapist's (``usual``) before anyone else's, and ``per_day`` of them spaced out over the
    day (first, last and between), one per start time."""
    by_day: dict[date, tuple[list[Slot], list[Slot]]] = {}
    for index, slots in enumerate((usual, others)):
        for slot in slots:
            by_day.setdefault(slot.start.astimezone(zone).date(), ([], []))[index].append(slot)
    anchor = ideal or (min(by_day) if by_day else None)
    if anchor is None:
        return []
    days = sorted(by_day, key=lambda d: (abs((d - anchor).days), d))[:max_days]
    ordered = sorted(days, key=lambda d: (d != ideal, d))
    chosen: list[tuple[date, list[Slot]]] = []
    for day in ordered:
        picked: list[Slot] = []
        for group in by_day[day]:
            taken = {s.start for s in picked}
            fresh = sorted({s.start: s for s in sorted(group, key=lambda s: s.start)
                            if s.start not in taken}.values(), key=lambda s: s.start)
            picked += _spaced(fresh, per_day - len(picked))
        chosen.append((day, sorted(picked, key=lambda s: s.start)))
    return chosen


def _spaced(slots: list[Slot], count: int) -> list[Slot]:
    """``count`` of the time-ordered ``slots`` evenly spread from the first to the last."""
    if count <= 0:
        return []
    if len(slots) <= count:
        return slots
    if count == 1:
        return [slots[0]]
    step = (len(slots) - 1) / (count - 1)
    return [slots[round(i * step)] for i in range(count)]


# --- helpers ----------------------------------------------------------------------------------


def _bookable_service(service_id: int) -> Service:
    service = db.session.get(Service, service_id)
    if service is None or not service.active:
        abort(404)
    return service


def _my_booking(booking_id: int) -> Booking:
    """The client's own booking; 404 for anyone else's (nobody learns it exists)."""
    return get_booking_for(db.session, booking_id, current_user)


def is_late(b: Booking) -> bool:
    """Inside the cancellation cutoff now (the booking service's rule, the clinic's hours)."""
    return booking_service.is_late(b, now(), get_settings(db.session).cancel_cutoff_hours)


def _has_intake(user: Any) -> bool:
    return db.session.scalar(select(Intake.id).where(Intake.client_id == user.id)) is not None


def _first_visit(user: Any) -> bool:
    """No session yet that took place or is booked (a first-visit prompt is due)."""
    return db.session.scalar(
        select(Booking.id).where(Booking.client_id == user.id,
                                 Booking.status != BookingStatus.CANCELLED.value).limit(1)
    ) is None


def _early_check(user: Any, start: datetime, confirmed: bool) -> tuple[bool, str | None,
                                                                     str | None]:
    """Ask the care service about booking at ``start``.

    Returns ``(early_confirmed, warning, blocker)``: ``warning`` when the start is before the
    recommended earliest date (the client must tick the confirmation), ``blocker`` when
    booking is paused (after a referral).
    """
    from clinic_app.services.care import check_early_booking

    try:
        early = check_early_booking(db.session, user, start, confirmed, now())
    except DomainError as exc:
        if exc.code == "before_earliest":
            return False, exc.message, None
        return False, None, exc.message
    return early, None, None


# --- booking ----------------------------------------------------------------------------------


@bp.get("/book")
def book() -> str:
    """Step 1: choose a service."""
    services = db.session.scalars(
        select(Service).where(Service.active.is_(True)).order_by(Service.name)).all()
    return render_template("client/book_services.html", services=services)


@bp.get("/book/<int:service_id>")
def book_service(service_id: int) -> str:
    """Step 2: a therapist, or the first available."""
    service = _bookable_service(service_id)
    therapists = [t for t in service.therapists if t.active]
    return render_template("client/book_therapist.html", service=service, therapists=therapists)


@bp.get("/book/<int:service_id>/times")
def book_times(service_id: int) -> Page:
    """Steps 3 and 4: the 14-day view of days with openings, then the times of one day."""
    service = _bookable_service(service_id)
    therapist_id = therapist_choice(request.args.get("therapist"))
    therapist = None
    if therapist_id is not None:
        therapist = db.session.get(Therapist, therapist_id)
        if therapist is None or not therapist.active or therapist not in service.therapists:
            abort(404)
    picker = build_picker(service.id, therapist_id)
    key = therapist_id or "any"
    return render_template(
        "client/book_times.html", service=service, therapist=therapist, picker=picker,
        day_url=lambda first, day: url_for("client.book_times", service_id=service.id,
                                           therapist=key, first=first, day=day),
        time_url=lambda slot: url_for("client.book_confirm", service_id=service.id,
                                      start=slot.start.isoformat(),
                                      therapist=slot.therapist_id, chosen=key),
    )


def _visitor_hold_limit() -> str:
    return current_app.config["HOLD_LIMIT_PER_IP"]


@bp.route("/book/<int:service_id>/confirm", methods=["GET", "POST"])
# A visitor's submit holds a slot without an account: throttled per address like POST /holds.
@limiter.limit(_visitor_hold_limit, methods=["POST"],
               exempt_when=lambda: current_user.is_authenticated)
def book_confirm(service_id: int) -> Page:
    """Step 5: price, cancellation policy, intake prompt, early-booking consent; then book.

    A visitor sees the sign-up fields instead (beside "I have an account — log in"):
    submitting holds the slot and sends the verification email (:func:`_signup_and_hold`).
    """
    from clinic_app.services.booking import book as make_booking

    if not current_user.is_authenticated:
        return _signup_and_hold(service_id)
    if not current_user.has_role("client"):
        abort(403)
    service = _bookable_service(service_id)
    start = parse_start(request.values.get("start"))
    therapist_id = therapist_choice(request.values.get("therapist"))
    chosen = request.values.get("chosen", "any")
    therapist = db.session.get(Therapist, therapist_id) if therapist_id else None
    form = ConfirmBookingForm()
    status = 200
    early_ok = bool(request.method == "POST" and form.early_ok.data)
    early_confirmed, early, blocker = _early_check(current_user, start, early_ok)
    if request.method == "POST" and form.validate_on_submit():
        if blocker:
            form.form_errors.append(blocker)
            status = 422
        elif early:
            form.early_ok.errors = ["Please tick this box to book before the recommended date."]
            status = 422
        else:
            try:
                booking = make_booking(
                    db.session, client=current_user, service_id=service.id, start=start,
                    now=now(), therapist_id=None if chosen == "any" else therapist_id,
                    actor=current_user, early_confirmed=early_confirmed)
            except DomainError as exc:
                db.session.rollback()
                form.form_errors.append(exc.message)
                status = exc.status
            else:
                db.session.commit()
                return redirect(url_for("client.booking_done", booking_id=booking.id))
    elif request.method == "POST":
        status = 422
    if early is None and early_confirmed:
        # Confirmed on a form that was refused for another reason: keep showing the box.
        _, early, _ = _early_check(current_user, start, False)
    local = start.astimezone(clinic_zone(db.session))
    settings = get_settings(db.session)
    return render_template(
        "client/book_confirm.html", service=service, start=start, local=local,
        therapist=therapist, chosen=chosen, form=form, early=early, blocker=blocker,
        settings=settings, terms=booking_terms(
            None, settings, now(), start=start,
            status=initial_status_for(db.session, current_user)),
        first_visit=_first_visit(current_user),
        has_intake=_has_intake(current_user),
        back_url=url_for("client.book_times", service_id=service.id, therapist=chosen,
                         day=local.date()),
    ), status


def _signup_and_hold(service_id: int) -> Page:
    """The confirm step for a visitor: create the account and hold the time in one submit.

    The hold lasts the clinic's ``hold_minutes``; following the verification link while it
    lives logs the new client in and books it (``web.auth.verify``).
    """
    service = _bookable_service(service_id)
    start = parse_start(request.values.get("start"))
    therapist_id = therapist_choice(request.values.get("therapist"))
    chosen = request.values.get("chosen", "any")
    therapist = db.session.get(Therapist, therapist_id) if therapist_id else None
    settings = get_settings(db.session)
    zone = clinic_zone(db.session)
    form = SignupForm()
    status = 200
    if request.method == "POST" and form.validate_on_submit():
        try:
            hold = holds.place_hold(
                db.session, service_id=service.id, start=start,
                therapist_id=None if chosen == "any" else therapist_id,
                purpose=HoldPurpose.SIGNUP.value, minutes=settings.hold_minutes, now=now())
            hold_id, held_until = hold.id, hold.expires_at
            accounts.signup(db.session, name=form.name.data or "", email=form.email.data or "",
                            password=form.password.data or "", phone=form.phone.data or None,
                            consent=bool(form.consent.data), hold_id=hold_id, now=now())
        except DomainError as exc:
            db.session.rollback()
            apply_error(form, exc)
            status = exc.status
        else:
            db.session.commit()
            assert held_until is not None  # every hold has one (CHECK hold_expires)
            return render_template(
                "client/book_held.html", service=service, local=start.astimezone(zone),
                held_until=held_until.astimezone(zone), email=form.email.data)
    elif request.method == "POST":
        status = 422
    local = start.astimezone(zone)
    return render_template(
        "client/book_confirm.html", service=service, start=start, local=local,
        therapist=therapist, chosen=chosen, form=form, early=None, blocker=None,
        settings=settings, first_visit=False, has_intake=True, visitor=True,
        # A new client has no intake yet, so their booking is not "confirm first".
        terms=booking_terms(None, settings, now(), start=start,
                            status=BookingStatus.BOOKED.value),
        login_url=url_for("auth.login", next=request.full_path.rstrip("?")),
        back_url=url_for("client.book_times", service_id=service.id, therapist=chosen,
                         day=local.date()),
    ), status


@bp.get("/appointments/<int:booking_id>/done")
@roles_required("client")
def booking_done(booking_id: int) -> str:
    """Step 6: booked (or waiting for the therapist), with add-to-calendar."""
    b = _my_booking(booking_id)
    return render_template("client/book_done.html", b=b, has_intake=_has_intake(current_user),
                           terms=booking_terms(b, get_settings(db.session), now()))


# --- my appointments --------------------------------------------------------------------------


@bp.get("/appointments")
@roles_required("client")
def appointments() -> str:
    """Upcoming and past bookings, and the recommended window for the next session."""
    rows = db.session.scalars(
        select(Booking).where(Booking.client_id == current_user.id)
        .order_by(Booking.start_at.desc())).all()
    moment = now()
    upcoming = sorted([b for b in rows if b.end_at >= moment and b.status in
                       (BookingStatus.BOOKED.value, BookingStatus.PENDING.value)],
                      key=lambda b: b.start_at)
    past = [b for b in rows if b not in upcoming]
    from clinic_app.services.care import next_session_options

    try:
        options = next_session_options(db.session, current_user, moment)
    except DomainError:
        # E.g. the last session's service is no longer offered: show the page without slots.
        db.session.rollback()
        options = None
    db.session.commit()
    zone = clinic_zone(db.session)
    rec = options.recommendation if options else None
    offers = spread_offers(options.same_therapist, options.other_therapists, zone,
                           ideal=rec.ideal if rec else None) if options else []
    return render_template("client/appointments.html", upcoming=upcoming, past=past,
                           options=options, offers=offers,
                           has_intake=_has_intake(current_user), zone=zone)


@bp.get("/appointments/<int:booking_id>")
@roles_required("client")
def appointment(booking_id: int) -> str:
    """One booking: details, add to calendar, cancel (with the late warning), reschedule."""
    b = _my_booking(booking_id)
    return render_template("client/appointment.html", b=b, late=is_late(b),
                           form=CancelForm(), settings=get_settings(db.session),
                           can_report=report_window_open(b, now()))


@bp.route("/appointments/<int:booking_id>/report", methods=["GET", "POST"])
@roles_required("client")
def report_problem(booking_id: int) -> Page:
    """Report a problem after a session (the red-flag checklist), within 14 days of it."""
    b = _my_booking(booking_id)
    return report_page(b, back_url=url_for("client.appointment", booking_id=b.id))


def report_page(b: Booking, *, back_url: str | None) -> Page:
    """The red-flag form about ``b`` and its effect: the logged-in page and the signed link
    from a post-session email (``web.client_links``) are this one page.

    Acts like a red-flag check-in (the therapist is alerted, booking is paused) and ends
    on the same advice page. Outside the care service's window (``report_window_open``)
    the page says so (409 for a POST, the service's answer).
    """
    form = ReportProblemForm()
    status = 200
    moment = now()
    if form.validate_on_submit():
        with saving(form) as saved:
            report = store_problem_report(db.session, b, red_flags=form.red_flags.data,
                                          now=moment)
        if saved:
            return render_template("checkin/done.html", booking=b, already=False,
                                   red_flag=True, labels=red_flag_labels(report.red_flags),
                                   seek_care=SEEK_CARE_TEXT, rec=None)
        assert saved.error is not None
        status = saved.error.status
    elif form.is_submitted():
        status = 422
    return render_template("client/report.html", b=b, form=form,
                           window_open=report_window_open(b, moment),
                           not_started=moment < b.start_at, back_url=back_url,
                           clinic_phone=get_settings(db.session).phone), status


@bp.post("/appointments/<int:booking_id>/cancel")
@roles_required("client")
def cancel(booking_id: int) -> Page:
    """Cancel; inside the cutoff the page has warned that it counts as a late cancellation."""
    from clinic_app.services.booking import cancel as cancel_booking

    b = _my_booking(booking_id)
    form = CancelForm()
    if not form.validate_on_submit():
        return render_template("client/appointment.html", b=b, late=is_late(b), form=form,
                               settings=get_settings(db.session)), 422
    try:
        cancel_booking(db.session, b, actor=current_user, now=now(),
                       reason=(form.reason.data or "").strip())
    except DomainError as exc:
        db.session.rollback()
        form.form_errors.append(exc.message)
        b = _my_booking(booking_id)
        return render_template("client/appointment.html", b=b, late=is_late(b), form=form,
                               settings=get_settings(db.session)), exc.status
    db.session.commit()
    flash("Your appointment is cancelled. We have emailed you a confirmation.", "success")
    return redirect(url_for("client.appointments"))


@bp.get("/appointments/<int:booking_id>/reschedule")
@roles_required("client")
def reschedule(booking_id: int) -> Page:
    """Pick a new time with the same date/time picker."""
    b = _my_booking(booking_id)
    if b.status not in (BookingStatus.BOOKED.value, BookingStatus.PENDING.value):
        abort(404)
    return reschedule_page(
        b, keep_url=url_for("client.appointment", booking_id=b.id),
        page_url=lambda **query: url_for("client.reschedule", booking_id=b.id, **query),
        confirm_url=lambda **query: url_for("client.reschedule_confirm", booking_id=b.id,
                                            **query))


@bp.route("/appointments/<int:booking_id>/reschedule/confirm", methods=["GET", "POST"])
@roles_required("client")
def reschedule_confirm(booking_id: int) -> Page:
    """Confirm the new time (GET shows it, POST moves the booking)."""
    b = _my_booking(booking_id)

    def moved(b: Booking) -> Response:
        flash("Your appointment has moved. We have emailed you the new time.", "success")
        return redirect(url_for("client.appointment", booking_id=b.id))

    return reschedule_confirm_page(
        b, actor=current_user, moved=moved,
        back_url=url_for("client.reschedule", booking_id=b.id))


def reschedule_page(b: Booking, *, page_url: Callable[..., str],
                    confirm_url: Callable[..., str], keep_url: str) -> str:
    """The picker for moving ``b``: its service, its therapist unless ``?therapist=`` says
    otherwise. The logged-in page and the email's signed link (``web.client_links``) are this
    one page; they differ only in their URLs (``page_url(**query)`` for this page,
    ``confirm_url(**query)`` for the confirm step, ``keep_url`` to leave it as it is)."""
    therapist_id = therapist_choice(request.args.get("therapist"), default=b.therapist_id)
    picker = build_picker(b.service_id, therapist_id, exclude_booking_id=b.id)
    key = therapist_id or "any"
    return render_template(
        "client/reschedule.html", b=b, picker=picker, therapist_id=therapist_id,
        therapists=[t for t in b.service.therapists if t.active], keep_url=keep_url,
        late=is_late(b), settings=get_settings(db.session),
        day_url=lambda first, day: page_url(therapist=key, first=first, day=day),
        time_url=lambda slot: confirm_url(start=slot.start.isoformat(),
                                          therapist=slot.therapist_id),
    )


def reschedule_confirm_page(b: Booking, *, actor: Any, moved: Callable[[Booking], Response],
                            back_url: str) -> Page:
    """Confirm the new time of ``b`` (GET shows it, POST moves it through
    ``services.booking.reschedule`` as ``actor``, so every rule applies: notice, cutoff,
    the slot still free). ``moved(b)`` answers a successful move; a refusal shows the
    service's message on the page with its status (409 for a time taken meanwhile)."""
    start = parse_start(request.values.get("start"))
    therapist_id = therapist_choice(request.values.get("therapist"))
    form = ConfirmForm()
    status = 200
    if request.method == "POST" and form.validate_on_submit():
        try:
            booking_service.reschedule(db.session, b, new_start=start, actor=actor,
                                       now=now(), therapist_id=therapist_id)
        except DomainError as exc:
            db.session.rollback()
            form.form_errors.append(exc.message)
            status = exc.status
        else:
            db.session.commit()
            return moved(b)
    new_therapist = db.session.get(Therapist, therapist_id) if therapist_id else b.therapist
    return render_template("client/reschedule_confirm.html", b=b, start=start, form=form,
                           new_therapist=new_therapist, therapist_id=therapist_id,
                           back_url=back_url), status


# --- intake -----------------------------------------------------------------------------------


@bp.route("/intake", methods=["GET", "POST"])
@roles_required("client")
def intake() -> Page:
    """The health intake: fill before the first visit, update any time."""
    from clinic_app.services import care
    from clinic_app.web.forms_booking import intake_form_class

    existing = db.session.scalar(select(Intake).where(Intake.client_id == current_user.id))
    form_cls = intake_form_class(care.INTAKE_QUESTIONS)
    if request.method == "GET" and existing is not None:
        form = form_cls(data={k: ("yes" if v is True else "no" if v is False else v)
                              for k, v in (existing.answers or {}).items()})
    else:
        form = form_cls()
    status = 200
    if form.validate_on_submit():
        answers = {key: getattr(form, key).data for key in form.question_keys}
        with saving(form) as saved:
            care.save_intake(db.session, current_user, answers, now=now())
        if saved:
            flash("Thank you: your health form is saved. Your therapist will read it before "
                  "your session.", "success")
            return redirect(safe_next(request.args.get("next"))
                            or url_for("client.appointments"))
        status = 422
    elif request.method == "POST":
        status = 422
    return render_template("client/intake.html", form=form, existing=existing), status
