"""Small helpers shared by views."""

from __future__ import annotations

from datetime import datetime
from urllib.parse import urlsplit

from flask import current_app
from flask_wtf import FlaskForm

from clinic_app.errors import DomainError


def now() -> datetime:
    return current_app.extensions["clock"].now()


def apply_error(form: FlaskForm, exc: DomainError) -> None:
    """Put a domain error next to its fields (or at the top of the form)."""
    placed = False
    for name, message in exc.fields.items():
        field = getattr(form, name, None)
        if field is not None:
            field.errors = [*list(field.errors), message]
            placed = True
    if not placed:
        form.form_errors.append(exc.message)


def safe_next(target: str | None) -> str | None:
    """Only same-site relative paths are followed after log-in (no open redirect)."""
    if not target:
        return None
    parts = urlsplit(target)
    # A backslash counts as a slash in browsers: "/\\evil.example" is another site.
    if (parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//")
            or "\\" in target):
        return None
    return target
