"""The spread of times on the "your next session" card (pure: no app, no database)."""

from __future__ import annotations

from datetime import UTC
from datetime import date
from datetime import datetime
from datetime import timedelta
from zoneinfo import ZoneInfo

from clinic_app.scheduling.availability import Slot
from clinic_app.web.client import spread_offers

LONDON = ZoneInfo("Europe/London")


def _day(day: date, therapist: int, hours=range(9, 17)) -> list[Slot]:
    """Every 15 minutes of the given hours (London = UTC in winter)."""
    out = []
    for hour in hours:
        for minute in (0, 15, 30, 45):
            start = datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)
            out.append(Slot(start, start + timedelta(hours=1), therapist, 1))
    return out


def test_ideal_day_first_then_nearest_days_a_few_spread_times_each():
    days = [date(2026, 12, d) for d in range(1, 8)]
    usual = [s for d in days for s in _day(d, therapist=1)]
    offers = spread_offers(usual, [], LONDON, ideal=date(2026, 12, 4))
    # The four days nearest the ideal (4th): 4, then 3 and 5, then 2 (earlier wins the tie
    # with 6); the ideal day first, the others in date order.
    assert [d for d, _ in offers] == [date(2026, 12, d) for d in (4, 2, 3, 5)]
    for _, slots in offers:
        # 32 starts from 09:00 to 16:45: first, middle, last.
        assert [s.start.strftime("%H:%M") for s in slots] == ["09:00", "13:00", "16:45"]


def test_usual_therapist_first_others_fill_in():
    day = date(2026, 12, 2)
    usual = _day(day, therapist=1, hours=[10])[:1]  # one time only
    others = _day(day, therapist=2)
    offers = spread_offers(usual, others, LONDON, ideal=day)
    (only_day, slots), = offers
    assert only_day == day and len(slots) == 3
    assert [s.therapist_id for s in slots if s.start == usual[0].start] == [1]
    assert len({s.start for s in slots}) == 3  # one per start time


def test_no_slots_no_offers_and_no_ideal_starts_at_the_first_day():
    assert spread_offers([], [], LONDON, ideal=date(2026, 12, 2)) == []
    later = _day(date(2026, 12, 9), therapist=1) + _day(date(2026, 12, 3), therapist=1)
    offers = spread_offers(later, [], LONDON, ideal=None, max_days=1)
    assert [d for d, _ in offers] == [date(2026, 12, 3)]
