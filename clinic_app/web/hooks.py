"""App-wide hooks: security headers, error pages (HTML or JSON), template helpers."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask import Flask
from flask import Response
from flask import jsonify
from flask import render_template
from flask import request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from clinic_app.errors import DomainError
from clinic_app.extensions import db

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


def wants_json() -> bool:
    return request.path.startswith("/api/")


def json_error(status: int, message: str, code: str | None = None,
               fields: dict[str, str] | None = None) -> tuple[Response, int]:
    body: dict[str, Any] = {"code": code or HTTP_CODES.get(status, "error"), "message": message}
    if fields:
        body["fields"] = fields
    return jsonify({"error": body}), status


def install(app: Flask) -> None:
    @app.after_request
    def security_headers(response: Response) -> Response:
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault(
            "Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=()"
        )
        response.headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        if app.config["SESSION_COOKIE_SECURE"]:
            response.headers.setdefault(
                "Strict-Transport-Security", "max-age=31536000; includeSubDomains"
            )
        if request.endpoint and not request.endpoint.endswith("static"):
            response.headers.setdefault("Cache-Control", "no-store")
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
            "therapist": [("Today", "therapist.day"), ("Week", "therapist.week"),
                          ("Hours", "therapist.hours"), ("Review queue", "therapist.review"),
                          ("Calendar feed", "therapist.calendar")],
            "admin": [("Dashboard", "admin.dashboard"), ("Bookings", "admin.bookings"),
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
