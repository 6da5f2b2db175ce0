"""Pages reached from a signed link in a client's email, without logging in (issue 12.3, 12.4).

``/b/<token>`` shows the booking (a ``view`` link) and cancels it (a ``cancel`` link);
``/b/<token>/reschedule`` is the picker of the logged-in reschedule page and
``/b/<token>/report`` its red-flag form (``web.client``'s shared page functions: only the
URLs differ). Every page checks its own purpose (``services.booking_links``): a token of one
purpose is dead on another's page. A dead link is a 410 page, never a 500.
"""

from __future__ import annotations

from flask import Blueprint
from flask import abort
from flask import current_app
from flask import flash
from flask import redirect
from flask import render_template
from flask import request
from flask import url_for
from werkzeug.wrappers import Response

from clinic_app.errors import DomainError
from clinic_app.extensions import db
from clinic_app.models.booking import Booking
from clinic_app.services import booking as booking_service
from clinic_app.services import booking_links
from clinic_app.services.settings import get_settings
from clinic_app.web.client import Page
from clinic_app.web.client import is_late
from clinic_app.web.client import report_page
from clinic_app.web.client import reschedule_confirm_page
from clinic_app.web.client import reschedule_page
from clinic_app.web.forms_booking import CancelForm
from clinic_app.web.util import now

bp = Blueprint("links", __name__)


def _secret() -> str:
    return current_app.config["SECRET_KEY"]


def _token(b: Booking, purpose: str) -> str:
    return booking_links.make_token(_secret(), b, purpose)


def _dead(exc: booking_links.LinkDead) -> tuple[str, int]:
    return render_template("client/link_dead.html", message=exc.message), 410


def _linked_booking(token: str) -> tuple[Booking, str]:
    """The booking a view or cancel link names, and which of the two it is."""
    try:
        return booking_links.booking_for_token(db.session, _secret(), token, "view",
                                               now()), "view"
    except booking_links.LinkDead:
        return (booking_links.booking_for_token(db.session, _secret(), token, "cancel", now()),
                "cancel")


@bp.route("/b/<token>", methods=["GET", "POST"])
def booking(token: str) -> Page:
    """A booking email's link: see the appointment and cancel it without logging in."""
    try:
        b, purpose = _linked_booking(token)
    except booking_links.LinkDead as exc:
        return _dead(exc)
    form = CancelForm()
    status = 200
    if request.method == "POST":
        if purpose != "cancel":
            abort(405)
        if form.validate_on_submit():
            try:
                booking_service.cancel(db.session, b, actor=b.client, now=now(),
                                       reason=(form.reason.data or "").strip())
            except DomainError as exc:
                db.session.rollback()
                form.form_errors.append(exc.message)
                status = exc.status
            else:
                db.session.commit()
                return render_template("client/link_cancelled.html", b=b)
        else:
            status = 422
    return render_template(
        "client/link_booking.html", b=b, form=form, late=is_late(b),
        settings=get_settings(db.session), purpose=purpose,
        cancel_url=url_for("links.booking", token=_token(b, "cancel")),
        reschedule_url=url_for("links.reschedule", token=_token(b, "reschedule")),
    ), status


@bp.get("/b/<token>/reschedule")
def reschedule(token: str) -> Page:
    """A booking email's "reschedule" link: the picker for that booking's service and
    therapist, as on the logged-in page."""
    try:
        b = booking_links.booking_for_token(db.session, _secret(), token, "reschedule", now())
    except booking_links.LinkDead as exc:
        return _dead(exc)
    return reschedule_page(
        b, keep_url=url_for("links.booking", token=_token(b, "view")),
        page_url=lambda **query: url_for("links.reschedule", token=token, **query),
        confirm_url=lambda **query: url_for("links.reschedule_confirm", token=token, **query))


@bp.route("/b/<token>/reschedule/confirm", methods=["GET", "POST"])
def reschedule_confirm(token: str) -> Page:
    """Confirm the new time; the client is the actor, so the client's rules apply. The move
    raises the booking's sequence: this link dies, and the page continues on a new view
    link (the change email carries new ones too)."""
    try:
        b = booking_links.booking_for_token(db.session, _secret(), token, "reschedule", now())
    except booking_links.LinkDead as exc:
        return _dead(exc)

    def moved(b: Booking) -> Response:
        flash("Your appointment has moved. We have emailed you the new time.", "success")
        return redirect(url_for("links.booking", token=_token(b, "view")))

    return reschedule_confirm_page(b, actor=b.client, moved=moved,
                                   back_url=url_for("links.reschedule", token=token))


@bp.route("/b/<token>/report", methods=["GET", "POST"])
def report(token: str) -> Page:
    """A post-session email's "report a problem" link: the logged-in page's red-flag form,
    with the same effect, inside the same 14-day window (the care service's)."""
    try:
        b = booking_links.booking_for_report_token(db.session, _secret(), token)
    except booking_links.LinkDead as exc:
        return _dead(exc)
    return report_page(b, back_url=None)
