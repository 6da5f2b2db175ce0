"""What the care inputs may hold: limits, choices, the intake questionnaire, validators."""

from __future__ import annotations

import re
from collections.abc import Iterable
from collections.abc import Mapping
from datetime import date
from datetime import datetime
from typing import Any

from clinic_app.errors import ValidationFailed
from clinic_app.scheduling import followup

GOALS = tuple(g.value for g in followup.Goal)


PROGRESS = tuple(p.value for p in followup.Progress)


LIST_MAX_ITEMS = 30


LIST_ITEM_MAX = 80


NOTES_MAX = 5000


REASON_MAX = 1000


INTAKE_TEXT_MAX = 2000


RECORD_FIELDS = ("regions", "muscles", "techniques", "intensity", "notes", "goal",
                 "injury_date", "progress")


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


_QUESTIONS = {q["code"]: q for q in INTAKE_QUESTIONS}


_YES = {"y", "yes", "true", "on", "1"}


_NO = {"n", "no", "false", "off", "0", ""}


def as_int(value: Any, name: str, errors: dict[str, str], *, required: bool,
            lo: int = 0, hi: int = 10) -> int | None:
    if value is None or value == "":
        if required:
            errors[name] = f"Enter a number from {lo} to {hi}."
        return None
    if isinstance(value, bool):
        errors[name] = f"Enter a number from {lo} to {hi}."
        return None
    if isinstance(value, str):
        if not re.fullmatch(r"\s*-?\d{1,3}\s*", value):
            errors[name] = f"Enter a number from {lo} to {hi}."
            return None
        value = int(value)
    if not isinstance(value, int) or not lo <= value <= hi:
        errors[name] = f"Enter a number from {lo} to {hi}."
        return None
    return value


def as_choice(value: Any, name: str, choices: tuple[str, ...], errors: dict[str, str], *,
               required: bool) -> str | None:
    if value is None or value == "":
        if required:
            errors[name] = f"Choose one of: {', '.join(choices)}."
        return None
    if not isinstance(value, str) or value not in choices:
        errors[name] = f"Choose one of: {', '.join(choices)}."
        return None
    return value


def as_date(value: Any, name: str, errors: dict[str, str]) -> date | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        errors[name] = "Enter a date (YYYY-MM-DD)."
        return None
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    errors[name] = "Enter a date (YYYY-MM-DD)."
    return None


def as_list(value: Any, name: str, errors: dict[str, str]) -> list[str]:
    """A list of short labels; a string is split on commas and new lines (form input)."""
    if value is None or value == "":
        return []
    if isinstance(value, str):
        value = re.split(r"[,\n]", value)
    if not isinstance(value, (list, tuple)):
        errors[name] = "Send a list of short texts."
        return []
    out: list[str] = []
    for item in value:
        if not isinstance(item, str):
            errors[name] = "Send a list of short texts."
            return []
        item = " ".join(item.split())
        if not item:
            continue
        if len(item) > LIST_ITEM_MAX:
            errors[name] = f"Each entry must be at most {LIST_ITEM_MAX} characters."
            return []
        if item not in out:
            out.append(item)
    if len(out) > LIST_MAX_ITEMS:
        errors[name] = f"At most {LIST_MAX_ITEMS} entries."
        return []
    return out


def as_text(value: Any, name: str, errors: dict[str, str], limit: int) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        errors[name] = "Send text."
        return ""
    value = value.strip()
    if len(value) > limit:
        errors[name] = f"At most {limit} characters."
        return ""
    return value


def red_flag_codes(value: Any, errors: dict[str, str], name: str = "red_flags") -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, str) or not isinstance(value, Iterable):
        errors[name] = "Send a list of red flag codes."
        return []
    flags: list[str] = []
    for code in value:
        if not isinstance(code, str) or code not in followup.RED_FLAGS:
            errors[name] = f"Unknown red flag; known: {', '.join(followup.RED_FLAGS)}."
            return []
        if code not in flags:
            flags.append(code)
    # Stored in the checklist's order, so the alert and the page read the same.
    return [code for code in followup.RED_FLAGS if code in flags]


def clean_record(raw: Mapping[str, Any], *, default_goal: str | None,
                  session_day: date) -> dict[str, Any]:
    """Validate a session record; every problem is reported next to its field."""
    if not isinstance(raw, Mapping):
        raise ValidationFailed("Send the session record as an object.")
    errors: dict[str, str] = {}
    unknown = sorted(set(raw) - set(RECORD_FIELDS))
    for name in unknown:
        errors[str(name)] = "Unknown field."
    out: dict[str, Any] = {
        "regions": as_list(raw.get("regions"), "regions", errors),
        "muscles": as_list(raw.get("muscles"), "muscles", errors),
        "techniques": as_list(raw.get("techniques"), "techniques", errors),
        "intensity": as_int(raw.get("intensity"), "intensity", errors, required=True),
        "notes": as_text(raw.get("notes"), "notes", errors, NOTES_MAX),
        "progress": as_choice(raw.get("progress"), "progress", PROGRESS, errors,
                               required=False),
    }
    goal = raw.get("goal") or default_goal
    out["goal"] = as_choice(goal, "goal", GOALS, errors, required=True)
    injury = as_date(raw.get("injury_date"), "injury_date", errors)
    if injury is not None and injury > session_day:
        errors["injury_date"] = "The injury date cannot be after the session."
    # An injury date only matters for an acute goal (R0 protection); otherwise it is dropped.
    out["injury_date"] = injury if out["goal"] == "acute" else None
    if errors:
        raise ValidationFailed("Some fields of the session record are missing or invalid.",
                               fields=errors)
    return out


def clean_answers(answers: Any) -> dict[str, Any]:
    if not isinstance(answers, Mapping):
        raise ValidationFailed("Send the answers as an object.")
    errors: dict[str, str] = {}
    clean: dict[str, Any] = {}
    for name in answers:
        if name not in _QUESTIONS:
            errors[str(name)] = "Unknown question."
    for q in INTAKE_QUESTIONS:
        code = str(q["code"])
        value = answers.get(code)
        if q["kind"] == "yesno":
            if isinstance(value, str) and value.strip().lower() in _YES | _NO:
                value = value.strip().lower() in _YES
            if value is None:
                value = False  # an unanswered question counts as "no"
            if not isinstance(value, bool):
                errors[code] = "Answer yes or no."
                continue
            clean[code] = value
        else:
            clean[code] = as_text(value, code, errors, INTAKE_TEXT_MAX)
    if errors:
        raise ValidationFailed("Some answers are invalid.", fields=errors)
    return clean
