"""Follow-up spacing recommender for trigger point sessions.

Given what happened in one session (its date, number in the course, goal, the therapist's
in-session intensity) and what the client reported afterwards (24 h soreness, the 72 h "still
sore?" answer, red flags, progress), recommend the window for the next visit:
``earliest <= ideal <= latest``, what to do (book / therapist_review / refer), how to set the
next session's pressure, and the reasons, each citing the rule that produced it.

The rules (R0-R4) and every default number come from the domain note "Follow-up spacing,
soreness and aftercare" (shared/notes/followup-spacing.md). The evidence
behind trigger point therapy is weak (2019 meta-analysis: no significant short-term pain
effect), so this is scheduling guidance the therapist can override, never a prescription, and
the safety answers (R0) always win.

The module is pure: standard library only, no clock. Dates are calendar dates in the clinic's
zone, so DST does not matter here; the 48 h minimum gap is enforced as whole days, and the
booking layer (R5) still has to keep the first slot at least 48 h after the session's end.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from dataclasses import fields
from datetime import date
from datetime import datetime
from datetime import timedelta
from enum import StrEnum
from types import MappingProxyType
from typing import TypeVar

__all__ = [
    "RED_FLAGS",
    "Action",
    "Band",
    "FollowupInput",
    "FollowupParams",
    "Goal",
    "IntensityAdvice",
    "Phase",
    "Progress",
    "Reason",
    "Recommendation",
    "intensity_band",
    "recommend",
    "validate_input",
]

E = TypeVar("E", bound=StrEnum)

RATING_MIN = 0
RATING_MAX = 10


class Goal(StrEnum):
    """Why the client comes: acute (onset < 6 weeks), chronic (>= 3 months) or maintenance."""

    ACUTE = "acute"
    CHRONIC = "chronic"
    MAINTENANCE = "maintenance"


class Progress(StrEnum):
    """The client's answer: how they are versus the start of the course."""

    BETTER = "better"
    SAME = "same"
    WORSE = "worse"


class Action(StrEnum):
    """What happens next: self-booking, a therapist look first, or medical referral."""

    BOOK = "book"
    THERAPIST_REVIEW = "therapist_review"
    REFER = "refer"


class IntensityAdvice(StrEnum):
    """How to set the next session's pressure."""

    REDUCE = "reduce"
    KEEP = "keep"
    KEEP_OR_PROGRESS = "keep_or_progress"


class Phase(StrEnum):
    """Where the client is in the course; it sets the ideal interval (R2)."""

    INITIAL = "initial"
    CONSOLIDATION = "consolidation"
    MAINTENANCE = "maintenance"


class Band(StrEnum):
    """Intensity band of the therapist's maximum in-session discomfort (0-10)."""

    LIGHT = "light"
    MODERATE = "moderate"
    DEEP = "deep"


# Stable code -> client-facing label, in the order the check-in shows them. Any one of them
# means R0 "refer": they are DVT/PE, cauda equina, nerve, bleeding, headache and infection signs.
RED_FLAGS: Mapping[str, str] = MappingProxyType(
    {
        "calf_pain_swelling": "Calf pain, swelling or warmth in one leg",
        "breathless_chest_pain": "Sudden breathlessness or chest pain",
        "saddle_numbness_bladder_bowel": (
            "Numbness in the groin or saddle area, or new bladder or bowel trouble"
        ),
        "new_numbness_weakness": "New numbness, tingling or weakness",
        "growing_bruise_swelling": "A bruise or swelling that keeps growing",
        "severe_headache": "Severe or worsening headache",
        "fever": "Fever",
    }
)


@dataclass(frozen=True)
class FollowupParams:
    """Every number the rules use, with the note's defaults (a clinic may override them).

    Soreness bands (R1, after Silbernagel's pain-monitoring model): low ``0..soreness_low_max``,
    moderate ``..soreness_moderate_max``, high ``..review_soreness - 1``, review from
    ``review_soreness``. Intensity bands: light ``<= intensity_light_max``, deep
    ``>= intensity_deep_min``, moderate in between.
    """

    # R1 recovery floor: days after the session, by next-day soreness band.
    soreness_low_max: int = 3
    soreness_moderate_max: int = 5
    floor_days_low: int = 2
    floor_days_moderate: int = 3
    floor_days_high: int = 4
    # Soreness not reported: deep work gets one more day (soreness mostly lasts <= 36 h after
    # massage, Cambron 2007, but deeper pressure hurts more).
    missing_floor_days_light_moderate: int = 2
    missing_floor_days_deep: int = 3
    intensity_light_max: int = 3
    intensity_deep_min: int = 6
    # Absolute floor without an explicit confirmation/override (R5): 48 h, as whole days.
    min_hours_without_override: int = 48
    # R0 safety gate.
    review_soreness: int = 8
    # DOMS-like soreness resolves within 5-7 days (Cheung 2003).
    review_floor_days: int = 7
    # PEACE & LOVE (BJSM 2020) and NHS soft-tissue advice: protect 1-3 days, no massage early.
    acute_protect_days: int = 3
    # Only informs the check-in worker: the 72 h question is asked from this soreness.
    still_sore_question_min_soreness: int = 4
    # R2 ideal interval by phase. Initial: the note says 3-4 days (about twice a week, Moraska
    # 2015/2017; Sherman 2014); 4 is the value that reproduces the note's worked examples
    # (Mon 1st -> Fri 5th) and keeps two visits a week on a fixed weekday pair.
    initial_interval_days: int = 4
    # Benefit plateaus at 60 min/week (Perlman 2012).
    consolidation_interval_days: int = 7
    # Convention, weak evidence: 14-28 days, default 21.
    maintenance_interval_days: int = 21
    # R3 soft deadline: latest = ideal + slack.
    initial_latest_slack_days: int = 4
    consolidation_latest_slack_days: int = 7
    maintenance_latest_slack_days: int = 14
    # Benefit was gone 16 weeks after an 8-week course (Perlman 2012): recall after 8 weeks.
    recall_weeks: int = 8
    # Phase limits: n <= initial_max_session initial, up to consolidation_max_session
    # consolidation, beyond that maintenance.
    initial_max_session: int = 6
    consolidation_max_session: int = 12
    # R4 progression.
    step_down_min_session: int = 4
    step_down_max_soreness: int = 3
    review_min_session: int = 6
    # NHS: failure to improve after about a month is a spinal red flag.
    review_weeks_without_improvement: int = 4

    def __post_init__(self) -> None:
        """Reject settings that would break the recommender's invariants."""
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"FollowupParams.{f.name} must be an int, got {value!r}")
            if value < 0:
                raise ValueError(f"FollowupParams.{f.name} must be >= 0, got {value}")
        # Monotone floors keep "more soreness never gives an earlier earliest" true.
        if not (
            self.floor_days_low
            <= self.floor_days_moderate
            <= self.floor_days_high
            <= self.review_floor_days
        ):
            raise ValueError(
                "floor days must not decrease with soreness: "
                "floor_days_low <= floor_days_moderate <= floor_days_high <= review_floor_days"
            )
        if not (
            self.soreness_low_max < self.soreness_moderate_max < self.review_soreness <= RATING_MAX
        ):
            raise ValueError(
                "soreness bands must satisfy soreness_low_max < soreness_moderate_max "
                f"< review_soreness <= {RATING_MAX}"
            )
        if not self.intensity_light_max < self.intensity_deep_min <= RATING_MAX:
            raise ValueError(
                f"intensity bands must satisfy intensity_light_max < intensity_deep_min "
                f"<= {RATING_MAX}"
            )
        if not 1 <= self.initial_max_session < self.consolidation_max_session:
            raise ValueError("phase limits must satisfy 1 <= initial < consolidation max session")
        for name in (
            "initial_interval_days",
            "consolidation_interval_days",
            "maintenance_interval_days",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"FollowupParams.{name} must be >= 1")

    @property
    def min_gap_days(self) -> int:
        """The 48 h minimum gap as whole calendar days (rounded up, never less)."""
        return math.ceil(self.min_hours_without_override / 24)


DEFAULT_PARAMS = FollowupParams()


def intensity_band(intensity: int, params: FollowupParams = DEFAULT_PARAMS) -> Band:
    """Band of a 0-10 in-session intensity: light <= 3, moderate 4-5, deep >= 6 by default."""
    _check_rating("intensity", intensity)
    if intensity <= params.intensity_light_max:
        return Band.LIGHT
    if intensity >= params.intensity_deep_min:
        return Band.DEEP
    return Band.MODERATE


@dataclass(frozen=True)
class FollowupInput:
    """Everything the recommender needs about one finished session.

    ``goal`` and ``progress`` accept their string values, and ``red_flags`` any iterable of
    codes; they are normalised on construction, and invalid values raise ``ValueError``.

    - ``session_date``: the session's calendar date in the clinic's zone (a ``date``, not a
      ``datetime``).
    - ``session_number``: 1-based number in the current course of treatment.
    - ``intensity``: the therapist's maximum in-session discomfort 0-10, or None.
    - ``soreness``: the client's 0-10 rating from the 24 h check-in, or None if missing.
    - ``still_sore_72h``: the 72 h answer (asked only when soreness >= 4), or None.
    - ``red_flags``: codes from ``RED_FLAGS``.
    - ``progress``: better / same / worse versus the start of the course, latest known, or None.
    - ``injury_date``: for acute goals, the injury's date (not after the session), or None.
    - ``previous_soreness``: earlier sessions' soreness in this course, oldest first, most
      recent last; None where that check-in is missing.
    - ``weeks_without_improvement``: weeks since progress last improved, or None if unknown.
    """

    session_date: date
    session_number: int
    goal: Goal
    intensity: int | None = None
    soreness: int | None = None
    still_sore_72h: bool | None = None
    red_flags: frozenset[str] = field(default_factory=frozenset)
    progress: Progress | None = None
    injury_date: date | None = None
    previous_soreness: tuple[int | None, ...] = ()
    weeks_without_improvement: int | None = None

    def __post_init__(self) -> None:
        """Normalise enum strings and flag collections, then validate."""
        # object.__setattr__ is the documented way to normalise fields of a frozen dataclass.
        object.__setattr__(self, "goal", _coerce_enum(Goal, self.goal, "goal"))
        if self.progress is not None:
            object.__setattr__(self, "progress", _coerce_enum(Progress, self.progress, "progress"))
        if isinstance(self.red_flags, str) or not isinstance(self.red_flags, Iterable):
            raise ValueError("red_flags must be a collection of red flag codes")
        object.__setattr__(self, "red_flags", frozenset(self.red_flags))
        if isinstance(self.previous_soreness, str) or not isinstance(
            self.previous_soreness, Iterable
        ):
            raise ValueError("previous_soreness must be a sequence of ratings")
        object.__setattr__(self, "previous_soreness", tuple(self.previous_soreness))
        validate_input(self)


@dataclass(frozen=True)
class Reason:
    """Why the recommendation looks the way it does: rule id, stable code, one sentence."""

    rule: str
    code: str
    text: str


@dataclass(frozen=True)
class Recommendation:
    """The recommender's answer.

    Dates are None exactly when ``action`` is ``refer``. ``max_next_band`` is set only when the
    advice is ``reduce``: the band the next session should stay within. ``recall_on`` is when
    a recall message goes out if the client has not come back.
    """

    earliest: date | None
    ideal: date | None
    latest: date | None
    action: Action
    intensity_advice: IntensityAdvice | None
    phase: Phase
    reasons: tuple[Reason, ...]
    max_next_band: Band | None = None
    recall_on: date | None = None


def validate_input(inp: FollowupInput) -> None:
    """Raise ``ValueError`` with a clear message if ``inp`` is out of range or inconsistent."""
    if isinstance(inp.session_date, datetime) or not isinstance(inp.session_date, date):
        raise ValueError("session_date must be a date in the clinic's zone, not a datetime")
    if isinstance(inp.session_number, bool) or not isinstance(inp.session_number, int):
        raise ValueError(f"session_number must be an int, got {inp.session_number!r}")
    if inp.session_number < 1:
        raise ValueError(f"session_number must be >= 1, got {inp.session_number}")
    if not isinstance(inp.goal, Goal):
        raise ValueError(f"goal must be one of {[g.value for g in Goal]}, got {inp.goal!r}")
    if inp.progress is not None and not isinstance(inp.progress, Progress):
        raise ValueError(f"progress must be one of {[p.value for p in Progress]} or None")
    if inp.intensity is not None:
        _check_rating("intensity", inp.intensity)
    if inp.soreness is not None:
        _check_rating("soreness", inp.soreness)
    for i, rating in enumerate(inp.previous_soreness):
        if rating is not None:
            _check_rating(f"previous_soreness[{i}]", rating)
    if inp.still_sore_72h is not None and not isinstance(inp.still_sore_72h, bool):
        raise ValueError("still_sore_72h must be True, False or None")
    unknown = sorted(str(code) for code in inp.red_flags if code not in RED_FLAGS)
    if unknown:
        raise ValueError(f"unknown red flag code(s) {unknown}; known: {list(RED_FLAGS)}")
    if inp.injury_date is not None:
        if isinstance(inp.injury_date, datetime) or not isinstance(inp.injury_date, date):
            raise ValueError("injury_date must be a date, not a datetime")
        if inp.injury_date > inp.session_date:
            raise ValueError("injury_date must not be after session_date")
    if inp.weeks_without_improvement is not None and (
        isinstance(inp.weeks_without_improvement, bool)
        or not isinstance(inp.weeks_without_improvement, int)
        or inp.weeks_without_improvement < 0
    ):
        raise ValueError("weeks_without_improvement must be an int >= 0 or None")


def recommend(inp: FollowupInput, params: FollowupParams = DEFAULT_PARAMS) -> Recommendation:
    """Recommend the next visit's window, action and intensity advice for one session.

    Rules in order (see the module docstring): R0 safety gate, R1 recovery floor, R2 ideal
    interval by phase, R3 latest and recall, R4 progression. R0 and R1 only ever push dates
    later; R2 never pulls ``ideal`` before ``earliest``.
    """
    validate_input(inp)
    reasons: list[Reason] = []
    phase = _phase(inp, params, reasons)

    # R0: any red flag ends here; no dates, so nothing can be booked before a clinician looks.
    # The phase (and its R4 reasons, if any) is kept for the therapist's view.
    if inp.red_flags:
        for code, label in RED_FLAGS.items():
            if code in inp.red_flags:
                reasons.append(
                    Reason(
                        "R0", f"red_flag:{code}", f"{label}: contact your doctor or urgent care."
                    )
                )
        return Recommendation(
            earliest=None,
            ideal=None,
            latest=None,
            action=Action.REFER,
            intensity_advice=None,
            phase=phase,
            reasons=_ordered(reasons),
        )

    action = Action.BOOK
    floor_days, advice = _recovery_floor(inp, params, reasons)

    # R0: severe or lasting soreness goes to the therapist and waits out DOMS (Cheung 2003).
    review_soreness = inp.soreness is not None and inp.soreness >= params.review_soreness
    if review_soreness or inp.still_sore_72h:
        action = Action.THERAPIST_REVIEW
        floor_days = max(floor_days, params.review_floor_days)
        # Soreness past 72 h outlasts what needling/massage normally causes
        # (Martin-Pintado-Zugasti 2018), so the dose was too high: same advice as >= 8.
        advice = IntensityAdvice.REDUCE
        if review_soreness:
            reasons.append(
                Reason(
                    "R0",
                    "review_soreness",
                    f"Soreness {inp.soreness}/10 is high: the therapist reviews, "
                    f"earliest {params.review_floor_days} days after the session.",
                )
            )
        if inp.still_sore_72h:
            reasons.append(
                Reason(
                    "R0",
                    "review_still_sore_72h",
                    f"Still sore after 72 hours: the therapist reviews, earliest "
                    f"{params.review_floor_days} days after the session.",
                )
            )

    # The 48 h floor holds whatever the clinic's settings (only an explicit override beats it).
    if floor_days < params.min_gap_days:
        floor_days = params.min_gap_days
        reasons.append(
            Reason(
                "R1",
                "min_gap",
                f"At least {params.min_hours_without_override} hours between sessions.",
            )
        )
    earliest = inp.session_date + timedelta(days=floor_days)

    # R0: a fresh injury is protected for 1-3 days, no massage early (PEACE & LOVE, BJSM 2020).
    if inp.goal is Goal.ACUTE and inp.injury_date is not None:
        protect_until = inp.injury_date + timedelta(days=params.acute_protect_days)
        if inp.session_date < protect_until and earliest < protect_until:
            earliest = protect_until
            reasons.append(
                Reason(
                    "R0",
                    "acute_protect",
                    f"Recent injury: no session before {params.acute_protect_days} days "
                    f"after it ({protect_until.isoformat()}).",
                )
            )

    # R2: ideal = max(earliest, session + interval); the recovery floor always wins.
    interval = _interval_days(phase, params)
    target = inp.session_date + timedelta(days=interval)
    ideal = max(earliest, target)
    reasons.append(
        Reason(
            "R2",
            f"interval_{phase.value}",
            f"{phase.value.capitalize()} phase: about every {interval} days.",
        )
    )
    if earliest > target:
        reasons.append(
            Reason(
                "R2", "floor_wins", "Recovery comes first: the ideal date moves to the earliest."
            )
        )

    # R3: a soft deadline for the rebooking prompt, then a recall (Perlman 2012).
    slack = _latest_slack_days(phase, params)
    latest = ideal + timedelta(days=slack)
    recall_on = inp.session_date + timedelta(weeks=params.recall_weeks)
    reasons.append(
        Reason("R3", f"latest_{phase.value}", f"Book by {slack} days after the ideal date.")
    )
    reasons.append(
        Reason(
            "R3",
            "recall",
            f"If there is no visit for {params.recall_weeks} weeks, the clinic sends a recall.",
        )
    )

    # R4: a course that is not helping goes back to the therapist. Maintenance clients are
    # expected to stay the same, so for them only "worse" counts as "not better".
    if _needs_progress_review(inp, params):
        action = Action.THERAPIST_REVIEW
        reasons.append(
            Reason(
                "R4",
                "review_not_better",
                f"Session {inp.session_number} and not better yet: the therapist reviews the plan.",
            )
        )
    if (
        inp.goal is not Goal.MAINTENANCE
        and inp.weeks_without_improvement is not None
        and inp.weeks_without_improvement >= params.review_weeks_without_improvement
    ):
        action = Action.THERAPIST_REVIEW
        reasons.append(
            Reason(
                "R4",
                "review_no_improvement",
                f"No improvement for {inp.weeks_without_improvement} weeks: "
                "the therapist reviews the plan.",
            )
        )

    return Recommendation(
        earliest=earliest,
        ideal=ideal,
        latest=latest,
        action=action,
        intensity_advice=advice,
        phase=phase,
        reasons=_ordered(reasons),
        max_next_band=_max_next_band(inp, params) if advice is IntensityAdvice.REDUCE else None,
        recall_on=recall_on,
    )


# --- helpers ---------------------------------------------------------------------------------


def _check_rating(name: str, value: object) -> None:
    """A 0-10 integer rating (bools are not ratings)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an int from {RATING_MIN} to {RATING_MAX}, got {value!r}")
    if not RATING_MIN <= value <= RATING_MAX:
        raise ValueError(f"{name} must be from {RATING_MIN} to {RATING_MAX}, got {value}")


def _coerce_enum(enum_cls: type[E], value: object, name: str) -> E:
    """``value`` as a member of ``enum_cls``, accepting the member's string value."""
    try:
        return enum_cls(value)
    except ValueError:
        allowed = [m.value for m in enum_cls]
        raise ValueError(f"{name} must be one of {allowed}, got {value!r}") from None


def _ordered(reasons: list[Reason]) -> tuple[Reason, ...]:
    """Reasons in rule order (R0 first), keeping insertion order within a rule."""
    return tuple(sorted(reasons, key=lambda r: r.rule))


def _recovery_floor(
    inp: FollowupInput, params: FollowupParams, reasons: list[Reason]
) -> tuple[int, IntensityAdvice | None]:
    """R1: days from the session to the earliest next visit, and the intensity advice."""
    s = inp.soreness
    if s is None:
        # No rating: deep work gets the extra day. Unknown intensity is treated as deep,
        # because safety answers win when we do not know.
        deep = inp.intensity is None or intensity_band(inp.intensity, params) is Band.DEEP
        days = params.missing_floor_days_deep if deep else params.missing_floor_days_light_moderate
        reasons.append(
            Reason("R1", "soreness_missing", f"No soreness rating: wait at least {days} days.")
        )
        return days, None
    if s <= params.soreness_low_max:
        days, advice, code = params.floor_days_low, IntensityAdvice.KEEP_OR_PROGRESS, "low"
        text = f"Soreness {s}/10 is mild: {days} days of recovery; pressure can stay or rise."
    elif s <= params.soreness_moderate_max:
        days, advice, code = params.floor_days_moderate, IntensityAdvice.KEEP, "moderate"
        text = f"Soreness {s}/10 is moderate: {days} days of recovery; keep the same pressure."
    elif s < params.review_soreness:
        days, advice, code = params.floor_days_high, IntensityAdvice.REDUCE, "high"
        text = f"Soreness {s}/10 is high: {days} days of recovery; lighter pressure next time."
    else:
        # The date comes from R0's review floor; R1 contributes the advice.
        days, advice, code = params.floor_days_high, IntensityAdvice.REDUCE, "severe"
        text = f"Soreness {s}/10 is severe: lighter pressure next time."
    reasons.append(Reason("R1", f"soreness_{code}", text))
    return days, advice


def _phase(inp: FollowupInput, params: FollowupParams, reasons: list[Reason]) -> Phase:
    """R2 phase table, adjusted by R4 (early step-down, back to initial when worse)."""
    n = inp.session_number
    if inp.goal is Goal.MAINTENANCE or n > params.consolidation_max_session:
        phase = Phase.MAINTENANCE
    elif n > params.initial_max_session:
        phase = Phase.CONSOLIDATION
    else:
        phase = Phase.INITIAL

    if inp.progress is Progress.WORSE:
        if phase is not Phase.INITIAL:
            reasons.append(
                Reason("R4", "back_to_initial", "Getting worse: back to the initial series.")
            )
        return Phase.INITIAL

    # Step down early: the client tolerates the work and is improving (R4).
    last_two = (inp.previous_soreness[-1], inp.soreness) if inp.previous_soreness else (None, None)
    if (
        phase is Phase.INITIAL
        and n >= params.step_down_min_session
        and inp.progress is Progress.BETTER
        and all(s is not None and s <= params.step_down_max_soreness for s in last_two)
    ):
        reasons.append(
            Reason(
                "R4",
                "step_down",
                "Improving with little soreness: moving to weekly sessions early.",
            )
        )
        return Phase.CONSOLIDATION
    return phase


def _needs_progress_review(inp: FollowupInput, params: FollowupParams) -> bool:
    """R4: n >= 6 and not better (None counts as not better; maintenance: only worse)."""
    if inp.session_number < params.review_min_session:
        return False
    if inp.goal is Goal.MAINTENANCE:
        return inp.progress is Progress.WORSE
    return inp.progress is not Progress.BETTER


def _interval_days(phase: Phase, params: FollowupParams) -> int:
    """R2 ideal interval for a phase."""
    return {
        Phase.INITIAL: params.initial_interval_days,
        Phase.CONSOLIDATION: params.consolidation_interval_days,
        Phase.MAINTENANCE: params.maintenance_interval_days,
    }[phase]


def _latest_slack_days(phase: Phase, params: FollowupParams) -> int:
    """R3 slack between ideal and latest for a phase."""
    return {
        Phase.INITIAL: params.initial_latest_slack_days,
        Phase.CONSOLIDATION: params.consolidation_latest_slack_days,
        Phase.MAINTENANCE: params.maintenance_latest_slack_days,
    }[phase]


def _max_next_band(inp: FollowupInput, params: FollowupParams) -> Band:
    """R1 "reduce one level (cap at moderate)": one band down; moderate if intensity unknown."""
    if inp.intensity is None:
        return Band.MODERATE
    band = intensity_band(inp.intensity, params)
    return {Band.DEEP: Band.MODERATE, Band.MODERATE: Band.LIGHT, Band.LIGHT: Band.LIGHT}[band]
