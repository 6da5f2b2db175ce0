"""Unit tests for the pure slot search (clinic_app.scheduling.availability / intervals)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC
from datetime import date
from datetime import datetime
from datetime import time
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from clinic_app.scheduling.availability import ERROR_CODES
from clinic_app.scheduling.availability import HoursOverride
from clinic_app.scheduling.availability import Rules
from clinic_app.scheduling.availability import ServiceSpec
from clinic_app.scheduling.availability import Slot
from clinic_app.scheduling.availability import SlotError
from clinic_app.scheduling.availability import TherapistSchedule
from clinic_app.scheduling.availability import WeeklyRange
from clinic_app.scheduling.availability import check_start
from clinic_app.scheduling.availability import find_slot_starts
from clinic_app.scheduling.availability import find_slots
from clinic_app.scheduling.availability import find_slots_epoch
from clinic_app.scheduling.availability import from_micros
from clinic_app.scheduling.availability import slots_from_starts
from clinic_app.scheduling.availability import to_micros
from clinic_app.scheduling.availability import working_intervals
from clinic_app.scheduling.availability import working_micros
from clinic_app.scheduling.intervals import BusyIndex
from clinic_app.scheduling.intervals import Interval
from clinic_app.scheduling.intervals import contains
from clinic_app.scheduling.intervals import intersect
from clinic_app.scheduling.intervals import merge
from clinic_app.scheduling.intervals import overlaps
from clinic_app.scheduling.intervals import subtract
from tests.reference_availability import reference_find_slots

LONDON = ZoneInfo("Europe/London")
NEW_YORK = ZoneInfo("America/New_York")
ZERO = timedelta(0)
HOUR = timedelta(hours=1)
MIN = timedelta(minutes=1)
MONDAY = date(2026, 6, 1)  # a Monday; London is on BST (UTC+1)
TUESDAY = MONDAY + timedelta(days=1)
WEDNESDAY = MONDAY + timedelta(days=2)
THURSDAY = MONDAY + timedelta(days=3)
EPOCH = date(2020, 1, 1)
NOW = datetime(2026, 5, 25, 8, 0, tzinfo=UTC)
LUNCH_BREAK = ((time(9), time(12)), (time(13), time(17)))


def weekly(ranges=LUNCH_BREAK, days=range(5), effective_from=EPOCH):
    """Weekly rows: the same ranges on each of ``days``."""
    return tuple(WeeklyRange(d, s, e, effective_from) for d in days for s, e in ranges)


def therapist(tid=1, rows=None, overrides=()):
    """A therapist working Mon-Fri 09-12 and 13-17 unless told otherwise."""
    return TherapistSchedule(tid, weekly() if rows is None else rows, tuple(overrides))


def rules(tz=LONDON, notice=ZERO, horizon=timedelta(days=60), step=HOUR):
    """Booking rules with defaults that do not get in the way."""
    return Rules(tz=tz, min_notice=notice, horizon=horizon, step=step)


def service(duration=HOUR, before=ZERO, after=ZERO, rooms=(1,)):
    """A service spec, one hour and one room by default."""
    return ServiceSpec(duration=duration, buffer_before=before, buffer_after=after, room_ids=rooms)


def at(day, hh, mm=0, tz=LONDON):
    """The UTC instant of local wall-clock ``hh:mm`` on ``day``."""
    return datetime.combine(day, time(hh, mm), tzinfo=tz).astimezone(UTC)


def span(day, h1, m1, h2, m2, tz=LONDON):
    """An interval between two local wall-clock times of ``day``."""
    return Interval(at(day, h1, m1, tz), at(day, h2, m2, tz))


def args(**kw):
    """Keyword arguments shared by find_slots and check_start, with overrides."""
    base = dict(
        service=service(),
        rules=rules(),
        now=NOW,
        therapists=[therapist()],
        closures=[],
        therapist_busy={},
        room_busy={},
    )
    base.update(kw)
    return base


def search(date_from=MONDAY, date_to=None, **kw):
    """find_slots over one day (``date_from``) unless ``date_to`` is given."""
    return find_slots(date_from=date_from, date_to=date_to or date_from, **args(**kw))


def hhmm(slots, tz=LONDON):
    """Local 'HH:MM' of each slot start."""
    return [s.start.astimezone(tz).strftime("%H:%M") for s in slots]


def code_of(**kw):
    """The SlotError code check_start raises, or 'ok'."""
    try:
        check_start(**args(**kw))
    except SlotError as exc:
        return exc.code
    return "ok"


# ------------------------------------------------------------------------------ intervals


def test_interval_rejects_empty_and_naive_and_normalises_to_utc():
    t = datetime(2026, 6, 1, 10, tzinfo=UTC)
    with pytest.raises(ValueError):
        Interval(t, t)
    with pytest.raises(ValueError):
        Interval(datetime(2026, 6, 1, 10), datetime(2026, 6, 1, 11))  # noqa: DTZ001
    iv = Interval(datetime(2026, 6, 1, 11, tzinfo=LONDON), datetime(2026, 6, 1, 12, tzinfo=LONDON))
    assert iv.start == t and iv.start.tzinfo is UTC and iv.duration == HOUR


def test_merge_subtract_overlaps():
    day = MONDAY
    a, b, c = span(day, 9, 0, 10, 0), span(day, 10, 0, 11, 0), span(day, 10, 30, 12, 0)
    assert merge([c, a, b]) == [span(day, 9, 0, 12, 0)]
    assert merge([span(day, 14, 0, 15, 0), a]) == [a, span(day, 14, 0, 15, 0)]
    assert not overlaps(a, b)  # half-open: touching is not overlapping
    assert overlaps(b, c) and overlaps(c, b)
    assert subtract(
        [span(day, 9, 0, 17, 0)], [span(day, 12, 0, 13, 0), span(day, 8, 0, 9, 30)]
    ) == [
        span(day, 9, 30, 12, 0),
        span(day, 13, 0, 17, 0),
    ]
    assert subtract([a], [span(day, 8, 0, 18, 0)]) == []
    assert contains(span(day, 9, 0, 12, 0), b) and not contains(a, c)
    assert intersect(b, c) == span(day, 10, 30, 11, 0) and intersect(a, b) is None


def test_busy_index_bisects_over_unsorted_overlapping_input():
    day = MONDAY
    idx = BusyIndex([span(day, 14, 0, 15, 0), span(day, 9, 0, 10, 0), span(day, 9, 30, 11, 0)])
    assert len(idx) == 2
    assert idx.is_free(*span(day, 11, 0, 14, 0).as_pair())
    assert not idx.is_free(*span(day, 10, 59, 11, 30).as_pair())
    assert idx.conflict_end(*span(day, 8, 0, 9, 1).as_pair()) == at(day, 11, 0)


# ------------------------------------------------------------------------------ basic search


def test_basic_day_with_lunch_break():
    slots = search()
    assert hhmm(slots) == ["09:00", "10:00", "11:00", "13:00", "14:00", "15:00", "16:00"]
    first = slots[0]
    assert first == Slot(
        datetime(2026, 6, 1, 8, tzinfo=UTC), datetime(2026, 6, 1, 9, tzinfo=UTC), 1, 1
    )
    assert all(s.end - s.start == HOUR for s in slots)
    assert working_intervals(therapist(), MONDAY, LONDON) == [
        span(MONDAY, 9, 0, 12, 0),
        span(MONDAY, 13, 0, 17, 0),
    ]


def test_weekend_is_not_worked_and_output_sorted_by_start_then_therapist():
    assert search(date_from=date(2026, 6, 6), date_to=date(2026, 6, 7)) == []
    slots = search(therapists=[therapist(2), therapist(1)], date_to=TUESDAY)
    keys = [(s.start, s.therapist_id) for s in slots]
    assert keys == sorted(keys)
    assert [s.therapist_id for s in slots[:2]] == [1, 2]
    assert len(slots) == 2 * 2 * 7


def test_step_grid_is_anchored_at_each_range_start():
    assert hhmm(search(rules=rules(step=30 * MIN))) == [
        "09:00", "09:30", "10:00", "10:30", "11:00",
        "13:00", "13:30", "14:00", "14:30", "15:00", "15:30", "16:00",
    ]  # fmt: skip
    # 45-minute grid restarts at 13:00 after lunch (not 12:45 / 13:30 from the 09:00 grid).
    assert hhmm(search(rules=rules(step=45 * MIN))) == [
        "09:00", "09:45", "10:30", "13:00", "13:45", "14:30", "15:15", "16:00",
    ]  # fmt: skip


def test_busy_booking_blocks_and_touching_is_allowed():
    busy = {1: [span(MONDAY, 10, 0, 11, 0)]}
    assert hhmm(search(therapist_busy=busy)) == [
        "09:00",
        "11:00",
        "13:00",
        "14:00",
        "15:00",
        "16:00",
    ]
    # Another therapist's bookings do not matter.
    assert len(search(therapist_busy={2: [span(MONDAY, 9, 0, 17, 0)]})) == 7


def test_buffers_are_part_of_the_blocked_interval():
    one_range = therapist(rows=weekly(((time(9), time(13)),)))
    busy = {1: [span(MONDAY, 10, 0, 11, 0)]}  # already includes that booking's buffers
    plain = search(therapists=[one_range], therapist_busy=busy, rules=rules(step=15 * MIN))
    assert hhmm(plain) == ["09:00", "11:00", "11:15", "11:30", "11:45", "12:00"]
    buffered = search(
        therapists=[one_range],
        therapist_busy=busy,
        rules=rules(step=15 * MIN),
        service=service(before=15 * MIN, after=15 * MIN),
    )
    # [s - 15, s + 75) must clear [10:00, 11:00): nothing fits before, 11:15 onwards after.
    assert hhmm(buffered) == ["11:15", "11:30", "11:45", "12:00"]
    # The buffer may reach outside working hours; only the appointment must be inside.
    early = search(therapists=[one_range], service=service(before=30 * MIN, after=30 * MIN))
    assert hhmm(early)[0] == "09:00" and hhmm(early)[-1] == "12:00"
    # Rooms are checked against the blocked interval too.
    rooms = {1: [span(MONDAY, 8, 40, 8, 50)]}
    assert (
        hhmm(search(therapists=[one_range], service=service(before=15 * MIN), room_busy=rooms))[0]
        == "10:00"
    )


def test_closures_remove_whole_days_for_everyone():
    slots = search(
        date_to=THURSDAY,
        therapists=[therapist(1), therapist(2)],
        closures=[(TUESDAY, WEDNESDAY)],
    )
    days = {s.start.astimezone(LONDON).date() for s in slots}
    assert days == {MONDAY, THURSDAY}
    assert len(slots) == 2 * 2 * 7


def test_override_whole_day_off():
    off = HoursOverride(TUESDAY, WEDNESDAY, "off")
    slots = search(date_to=THURSDAY, therapists=[therapist(overrides=[off])])
    assert {s.start.astimezone(LONDON).date() for s in slots} == {MONDAY, THURSDAY}
    assert working_intervals(therapist(overrides=[off]), TUESDAY, LONDON) == []


def test_override_partial_time_off_keeps_the_grid():
    off = HoursOverride(MONDAY, MONDAY, "off", time(10, 15), time(10, 45))
    t = therapist(overrides=[off])
    assert working_intervals(t, MONDAY, LONDON) == [
        span(MONDAY, 9, 0, 10, 15),
        span(MONDAY, 10, 45, 12, 0),
        span(MONDAY, 13, 0, 17, 0),
    ]
    slots = search(therapists=[t], rules=rules(step=30 * MIN))
    # 09:30 would run into the time off; the grid stays on :00/:30, so 11:00 not 10:45.
    assert hhmm(slots)[:2] == ["09:00", "11:00"]
    assert "10:45" not in hhmm(slots) and len(slots) == 2 + 7
    # The override applies to each date in its range, and only there.
    assert len(search(date_from=TUESDAY, therapists=[t], rules=rules(step=30 * MIN))) == 12


def test_override_different_hours_replace_weekly_hours():
    hours = [
        HoursOverride(TUESDAY, WEDNESDAY, "hours", time(7), time(9)),
        HoursOverride(TUESDAY, WEDNESDAY, "hours", time(18), time(20)),
    ]
    t = therapist(overrides=hours)
    assert hhmm(search(date_from=TUESDAY, therapists=[t])) == ["07:00", "08:00", "18:00", "19:00"]
    assert hhmm(search(date_from=WEDNESDAY, therapists=[t])) == ["07:00", "08:00", "18:00", "19:00"]
    assert len(search(date_from=THURSDAY, therapists=[t])) == 7
    # Extra hours on a day the weekly set does not cover (Saturday).
    saturday = date(2026, 6, 6)
    sat = therapist(overrides=[HoursOverride(saturday, saturday, "hours", time(10), time(12))])
    assert hhmm(search(date_from=saturday, therapists=[sat])) == ["10:00", "11:00"]
    # "off" is applied after "hours".
    mixed = therapist(
        overrides=[
            HoursOverride(TUESDAY, TUESDAY, "hours", time(12), time(16)),
            HoursOverride(TUESDAY, TUESDAY, "off", time(13), time(14)),
        ]
    )
    assert hhmm(search(date_from=TUESDAY, therapists=[mixed])) == ["12:00", "14:00", "15:00"]


def test_effective_from_switches_weekly_hours():
    old = weekly()
    new = weekly(((time(10), time(14)),), days=range(3), effective_from=WEDNESDAY)  # Mon-Wed
    t = therapist(rows=old + new)
    by_day = {}
    for s in search(date_from=TUESDAY, date_to=THURSDAY, therapists=[t]):
        by_day.setdefault(s.start.astimezone(LONDON).date(), []).append(s)
    assert hhmm(by_day[TUESDAY]) == ["09:00", "10:00", "11:00", "13:00", "14:00", "15:00", "16:00"]
    assert hhmm(by_day[WEDNESDAY]) == ["10:00", "11:00", "12:00", "13:00"]
    assert THURSDAY not in by_day  # missing from the new set = not working
    # Before any set is effective nobody works.
    later = therapist(rows=weekly(effective_from=WEDNESDAY))
    assert search(date_from=MONDAY, date_to=TUESDAY, therapists=[later]) == []


def test_min_notice_and_horizon():
    now = at(MONDAY, 8, 30)
    slots = search(now=now, rules=rules(notice=2 * HOUR))
    assert hhmm(slots) == ["11:00", "13:00", "14:00", "15:00", "16:00"]  # 10:30 is the cut
    assert hhmm(search(now=now, rules=rules(notice=2 * HOUR, step=30 * MIN)))[0] == "10:30"
    # Horizon: start's local date must not be after the local date of now + horizon.
    limited = search(now=now, date_to=THURSDAY, rules=rules(horizon=timedelta(days=2)))
    assert {s.start.astimezone(LONDON).date() for s in limited} == {MONDAY, TUESDAY, WEDNESDAY}
    assert (
        hhmm([s for s in limited if s.start.astimezone(LONDON).date() == WEDNESDAY])[-1] == "16:00"
    )
    # Searching only in the past gives nothing.
    assert search(now=at(THURSDAY, 8, 0)) == []


def test_room_exhaustion_and_lowest_free_room():
    svc = service(rooms=(2, 1))
    rooms = {
        1: [span(MONDAY, 9, 0, 10, 0), span(MONDAY, 13, 0, 14, 0)],
        2: [span(MONDAY, 9, 0, 11, 0), span(MONDAY, 13, 0, 14, 0)],
    }
    slots = search(service=svc, room_busy=rooms)
    assert [(h, s.room_id) for h, s in zip(hhmm(slots), slots, strict=True)] == [
        ("10:00", 1), ("11:00", 1), ("14:00", 1), ("15:00", 1), ("16:00", 1),
    ]  # fmt: skip
    lowest = search(service=svc, room_busy={1: [span(MONDAY, 10, 0, 11, 0)]})
    assert [(h, s.room_id) for h, s in zip(hhmm(lowest), lowest, strict=True)][:3] == [
        ("09:00", 1), ("10:00", 2), ("11:00", 1),
    ]  # fmt: skip
    assert search(service=service(rooms=())) == []
    # Slots are alternatives: two therapists may both be offered the one free room.
    both = search(therapists=[therapist(1), therapist(2)], service=service(rooms=(1,)))
    assert [(s.therapist_id, s.room_id) for s in both[:2]] == [(1, 1), (2, 1)]
    assert both[0].start == both[1].start
    full = {1: [span(MONDAY, 9, 0, 17, 0)]}
    assert search(therapists=[therapist(1), therapist(2)], room_busy=full) == []


def test_a_run_of_starts_keeps_its_room_only_while_every_lower_room_is_held():
    """The walk emits a stretch of starts per room choice: it must switch to a higher room
    when the lower one is taken, skip to where some room frees when all are held, and come
    back to the lowest room the moment its booking (plus the buffer before) is over."""
    svc = service(duration=30 * MIN, before=10 * MIN, after=5 * MIN, rooms=(1, 2))
    rooms = {1: [span(MONDAY, 9, 50, 10, 20)], 2: [span(MONDAY, 10, 40, 11, 0)]}
    kw = args(service=svc, rules=rules(step=15 * MIN), room_busy=rooms)
    slots = find_slots(date_from=MONDAY, date_to=MONDAY, **kw)
    morning = [(h, s.room_id) for h, s in zip(hhmm(slots), slots, strict=True) if h < "12"]
    assert morning == [
        ("09:00", 1), ("09:15", 1),  # touching room 1's booking at 09:50 is allowed
        ("09:30", 2), ("09:45", 2), ("10:00", 2),
        # 10:15: room 1 is held until 10:20 (+10 before), room 2 from 10:40: no room
        ("10:30", 1), ("10:45", 1), ("11:00", 1), ("11:15", 1), ("11:30", 1),
    ]  # fmt: skip
    assert slots == reference_find_slots(date_from=MONDAY, date_to=MONDAY, **kw)


# ------------------------------------------------------------------------------ check_start


def test_check_start_accepts_offered_slots():
    for slot in search(therapists=[therapist(1), therapist(2)]):
        assert (
            check_start(
                start=slot.start,
                therapist_id=slot.therapist_id,
                **args(therapists=[therapist(1), therapist(2)]),
            )
            == slot
        )


@pytest.mark.parametrize(
    ("code", "start", "kw"),
    [
        ("in_past", at(MONDAY, 9), dict(now=at(MONDAY, 9, 1))),
        ("too_soon", at(MONDAY, 10), dict(now=at(MONDAY, 9), rules=rules(notice=2 * HOUR))),
        (
            "beyond_horizon",
            at(THURSDAY, 9),
            dict(now=at(MONDAY, 8), rules=rules(horizon=2 * 24 * HOUR)),
        ),
        ("closed", at(TUESDAY, 9), dict(closures=[(TUESDAY, TUESDAY)])),
        ("outside_hours", at(MONDAY, 12), {}),
        ("outside_hours", at(MONDAY, 11, 30), dict(rules=rules(step=30 * MIN))),  # runs into lunch
        ("outside_hours", at(date(2026, 6, 6), 10), {}),  # Saturday
        ("outside_hours", at(MONDAY, 9), dict(therapists=[therapist(2)])),  # unknown therapist
        ("not_on_step", at(MONDAY, 9, 30), {}),
        # 13:30 is on the 09:00 grid, but the afternoon grid restarts at 13:00
        ("not_on_step", at(MONDAY, 13, 30), dict(rules=rules(step=45 * MIN))),
        ("therapist_busy", at(MONDAY, 9), dict(therapist_busy={1: [span(MONDAY, 9, 59, 10, 30)]})),
        (
            "therapist_busy",
            at(MONDAY, 10),
            dict(therapist_busy={1: [span(MONDAY, 9, 0, 9, 50)]}, service=service(before=15 * MIN)),
        ),
        ("no_room", at(MONDAY, 9), dict(room_busy={1: [span(MONDAY, 9, 30, 9, 45)]})),
    ],
)
def test_check_start_error_codes(code, start, kw):
    assert code in ERROR_CODES
    assert code_of(start=start, therapist_id=1, **kw) == code
    # find_slots agrees: that start is not offered.
    date_ = start.astimezone(LONDON).date()
    offered = find_slots(date_from=date_, date_to=date_, **args(**kw))
    assert all(not (s.start == start and s.therapist_id == 1) for s in offered)


def test_check_start_error_codes_are_all_covered_and_rejects_naive():
    params = test_check_start_error_codes.pytestmark[0].args[1]
    assert {p[0] for p in params} == set(ERROR_CODES)
    with pytest.raises(ValueError):
        check_start(start=datetime(2026, 6, 1, 9), therapist_id=1, **args())  # noqa: DTZ001
    assert code_of(start=at(MONDAY, 10), therapist_id=1) == "ok"


# ------------------------------------------------------------------------------ DST


@pytest.mark.parametrize(
    ("tz", "day", "utc_hour_before", "utc_hour_on"),
    [
        (LONDON, date(2026, 3, 29), 9, 8),  # GMT -> BST
        (LONDON, date(2026, 10, 25), 8, 9),  # BST -> GMT
        (NEW_YORK, date(2026, 3, 8), 14, 13),  # EST -> EDT
        (NEW_YORK, date(2026, 11, 1), 13, 14),  # EDT -> EST
    ],
)
def test_dst_days_keep_local_hours(tz, day, utc_hour_before, utc_hour_on):
    everyday = therapist(rows=weekly(((time(9), time(17)),), days=range(7)))
    now = datetime.combine(day - timedelta(days=7), time(0), tzinfo=UTC)
    kw = dict(therapists=[everyday], rules=rules(tz=tz), now=now)
    before, after = day - timedelta(days=1), day + timedelta(days=1)
    slots = search(date_from=before, date_to=after, **kw)
    by_day = {}
    for s in slots:
        by_day.setdefault(s.start.astimezone(tz).date(), []).append(s)
    assert sorted(by_day) == [before, day, after]
    for d, hour in ((before, utc_hour_before), (day, utc_hour_on), (after, utc_hour_on)):
        first = by_day[d][0]
        assert first.start == datetime.combine(d, time(hour), tzinfo=UTC)
        assert first.start.astimezone(tz).time() == time(9)
        assert hhmm(by_day[d], tz) == [f"{h:02d}:00" for h in range(9, 17)]
        assert by_day[d][-1].end.astimezone(tz).time() == time(17)
        [work] = working_intervals(everyday, d, tz)
        assert work.duration == 8 * HOUR
    # 09:00 local + 24 h is not 09:00 local on the next day across the change.
    assert by_day[day][0].start - by_day[before][0].start != 24 * HOUR
    assert check_start(start=by_day[day][0].start, therapist_id=1, **args(**kw)) == by_day[day][0]


@pytest.mark.parametrize(
    ("tz", "day", "hours"),
    [
        (LONDON, date(2026, 3, 29), 3),
        (LONDON, date(2026, 10, 25), 5),
        (NEW_YORK, date(2026, 3, 8), 3),
        (NEW_YORK, date(2026, 11, 1), 5),
    ],
)
def test_dst_night_range_is_23_or_25_hour_day(tz, day, hours):
    night = therapist(rows=weekly(((time(0), time(4)),), days=range(7)))
    [work] = working_intervals(night, day, tz)
    assert work.duration == hours * HOUR
    now = datetime.combine(day - timedelta(days=7), time(0), tzinfo=UTC)
    slots = find_slots(
        date_from=day, date_to=day, **args(therapists=[night], rules=rules(tz=tz), now=now)
    )
    assert len(slots) == hours  # the grid steps in elapsed time
    assert [s.start - work.start for s in slots] == [k * HOUR for k in range(hours)]


def test_nonexistent_wall_time_maps_forward():
    day = date(2026, 3, 29)  # London: 01:00 GMT jumps to 02:00 BST
    t = therapist(rows=(), overrides=[HoursOverride(day, day, "hours", time(1, 30), time(3))])
    [work] = working_intervals(t, day, LONDON)
    # 01:30 does not exist; read with the pre-gap offset it is 01:30 UTC = 02:30 BST.
    assert work.start == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
    assert work.start.astimezone(LONDON).time() == time(2, 30)
    assert work.end == datetime(2026, 3, 29, 2, 0, tzinfo=UTC)  # 03:00 BST


# ------------------------------------------------------------------------------ properties

BASE_DAY = date(2026, 3, 27)  # Friday; Europe/London changes clocks on Sunday 29 March
DAYS = [BASE_DAY + timedelta(days=k) for k in range(4)]
WINDOW_START = datetime(2026, 3, 26, 12, tzinfo=UTC)
QUARTER = 15 * MIN


@st.composite
def scenarios(draw):
    """Random schedules, overrides, closures, busy time and rules over four days."""
    tz = draw(st.sampled_from([LONDON, NEW_YORK]))

    def ranges():
        out = []
        for _ in range(draw(st.integers(0, 2))):
            start = draw(st.integers(6 * 4, 19 * 4))
            length = draw(st.integers(2, 24))
            end = min(start + length, 23 * 4 + 3)
            out.append((time(start // 4, start % 4 * 15), time(end // 4, end % 4 * 15)))
        return out

    schedules = []
    for tid in range(1, draw(st.integers(1, 3)) + 1):
        rows = [WeeklyRange(wd, s, e, EPOCH) for wd in range(7) for s, e in ranges()]
        if draw(st.booleans()):
            switch = draw(st.sampled_from(DAYS))
            rows += [WeeklyRange(wd, s, e, switch) for wd in range(7) for s, e in ranges()]
        overrides = []
        for _ in range(draw(st.integers(0, 3))):
            d1 = draw(st.sampled_from(DAYS))
            d2 = d1 + timedelta(days=draw(st.integers(0, 1)))
            kind = draw(st.sampled_from(["off", "hours"]))
            picked = ranges()
            if kind == "off" and (not picked or draw(st.booleans())):
                overrides.append(HoursOverride(d1, d2, "off"))
            for s, e in picked:
                overrides.append(HoursOverride(d1, d2, kind, s, e))
        schedules.append(TherapistSchedule(tid, tuple(rows), tuple(overrides)))

    def busy_list():
        out = []
        for _ in range(draw(st.integers(0, 12))):
            start = WINDOW_START + 5 * MIN * draw(st.integers(0, 4 * 24 * 12))
            out.append(Interval(start, start + 5 * MIN * draw(st.integers(1, 36))))
        return out

    closures = []
    if draw(st.booleans()):
        d = draw(st.sampled_from(DAYS))
        closures.append((d, d))
    return dict(
        service=ServiceSpec(
            duration=QUARTER * draw(st.integers(1, 6)),
            buffer_before=5 * MIN * draw(st.integers(0, 3)),
            buffer_after=5 * MIN * draw(st.integers(0, 3)),
            room_ids=tuple(draw(st.sets(st.integers(1, 3), min_size=1, max_size=3))),
        ),
        rules=Rules(
            tz=tz,
            min_notice=QUARTER * draw(st.integers(0, 8)),
            horizon=timedelta(days=draw(st.integers(1, 6))),
            step=QUARTER * draw(st.integers(1, 4)),
        ),
        now=WINDOW_START + QUARTER * draw(st.integers(0, 4 * 24)),
        therapists=schedules,
        closures=closures,
        therapist_busy={s.therapist_id: busy_list() for s in schedules},
        room_busy={r: busy_list() for r in range(1, 4)},
    )


PROPS = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def slots_of(kw):
    """find_slots over the four property-test days."""
    return find_slots(date_from=DAYS[0], date_to=DAYS[-1], **kw)


def blocked(svc, slot):
    """The blocked interval of ``slot`` (buffers included)."""
    return Interval(slot.start - svc.buffer_before, slot.end + svc.buffer_after)


@PROPS
@given(scenarios())
def test_prop_no_slot_overlaps_busy_time(kw):
    svc = kw["service"]
    for slot in slots_of(kw):
        b = blocked(svc, slot)
        assert not any(overlaps(b, busy) for busy in kw["therapist_busy"][slot.therapist_id])
        assert slot.room_id in svc.room_ids
        assert not any(overlaps(b, busy) for busy in kw["room_busy"][slot.room_id])
        lower_free = [
            r
            for r in svc.room_ids
            if r < slot.room_id and not any(overlaps(b, x) for x in kw["room_busy"][r])
        ]
        assert lower_free == []


@PROPS
@given(scenarios())
def test_prop_slots_lie_inside_working_intervals(kw):
    rules_ = kw["rules"]
    by_id = {t.therapist_id: t for t in kw["therapists"]}
    closed = {a for a, _ in kw["closures"]}
    slots = slots_of(kw)
    assert [(s.start, s.therapist_id) for s in slots] == sorted(
        (s.start, s.therapist_id) for s in slots
    )
    for slot in slots:
        day = slot.start.astimezone(rules_.tz).date()
        assert day not in closed
        assert slot.end - slot.start == kw["service"].duration
        assert slot.start >= kw["now"] + rules_.min_notice
        assert day <= (kw["now"] + rules_.horizon).astimezone(rules_.tz).date()
        work = working_intervals(by_id[slot.therapist_id], day, rules_.tz)
        assert any(contains(w, Interval(slot.start, slot.end)) for w in work)


@PROPS
@given(scenarios(), st.data())
def test_prop_booking_a_slot_removes_it_and_freeing_it_restores_it(kw, data):
    slots = slots_of(kw)
    if not slots:
        return
    slot = data.draw(st.sampled_from(slots))
    svc = kw["service"]
    held = blocked(svc, slot)
    busy = dict(kw["therapist_busy"])
    busy[slot.therapist_id] = [*busy[slot.therapist_id], held]
    after = slots_of({**kw, "therapist_busy": busy})
    assert all(not (s.start == slot.start and s.therapist_id == slot.therapist_id) for s in after)
    # Every slot of that therapist that would clash with the new booking is gone, others stay.
    expected = [
        s
        for s in slots
        if s.therapist_id != slot.therapist_id or not overlaps(blocked(svc, s), held)
    ]
    assert after == expected
    with pytest.raises(SlotError) as exc:
        check_start(
            start=slot.start, therapist_id=slot.therapist_id, **{**kw, "therapist_busy": busy}
        )
    assert exc.value.code == "therapist_busy"
    assert slots_of(kw) == slots  # removing it again (the original data) brings it back


@PROPS
@given(scenarios())
def test_prop_check_start_accepts_exactly_the_offered_slots(kw):
    """An independent oracle: try check_start at every quarter hour of the window."""
    offered = {(s.start, s.therapist_id): s for s in slots_of(kw)}
    tz = kw["rules"].tz
    first = datetime.combine(DAYS[0], time(0), tzinfo=tz).astimezone(UTC)
    last = datetime.combine(DAYS[-1] + timedelta(days=1), time(0), tzinfo=tz).astimezone(UTC)
    accepted = {}
    for sched in kw["therapists"]:
        t = first
        while t < last:
            try:
                slot = check_start(start=t, therapist_id=sched.therapist_id, **kw)
            except SlotError:
                pass
            else:
                accepted[(t, sched.therapist_id)] = slot
            t += QUARTER
    assert accepted == offered


def test_rows_validate_their_input():
    with pytest.raises(ValueError):
        WeeklyRange(7, time(9), time(10), EPOCH)
    with pytest.raises(ValueError):
        WeeklyRange(0, time(10), time(9), EPOCH)
    with pytest.raises(ValueError):
        HoursOverride(MONDAY, MONDAY, "hours")
    with pytest.raises(ValueError):
        HoursOverride(TUESDAY, MONDAY, "off")
    with pytest.raises(ValueError):
        HoursOverride(MONDAY, MONDAY, "vacation")
    with pytest.raises(ValueError):
        Rules(LONDON, ZERO, ZERO, ZERO)
    with pytest.raises(ValueError):
        ServiceSpec(ZERO, ZERO, ZERO, (1,))
    assert replace(service(), buffer_after=5 * MIN).blocked(at(MONDAY, 9)) == span(
        MONDAY, 9, 0, 10, 5
    )


@PROPS
@given(scenarios())
def test_prop_epoch_path_offers_the_same_slots_as_the_reference(kw):
    """The epoch-microsecond walk (find_slots / find_slots_epoch) equals the old walk."""
    expected = reference_find_slots(date_from=DAYS[0], date_to=DAYS[-1], **kw)
    assert slots_of(kw) == expected
    as_micros = {
        key: {k: [(to_micros(iv.start), to_micros(iv.end)) for iv in v]
              for k, v in kw[key].items()}
        for key in ("therapist_busy", "room_busy")}
    assert find_slots_epoch(date_from=DAYS[0], date_to=DAYS[-1],
                            **{**kw, **as_micros}) == expected


@PROPS
@given(scenarios())
def test_prop_a_kept_working_memo_offers_the_reference_slots(kw):
    """working_micros computed once for a wider range of dates (as the service layer keeps
    it per catalogue) and passed in gives the reference's slots; each day's intervals are
    working_intervals's in microseconds, on the DST day too."""
    tz = kw["rules"].tz
    wider = [DAYS[0] - timedelta(days=2), *DAYS, DAYS[-1] + timedelta(days=1)]
    memo = working_micros(kw["therapists"], wider, tz)
    assert sorted(memo) == sorted(t.therapist_id for t in kw["therapists"])
    for schedule in kw["therapists"]:
        for day in wider:
            assert [(s, e) for s, e, _ in memo[schedule.therapist_id][day]] == [
                (to_micros(iv.start), to_micros(iv.end))
                for iv in working_intervals(schedule, day, tz)]
    as_micros = {
        key: {k: [(to_micros(iv.start), to_micros(iv.end)) for iv in v]
              for k, v in kw[key].items()}
        for key in ("therapist_busy", "room_busy")}
    expected = reference_find_slots(date_from=DAYS[0], date_to=DAYS[-1], **kw)
    assert find_slots_epoch(date_from=DAYS[0], date_to=DAYS[-1], working=memo,
                            **{**kw, **as_micros}) == expected
    starts = find_slot_starts(date_from=DAYS[0], date_to=DAYS[-1], working=memo,
                              **{**kw, **as_micros})
    assert [(to_micros(s.start), s.therapist_id, s.room_id) for s in expected] == starts
    duration = kw["service"].duration // timedelta(microseconds=1)
    assert slots_from_starts(starts, duration) == expected


@pytest.mark.parametrize(("day", "first_utc"), [(date(2026, 3, 29), 8), (date(2026, 10, 25), 9)])
def test_working_micros_on_a_dst_day_keeps_local_hours_and_the_grid(day, first_utc):
    """09:00-17:00 London on both clock-change days: 8 hours from 09:00 local, the anchor at
    the range start; the day before is an hour apart in UTC."""
    everyday = therapist(rows=weekly(((time(9), time(17)),), days=range(7)))
    before = day - timedelta(days=1)
    memo = working_micros([everyday], [before, day], LONDON)[1]
    start = to_micros(datetime.combine(day, time(first_utc), tzinfo=UTC))
    assert memo[day] == ((start, start + 8 * 3_600_000_000, start),)
    [(prev_start, _, _)] = memo[before]
    assert start - prev_start == (24 + (1 if first_utc == 9 else -1)) * 3_600_000_000
    assert working_micros([everyday], [], LONDON) == {1: {}}


def test_a_working_memo_without_a_date_of_the_range_is_refused():
    """find_slot_starts trusts a given memo to cover the range: a gap is an error, not a
    silently empty day."""
    everyday = therapist(rows=weekly(((time(9), time(17)),), days=range(7)))
    memo = working_micros([everyday], [MONDAY], LONDON)
    with pytest.raises(KeyError):
        find_slot_starts(date_from=MONDAY, date_to=TUESDAY, working=memo,
                         **{**args(therapists=[everyday]), "therapist_busy": {},
                            "room_busy": {}})


def test_micros_round_trip_is_exact():
    value = datetime(2026, 3, 29, 1, 59, 59, 999_999, tzinfo=UTC)
    assert to_micros(value) == 1_774_749_599_999_999
    assert from_micros(to_micros(value)) == value
    assert to_micros(value.astimezone(LONDON)) == to_micros(value)
