"""JSON API v1. Each endpoint declares its input and output as pydantic models;
the same models validate requests and build the OpenAPI 3.1 document, so the two
cannot drift apart."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("api", __name__, url_prefix="/api/v1")

# Route modules register themselves on ``bp`` when imported.
from clinic_app.api import auth as _auth  # noqa: E402,F401
from clinic_app.api import bookings as _bookings  # noqa: E402,F401
from clinic_app.api import calendar as _calendar  # noqa: E402,F401
from clinic_app.api import care as _care  # noqa: E402,F401
from clinic_app.api import catalog as _catalog  # noqa: E402,F401
from clinic_app.api import clients as _clients  # noqa: E402,F401
from clinic_app.api import courses as _courses  # noqa: E402,F401
from clinic_app.api import docs as _docs  # noqa: E402,F401
from clinic_app.api import holds as _holds  # noqa: E402,F401
from clinic_app.api import privacy as _privacy  # noqa: E402,F401
from clinic_app.api import therapists as _therapists  # noqa: E402,F401
from clinic_app.api import waitlist as _waitlist  # noqa: E402,F401
