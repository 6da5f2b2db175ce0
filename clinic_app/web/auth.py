"""Sign-up, verification, log-in/out, password reset and therapist invitations."""

from __future__ import annotations

from flask import Blueprint
from flask import current_app
from flask import flash
from flask import redirect
from flask import render_template
from flask import request
from flask import url_for
from flask_login import current_user
from flask_login import login_user
from flask_login import logout_user
from werkzeug.wrappers import Response

from clinic_app.errors import DomainError
from clinic_app.errors import NotAuthenticated
from clinic_app.extensions import db
from clinic_app.extensions import limiter
from clinic_app.models.accounts import User
from clinic_app.services import accounts
from clinic_app.services.settings import clinic_zone
from clinic_app.web.forms import EmailOnlyForm
from clinic_app.web.forms import LoginForm
from clinic_app.web.forms import NewPasswordForm
from clinic_app.web.forms import SignupForm
from clinic_app.web.util import apply_error
from clinic_app.web.util import now
from clinic_app.web.util import safe_next

bp = Blueprint("auth", __name__)

SENT_MESSAGE = (
    "If that address can receive mail from us, a message is on its way. "
    "Check your inbox (and spam folder)."
)


def _account_key() -> str:
    return "login:" + (request.form.get("email") or "").strip().lower()


def _failed(response: Response) -> bool:
    # Only failed attempts count towards the throttle.
    return response.status_code != 302


def _ip_limit() -> str:
    return current_app.config["LOGIN_LIMIT_PER_IP"]


def _account_limit() -> str:
    return current_app.config["LOGIN_LIMIT_PER_ACCOUNT"]


def home_for(user: User) -> str:
    """Where a user lands after logging in: their role's main page."""
    if user.role == "admin":
        return url_for("admin.dashboard")
    if user.role == "therapist":
        return url_for("therapist.day")
    return url_for("client.appointments")


@bp.route("/signup", methods=["GET", "POST"])
@limiter.limit(_ip_limit, methods=["POST"])
def signup() -> str | Response:
    form = SignupForm()
    if form.validate_on_submit():
        try:
            accounts.signup(
                db.session,
                name=form.name.data or "",
                email=form.email.data or "",
                password=form.password.data or "",
                phone=form.phone.data or None,
                consent=bool(form.consent.data),
                now=now(),
            )
        except DomainError as exc:
            db.session.rollback()
            apply_error(form, exc)
        else:
            db.session.commit()
            return render_template("auth/check_email.html", message=SENT_MESSAGE,
                                   heading="Confirm your email")
    return render_template("auth/signup.html", form=form), (422 if form.errors else 200)


@bp.get("/verify/<token>")
def verify(token: str) -> str | Response:
    try:
        user = accounts.verify_email(db.session, token, now())
        booking, lost = accounts.book_held_slot(db.session, user, now())
    except DomainError as exc:
        db.session.rollback()
        return render_template("auth/token_problem.html", message=exc.message,
                               form=EmailOnlyForm()), 400
    db.session.commit()
    if booking is not None:
        # The link proved the address and the hold was theirs: log in and show the booking.
        login_user(user)
        flash("Your email is confirmed and your appointment is booked.", "success")
        return redirect(url_for("client.booking_done", booking_id=booking.id))
    if lost is not None:
        login_user(user)
        service_id, start = lost
        flash("Your email is confirmed, but the time held for you has expired. "
              "Here are the nearest free times.", "warning")
        return redirect(url_for("client.book_times", service_id=service_id,
                                day=start.astimezone(clinic_zone(db.session)).date()))
    flash("Your email is confirmed. You can log in now.", "success")
    return redirect(url_for("auth.login"))


@bp.route("/verify/resend", methods=["GET", "POST"])
@limiter.limit(_ip_limit, methods=["POST"])
def resend_verification() -> str | Response:
    form = EmailOnlyForm()
    if form.validate_on_submit():
        accounts.resend_verification(db.session, form.email.data or "", now())
        db.session.commit()
        return render_template("auth/check_email.html", message=SENT_MESSAGE,
                               heading="Check your email")
    return render_template("auth/email_only.html", form=form, heading="Send the link again",
                           button="Send link")


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(_ip_limit, methods=["POST"], deduct_when=_failed)
@limiter.limit(_account_limit, key_func=_account_key, methods=["POST"], deduct_when=_failed)
def login() -> str | Response | tuple[str, int]:
    if current_user.is_authenticated:
        return redirect(home_for(current_user))
    form = LoginForm()
    status = 200
    if form.validate_on_submit():
        try:
            user = accounts.authenticate(db.session, form.email.data or "",
                                         form.password.data or "", now())
        except NotAuthenticated as exc:
            db.session.rollback()
            form.form_errors.append(exc.message)
            status = 401
        else:
            db.session.commit()
            login_user(user, remember=bool(form.remember.data))
            return redirect(safe_next(request.args.get("next")) or home_for(user))
    elif request.method == "POST":
        status = 422
    return render_template("auth/login.html", form=form), status


@bp.post("/logout")
def logout() -> Response:
    logout_user()
    flash("You are logged out.", "info")
    return redirect(url_for("main.home"))


@bp.route("/password/forgot", methods=["GET", "POST"])
@limiter.limit(_ip_limit, methods=["POST"])
def forgot_password() -> str | Response:
    form = EmailOnlyForm()
    if form.validate_on_submit():
        accounts.request_password_reset(db.session, form.email.data or "", now())
        db.session.commit()
        return render_template("auth/check_email.html", message=SENT_MESSAGE,
                               heading="Check your email")
    return render_template("auth/email_only.html", form=form, heading="Forgot your password?",
                           button="Email me a reset link")


@bp.route("/password/reset/<token>", methods=["GET", "POST"])
def reset_password(token: str) -> str | Response | tuple[str, int]:
    form = NewPasswordForm()
    if request.method == "GET" and accounts.peek_token(db.session, token, "reset", now()) is None:
        return render_template("auth/token_problem.html", form=EmailOnlyForm(),
                               message="This reset link is not valid any more. "
                                       "Ask for a new one."), 400
    if form.validate_on_submit():
        try:
            accounts.reset_password(db.session, token, form.password.data or "", now())
        except DomainError as exc:
            db.session.rollback()
            apply_error(form, exc)
        else:
            db.session.commit()
            logout_user()
            flash("Your password is changed. Please log in with the new one.", "success")
            return redirect(url_for("auth.login"))
    return render_template("auth/new_password.html", form=form, heading="Choose a new password"), \
        (422 if form.errors or form.form_errors else 200)


@bp.route("/invite/<token>", methods=["GET", "POST"])
def accept_invite(token: str) -> str | Response | tuple[str, int]:
    form = NewPasswordForm()
    if request.method == "GET" and accounts.peek_token(db.session, token, "invite", now()) is None:
        return render_template("auth/token_problem.html", form=None,
                               message="This invitation is not valid any more. "
                                       "Ask the clinic to send a new one."), 400
    if form.validate_on_submit():
        try:
            user = accounts.accept_invite(db.session, token, form.password.data or "", now())
        except DomainError as exc:
            db.session.rollback()
            apply_error(form, exc)
        else:
            db.session.commit()
            login_user(user)
            flash("Welcome! Your password is set.", "success")
            return redirect(home_for(user))
    return render_template("auth/new_password.html", form=form,
                           heading="Set your password"), \
        (422 if form.errors or form.form_errors else 200)


@bp.get("/email/confirm/<token>")
def confirm_email_change(token: str) -> Response | tuple[str, int]:
    try:
        accounts.confirm_email_change(db.session, token, now())
    except DomainError as exc:
        db.session.rollback()
        return render_template("auth/token_problem.html", message=exc.message, form=None), 400
    db.session.commit()
    logout_user()
    flash("Your new email address is confirmed. Please log in with it.", "success")
    return redirect(url_for("auth.login"))
