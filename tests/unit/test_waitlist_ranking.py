"""Ranking waitlist entries for a freed slot (issue 13 item 2; scheduling/waitlist.py)."""

from __future__ import annotations

import ast
from datetime import UTC
from datetime import date
from datetime import datetime
from datetime import time
from datetime import timedelta
from pathlib import Path

from hypothesis import HealthCheck
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from clinic_app.scheduling import waitlist
from clinic_app.scheduling.waitlist import FreedSlot
from clinic_app.scheduling.waitlist import PartOfDay
from clinic_app.scheduling.waitlist import Tier
from clinic_app.scheduling.waitlist import WaitingEntry
from clinic_app.scheduling.waitlist import matches
from clinic_app.scheduling.waitlist import part_of_day
from clinic_app.scheduling.waitlist import rank
from clinic_app.scheduling.waitlist import tier_for

TODAY = date(2026, 12, 1)
SLOT = FreedSlot(service_id=1, therapist_id=7, local_start=datetime(2026, 12, 10, 10, 0))
JOINED = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def entry(entry_id: int, **overrides: object) -> WaitingEntry:
    """An entry that matches SLOT unless overridden; no recommended window by default."""
    values: dict[str, object] = {
        "entry_id": entry_id,
        "client_id": entry_id,
        "service_id": 1,
        "therapist_id": None,
        "date_from": TODAY,
        "date_to": TODAY + timedelta(days=30),
        "joined_at": JOINED + timedelta(minutes=entry_id),
    }
    values.update(overrides)
    return WaitingEntry(**values)  # type: ignore[arg-type]


# --- examples ---------------------------------------------------------------------------------


def test_parts_of_day_boundaries() -> None:
    assert part_of_day(time(8, 0)) is PartOfDay.MORNING
    assert part_of_day(time(11, 59)) is PartOfDay.MORNING
    assert part_of_day(time(12, 0)) is PartOfDay.AFTERNOON
    assert part_of_day(time(16, 45)) is PartOfDay.AFTERNOON
    assert part_of_day(time(17, 0)) is PartOfDay.EVENING


def test_matches_service_therapist_dates_and_part_of_day() -> None:
    assert matches(entry(1), SLOT, TODAY)
    assert matches(entry(1, therapist_id=7), SLOT, TODAY)
    assert not matches(entry(1, therapist_id=8), SLOT, TODAY)
    assert not matches(entry(1, service_id=2), SLOT, TODAY)
    assert not matches(entry(1, date_from=date(2026, 12, 11)), SLOT, TODAY)
    assert not matches(entry(1, date_to=date(2026, 12, 9)), SLOT, TODAY)
    assert matches(entry(1, parts_of_day=frozenset({PartOfDay.MORNING})), SLOT, TODAY)
    assert not matches(
        entry(1, parts_of_day=frozenset({PartOfDay.AFTERNOON, PartOfDay.EVENING})), SLOT, TODAY
    )


def test_an_entry_whose_range_ended_matches_nothing() -> None:
    old = entry(1, date_from=date(2026, 11, 1), date_to=date(2026, 11, 30))
    late_slot = FreedSlot(1, 7, datetime(2026, 11, 30, 10, 0))
    assert matches(old, late_slot, date(2026, 11, 30))
    assert not matches(old, late_slot, TODAY)


def test_tiers() -> None:
    d = SLOT.local_date
    assert tier_for(entry(1, earliest=d, latest=d), d) is Tier.IN_WINDOW
    assert tier_for(entry(1, earliest=d - timedelta(days=9), latest=d - timedelta(days=1)), d) is (
        Tier.PAST_LATEST
    )
    assert tier_for(entry(1), d) is Tier.OTHER
    assert tier_for(entry(1, earliest=d - timedelta(days=1)), d) is Tier.OTHER
    assert tier_for(entry(1, earliest=d + timedelta(days=1), latest=d + timedelta(days=5)), d) is (
        None
    )


def test_rank_orders_in_window_then_past_latest_then_rest_by_join_time() -> None:
    d = SLOT.local_date
    rest_first = entry(1)
    overdue = entry(2, earliest=d - timedelta(days=10), latest=d - timedelta(days=2))
    due = entry(3, earliest=d - timedelta(days=1), latest=d + timedelta(days=3))
    too_early = entry(4, earliest=d + timedelta(days=1), latest=d + timedelta(days=5))
    rest_second = entry(5)
    ranked = rank([rest_first, overdue, due, too_early, rest_second], SLOT, TODAY)
    assert [r.entry.entry_id for r in ranked] == [3, 2, 1, 5]
    assert [r.tier for r in ranked] == [Tier.IN_WINDOW, Tier.PAST_LATEST, Tier.OTHER, Tier.OTHER]


def test_one_entry_per_client_and_excluded_clients_are_skipped() -> None:
    d = SLOT.local_date
    later_but_due = entry(2, client_id=1, earliest=d, latest=d)
    ranked = rank([entry(1, client_id=1), later_but_due, entry(3)], SLOT, TODAY)
    assert [r.entry.entry_id for r in ranked] == [2, 3]
    assert [r.entry.entry_id for r in rank([entry(1), entry(3)], SLOT, TODAY,
                                           exclude_clients=frozenset({1}))] == [3]


def test_nothing_matches_gives_an_empty_list() -> None:
    assert rank([entry(1, service_id=9), entry(2, therapist_id=3)], SLOT, TODAY) == []


def test_module_is_pure_stdlib() -> None:
    tree = ast.parse(Path(waitlist.__file__).read_text())
    imported = {
        (node.module or "").split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
    } | {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    }
    assert imported <= {"__future__", "collections", "dataclasses", "datetime", "enum"}


# --- properties -------------------------------------------------------------------------------

PROPS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

day_offsets = st.integers(min_value=-20, max_value=40)


@st.composite
def entries(draw: st.DrawFn) -> list[WaitingEntry]:
    """Up to 12 entries with random windows, join times, parts of day and therapists."""
    count = draw(st.integers(min_value=0, max_value=12))
    result: list[WaitingEntry] = []
    for i in range(1, count + 1):
        earliest = draw(st.none() | day_offsets.map(lambda n: TODAY + timedelta(days=n)))
        latest = None
        if earliest is not None and draw(st.booleans()):
            latest = earliest + timedelta(days=draw(st.integers(min_value=0, max_value=20)))
        result.append(
            entry(
                i,
                client_id=draw(st.integers(min_value=1, max_value=8)),
                therapist_id=draw(st.sampled_from([None, 7, 8])),
                joined_at=JOINED + timedelta(minutes=draw(st.integers(0, 10_000))),
                parts_of_day=frozenset(draw(st.sets(st.sampled_from(list(PartOfDay))))),
                earliest=earliest,
                latest=latest,
            )
        )
    return result


slots = st.builds(
    FreedSlot,
    service_id=st.just(1),
    therapist_id=st.sampled_from([7, 8]),
    local_start=st.builds(
        lambda days, minutes: datetime(2026, 12, 1, 8, 0) + timedelta(days=days, minutes=minutes),
        st.integers(min_value=0, max_value=30),
        st.integers(min_value=0, max_value=12 * 60),
    ),
)


@PROPS
@given(entries(), slots)
def test_never_offered_before_earliest(batch: list[WaitingEntry], slot: FreedSlot) -> None:
    for ranked in rank(batch, slot, TODAY):
        assert ranked.entry.earliest is None or slot.local_date >= ranked.entry.earliest


@PROPS
@given(entries(), slots)
def test_inside_window_beats_outside(batch: list[WaitingEntry], slot: FreedSlot) -> None:
    ranked = rank(batch, slot, TODAY)
    tiers = [r.tier for r in ranked]
    assert tiers == sorted(tiers)
    for r in ranked:
        e = r.entry
        inside = (
            e.earliest is not None
            and e.latest is not None
            and e.earliest <= slot.local_date <= e.latest
        )
        assert (r.tier is Tier.IN_WINDOW) == inside


@PROPS
@given(entries(), slots)
def test_stable_by_join_time_within_a_tier(batch: list[WaitingEntry], slot: FreedSlot) -> None:
    ranked = rank(batch, slot, TODAY)
    keys = [(r.tier, r.entry.joined_at, r.entry.entry_id) for r in ranked]
    assert keys == sorted(keys)
    # The input order does not matter: same answer for the reversed list.
    assert rank(list(reversed(batch)), slot, TODAY) == ranked


@PROPS
@given(entries(), slots)
def test_every_ranked_entry_matches_and_each_client_once(
    batch: list[WaitingEntry], slot: FreedSlot
) -> None:
    ranked = rank(batch, slot, TODAY)
    assert all(matches(r.entry, slot, TODAY) for r in ranked)
    clients = [r.entry.client_id for r in ranked]
    assert len(clients) == len(set(clients))
    # Every client with a matching entry not before earliest is offered (nobody lost).
    eligible = {
        e.client_id
        for e in batch
        if matches(e, slot, TODAY) and tier_for(e, slot.local_date) is not None
    }
    assert set(clients) == eligible
