"""Small helpers shared by views."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from urllib.parse import urlsplit

from flask import current_app
from flask import flash
from flask_wtf import FlaskForm

from clinic_app.errors import DomainError
from clinic_app.extensions import db


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


class Saved:
    """How a :func:`saving` block ended: true when it was committed, else ``error`` says why."""

    error: DomainError | None = None

    def __bool__(self) -> bool:
        return self.error is None


@contextmanager
def saving(form: FlaskForm | None = None, *,
           catch: type[DomainError] = DomainError) -> Iterator[Saved]:
    """Run the block (a service call) as the request's change, the caller's commit that
    services leave to it: committed when the block ends; on a ``catch`` error rolled back
    and the error shown, beside ``form``'s fields or, without a form, as a flash message.
    Any other error propagates uncommitted. The views then answer by ``if saved:``::

        with saving(form) as saved:
            service.change(db.session, ...)
        if saved:
            flash("Saved.", "success")
            return redirect(...)
        return page(form), 422
    """
    saved = Saved()
    try:
        yield saved
    except catch as exc:
        db.session.rollback()
        saved.error = exc
        if form is not None:
            apply_error(form, exc)
        else:
            flash(exc.message, "error")
    else:
        db.session.commit()


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
