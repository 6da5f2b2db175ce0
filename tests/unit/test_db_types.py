"""The UTCDateTime type and the frozen clock."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime
from datetime import timedelta
from datetime import timezone

import pytest
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects import sqlite

from clinic_app.clock import FrozenClock
from clinic_app.db import UTCDateTime


def test_naive_datetimes_are_refused():
    with pytest.raises(ValueError, match="naive"):
        UTCDateTime().process_bind_param(datetime(2026, 1, 1, 9), sqlite.dialect())


def test_offsets_are_converted_to_utc_and_come_back_aware():
    plus_two = datetime(2026, 6, 1, 10, tzinfo=timezone(timedelta(hours=2)))
    stored = UTCDateTime().process_bind_param(plus_two, sqlite.dialect())
    assert stored == datetime(2026, 6, 1, 8) and stored.tzinfo is None
    back = UTCDateTime().process_result_value(stored, sqlite.dialect())
    assert back == plus_two and back.tzinfo == UTC
    on_pg = UTCDateTime().process_bind_param(plus_two, postgresql.dialect())
    assert on_pg.tzinfo == UTC and on_pg.hour == 8


def test_non_datetimes_are_refused():
    with pytest.raises(TypeError):
        UTCDateTime().process_bind_param("2026-01-01", sqlite.dialect())


def test_frozen_clock_moves_only_when_told():
    clock = FrozenClock(datetime(2026, 1, 1, tzinfo=UTC))
    assert clock.now() == datetime(2026, 1, 1, tzinfo=UTC)
    clock.advance(timedelta(hours=1))
    assert clock.now().hour == 1
    with pytest.raises(ValueError):
        FrozenClock(datetime(2026, 1, 1))
