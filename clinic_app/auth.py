"""Who is asking: log-in and log-out, the Flask-Login user loader, role guards for views.

A log-in opens a server-side session (``login_sessions``): the Flask session and the
remember cookie carry ``<user id>:<secret>``, and the loader accepts only a live row.
So log-out, "log out everywhere", a password change and deactivation end the session
on the server, also for a copied cookie.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any
from typing import TypeVar

from flask import Flask
from flask import abort
from flask import current_app
from flask import g
from flask import session
from flask.sessions import SecureCookieSessionInterface
from flask_login import current_user
from flask_login import login_required
from flask_login import login_user
from flask_login import logout_user
from itsdangerous import URLSafeTimedSerializer

from clinic_app.clock import utcnow
from clinic_app.extensions import db
from clinic_app.models.accounts import User
from clinic_app.services import accounts

F = TypeVar("F", bound=Callable[..., Any])


class SessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie session, with its signing serializer built once per set of keys.

    Flask builds the serializer on every request, cookie or not (about 20 µs of CPU, an API
    call included). It holds no state between uses, so one per ``SECRET_KEY`` and
    ``SECRET_KEY_FALLBACKS`` is the same signer; a changed key or fallback list builds a
    new one, so a rotation takes effect at once.
    """

    _built: tuple[tuple[Any, ...], URLSafeTimedSerializer | None] | None = None

    def get_signing_serializer(self, app: Flask) -> URLSafeTimedSerializer | None:
        keys = (app.secret_key, *(app.config.get("SECRET_KEY_FALLBACKS") or ()))
        built = self._built
        if built is None or built[0] != keys:
            built = self._built = (keys, super().get_signing_serializer(app))
        return built[1]


def load_user(user_id: str) -> User | None:
    """Flask-Login loader: ``<user id>:<secret>`` of a live log-in session, else None.

    Refused: a session ended by log-out, one issued before the user's session version
    was bumped (password change, "log out everywhere", deactivation), an expired one,
    and ids in any older format.
    """
    raw_id, _, raw = (user_id or "").partition(":")
    if not raw_id.isdigit() or len(raw_id) > 18 or not raw:
        return None
    user = accounts.user_for_login_session(db.session, int(raw_id), raw, utcnow())
    if user is not None:
        user.login_token = raw
    return user


def _rotate_csrf_secret() -> None:
    # Flask-WTF keeps the CSRF secret in the session (and caches it in g): a form
    # token seen before the log-in is worthless after it.
    session.pop("csrf_token", None)
    g.pop("csrf_token", None)


def log_in(user: User, *, remember: bool = False) -> None:
    """Open a log-in session for ``user`` on this device and commit it."""
    lifetime = current_app.config["REMEMBER_COOKIE_DURATION"]
    user.login_token = accounts.open_login_session(db.session, user, utcnow(), lifetime)
    db.session.commit()
    _rotate_csrf_secret()
    login_user(user, remember=remember)


def log_out() -> None:
    """End this device's log-in session on the server, then forget the cookies."""
    token = getattr(current_user, "login_token", None)
    if token:
        accounts.close_login_session(db.session, token)
        db.session.commit()
    logout_user()
    _rotate_csrf_secret()


def roles_required(*roles: str) -> Callable[[F], F]:
    """Log in first; then 403 unless the user has one of ``roles``."""

    def decorator(view: F) -> F:
        @wraps(view)
        @login_required
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if not current_user.has_role(*roles):
                abort(403)
            return view(*args, **kwargs)

        return wrapped  # type: ignore[return-value]

    return decorator
