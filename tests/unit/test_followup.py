"""Tests for the follow-up spacing recommender (shared/notes/followup-spacing.md, R0-R4)."""

from __future__ import annotations

import ast
import dataclasses
import sys
from datetime import date
from datetime import datetime
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from clinic_app.scheduling import followup
from clinic_app.scheduling.followup import RED_FLAGS
from clinic_app.scheduling.followup import Action
from clinic_app.scheduling.followup import Band
from clinic_app.scheduling.followup import FollowupInput
from clinic_app.scheduling.followup import FollowupParams
from clinic_app.scheduling.followup import Goal
from clinic_app.scheduling.followup import IntensityAdvice
from clinic_app.scheduling.followup import Phase
from clinic_app.scheduling.followup import Progress
from clinic_app.scheduling.followup import Recommendation
from clinic_app.scheduling.followup import intensity_band
from clinic_app.scheduling.followup import recommend
from clinic_app.scheduling.followup import validate_input

# The note's worked examples use "session Monday the 1st"; April 2024 starts on a Monday.
MON_1 = date(2024, 4, 1)


def day(n: int) -> date:
    """The n-th of the worked examples' month."""
    return MON_1.replace(day=n)


def plus(days: int, start: date = MON_1) -> date:
    return start + timedelta(days=days)


def inp(**kw: object) -> FollowupInput:
    """A chronic session on Monday the 1st unless overridden."""
    base: dict[str, object] = {"session_date": MON_1, "session_number": 2, "goal": Goal.CHRONIC}
    base.update(kw)
    return FollowupInput(**base)  # type: ignore[arg-type]


def codes(rec: Recommendation) -> set[tuple[str, str]]:
    return {(r.rule, r.code) for r in rec.reasons}


# --- the note's worked examples ------------------------------------------------------------


def test_monday_the_first_is_a_monday() -> None:
    assert MON_1.weekday() == 0


def test_example_chronic_n2_deep_soreness4() -> None:
    rec = recommend(inp(session_number=2, intensity=7, soreness=4))
    assert (rec.earliest, rec.ideal, rec.latest) == (day(4), day(5), day(9))
    assert rec.earliest.strftime("%a") == "Thu"
    assert rec.ideal.strftime("%a") == "Fri"
    assert rec.latest.strftime("%a") == "Tue"
    assert rec.intensity_advice is IntensityAdvice.KEEP
    assert rec.action is Action.BOOK
    assert rec.phase is Phase.INITIAL


def test_example_chronic_n8_better_soreness2() -> None:
    rec = recommend(inp(session_number=8, progress=Progress.BETTER, soreness=2))
    assert (rec.earliest, rec.ideal, rec.latest) == (day(3), day(8), day(15))
    assert [d.strftime("%a") for d in (rec.earliest, rec.ideal, rec.latest)] == [
        "Wed",
        "Mon",
        "Mon",
    ]
    assert rec.intensity_advice is IntensityAdvice.KEEP_OR_PROGRESS
    assert rec.phase is Phase.CONSOLIDATION
    assert rec.action is Action.BOOK


def test_example_chronic_n3_soreness7() -> None:
    rec = recommend(inp(session_number=3, soreness=7))
    assert (rec.earliest, rec.ideal, rec.latest) == (day(5), day(5), day(9))
    assert rec.intensity_advice is IntensityAdvice.REDUCE
    assert rec.action is Action.BOOK


@pytest.mark.parametrize("flag", list(RED_FLAGS))
def test_example_any_red_flag_refers_without_dates(flag: str) -> None:
    rec = recommend(inp(soreness=1, red_flags=frozenset({flag})))
    assert (rec.earliest, rec.ideal, rec.latest) == (None, None, None)
    assert rec.action is Action.REFER
    assert rec.intensity_advice is None
    assert rec.recall_on is None
    assert [(r.rule, r.code) for r in rec.reasons] == [("R0", f"red_flag:{flag}")]
    assert RED_FLAGS[flag] in rec.reasons[0].text


# --- R0 safety gate -------------------------------------------------------------------------


def test_red_flags_table_covers_the_note() -> None:
    assert list(RED_FLAGS) == [
        "calf_pain_swelling",
        "breathless_chest_pain",
        "saddle_numbness_bladder_bowel",
        "new_numbness_weakness",
        "growing_bruise_swelling",
        "severe_headache",
        "fever",
    ]
    assert all(label.strip() for label in RED_FLAGS.values())
    with pytest.raises(TypeError):
        RED_FLAGS["new"] = "x"  # type: ignore[index]


def test_several_red_flags_give_one_reason_each_in_table_order() -> None:
    rec = recommend(inp(red_flags=frozenset({"fever", "calf_pain_swelling"})))
    assert [r.code for r in rec.reasons] == ["red_flag:calf_pain_swelling", "red_flag:fever"]


def test_red_flag_beats_severe_soreness_and_acute_injury() -> None:
    rec = recommend(
        inp(
            goal=Goal.ACUTE,
            injury_date=MON_1,
            soreness=10,
            still_sore_72h=True,
            red_flags=frozenset({"severe_headache"}),
        )
    )
    assert rec.action is Action.REFER
    assert rec.earliest is None
    assert {r.rule for r in rec.reasons} == {"R0"}


@pytest.mark.parametrize("soreness", [8, 9, 10])
def test_review_soreness_gives_review_and_a_week(soreness: int) -> None:
    rec = recommend(inp(session_number=1, soreness=soreness, intensity=7))
    assert rec.action is Action.THERAPIST_REVIEW
    assert rec.earliest == plus(7)
    # The initial interval (4 days) is shorter than the floor: ideal moves to the earliest.
    assert rec.ideal == plus(7)
    assert rec.latest == plus(11)
    assert rec.intensity_advice is IntensityAdvice.REDUCE
    assert rec.max_next_band is Band.MODERATE
    assert ("R0", "review_soreness") in codes(rec)
    assert ("R2", "floor_wins") in codes(rec)


def test_soreness_just_below_review_is_bookable() -> None:
    rec = recommend(inp(session_number=1, soreness=7))
    assert rec.action is Action.BOOK
    assert rec.earliest == plus(4)


def test_still_sore_at_72h_gives_review_and_a_week() -> None:
    rec = recommend(inp(soreness=4, still_sore_72h=True))
    assert rec.action is Action.THERAPIST_REVIEW
    assert rec.earliest == plus(7)
    assert rec.intensity_advice is IntensityAdvice.REDUCE
    assert ("R0", "review_still_sore_72h") in codes(rec)


def test_not_sore_at_72h_changes_nothing() -> None:
    assert recommend(inp(soreness=4, still_sore_72h=False)) == recommend(inp(soreness=4))


def test_still_sore_is_honoured_even_without_a_24h_rating() -> None:
    rec = recommend(inp(soreness=None, still_sore_72h=True))
    assert rec.action is Action.THERAPIST_REVIEW
    assert rec.earliest == plus(7)


def test_acute_injury_on_session_day_is_protected_three_days() -> None:
    rec = recommend(inp(goal=Goal.ACUTE, injury_date=MON_1, soreness=1, session_number=1))
    # R1 alone would allow the 3rd; the injury keeps the client away until the 4th.
    assert rec.earliest == plus(3)
    assert rec.ideal == plus(4)
    assert ("R0", "acute_protect") in codes(rec)


def test_acute_protection_does_not_apply_when_floor_is_later_anyway() -> None:
    rec = recommend(inp(goal=Goal.ACUTE, injury_date=plus(-1), soreness=1))
    assert rec.earliest == plus(2)  # injury + 3 == session + 2: nothing moves
    assert ("R0", "acute_protect") not in codes(rec)


def test_acute_injury_three_or_more_days_ago_is_not_protected() -> None:
    rec = recommend(inp(goal=Goal.ACUTE, injury_date=plus(-3), soreness=0))
    assert rec.earliest == plus(2)
    assert all(r.code != "acute_protect" for r in rec.reasons)


def test_injury_date_is_ignored_for_chronic_goal() -> None:
    rec = recommend(inp(goal=Goal.CHRONIC, injury_date=MON_1, soreness=0))
    assert rec.earliest == plus(2)


def test_acute_protection_days_are_a_parameter() -> None:
    params = FollowupParams(acute_protect_days=6)
    rec = recommend(inp(goal=Goal.ACUTE, injury_date=MON_1, soreness=0), params)
    assert rec.earliest == plus(6)
    assert rec.ideal == plus(6)
    assert rec.latest == plus(10)


# --- R1 recovery floor ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("soreness", "days", "advice", "code"),
    [
        (0, 2, IntensityAdvice.KEEP_OR_PROGRESS, "soreness_low"),
        (3, 2, IntensityAdvice.KEEP_OR_PROGRESS, "soreness_low"),
        (4, 3, IntensityAdvice.KEEP, "soreness_moderate"),
        (5, 3, IntensityAdvice.KEEP, "soreness_moderate"),
        (6, 4, IntensityAdvice.REDUCE, "soreness_high"),
        (7, 4, IntensityAdvice.REDUCE, "soreness_high"),
    ],
)
def test_recovery_floor_table(soreness: int, days: int, advice: IntensityAdvice, code: str) -> None:
    rec = recommend(inp(session_number=1, soreness=soreness, intensity=5))
    assert rec.earliest == plus(days)
    assert rec.intensity_advice is advice
    assert ("R1", code) in codes(rec)
    assert rec.action is Action.BOOK


@pytest.mark.parametrize(
    ("intensity", "days"), [(0, 2), (3, 2), (4, 2), (5, 2), (6, 3), (10, 3), (None, 3)]
)
def test_missing_soreness_floor_by_intensity(intensity: int | None, days: int) -> None:
    rec = recommend(inp(session_number=1, soreness=None, intensity=intensity))
    assert rec.earliest == plus(days)
    assert rec.intensity_advice is None
    assert ("R1", "soreness_missing") in codes(rec)


@pytest.mark.parametrize(
    ("intensity", "band"),
    [(10, Band.MODERATE), (6, Band.MODERATE), (5, Band.LIGHT), (4, Band.LIGHT), (2, Band.LIGHT)],
)
def test_reduce_goes_one_band_down_capped_at_moderate(intensity: int, band: Band) -> None:
    assert recommend(inp(soreness=6, intensity=intensity)).max_next_band is band


def test_reduce_with_unknown_intensity_caps_at_moderate() -> None:
    assert recommend(inp(soreness=6)).max_next_band is Band.MODERATE


def test_no_band_cap_unless_reducing() -> None:
    assert recommend(inp(soreness=4, intensity=8)).max_next_band is None


def test_48h_floor_holds_even_if_settings_allow_less() -> None:
    params = FollowupParams(floor_days_low=1, missing_floor_days_light_moderate=1)
    rec = recommend(inp(soreness=0), params)
    assert rec.earliest == plus(2)
    assert ("R1", "min_gap") in codes(rec)


def test_minimum_gap_is_a_parameter_rounded_up_to_days() -> None:
    assert FollowupParams(min_hours_without_override=49).min_gap_days == 3
    rec = recommend(inp(soreness=0), FollowupParams(min_hours_without_override=72))
    assert rec.earliest == plus(3)
    rec = recommend(
        inp(soreness=0), FollowupParams(floor_days_low=1, min_hours_without_override=24)
    )
    assert rec.earliest == plus(1)


@pytest.mark.parametrize(
    ("value", "band"),
    [(0, Band.LIGHT), (3, Band.LIGHT), (4, Band.MODERATE), (5, Band.MODERATE), (6, Band.DEEP)],
)
def test_intensity_band(value: int, band: Band) -> None:
    assert intensity_band(value) is band
    assert intensity_band(value) == band.value


def test_intensity_band_follows_params() -> None:
    params = FollowupParams(intensity_light_max=2, intensity_deep_min=8)
    assert intensity_band(3, params) is Band.MODERATE
    assert intensity_band(7, params) is Band.MODERATE
    assert intensity_band(8, params) is Band.DEEP


@pytest.mark.parametrize("value", [-1, 11, 4.5, True, None, "5"])
def test_intensity_band_rejects_non_ratings(value: object) -> None:
    with pytest.raises(ValueError, match="intensity"):
        intensity_band(value)  # type: ignore[arg-type]


# --- R2 ideal interval / R3 latest ----------------------------------------------------------


@pytest.mark.parametrize(
    ("goal", "n", "phase", "ideal", "latest"),
    [
        (Goal.CHRONIC, 1, Phase.INITIAL, 4, 8),
        (Goal.ACUTE, 6, Phase.INITIAL, 4, 8),
        (Goal.CHRONIC, 7, Phase.CONSOLIDATION, 7, 14),
        (Goal.ACUTE, 12, Phase.CONSOLIDATION, 7, 14),
        (Goal.CHRONIC, 13, Phase.MAINTENANCE, 21, 35),
        (Goal.MAINTENANCE, 1, Phase.MAINTENANCE, 21, 35),
    ],
)
def test_ideal_and_latest_by_phase(
    goal: Goal, n: int, phase: Phase, ideal: int, latest: int
) -> None:
    rec = recommend(inp(goal=goal, session_number=n, soreness=0, progress=Progress.BETTER))
    assert rec.phase is phase
    assert rec.earliest == plus(2)
    assert rec.ideal == plus(ideal)
    assert rec.latest == plus(latest)
    assert ("R2", f"interval_{phase.value}") in codes(rec)
    assert ("R3", f"latest_{phase.value}") in codes(rec)
    assert ("R2", "floor_wins") not in codes(rec)


def test_maintenance_interval_is_configurable() -> None:
    params = FollowupParams(maintenance_interval_days=28, maintenance_latest_slack_days=7)
    rec = recommend(inp(goal=Goal.MAINTENANCE, soreness=0), params)
    assert (rec.ideal, rec.latest) == (plus(28), plus(35))


def test_recovery_floor_wins_over_interval() -> None:
    params = FollowupParams(initial_interval_days=3)
    rec = recommend(inp(session_number=1, soreness=6), params)
    assert rec.earliest == rec.ideal == plus(4)
    assert rec.latest == plus(8)
    assert ("R2", "floor_wins") in codes(rec)


def test_recall_after_eight_weeks() -> None:
    rec = recommend(inp(soreness=2))
    assert rec.recall_on == plus(56)
    assert ("R3", "recall") in codes(rec)
    assert recommend(inp(soreness=2), FollowupParams(recall_weeks=6)).recall_on == plus(42)


# --- R4 progression -------------------------------------------------------------------------


def test_step_down_early_when_tolerated_and_better() -> None:
    rec = recommend(
        inp(session_number=4, soreness=2, previous_soreness=(5, 3), progress=Progress.BETTER)
    )
    assert rec.phase is Phase.CONSOLIDATION
    assert (rec.earliest, rec.ideal, rec.latest) == (plus(2), plus(7), plus(14))
    assert ("R4", "step_down") in codes(rec)


@pytest.mark.parametrize(
    "changes",
    [
        {"session_number": 3},
        {"previous_soreness": (2, 4)},
        {"soreness": 4},
        {"soreness": None},
        {"previous_soreness": ()},
        {"previous_soreness": (2, None)},
        {"progress": Progress.SAME},
        {"progress": None},
    ],
)
def test_no_step_down_without_all_conditions(changes: dict[str, object]) -> None:
    base = {
        "session_number": 4,
        "soreness": 2,
        "previous_soreness": (1, 3),
        "progress": Progress.BETTER,
    }
    base.update(changes)
    rec = recommend(inp(**base))
    assert rec.phase is Phase.INITIAL
    assert all(r.code != "step_down" for r in rec.reasons)


@pytest.mark.parametrize("n", [7, 12, 13, 30])
def test_back_to_initial_when_worse(n: int) -> None:
    rec = recommend(inp(session_number=n, soreness=1, progress=Progress.WORSE))
    assert rec.phase is Phase.INITIAL
    assert rec.ideal == plus(4)
    assert ("R4", "back_to_initial") in codes(rec)
    # n >= 6 and worse is also "not better": the therapist reviews.
    assert rec.action is Action.THERAPIST_REVIEW


def test_worse_early_in_the_course_stays_initial_and_bookable() -> None:
    rec = recommend(inp(session_number=3, soreness=1, progress=Progress.WORSE))
    assert rec.phase is Phase.INITIAL
    assert rec.action is Action.BOOK
    assert ("R4", "back_to_initial") not in codes(rec)


@pytest.mark.parametrize(
    ("n", "progress", "action"),
    [
        (6, Progress.SAME, Action.THERAPIST_REVIEW),
        (6, Progress.WORSE, Action.THERAPIST_REVIEW),
        (6, None, Action.THERAPIST_REVIEW),
        (6, Progress.BETTER, Action.BOOK),
        (5, Progress.SAME, Action.BOOK),
        (10, Progress.SAME, Action.THERAPIST_REVIEW),
    ],
)
def test_review_when_not_better_by_session_six(
    n: int, progress: Progress | None, action: Action
) -> None:
    rec = recommend(inp(session_number=n, soreness=2, progress=progress))
    assert rec.action is action
    assert (("R4", "review_not_better") in codes(rec)) is (action is Action.THERAPIST_REVIEW)
    # Review does not move dates.
    assert rec.earliest == plus(2)


def test_maintenance_goal_reviews_only_when_worse() -> None:
    same = recommend(inp(goal=Goal.MAINTENANCE, session_number=10, progress=Progress.SAME))
    assert same.action is Action.BOOK
    worse = recommend(inp(goal=Goal.MAINTENANCE, session_number=10, progress=Progress.WORSE))
    assert worse.action is Action.THERAPIST_REVIEW
    assert worse.phase is Phase.INITIAL


@pytest.mark.parametrize(("weeks", "action"), [(3, Action.BOOK), (4, Action.THERAPIST_REVIEW)])
def test_review_after_four_weeks_without_improvement(weeks: int, action: Action) -> None:
    rec = recommend(inp(session_number=2, soreness=2, weeks_without_improvement=weeks))
    assert rec.action is action
    assert (("R4", "review_no_improvement") in codes(rec)) is (action is Action.THERAPIST_REVIEW)


def test_weeks_without_improvement_ignored_for_maintenance_goal() -> None:
    rec = recommend(inp(goal=Goal.MAINTENANCE, soreness=2, weeks_without_improvement=12))
    assert rec.action is Action.BOOK


# --- reasons --------------------------------------------------------------------------------


def test_reasons_cite_rules_in_order_and_cover_every_rule_used() -> None:
    rec = recommend(
        inp(
            goal=Goal.ACUTE,
            injury_date=MON_1,
            session_number=8,
            soreness=2,
            progress=Progress.WORSE,
        )
    )
    rules = [r.rule for r in rec.reasons]
    assert rules == sorted(rules)
    assert {"R0", "R1", "R2", "R3", "R4"} <= set(rules)
    assert all(r.text and r.code for r in rec.reasons)


# --- input handling -------------------------------------------------------------------------


def test_strings_and_lists_are_normalised() -> None:
    i = FollowupInput(
        session_date=MON_1,
        session_number=1,
        goal="acute",  # type: ignore[arg-type]
        progress="better",  # type: ignore[arg-type]
        red_flags=["fever"],  # type: ignore[arg-type]
        previous_soreness=[1, None],  # type: ignore[arg-type]
    )
    assert i.goal is Goal.ACUTE
    assert i.progress is Progress.BETTER
    assert i.red_flags == frozenset({"fever"})
    assert i.previous_soreness == (1, None)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"soreness": 11}, "soreness"),
        ({"soreness": -1}, "soreness"),
        ({"soreness": 3.5}, "soreness"),
        ({"soreness": True}, "soreness"),
        ({"intensity": 11}, "intensity"),
        ({"session_number": 0}, "session_number"),
        ({"session_number": -2}, "session_number"),
        ({"session_number": 1.0}, "session_number"),
        ({"red_flags": frozenset({"headache"})}, "unknown red flag"),
        ({"red_flags": "fever"}, "red_flags"),
        ({"goal": "relax"}, "goal"),
        ({"progress": "fine"}, "progress"),
        ({"session_date": datetime(2024, 4, 1, 10, 0)}, "session_date"),
        ({"session_date": "2024-04-01"}, "session_date"),
        ({"injury_date": plus(1)}, "injury_date"),
        ({"previous_soreness": (3, 12)}, r"previous_soreness\[1\]"),
        ({"weeks_without_improvement": -1}, "weeks_without_improvement"),
        ({"still_sore_72h": "yes"}, "still_sore_72h"),
    ],
)
def test_invalid_input_raises_value_error(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        inp(**changes)


def test_validate_input_accepts_a_valid_input() -> None:
    validate_input(inp(soreness=10, intensity=0, previous_soreness=(0, None, 10)))


@pytest.mark.parametrize(
    "changes",
    [
        {"floor_days_moderate": 1},
        {"floor_days_high": 8},
        {"soreness_moderate_max": 2},
        {"review_soreness": 11},
        {"intensity_deep_min": 3},
        {"consolidation_max_session": 6},
        {"initial_interval_days": 0},
        {"recall_weeks": -1},
        {"recall_weeks": 8.0},
    ],
)
def test_inconsistent_params_raise_value_error(changes: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        FollowupParams(**changes)  # type: ignore[arg-type]


def test_default_params_match_the_note() -> None:
    p = FollowupParams()
    assert (p.floor_days_low, p.floor_days_moderate, p.floor_days_high) == (2, 3, 4)
    assert (p.missing_floor_days_light_moderate, p.missing_floor_days_deep) == (2, 3)
    assert (p.intensity_light_max, p.intensity_deep_min) == (3, 6)
    assert (p.review_soreness, p.review_floor_days, p.acute_protect_days) == (8, 7, 3)
    assert (p.initial_interval_days, p.consolidation_interval_days) == (4, 7)
    assert p.maintenance_interval_days == 21
    assert (
        p.initial_latest_slack_days,
        p.consolidation_latest_slack_days,
        p.maintenance_latest_slack_days,
    ) == (4, 7, 14)
    assert (p.initial_max_session, p.consolidation_max_session) == (6, 12)
    assert (p.step_down_min_session, p.step_down_max_soreness, p.review_min_session) == (4, 3, 6)
    assert (p.recall_weeks, p.min_hours_without_override) == (8, 48)
    assert p.review_weeks_without_improvement == 4


def test_module_is_pure() -> None:
    """Standard library only, and no wall-clock reads."""
    tree = ast.parse(Path(followup.__file__).read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots = [a.name.split(".")[0] for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            roots = [(node.module or "").split(".")[0]]
        else:
            roots = []
        for root in roots:
            assert root == "__future__" or root in sys.stdlib_module_names, root
        if isinstance(node, ast.Attribute):
            assert node.attr not in {"now", "today", "utcnow", "time"}, node.attr


# --- properties -----------------------------------------------------------------------------

ratings = st.none() | st.integers(0, 10)


@st.composite
def inputs(draw: st.DrawFn, *, red_flags: bool | None = None) -> FollowupInput:
    session_date = draw(st.dates(date(2020, 1, 1), date(2035, 12, 31)))
    goal = draw(st.sampled_from(Goal))
    injury = draw(st.none() | st.integers(0, 60))
    if red_flags is None:
        flags = draw(st.frozensets(st.sampled_from(list(RED_FLAGS))))
    elif red_flags:
        flags = draw(st.frozensets(st.sampled_from(list(RED_FLAGS)), min_size=1))
    else:
        flags = frozenset()
    return FollowupInput(
        session_date=session_date,
        session_number=draw(st.integers(1, 40)),
        goal=goal,
        intensity=draw(ratings),
        soreness=draw(ratings),
        still_sore_72h=draw(st.none() | st.booleans()),
        red_flags=flags,
        progress=draw(st.none() | st.sampled_from(Progress)),
        injury_date=None if injury is None else session_date - timedelta(days=injury),
        previous_soreness=tuple(draw(st.lists(ratings, max_size=5))),
        weeks_without_improvement=draw(st.none() | st.integers(0, 20)),
    )


@st.composite
def params(draw: st.DrawFn) -> FollowupParams:
    floors = sorted(draw(st.lists(st.integers(0, 14), min_size=4, max_size=4)))
    low_max = draw(st.integers(0, 7))
    mod_max = draw(st.integers(low_max + 1, 8))
    review = draw(st.integers(mod_max + 1, 10))
    light_max = draw(st.integers(0, 9))
    initial_max = draw(st.integers(1, 10))
    return FollowupParams(
        soreness_low_max=low_max,
        soreness_moderate_max=mod_max,
        review_soreness=review,
        floor_days_low=floors[0],
        floor_days_moderate=floors[1],
        floor_days_high=floors[2],
        review_floor_days=floors[3],
        missing_floor_days_light_moderate=draw(st.integers(0, 7)),
        missing_floor_days_deep=draw(st.integers(0, 7)),
        intensity_light_max=light_max,
        intensity_deep_min=draw(st.integers(light_max + 1, 10)),
        min_hours_without_override=draw(st.integers(0, 96)),
        acute_protect_days=draw(st.integers(0, 7)),
        initial_interval_days=draw(st.integers(1, 7)),
        consolidation_interval_days=draw(st.integers(1, 14)),
        maintenance_interval_days=draw(st.integers(14, 28)),
        initial_latest_slack_days=draw(st.integers(0, 7)),
        consolidation_latest_slack_days=draw(st.integers(0, 14)),
        maintenance_latest_slack_days=draw(st.integers(0, 28)),
        initial_max_session=initial_max,
        consolidation_max_session=draw(st.integers(initial_max + 1, 20)),
    )


any_params = st.just(FollowupParams()) | params()


@settings(max_examples=300)
@given(inputs(red_flags=False), any_params)
def test_property_dates_are_ordered(i: FollowupInput, p: FollowupParams) -> None:
    rec = recommend(i, p)
    assert rec.action is not Action.REFER
    assert rec.earliest is not None and rec.ideal is not None and rec.latest is not None
    assert rec.earliest <= rec.ideal <= rec.latest


@settings(max_examples=300)
@given(inputs(red_flags=False), any_params)
def test_property_never_earlier_than_48h(i: FollowupInput, p: FollowupParams) -> None:
    rec = recommend(i, p)
    assert rec.earliest is not None
    assert rec.earliest >= i.session_date + timedelta(days=2) or p.min_hours_without_override < 48
    assert rec.earliest >= i.session_date + timedelta(days=p.min_gap_days)


@settings(max_examples=200)
@given(inputs(red_flags=True), any_params)
def test_property_red_flag_gives_no_dates(i: FollowupInput, p: FollowupParams) -> None:
    rec = recommend(i, p)
    assert rec.action is Action.REFER
    assert (rec.earliest, rec.ideal, rec.latest, rec.recall_on) == (None, None, None, None)
    assert {r.code for r in rec.reasons if r.rule == "R0"} == {f"red_flag:{f}" for f in i.red_flags}
    # Only the phase (R4 step-down / back to initial) may still be explained; no dates rules.
    assert {r.code for r in rec.reasons if r.rule != "R0"} <= {"step_down", "back_to_initial"}


@settings(max_examples=300)
@given(inputs(red_flags=False), any_params, st.integers(0, 10), st.integers(0, 10))
def test_property_more_soreness_never_earlier(
    i: FollowupInput, p: FollowupParams, a: int, b: int
) -> None:
    lo, hi = sorted((a, b))
    rec_lo = recommend(dataclasses.replace(i, soreness=lo), p)
    rec_hi = recommend(dataclasses.replace(i, soreness=hi), p)
    assert rec_lo.earliest is not None and rec_hi.earliest is not None
    assert rec_hi.earliest >= rec_lo.earliest


@settings(max_examples=200)
@given(inputs())
def test_property_review_and_reasons_are_explained(i: FollowupInput) -> None:
    rec = recommend(i)
    rules = [r.rule for r in rec.reasons]
    assert rules == sorted(rules)
    if rec.action is Action.THERAPIST_REVIEW:
        assert any("review" in r.code for r in rec.reasons)
    if rec.action is not Action.REFER:
        assert {"R1", "R2", "R3"} <= set(rules)
