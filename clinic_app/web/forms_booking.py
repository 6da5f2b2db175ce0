"""Forms of the client and therapist pages (booking, cancel, intake, hours, session record)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import time
from typing import Any

from flask_wtf import FlaskForm
from wtforms import BooleanField
from wtforms import DateField
from wtforms import IntegerField
from wtforms import RadioField
from wtforms import SelectField
from wtforms import SelectMultipleField
from wtforms import StringField
from wtforms import TextAreaField
from wtforms import TimeField
from wtforms import widgets
from wtforms.validators import InputRequired
from wtforms.validators import Length
from wtforms.validators import NumberRange
from wtforms.validators import Optional

from clinic_app.scheduling.followup import RED_FLAGS
from clinic_app.web.fields import CheckboxList
from clinic_app.web.fields import InDateWindow
from clinic_app.web.fields import SingleLine
from clinic_app.web.fields import opts

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


class ConfirmBookingForm(FlaskForm):
    early_ok = BooleanField("I understand this is earlier than my therapist recommends and "
                            "want this time anyway.")


class CancelForm(FlaskForm):
    reason = StringField("Reason (optional)",
                         validators=[Optional(), Length(max=255), SingleLine()])


class ReportProblemForm(FlaskForm):
    """A problem reported after a session: the red-flag checklist, at least one ticked."""

    red_flags = CheckboxList("Which of these do you have? Tick all that apply",
                             choices=opts(RED_FLAGS.items()),
                             validators=[InputRequired("Tick at least one of the warning "
                                                       "signs.")])


class HoursForm(FlaskForm):
    """One text field per weekday: ranges like "09:00-12:00, 13:00-17:00" (empty = day off)."""

    effective_from = DateField("These hours apply from",
                               validators=[InputRequired(), InDateWindow()])
    day_0 = StringField("Monday")
    day_1 = StringField("Tuesday")
    day_2 = StringField("Wednesday")
    day_3 = StringField("Thursday")
    day_4 = StringField("Friday")
    day_5 = StringField("Saturday")
    day_6 = StringField("Sunday")

    def day_fields(self) -> list[Any]:
        return [getattr(self, f"day_{d}") for d in range(7)]


_RANGE = re.compile(r"^\s*(\d{1,2})[:.](\d{2})\s*[-–]\s*(\d{1,2})[:.](\d{2})\s*$")


def parse_ranges(text: str) -> tuple[list[tuple[time, time]], str | None]:
    """``"09:00-12:00, 13:00-17:00"`` -> ranges, or an error message for the field."""
    out: list[tuple[time, time]] = []
    for part in [p for p in re.split(r"[,;]", text or "") if p.strip()]:
        match = _RANGE.match(part)
        if not match:
            return [], f"“{part.strip()}” is not a range like 09:00-12:00."
        h1, m1, h2, m2 = (int(g) for g in match.groups())
        if h2 == 24 and m2 == 0:
            h2, m2 = 23, 59
        if h1 > 23 or h2 > 23 or m1 > 59 or m2 > 59:
            return [], f"“{part.strip()}” is not a valid time range."
        out.append((time(h1, m1), time(h2, m2)))
    return out, None


def format_ranges(rows: Iterable[Any]) -> dict[int, str]:
    """Weekly rows -> ``{weekday: "09:00-12:00, 13:00-17:00"}``."""
    days: dict[int, list[str]] = {}
    for r in rows:
        days.setdefault(r.weekday, []).append(f"{r.start_time:%H:%M}-{r.end_time:%H:%M}")
    return {d: ", ".join(v) for d, v in days.items()}


class TimeOffForm(FlaskForm):
    start_date = DateField("First day", validators=[InputRequired(), InDateWindow()])
    end_date = DateField("Last day (empty: one day)", validators=[Optional(), InDateWindow()])
    start_time = TimeField("From (empty: whole day)", validators=[Optional()])
    end_time = TimeField("Until", validators=[Optional()])
    reason = StringField("Note (optional)", validators=[Optional(), Length(max=120), SingleLine()])


class SessionRecordForm(FlaskForm):
    """What was done in the session; the recommendation for the next one follows from it."""

    regions = StringField("Body regions treated (comma-separated)",
                          validators=[Optional(), Length(max=500)])
    muscles = StringField("Muscles (comma-separated)", validators=[Optional(), Length(max=500)])
    techniques = StringField("Techniques (comma-separated)",
                             validators=[Optional(), Length(max=500)])
    intensity = IntegerField("Highest in-session discomfort (0-10)",
                             validators=[InputRequired(), NumberRange(min=0, max=10)])
    goal = SelectField("Goal of the course", choices=opts([
        ("chronic", "Chronic (3 months or more)"), ("acute", "Acute (under 6 weeks)"),
        ("maintenance", "Maintenance")]))
    injury_date = DateField("Injury date (acute only)", validators=[Optional(), InDateWindow()])
    progress = SelectField("Progress since the start of the course", choices=opts([
        ("", "Not assessed"), ("better", "Better"), ("same", "Same"), ("worse", "Worse")]),
        validators=[Optional()])
    notes = TextAreaField("Notes", validators=[Optional(), Length(max=5000)])


class DeclineForm(FlaskForm):
    reason = StringField("Reason given to the client",
                         validators=[Optional(), Length(max=255), SingleLine()])


class OverrideForm(FlaskForm):
    earliest = DateField("Earliest", validators=[Optional()])
    ideal = DateField("Ideal", validators=[Optional()])
    latest = DateField("Latest", validators=[Optional()])
    reason = StringField("Why (required)",
                         validators=[InputRequired(), Length(max=500), SingleLine()])


def split_list(text: str | None) -> list[str]:
    """Comma-separated text -> trimmed non-empty items."""
    return [p.strip() for p in (text or "").split(",") if p.strip()]


class _CheckboxList(SelectMultipleField):
    widget = widgets.ListWidget(prefix_label=False)
    option_widget = widgets.CheckboxInput()


def intake_form_class(questions: Iterable[Any]) -> type[FlaskForm]:
    """A form class built from the care service's question list.

    Each question is a mapping (or object) with ``code``, ``label`` and ``kind``: ``yesno``,
    ``text``, ``choice`` (with ``choices``) or ``multi`` (checkboxes).
    """

    def get(q: Any, name: str, default: Any = None) -> Any:
        return q.get(name, default) if isinstance(q, dict) else getattr(q, name, default)

    attrs: dict[str, Any] = {}
    keys: list[str] = []
    for q in questions:
        key = get(q, "code") or get(q, "key")
        label, kind = get(q, "label", ""), get(q, "kind", "yesno")
        hint = get(q, "help", "") or get(q, "hint", "")
        kw: dict[str, Any] = {"description": hint}
        if kind in ("yesno", "bool", "boolean"):
            attrs[key] = RadioField(label, choices=opts([("no", "No"), ("yes", "Yes")]),
                                    validators=[InputRequired("Please answer yes or no.")], **kw)
        elif kind == "choice":
            attrs[key] = SelectField(label, choices=opts(get(q, "choices", [])), **kw)
        elif kind == "multi":
            attrs[key] = _CheckboxList(label, choices=opts(get(q, "choices", [])), **kw)
        else:
            attrs[key] = TextAreaField(label, validators=[Optional(), Length(max=2000)], **kw)
        keys.append(key)
    attrs["question_keys"] = keys
    return type("IntakeForm", (FlaskForm,), attrs)
