"""App-wide hooks: input limits, security headers, error pages (HTML or JSON), template helpers.

Input limits that hold for every route live here, once: ids in URLs are 32-bit
(:class:`IdConverter`), request bodies are at most ``CLINIC_MAX_REQUEST_BYTES`` (413), JSON is
strict and shallow (:class:`StrictJSONProvider`, :data:`MAX_JSON_DEPTH`), and no part of a
request may carry a NUL character (:func:`refuse_unstorable_input`), which PostgreSQL cannot
store in text. Each refusal is a 4xx with the error JSON (API) or an error page.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask import Flask
from flask import Response
from flask import abort
from flask import jsonify
from flask import render_template
from flask import request
from flask.json.provider import DefaultJSONProvider
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException
from werkzeug.routing import IntegerConverter
from werkzeug.routing import Map
from werkzeug.routing import ValidationError

from clinic_app.errors import BadRequest
from clinic_app.errors import DomainError
from clinic_app.extensions import db
from clinic_app.validation import MAX_ID
from clinic_app.validation import has_nul

log = logging.getLogger("clinic_app")

# Strict CSP: only our own files; no inline script or style anywhere.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'self'; "
    "form-action 'self'; frame-ancestors 'none'"
)

HTTP_CODES = {
    400: "bad_request",
    401: "not_authenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "validation_failed",
    429: "rate_limited",
    500: "internal_error",
}


# Deeper JSON than this is no request of ours (the deepest body nests 3 levels); refusing it
# early keeps recursion (the parser, pydantic, error rendering) far from Python's limit.
MAX_JSON_DEPTH = 32
NUL_MESSAGE = "The request contains a NUL character (\\u0000), which no field accepts."


class IdConverter(IntegerConverter):
    """``<int:...>`` for ids: 1..2^31-1, so a bigger number is a 404 and never reaches the
    database (PostgreSQL would refuse it as out of range for integer: a 500)."""

    MAX_DIGITS = len(str(MAX_ID))

    def __init__(self, url_map: Map, fixed_digits: int = 0, min: int | None = 1,
                 max: int | None = MAX_ID, signed: bool = False) -> None:
        super().__init__(url_map, fixed_digits=fixed_digits, min=min, max=max, signed=signed)

    def to_python(self, value: str) -> Any:
        # int() refuses more than 4,300 digits with a ValueError that werkzeug does not catch
        # for every spelling; any id longer than MAX_ID's digits is out of range anyway.
        if len(value.lstrip("0")) > self.MAX_DIGITS:
            raise ValidationError()  # werkzeug's "this rule does not match": a 404
        return super().to_python(value)


class StrictJSONProvider(DefaultJSONProvider):
    """Flask's JSON, refusing what Python's parser accepts but JSON does not (``NaN``,
    ``Infinity``) and turning "nested too deep" into the ValueError Flask answers with 400."""

    @staticmethod
    def _no_constants(name: str) -> Any:
        raise ValueError(f"{name} is not valid JSON")

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        kwargs.setdefault("parse_constant", self._no_constants)
        try:
            return super().loads(s, **kwargs)
        except RecursionError:
            raise ValueError("JSON nested too deeply") from None


def _strings_in(value: Any, depth_limit: int) -> Iterable[str]:
    """Every string (keys too) in a parsed JSON value, walked without recursion; raises
    BadRequest past ``depth_limit`` levels."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            yield item
        elif isinstance(item, dict | list):
            if depth > depth_limit:
                raise BadRequest(f"The JSON body nests deeper than {depth_limit} levels.",
                                 code="invalid_json")
            if isinstance(item, dict):
                yield from (k for k in item if isinstance(k, str))
                stack.extend((v, depth + 1) for v in item.values())
            else:
                stack.extend((v, depth + 1) for v in item)


def refuse_unstorable_input() -> None:
    """Before every request: 413 above the size limit; 400 for a NUL anywhere in the path,
    query string, form or JSON body, and for JSON nested too deep."""
    limit = request.max_content_length
    if limit is not None and (request.content_length or 0) > limit:
        abort(413)
    texts: list[str] = [request.path]
    # Werkzeug parses a form only when it wants one (a Content-Type is sent); otherwise the
    # form is empty, and asking for it on a bodyless GET cost a sixth of this check.
    sources = (request.args, request.form) if request.want_form_data_parsed else (
        request.args,)
    for multi in sources:
        for key, values in multi.lists():
            texts.append(key)
            texts.extend(values)
    if any(has_nul(text) for text in texts):
        raise BadRequest(NUL_MESSAGE, code="invalid_characters")
    if request.is_json and request.content_length:
        payload = request.get_json(silent=True)
        if any(has_nul(text) for text in _strings_in(payload, MAX_JSON_DEPTH)):
            raise BadRequest(NUL_MESSAGE, code="invalid_characters")


def install_input_limits(app: Flask) -> None:
    """Before the blueprints register (their rules bind the converter): 32-bit ids in URLs,
    strict JSON, the request size limit; then the check that runs before every request."""
    app.url_map.converters["int"] = IdConverter
    app.json = StrictJSONProvider(app)
    app.config["MAX_CONTENT_LENGTH"] = app.config["MAX_REQUEST_BYTES"]
    app.before_request(refuse_unstorable_input)


def wants_json() -> bool:
    return request.path.startswith("/api/")


def json_error(status: int, message: str, code: str | None = None,
               fields: dict[str, str] | None = None) -> tuple[Response, int]:
    body: dict[str, Any] = {"code": code or HTTP_CODES.get(status, "error"), "message": message}
    if fields:
        body["fields"] = fields
    return jsonify({"error": body}), status


SECURITY_HEADERS = (
    ("Content-Security-Policy", CSP),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "same-origin"),
    ("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=()"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
)
HSTS = ("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
NO_STORE = ("Cache-Control", "no-store")


def install(app: Flask) -> None:
    @app.after_request
    def security_headers(response: Response) -> Response:
        # Each header unless the view set its own, appended in this order: one pass over
        # the response's headers instead of one per header (``setdefault`` searches them).
        wanted = list(SECURITY_HEADERS)
        if app.config["SESSION_COOKIE_SECURE"]:
            wanted.append(HSTS)
        if request.endpoint and not request.endpoint.endswith("static"):
            wanted.append(NO_STORE)
        present = {name.lower() for name, _ in response.headers}
        response.headers.extend([(k, v) for k, v in wanted if k.lower() not in present])
        return response

    @app.errorhandler(DomainError)
    def domain_error(exc: DomainError) -> Any:
        db.session.rollback()
        if wants_json():
            return jsonify(exc.to_dict()), exc.status
        return render_template("error.html", status=exc.status, message=exc.message), exc.status

    @app.errorhandler(CSRFError)
    def csrf_error(exc: CSRFError) -> Any:
        message = "The form expired or was sent from another site. Please try again."
        if wants_json():
            return json_error(400, message, "csrf_failed")
        return render_template("error.html", status=400, message=message), 400

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Any:
        status = exc.code or 500
        if status == 429:
            message = "Too many attempts. Please wait a few minutes and try again."
        elif status == 404:
            message = "We could not find that page."
        elif status == 403:
            message = "You do not have access to that page."
        elif status == 413:
            message = (f"The request is larger than the limit of "
                       f"{app.config['MAX_REQUEST_BYTES']:,} bytes.")
        else:
            message = exc.description or exc.name
        if wants_json():
            response, code = json_error(status, message)
            if status == 405 and exc.get_response().headers.get("Allow"):
                response.headers["Allow"] = exc.get_response().headers["Allow"]
            return response, code
        return render_template("error.html", status=status, message=message), status

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> Any:
        log.exception("unhandled error on %s %s", request.method, request.path)
        db.session.rollback()
        message = "Something went wrong on our side. Nothing was changed; please try again."
        if wants_json():
            return json_error(500, message)
        return render_template("error.html", status=500, message=message), 500

    @app.context_processor
    def inject() -> dict[str, Any]:
        from clinic_app.services.settings import get_settings

        def clinic() -> Any:
            return get_settings(db.session)

        return {"clinic_settings": clinic, "embedded": app.config["EMBEDDED"]}

    def _zone() -> ZoneInfo:
        from clinic_app.services.settings import clinic_zone

        return clinic_zone(db.session)

    @app.template_filter("local")
    def local(value: datetime | None, fmt: str = "%a %d %b %Y, %H:%M") -> str:
        """An aware UTC datetime shown in the clinic's zone."""
        if value is None:
            return ""
        return value.astimezone(_zone()).strftime(fmt)

    @app.template_global()
    def view_names() -> set[str]:
        return set(app.view_functions)

    @app.template_global()
    def nav_links(user: Any) -> list[tuple[str, str]]:
        """The menu for ``user``'s role (only pages that exist)."""
        by_role = {
            "client": [("Book", "client.book"), ("My appointments", "client.appointments"),
                       ("Plan sessions", "waitlist.plan"), ("Waitlist", "waitlist.index"),
                       ("Health intake", "client.intake")],
            "therapist": [("Calendar", "staff_calendar.calendar"), ("Clients", "clients.index"),
                          ("Today", "therapist.day"), ("Week", "therapist.week"),
                          ("Hours", "therapist.hours"), ("Review queue", "therapist.review"),
                          ("Calendar feed", "therapist.calendar")],
            "admin": [("Dashboard", "admin.dashboard"), ("Calendar", "staff_calendar.calendar"),
                      ("Clients", "clients.index"), ("Bookings", "admin.bookings"),
                      ("Services", "admin.services"), ("Therapists", "admin.therapists"),
                      ("Settings", "admin.settings"), ("Outbox", "admin_outbox.index"),
                      ("Mailbox", "dev.mailbox")],
        }
        links = by_role.get(user.role, [])
        return [(label, ep) for label, ep in links
                if ep in app.view_functions and (ep != "dev.mailbox" or app.config["EMBEDDED"])]

    @app.template_global()
    def zone_name() -> str:
        return str(_zone().key)
