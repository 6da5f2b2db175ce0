"""Every care input, validated once: the pydantic models the API and the pages share.

The API parses its JSON bodies with these models (``api/care.py`` declares them as the
bodies, so the OpenAPI document shows them); the pages build a dict from their WTForms
form (which keeps rendering and CSRF) and the services parse it with :func:`parse`, so a
rule lives here and nowhere else. Rules that need context (the session's date, the
client's course, today) are methods here too, called by the services with that context.
"""

from __future__ import annotations

from datetime import date
from datetime import timedelta
from typing import Annotated
from typing import Any
from typing import Literal
from typing import TypeVar

from pydantic import AfterValidator
from pydantic import BaseModel
from pydantic import BeforeValidator
from pydantic import ConfigDict
from pydantic import Field
from pydantic import ValidationError
from pydantic import ValidationInfo
from pydantic import create_model
from pydantic import field_validator

from clinic_app.errors import ValidationFailed
from clinic_app.scheduling import followup
from clinic_app.validation import single_line

GOALS = tuple(g.value for g in followup.Goal)
PROGRESS = tuple(p.value for p in followup.Progress)
LIST_MAX_ITEMS = 30
LIST_ITEM_MAX = 80
NOTES_MAX = 5000
REASON_MAX = 1000
INTAKE_TEXT_MAX = 2000
RECORD_FIELDS = ("regions", "muscles", "techniques", "intensity", "notes", "goal",
                 "injury_date", "progress")
#: How far from today a follow-up window may lie (issue 9: one date in 9999 stopped the planner).
WINDOW_PAST = timedelta(days=2 * 365)
WINDOW_FUTURE = timedelta(days=2 * 365)
#: Dates before this are typing mistakes, not injuries.
OLDEST_DATE = date(1900, 1, 1)

FLAG_CONFIRM_FIRST = "confirm_first"

FLAG_LIGHT_PRESSURE = "light_pressure"

FLAG_AVOID_AREA = "avoid_area"

FLAG_PREGNANCY = "pregnancy"

FLAG_LABELS = {
    FLAG_CONFIRM_FIRST: "Confirm first: known or suspected blood clot (DVT)",
    FLAG_LIGHT_PRESSURE: "Light pressure only",
    FLAG_AVOID_AREA: "Avoid the affected area",
    FLAG_PREGNANCY: "Pregnancy: therapist trained for it",
}

# The screening from the note (flags for the therapist, not refusals; only "confirm
# first" holds self-booking until a therapist confirms). kind: yesno or text.
INTAKE_QUESTIONS: list[dict[str, str | None]] = [
    {"code": "blood_clot", "kind": "yesno", "flag": FLAG_CONFIRM_FIRST,
     "label": "Have you ever had, or been told you might have, a deep vein thrombosis (DVT) "
              "or another blood clot?"},
    {"code": "anticoagulants", "kind": "yesno", "flag": FLAG_LIGHT_PRESSURE,
     "label": "Do you take blood thinners (anticoagulants such as warfarin, apixaban or "
              "rivaroxaban)?"},
    {"code": "bleeding_disorder", "kind": "yesno", "flag": FLAG_LIGHT_PRESSURE,
     "label": "Do you have a bleeding disorder (for example haemophilia)?"},
    {"code": "low_platelets", "kind": "yesno", "flag": FLAG_LIGHT_PRESSURE,
     "label": "Have you been told you have low platelets?"},
    {"code": "fever", "kind": "yesno", "flag": FLAG_AVOID_AREA,
     "label": "Do you have a fever or feel unwell at the moment?"},
    {"code": "acute_injury", "kind": "yesno", "flag": FLAG_AVOID_AREA,
     "label": "Have you injured yourself in the last six weeks (a sprain, strain or blow)?"},
    {"code": "open_wounds", "kind": "yesno", "flag": FLAG_AVOID_AREA,
     "label": "Do you have open wounds, burns or a skin infection?"},
    {"code": "recent_fracture_surgery", "kind": "yesno", "flag": FLAG_AVOID_AREA,
     "label": "Have you had a broken bone or an operation in the last three months?"},
    {"code": "osteoporosis", "kind": "yesno", "flag": FLAG_AVOID_AREA,
     "label": "Do you have severe osteoporosis (fragile bones)?"},
    {"code": "tumour", "kind": "yesno", "flag": FLAG_AVOID_AREA,
     "label": "Do you have a tumour, or are you being treated for cancer?"},
    {"code": "pregnant", "kind": "yesno", "flag": FLAG_PREGNANCY,
     "label": "Are you pregnant?"},
    {"code": "details", "kind": "text", "flag": None,
     "label": "Anything else your therapist should know (where it hurts, areas to avoid, "
              "conditions, medication)?"},
]

_YES = {"y", "yes", "true", "on", "1"}
_NO = {"n", "no", "false", "off", "0", ""}

Model = TypeVar("Model", bound=BaseModel)


# --- shared field types ------------------------------------------------------------------------


def _blank_is_none(value: Any) -> Any:
    return None if value == "" else value


def _none_is_empty(value: Any) -> Any:
    return "" if value is None else value


def _clean_labels(value: Any) -> Any:
    """A list of short labels (the pages split their comma-separated text first).
    Whitespace is collapsed, empty entries dropped and repeats removed (first one kept)."""
    if value is None:
        return []
    if not isinstance(value, (list, tuple)):
        raise ValueError("Send a list of short texts.")
    out: list[str] = []
    for item in value:
        if not isinstance(item, str):
            raise ValueError("Send a list of short texts.")
        item = " ".join(item.split())
        if len(item) > LIST_ITEM_MAX:
            raise ValueError(f"Each entry must be at most {LIST_ITEM_MAX} characters.")
        if item and item not in out:
            out.append(item)
    if len(out) > LIST_MAX_ITEMS:
        raise ValueError(f"At most {LIST_MAX_ITEMS} entries.")
    return out


def _not_a_bool(value: Any) -> Any:
    if isinstance(value, bool):  # True is an int to Python, not a rating to us
        raise ValueError("Enter a number from 0 to 10.")
    return value


def _not_too_old(value: date | None) -> date | None:
    if value is not None and value < OLDEST_DATE:
        raise ValueError(f"Enter a date after {OLDEST_DATE.isoformat()}.")
    return value


def _yes_no(value: Any) -> Any:
    if value is None:
        return False  # an unanswered question counts as "no"
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _YES | _NO:
            return word in _YES
        raise ValueError("Answer yes or no.")
    return value


# Checked as a whole, so that an error names the field ("muscles"), not one entry of it.
Labels = Annotated[list[str], BeforeValidator(_clean_labels),
                   Field(json_schema_extra={"maxItems": LIST_MAX_ITEMS})]
Rating = Annotated[int, BeforeValidator(_not_a_bool), Field(ge=0, le=10)]
Notes = Annotated[str, BeforeValidator(_none_is_empty),
                  Field(max_length=NOTES_MAX)]
GoalName = Literal["acute", "chronic", "maintenance"]
ProgressName = Literal["better", "same", "worse"]
OptionalGoal = Annotated[GoalName | None, BeforeValidator(_blank_is_none)]
OptionalProgress = Annotated[ProgressName | None, BeforeValidator(_blank_is_none)]
PastDate = Annotated[date | None, BeforeValidator(_blank_is_none), AfterValidator(_not_too_old)]
YesNo = Annotated[bool, BeforeValidator(_yes_no)]

# The friendlier words a page shows next to a field, whatever pydantic found wrong with it.
_FIELD_MESSAGES = {
    "intensity": "Enter a number from 0 to 10.",
    "soreness": "Enter a number from 0 to 10.",
    "goal": f"Choose one of: {', '.join(GOALS)}.",
    "progress": f"Choose one of: {', '.join(PROGRESS)}.",
    "still_sore": "Tell us whether you are still sore.",
    "kind": "Use 24h or 72h.",
}


# What a field says when it is missing or empty.
_MISSING = {
    "earliest": "Enter a date (YYYY-MM-DD).", "ideal": "Enter a date (YYYY-MM-DD).",
    "latest": "Enter a date (YYYY-MM-DD).", "reason": "Say why you set this window.",
    "text": "Write the amendment.",
}


def _message(error: Any) -> str:
    field = str(error["loc"][0]) if error["loc"] else ""
    if error["type"] == "extra_forbidden":
        return "Unknown field."
    if error["type"] in ("missing", "string_too_short") and field in _MISSING:
        return _MISSING[field]
    if error["type"] == "value_error":  # our own validators' words
        return str(error["msg"]).removeprefix("Value error, ")
    if field in _FIELD_MESSAGES:
        return _FIELD_MESSAGES[field]
    if error["type"] == "string_too_long":
        return f"At most {error['ctx']['max_length']} characters."
    if error["type"] in ("date_from_datetime_parsing", "date_parsing", "date_type",
                         "date_from_datetime_inexact"):
        return "Enter a date (YYYY-MM-DD)."
    return str(error["msg"])


def field_errors(exc: ValidationError) -> dict[str, str]:
    """One message per field (the first), keyed by the field's dotted path."""
    out: dict[str, str] = {}
    for error in exc.errors():
        name = ".".join(str(p) for p in error["loc"][:1]) or "body"
        out.setdefault(name, _message(error))
    return out


def parse(model: type[Model], data: Any, *, message: str) -> Model:
    """``data`` (a dict from a page or the API, or already a ``model``) as a ``model``;
    ValidationFailed with one message per field otherwise."""
    if isinstance(data, model):
        return data
    if isinstance(data, BaseModel):
        data = data.model_dump(exclude_unset=True)
    if not isinstance(data, dict):
        raise ValidationFailed(message, fields={"body": "Send an object."})
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ValidationFailed(message, fields=field_errors(exc)) from None


# --- session records ---------------------------------------------------------------------------


class SessionRecordIn(BaseModel):
    """What the therapist did: body regions, muscles, techniques, maximum in-session
    discomfort 0-10, notes, the client's goal and progress."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    regions: Labels = Field(default_factory=list)
    muscles: Labels = Field(default_factory=list)
    techniques: Labels = Field(default_factory=list)
    intensity: Rating
    notes: Notes = ""
    goal: OptionalGoal = Field(default=None, description="Default: the current course's goal")
    injury_date: PastDate = Field(default=None, description="Acute goal only; YYYY-MM-DD")
    progress: OptionalProgress = None

    def finish(self, *, default_goal: str | None, session_day: date) -> dict[str, Any]:
        """The record's columns, with the rules that need the session: the goal defaults
        to the course's; the injury date is not after the session and only kept for an
        acute goal (it protects an acute injury's first weeks, rule R0)."""
        errors: dict[str, str] = {}
        goal = self.goal or default_goal
        if goal not in GOALS:
            errors["goal"] = _FIELD_MESSAGES["goal"]
        if self.injury_date is not None and self.injury_date > session_day:
            errors["injury_date"] = "The injury date cannot be after the session."
        if errors:
            raise ValidationFailed("Some fields of the session record are missing or invalid.",
                                   fields=errors)
        return {
            "regions": self.regions, "muscles": self.muscles, "techniques": self.techniques,
            "intensity": self.intensity, "notes": self.notes, "goal": goal,
            "injury_date": self.injury_date if goal == "acute" else None,
            "progress": self.progress,
        }


class SessionRecordPatch(BaseModel):
    """Fields to change within the 24 h edit window (the others stay as written)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    regions: Labels | None = None
    muscles: Labels | None = None
    techniques: Labels | None = None
    intensity: Rating | None = None
    notes: Notes | None = None
    goal: OptionalGoal = None
    injury_date: PastDate = None
    progress: OptionalProgress = None


class AmendmentIn(BaseModel):
    """A dated addition to a session record."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    text: str = Field(min_length=1, max_length=NOTES_MAX)


class NewCourseIn(BaseModel):
    """A new course of treatment: its goal and, for an acute one, the injury's date."""

    model_config = ConfigDict(extra="forbid")

    goal: GoalName
    injury_date: PastDate = None


# --- check-ins ---------------------------------------------------------------------------------


def _known_red_flags(value: list[str]) -> list[str]:
    unknown = [code for code in value if code not in followup.RED_FLAGS]
    if unknown:
        raise ValueError(f"Unknown red flag; known: {', '.join(followup.RED_FLAGS)}.")
    # Stored in the checklist's order, so the alert and the page read the same.
    return [code for code in followup.RED_FLAGS if code in value]


#: Warning signs from the checklist: known codes only, each once, in the checklist's order.
RedFlags = Annotated[list[str], Field(max_length=len(followup.RED_FLAGS)),
                     AfterValidator(_known_red_flags)]


class CheckInIn(BaseModel):
    """The client's answers; ``kind`` 72h is the "still sore?" follow-up (soreness optional
    there, "still sore" required); the 24 h one needs soreness 0-10."""

    model_config = ConfigDict(extra="forbid")

    soreness: Rating | None = None
    # None or "" (a page with no box ticked) is no warning sign.
    red_flags: Annotated[RedFlags, BeforeValidator(lambda v: [] if v in (None, "") else v)
                         ] = Field(default_factory=list)
    progress: OptionalProgress = None
    kind: Literal["24h", "72h"] = "24h"
    still_sore: bool | None = None

    @classmethod
    def parse(cls, data: dict[str, Any]) -> CheckInIn:
        """Like :func:`parse`, plus the answer each kind requires (at its field)."""
        answers = parse(cls, data, message="Some answers are missing or invalid.")
        required = "soreness" if answers.kind == "24h" else "still_sore"
        if getattr(answers, required) is None:
            raise ValidationFailed("Some answers are missing or invalid.",
                                   fields={required: _FIELD_MESSAGES[required]})
        return answers


class ProblemReportIn(BaseModel):
    """A problem reported after a session: at least one warning sign from the checklist."""

    model_config = ConfigDict(extra="forbid")

    red_flags: RedFlags = Field(min_length=1)


# --- intake ------------------------------------------------------------------------------------


def _intake_fields() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for q in INTAKE_QUESTIONS:
        code = str(q["code"])
        if q["kind"] == "yesno":
            out[code] = (YesNo, Field(default=False, description=str(q["label"])))
        else:
            out[code] = (Annotated[str, BeforeValidator(_none_is_empty)],
                         Field(default="", max_length=INTAKE_TEXT_MAX,
                               description=str(q["label"])))
    return out


#: The intake answers: one yes/no per screening question (unanswered = no), one free text.
IntakeIn = create_model(  # type: ignore[call-overload]
    "IntakeIn", __config__=ConfigDict(extra="forbid", str_strip_whitespace=True),
    __doc__="Your answers to the health questions (yes/no, unanswered counts as no).",
    **_intake_fields(),
)


# --- follow-up override ------------------------------------------------------------------------


# earliest <= ideal <= latest: each date's predecessor, and what it says when out of order.
_WINDOW_ORDER = {
    "ideal": ("earliest", "The ideal date must not be before the earliest."),
    "latest": ("ideal", "The latest date must not be before the ideal."),
}


class OverrideIn(BaseModel):
    """The therapist's own follow-up window (dates YYYY-MM-DD, in order) and why."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    earliest: date
    ideal: date
    latest: date
    # One line, no control characters (the rule every reason follows, issue 9 item 10).
    reason: Annotated[str, AfterValidator(single_line)] = Field(min_length=1,
                                                                 max_length=REASON_MAX)

    @field_validator("ideal", "latest")
    @classmethod
    def _in_order(cls, value: date, info: ValidationInfo) -> date:
        # Each date against the one before it, when that one parsed.
        before, message = _WINDOW_ORDER[str(info.field_name)]
        previous = info.data.get(before)
        if previous is not None and value < previous:
            raise ValueError(message)
        return value

    def check_bounds(self, *, session_day: date, today: date) -> None:
        """The window starts no earlier than the session, and every date lies within
        today - 2 years .. today + 2 years (422 with the field otherwise)."""
        errors: dict[str, str] = {}
        low, high = today - WINDOW_PAST, today + WINDOW_FUTURE
        for name in ("earliest", "ideal", "latest"):
            value: date = getattr(self, name)
            if not low <= value <= high:
                errors[name] = (f"Choose a date between {low.isoformat()} and "
                                f"{high.isoformat()}.")
        if "earliest" not in errors and self.earliest < session_day:
            errors["earliest"] = "The window cannot start before the session."
        if errors:
            raise ValidationFailed("The window is incomplete or out of order.", fields=errors)
