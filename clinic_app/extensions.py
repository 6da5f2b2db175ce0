"""Flask extension objects, created unbound and initialised in ``create_app``."""

from __future__ import annotations

import time

from flask import Response
from flask import after_this_request
from flask import has_request_context
from flask_limiter import Limiter
from flask_limiter import RequestLimit
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect

from clinic_app.db import Base

db = SQLAlchemy(model_class=Base)
migrate = Migrate()
login_manager = LoginManager()
csrf = CSRFProtect()


def set_retry_after(seconds: int) -> None:
    """Send ``Retry-After`` with this request's response, whichever handler builds it
    (the 429 page, the JSON error or the log-in form)."""
    value = str(max(1, seconds))

    @after_this_request
    def _header(response: Response) -> Response:
        response.headers["Retry-After"] = value
        return response


def _retry_after_on_breach(limit: RequestLimit) -> None:
    # The app's error handlers build the 429 answer; this adds when to come back.
    if has_request_context():
        # reset_at is already rounded up to a whole second.
        set_retry_after(int(limit.reset_at - time.time()))


# Limits are declared where they apply (sign-up, reset, sign-in links); the log-in
# budgets are in clinic_app/throttle.py and use this limiter's storage.
limiter = Limiter(key_func=get_remote_address, default_limits=[],
                  on_breach=_retry_after_on_breach)
