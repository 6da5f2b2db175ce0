"""Sign-up, verification, log-in/out, one-time sign-in links, password reset and therapist
invitations."""

from __future__ import annotations

from flask import Blueprint
from flask import current_app
from flask import flash
from flask import redirect
from flask import render_template
from flask import request
from flask import url_for
from flask_login import current_user
from werkzeug.wrappers import Response

from clinic_app.auth import log_in
from clinic_app.auth import log_out
from clinic_app.errors import DomainError
from clinic_app.errors import NotAuthenticated
from clinic_app.extensions import db
from clinic_app.extensions import limiter
from clinic_app.models.accounts import User
from clinic_app.services import accounts
from clinic_app.services.settings import clinic_zone
from clinic_app.throttle import LoginThrottled
from clinic_app.throttle import authenticate_within_budget
from clinic_app.web.forms import ConfirmForm
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


# At most this many sign-in links per address (on top of the per-IP limit), so the
# form cannot be used to flood someone's inbox.
SIGN_IN_LINKS_PER_ADDRESS = "5 per hour"


def _ip_limit() -> str:
    return current_app.config["LOGIN_LIMIT_PER_IP"]


def _address_key() -> str:
    return "sign-in-link:" + (request.form.get("email") or "").strip().lower()[:254]


def _next() -> str | None:
    """``?next=`` when it is a same-site path (checked on every page that carries it)."""
    return safe_next(request.args.get("next"))


def _finish_log_in(user: User, *, remember: bool = False, to: str | None = None,
                   message: str | None = None, category: str = "success") -> Response:
    """Every way in ends here (password, emailed sign-in link, verification that books a
    held slot, accepted invitation): this device's log-in session is the user's now (any
    other user's on it is closed first; ``log_in`` opens the server-side row and rotates
    the CSRF secret), then on to ``to``, else the checked ``?next=``, else their home."""
    log_out()
    log_in(user, remember=remember)
    if message:
        flash(message, category)
    return redirect(to or _next() or home_for(user))


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
    """Create a client account. A ``?next=`` (from the log-in page) rides along in the
    verification email's link and then through the first log-in."""
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
                next_path=_next(),
            )
        except DomainError as exc:
            db.session.rollback()
            apply_error(form, exc)
        else:
            db.session.commit()
            return render_template("auth/check_email.html", message=SENT_MESSAGE,
                                   heading="Confirm your email", next=_next())
    return render_template("auth/signup.html", form=form, next=_next()), \
        (422 if form.errors else 200)


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
        return _finish_log_in(
            user, to=url_for("client.booking_done", booking_id=booking.id),
            message="Your email is confirmed and your appointment is booked.")
    if lost is not None:
        service_id, start = lost
        return _finish_log_in(
            user, to=url_for("client.book_times", service_id=service_id,
                             day=start.astimezone(clinic_zone(db.session)).date()),
            message="Your email is confirmed, but the time held for you has expired. "
                    "Here are the nearest free times.", category="warning")
    flash("Your email is confirmed. You can log in now.", "success")
    return redirect(url_for("auth.login", next=_next()))


@bp.route("/verify/resend", methods=["GET", "POST"])
@limiter.limit(_ip_limit, methods=["POST"])
def resend_verification() -> str | Response:
    form = EmailOnlyForm()
    if form.validate_on_submit():
        accounts.resend_verification(db.session, form.email.data or "", now(),
                                     next_path=_next())
        db.session.commit()
        return render_template("auth/check_email.html", message=SENT_MESSAGE,
                               heading="Check your email", next=_next())
    return render_template("auth/email_only.html", form=form, heading="Send the link again",
                           button="Send link")


@bp.route("/login", methods=["GET", "POST"])
def login() -> str | Response | tuple[str, int]:
    """Log in. Failed attempts spend the account's and the address's budgets
    (clinic_app/throttle.py); a spent budget offers an emailed sign-in link."""
    if current_user.is_authenticated:
        return redirect(home_for(current_user))
    form = LoginForm()
    status = 200
    offer_link = False
    if form.validate_on_submit():
        try:
            user = authenticate_within_budget(db.session, form.email.data or "",
                                              form.password.data or "", now())
        except LoginThrottled as exc:
            db.session.rollback()
            form.form_errors.append(exc.message)
            offer_link = True
            status = 429
        except NotAuthenticated as exc:
            db.session.rollback()
            form.form_errors.append(exc.message)
            status = 401
        else:
            return _finish_log_in(user, remember=bool(form.remember.data))
    elif request.method == "POST":
        status = 422
    return render_template("auth/login.html", form=form, offer_link=offer_link,
                           next=_next()), status


@bp.route("/login/link", methods=["GET", "POST"])
@limiter.limit(_ip_limit, methods=["POST"])
@limiter.limit(SIGN_IN_LINKS_PER_ADDRESS, key_func=_address_key, methods=["POST"])
def request_sign_in_link() -> str | Response:
    """Ask for a one-time sign-in link (same answer for every address)."""
    form = EmailOnlyForm()
    if form.validate_on_submit():
        accounts.request_sign_in_link(db.session, form.email.data or "", now())
        db.session.commit()
        return render_template("auth/check_email.html", message=SENT_MESSAGE,
                               heading="Check your email")
    return render_template("auth/email_only.html", form=form, heading="Log in by email",
                           button="Email me a sign-in link",
                           intro="We send you a link that logs you in once, within 15 minutes, "
                                 "without your password.")


@bp.route("/login/link/<token>", methods=["GET", "POST"])
def sign_in_link(token: str) -> str | Response | tuple[str, int]:
    """Open the emailed link: a button logs in (a GET changes nothing, so mail
    scanners that follow links do not use it up)."""
    form = ConfirmForm()
    if request.method == "POST" and form.validate_on_submit():
        try:
            user = accounts.sign_in_with_link(db.session, token, now())
        except DomainError as exc:
            db.session.rollback()
            return render_template("auth/token_problem.html", message=exc.message), 400
        return _finish_log_in(user, message="You are logged in.")
    if accounts.peek_token(db.session, token, "sign_in", now()) is None:
        return render_template("auth/token_problem.html",
                               message="This sign-in link is not valid any more. "
                                       "Ask for a new one."), 400
    return render_template("auth/sign_in_link.html", form=form)


@bp.post("/logout")
def logout() -> Response:
    log_out()
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
            log_out()
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
            return _finish_log_in(user, to=home_for(user),
                                  message="Welcome! Your password is set.")
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
    log_out()
    flash("Your new email address is confirmed. Please log in with it.", "success")
    return redirect(url_for("auth.login"))
