"""Who is asking: the Flask-Login user loader and role guards for views."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any
from typing import TypeVar

from flask import abort
from flask_login import current_user
from flask_login import login_required

from clinic_app.extensions import db
from clinic_app.models.accounts import User

F = TypeVar("F", bound=Callable[..., Any])


def load_user(user_id: str) -> User | None:
    """Flask-Login loader. The id carries the session version: bumping the
    user's version (password change, "log out everywhere", deactivation)
    invalidates every session and remember cookie issued before."""
    try:
        raw_id, raw_version = user_id.split(":", 1)
        uid, version = int(raw_id), int(raw_version)
    except (ValueError, AttributeError):
        return None
    user = db.session.get(User, uid)
    if user is None or not user.is_active or user.session_version != version:
        return None
    return user


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
