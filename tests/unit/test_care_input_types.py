"""The shared rules of services/care/inputs.py that more than one model or field uses: the
red-flag list (check-in and problem report) and the order of a follow-up window's dates."""

from __future__ import annotations

import pytest

from clinic_app.errors import ValidationFailed
from clinic_app.scheduling.followup import RED_FLAGS
from clinic_app.services.care import inputs

ALL_FLAGS = list(RED_FLAGS)


def _check_in(red_flags: object) -> list[str]:
    return inputs.CheckInIn.parse({"soreness": 2, "red_flags": red_flags}).red_flags


def _report(red_flags: object) -> list[str]:
    return inputs.parse(inputs.ProblemReportIn, {"red_flags": red_flags},
                        message="bad").red_flags


@pytest.mark.parametrize("parse", [_check_in, _report])
def test_both_models_keep_known_flags_once_in_checklist_order(parse):
    assert parse(["fever", "calf_pain_swelling", "fever"]) == ["calf_pain_swelling", "fever"]
    assert parse(ALL_FLAGS[::-1]) == ALL_FLAGS


@pytest.mark.parametrize("parse", [_check_in, _report])
@pytest.mark.parametrize("bad", [["itchy"], ["fever", "itchy"], "fever", [1],
                                 ALL_FLAGS + ["fever"]])
def test_both_models_refuse_unknown_or_too_many_flags(parse, bad):
    with pytest.raises(ValidationFailed) as caught:
        parse(bad)
    assert list(caught.value.fields) == ["red_flags"]


@pytest.mark.parametrize("blank", [None, "", []])
def test_a_check_in_may_have_no_flag_a_report_may_not(blank):
    assert _check_in(blank) == []
    with pytest.raises(ValidationFailed) as caught:
        _report(blank)
    assert list(caught.value.fields) == ["red_flags"]


def _window(earliest: str, ideal: str, latest: str) -> inputs.OverrideIn:
    return inputs.parse(inputs.OverrideIn, {"earliest": earliest, "ideal": ideal,
                                            "latest": latest, "reason": "travel"},
                        message="bad")


def test_window_dates_in_order_or_equal_are_accepted():
    window = _window("2026-11-26", "2026-11-26", "2026-11-26")
    assert window.earliest == window.ideal == window.latest
    assert _window("2026-11-26", "2026-11-28", "2026-12-02").ideal.isoformat() == "2026-11-28"


@pytest.mark.parametrize(("dates", "fields"), [
    (("2026-11-27", "2026-11-26", "2026-12-02"),
     {"ideal": "The ideal date must not be before the earliest."}),
    (("2026-11-26", "2026-11-28", "2026-11-27"),
     {"latest": "The latest date must not be before the ideal."}),
    # A refused date is not compared again: the first one out of order is reported.
    (("2026-11-28", "2026-11-27", "2026-11-26"),
     {"ideal": "The ideal date must not be before the earliest."}),
    # A date that did not parse is reported once, not again as out of order.
    (("someday", "2026-11-27", "2026-11-26"),
     {"earliest": "Enter a date (YYYY-MM-DD).",
      "latest": "The latest date must not be before the ideal."}),
])
def test_window_dates_out_of_order_name_the_later_field(dates, fields):
    with pytest.raises(ValidationFailed) as caught:
        _window(*dates)
    assert caught.value.fields == fields
