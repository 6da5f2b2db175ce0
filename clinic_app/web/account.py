"""The logged-in user's own account: password, email, preferences, sessions, and for
clients their data export and account closure."""

from __future__ import annotations

import json

from flask import Blueprint
from flask import abort
from flask import current_app
from flask import flash
from flask import redirect
from flask import render_template
from flask import request
from flask import url_for
from flask_login import current_user
from flask_login import login_required
from flask_login.config import COOKIE_NAME
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response
from wtforms import PasswordField
from wtforms import StringField
from wtforms import TelField
from wtforms.validators import DataRequired
from wtforms.validators import Length
from wtforms.validators import Optional

from clinic_app.auth import log_in
from clinic_app.auth import log_out
from clinic_app.extensions import db
from clinic_app.services import accounts
from clinic_app.services import privacy
from clinic_app.services import profile
from clinic_app.web.forms import ChangeEmailForm
from clinic_app.web.forms import ChangePasswordForm
from clinic_app.web.forms import ConfirmForm
from clinic_app.web.forms import PreferencesForm
from clinic_app.web.util import now
from clinic_app.web.util import saving

bp = Blueprint("account", __name__, url_prefix="/account")


class CloseAccountForm(FlaskForm):
    """Closing an account needs the password again."""

    password = PasswordField("Your password", validators=[DataRequired()])


class ContactDetailsForm(FlaskForm):
    """The name and phone number the clinic uses (no password needed to change them)."""

    name = StringField("Full name", validators=[DataRequired("Enter your name."),
                                                Length(max=profile.NAME_MAX)])
    phone = TelField("Phone (optional)", validators=[Optional(), Length(max=profile.PHONE_MAX)])


def _page(status: int = 200, **forms: object) -> tuple[str, int]:
    context = {
        "details_form": ContactDetailsForm(prefix="cd", data={
            "name": current_user.name, "phone": current_user.phone or ""}),
        "password_form": ChangePasswordForm(prefix="pw"),
        "email_form": ChangeEmailForm(prefix="em"),
        "prefs_form": PreferencesForm(prefix="pr", wants_prompts=current_user.wants_prompts),
        "confirm_form": ConfirmForm(),
        "close_form": CloseAccountForm(prefix="close"),
    }
    context.update(forms)
    return render_template("account/overview.html", **context), status


@bp.get("/")
@login_required
def overview() -> tuple[str, int]:
    return _page()


@bp.post("/details")
@login_required
def change_details() -> Response | tuple[str, int]:
    """Change the name and phone number (the email has its own confirmation flow)."""
    form = ContactDetailsForm(prefix="cd")
    if form.validate_on_submit():
        with saving(form) as saved:
            profile.update_contact_details(db.session, current_user, name=form.name.data or "",
                                           phone=form.phone.data)
        if saved:
            flash("Your name and phone number are saved.", "success")
            return redirect(url_for("account.overview"))
    return _page(422, details_form=form)


@bp.post("/password")
@login_required
def change_password() -> Response | tuple[str, int]:
    form = ChangePasswordForm(prefix="pw")
    if form.validate_on_submit():
        with saving(form) as saved:
            accounts.change_password(db.session, current_user, form.current_password.data or "",
                                     form.password.data or "", now())
        if saved:
            # Every other session is now invalid; this device gets a new one.
            remember_cookie = current_app.config.get("REMEMBER_COOKIE_NAME", COOKIE_NAME)
            log_in(current_user._get_current_object(),
                   remember=remember_cookie in request.cookies)
            flash("Your password is changed. Other devices have been logged out.", "success")
            return redirect(url_for("account.overview"))
    return _page(422, password_form=form)


@bp.post("/email")
@login_required
def change_email() -> Response | tuple[str, int]:
    form = ChangeEmailForm(prefix="em")
    if form.validate_on_submit():
        with saving(form) as saved:
            accounts.request_email_change(db.session, current_user, form.new_email.data or "",
                                          form.password.data or "", now())
        if saved:
            flash("We sent a confirmation link to the new address. "
                  "Your email changes when you open it.", "info")
            return redirect(url_for("account.overview"))
    return _page(422, email_form=form)


@bp.post("/preferences")
@login_required
def preferences() -> Response:
    form = PreferencesForm(prefix="pr")
    if form.validate_on_submit():
        current_user.wants_prompts = bool(form.wants_prompts.data)
        db.session.commit()
        flash("Your preferences are saved.", "success")
    return redirect(url_for("account.overview"))


@bp.post("/logout-everywhere")
@login_required
def logout_everywhere() -> Response:
    form = ConfirmForm()
    if form.validate_on_submit():
        accounts.revoke_sessions(current_user)
        db.session.commit()
        log_out()
        flash("You are logged out on every device.", "info")
        return redirect(url_for("auth.login"))
    return redirect(request.referrer or url_for("account.overview"))


@bp.get("/export")
@login_required
def export() -> Response:
    """Download everything the clinic holds about the logged-in client as my-data.json."""
    data = privacy.export_client_data(db.session, current_user, now())
    db.session.commit()
    body = json.dumps(data, ensure_ascii=False, indent=2, sort_keys=False)
    return Response(body, mimetype="application/json", headers={
        "Content-Disposition": 'attachment; filename="my-data.json"',
        # Health data: never kept by a shared cache or the browser's.
        "Cache-Control": "no-store",
    })


@bp.post("/close")
@login_required
def close() -> Response | tuple[str, int]:
    """Close the client's account (password re-checked), log out and confirm."""
    if not current_user.has_role("client"):
        abort(403)
    form = CloseAccountForm(prefix="close")
    if form.validate_on_submit():
        with saving(form) as saved:
            cancelled = privacy.close_account(db.session, current_user,
                                              form.password.data or "", now())
        if saved:
            log_out()
            return render_template("account/closed.html", cancelled=len(cancelled)), 200
    return _page(422, close_form=form)
