"""Pages: clients at the desk: the directory with search, a client's page, a new client.

Admins see every client and create them; therapists search their own clients (the ones they
have, or had, a booking with). A client page shows contact, upcoming and past bookings, intake
flags and the current recommendation (an audited read of health data).
"""

from __future__ import annotations

from flask import Blueprint
from flask import abort
from flask import flash
from flask import redirect
from flask import render_template
from flask import request
from flask import url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response
from wtforms import BooleanField
from wtforms import StringField
from wtforms.validators import DataRequired
from wtforms.validators import Length
from wtforms.validators import Optional

from clinic_app.errors import DomainError
from clinic_app.extensions import db
from clinic_app.services import clients as clients_svc
from clinic_app.web.staff_calendar import require_staff
from clinic_app.web.util import apply_error
from clinic_app.web.util import now

bp = Blueprint("clients", __name__)


bp.before_request(require_staff)


class NewClientForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired(), Length(max=120)])
    phone = StringField("Phone", validators=[Optional(), Length(max=40)])
    email = StringField("Email", validators=[Optional(), Length(max=254)])
    invite = BooleanField("Email them a link to set a password")


def _directory(form: NewClientForm, status: int = 200) -> tuple[str, int]:
    query = request.args.get("q", "")
    found = clients_svc.search_clients(db.session, current_user, query)
    return render_template("staff/clients.html", found=found, query=query, form=form,
                           is_admin=current_user.role == "admin"), status


@bp.get("/staff/clients")
def index() -> tuple[str, int]:
    """The directory: search by name, email or phone; the admin adds a client below."""
    return _directory(NewClientForm(formdata=None))


@bp.post("/staff/clients")
def create() -> tuple[str, int] | Response:
    """Admin: create a client with a name and an email and/or phone (consent at the desk)."""
    if current_user.role != "admin":
        abort(403)
    form = NewClientForm()
    if form.validate_on_submit():
        try:
            client = clients_svc.create_client(
                db.session, actor=current_user, name=form.name.data or "",
                email=form.email.data, phone=form.phone.data, now=now(),
                invite=bool(form.invite.data))
        except DomainError as exc:
            db.session.rollback()
            apply_error(form, exc)
        else:
            db.session.commit()
            flash(f"{client.name} added" + (" and invited by email." if form.invite.data
                                             else "."), "success")
            return redirect(url_for("clients.show", client_id=client.id))
    return _directory(form, 422)


@bp.get("/staff/clients/<int:client_id>")
def show(client_id: int) -> str:
    """Contact, upcoming and past bookings, flags, recommendation; book from the calendar."""
    try:
        page = clients_svc.client_page(db.session, client_id, current_user, now())
    except DomainError:
        db.session.rollback()
        abort(404)
    db.session.commit()  # the audit rows of the health data shown
    return render_template("staff/client.html", p=page, is_admin=current_user.role == "admin")
