"""Therapist hours and time off at the service level, and their effect on the slot search."""

from __future__ import annotations

from datetime import UTC
from datetime import date
from datetime import datetime
from datetime import time

import pytest

from clinic_app.errors import NotFound
from clinic_app.errors import ValidationFailed
from clinic_app.services import schedule
from clinic_app.services.availability import search_slots
from tests.factories.booking import make_clinic
from tests.factories.schedule import local

NOW = datetime(2026, 11, 23, 8, tzinfo=UTC)
MON = date(2026, 11, 30)


@pytest.fixture
def clinic(app):
    return make_clinic(app, therapists=1)


def starts(db, clinic, day):
    _, slots = search_slots(db.session, service_id=clinic.service.id, date_from=day,
                            date_to=day, now=NOW)
    return [s.start for s in slots]


def test_replace_weekly_hours_from_a_date(db, clinic):
    t = clinic.t1
    rows = schedule.replace_weekly_hours(
        db.session, t, [(0, time(14), time(18)), (0, time(8), time(10))], MON, NOW)
    db.session.commit()
    assert [(r.weekday, r.start_time, r.end_time) for r in rows] == [
        (0, time(8), time(10)), (0, time(14), time(18))]
    # Before the date the old week applies; from it, the new one (Tuesday is now a day off).
    assert [(r.weekday, r.start_time) for r in schedule.current_hours(db.session, t, MON)] \
        == [(0, time(8)), (0, time(14))]
    assert len(schedule.current_hours(db.session, t, date(2026, 11, 29))) == 12
    assert starts(db, clinic, MON)[0] == local(2026, 11, 30, 8)
    assert starts(db, clinic, date(2026, 12, 1)) == []
    assert starts(db, clinic, date(2026, 11, 24))[0] == local(2026, 11, 24, 9)
    # Replacing again from the same date supersedes, not adds.
    schedule.replace_weekly_hours(db.session, t, [(1, time(9), time(11))], MON, NOW)
    assert [(r.weekday,) for r in schedule.current_hours(db.session, t, MON)] == [(1,)]


@pytest.mark.parametrize(("ranges", "field"), [
    ([(0, time(10), time(9))], "hours.0"),
    ([(2, time(9), time(12)), (2, time(11), time(13))], "hours.2"),
    ([(7, time(9), time(12))], "hours"),
    ([], "hours"),
])
def test_replace_weekly_hours_refuses_bad_ranges(db, clinic, ranges, field):
    with pytest.raises(ValidationFailed) as exc:
        schedule.replace_weekly_hours(db.session, clinic.t1, ranges, MON, NOW)
    assert field in exc.value.fields
    assert len(schedule.current_hours(db.session, clinic.t1, MON)) == 12  # unchanged


def test_replace_weekly_hours_refuses_the_past(db, clinic):
    with pytest.raises(ValidationFailed) as exc:
        schedule.replace_weekly_hours(db.session, clinic.t1, [(0, time(9), time(10))],
                                      date(2026, 11, 1), NOW)
    assert "effective_from" in exc.value.fields


def test_time_off_and_different_hours(app, db, clinic):
    t = clinic.t1
    whole = schedule.add_time_off(db.session, t, MON, reason="Course")
    part = schedule.add_time_off(db.session, t, date(2026, 12, 1), date(2026, 12, 1),
                                 time(9), time(12))
    other = schedule.add_time_off(db.session, t, date(2026, 12, 2), None, time(7), time(9),
                                  kind="hours")
    db.session.commit()
    assert whole.end_date == MON and whole.reason == "Course"
    assert starts(db, clinic, MON) == []
    assert starts(db, clinic, date(2026, 12, 1))[0] == local(2026, 12, 1, 13)
    assert starts(db, clinic, date(2026, 12, 2)) == [local(2026, 12, 2, 7),
                                                     local(2026, 12, 2, 7, 15),
                                                     local(2026, 12, 2, 7, 30),
                                                     local(2026, 12, 2, 7, 45),
                                                     local(2026, 12, 2, 8)]
    assert [r.id for r in schedule.list_time_off(db.session, t, MON)] == [
        whole.id, part.id, other.id]
    schedule.delete_time_off(db.session, t, whole.id, now=NOW)
    assert starts(db, clinic, MON)
    second = make_clinic(app, therapists=1).t1
    with pytest.raises(NotFound):
        schedule.delete_time_off(db.session, second, part.id, now=NOW)
    with pytest.raises(NotFound):
        schedule.delete_time_off(db.session, t, 2**40, now=NOW)


@pytest.mark.parametrize(("args", "field"), [
    ((date(2026, 12, 2), date(2026, 12, 1)), "end_date"),
    ((MON, MON, time(10), None), "end_time"),
    ((MON, MON, time(10), time(9)), "end_time"),
    ((MON, MON, None, None, "", "hours"), "start_time"),
    ((MON, MON, None, None, "", "holiday"), "kind"),
    ((MON, date(2028, 1, 1)), "end_date"),
])
def test_time_off_validation(db, clinic, args, field):
    with pytest.raises(ValidationFailed) as exc:
        schedule.add_time_off(db.session, clinic.t1, *args)
    assert field in exc.value.fields
