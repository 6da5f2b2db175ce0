"""PostgreSQL pool: no ping for a connection used moments ago, a ping (and a replacement if
dead) for one that sat idle. ``pool_pre_ping`` used to cost a round trip on every request."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import create_engine
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from clinic_app.db import install_idle_ping
from tests.conftest import database_url


def _kill(admin, pid: int) -> None:
    with admin.connect() as conn:
        conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        conn.commit()
    time.sleep(0.2)  # let the server close the socket


def test_idle_connection_is_pinged_and_replaced_a_busy_one_is_not(tmp_path):
    url = database_url("postgresql", tmp_path)
    engine = create_engine(url, pool_size=1, max_overflow=0)
    admin = create_engine(url)
    install_idle_ping(engine, idle_seconds=1.0)
    try:
        with engine.connect() as conn:
            first_pid = conn.execute(text("SELECT pg_backend_pid()")).scalar()
        # Used moments ago: trusted without a round trip, so a dead one is only seen on use.
        _kill(admin, first_pid)
        with engine.connect() as conn, pytest.raises(OperationalError):
            conn.execute(text("SELECT 1"))
        with engine.connect() as conn:  # the pool replaced the invalidated connection
            second_pid = conn.execute(text("SELECT pg_backend_pid()")).scalar()
        assert second_pid != first_pid
        # Idle longer than the threshold: pinged on checkout, found dead, replaced unseen.
        _kill(admin, second_pid)
        time.sleep(1.1)
        with engine.connect() as conn:
            third_pid = conn.execute(text("SELECT pg_backend_pid()")).scalar()
        assert third_pid not in (first_pid, second_pid)
    finally:
        engine.dispose()
        admin.dispose()
