"""Form field helpers shared by every page's forms, and the parsing of ids and dates sent
in query strings."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import Any

from flask import abort
from flask import request
from wtforms import Field
from wtforms import SelectMultipleField
from wtforms import widgets
from wtforms.fields.choices import SelectChoice
from wtforms.validators import StopValidation
from wtforms.validators import ValidationError

from clinic_app.extensions import db
from clinic_app.services.settings import clinic_zone
from clinic_app.validation import date_problem
from clinic_app.validation import parse_date_arg
from clinic_app.validation import parse_id
from clinic_app.validation import price_to_cents
from clinic_app.validation import single_line_problem
from clinic_app.web.util import now


def opts(pairs: Iterable[tuple[Any, str]]) -> list[SelectChoice]:
    """``(value, label)`` pairs as WTForms choices (tuples are deprecated in WTForms 3.3)."""
    return [SelectChoice(str(value), label) for value, label in pairs]


class SingleLine:
    """WTForms validator: no control characters (names, phone numbers, reasons); the same
    rule the services and the API apply."""

    def __call__(self, form: Any, field: Field) -> None:
        if problem := single_line_problem(field.data):
            raise ValidationError(problem)


class InDateWindow:
    """WTForms validator for a DateField: inside the accepted window around today (clinic
    zone), the rule the services and the API apply; far-off years overflow date arithmetic."""

    def __call__(self, form: Any, field: Field) -> None:
        if field.data is None:
            return
        today = now().astimezone(clinic_zone(db.session)).date()
        if problem := date_problem(field.data, today):
            raise StopValidation(problem)


class Pence:
    """WTForms validator for a price in pounds (DecimalField): finite, 0 or more, whole
    pence, at most the maximum. Runs instead of NumberRange, which cannot compare NaN."""

    def __call__(self, form: Any, field: Field) -> None:
        if field.data is None:
            return
        _, problem = price_to_cents(field.data)
        if problem:
            raise StopValidation(problem)


class CheckboxList(SelectMultipleField):
    """A multiple choice shown as labelled checkboxes (keyboard friendly, no JS)."""

    widget = widgets.ListWidget(prefix_label=False)
    option_widget = widgets.CheckboxInput()


# --- query-string and form values that are not form fields -------------------------------------


def query_id(raw: str | None) -> int | None:
    """An id sent as ``?therapist=42`` (or a hidden form value): None when absent or not a
    number; 404 when it is a number that cannot name a row (0, or above 2^31-1), like the
    ``<int:...>`` URL converter."""
    if not raw or not raw.isascii() or not raw.isdigit():
        return None
    value = parse_id(raw)
    if value is None:
        abort(404)
    return value


def query_date(name: str) -> date | None:
    """A date sent as ``?date=2026-12-01``: None when absent or not a date (the page shows
    its default); a 422 page when it is a real date outside the accepted window (years like
    0001 or 9999 would overflow the page's own date arithmetic)."""
    today = now().astimezone(clinic_zone(db.session)).date()
    return parse_date_arg(request.args.get(name), today, name=name)
