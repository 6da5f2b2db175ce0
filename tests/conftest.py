"""Fixtures: app, client, db, clock, mailbox, factories — on SQLite and PostgreSQL.

Every test that asks for ``app`` runs twice: on a fresh SQLite file and on
PostgreSQL (``CLINIC_TEST_DATABASE_URL``). Without that variable the PostgreSQL
case is skipped, unless ``CLINIC_TEST_REQUIRE_POSTGRES=1`` (as in CI), where a
missing server is a failure.
"""

from __future__ import annotations

import contextvars
import os
import re
from collections.abc import Iterator
from datetime import UTC
from datetime import datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from flask import has_app_context
from flask.testing import FlaskClient
from sqlalchemy import create_engine
from sqlalchemy import text

from clinic_app import create_app
from clinic_app.clock import FrozenClock
from clinic_app.extensions import db as _db
from clinic_app.mail.backends import DevMailbox

PG_URL = os.environ.get("CLINIC_TEST_DATABASE_URL", "")
REQUIRE_PG = os.environ.get("CLINIC_TEST_REQUIRE_POSTGRES", "") == "1"
# A Monday, 08:00 UTC (09:00 in London? no: November is GMT, so 08:00 local).
START = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)

_pg_ready = False


def _prepare_postgres() -> None:
    """Create the schema once per test session (tables are emptied per test)."""
    global _pg_ready
    if _pg_ready:
        return
    engine = create_engine(PG_URL)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
        conn.execute(text("CREATE EXTENSION IF NOT EXISTS btree_gist"))
    from clinic_app import models  # noqa: F401
    from clinic_app.db import Base

    Base.metadata.create_all(engine)
    engine.dispose()
    _pg_ready = True


def _truncate_postgres() -> None:
    from clinic_app.db import Base

    engine = create_engine(PG_URL)
    names = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    engine.dispose()


def database_url(kind: str, tmp_path: Path) -> str:
    """The URL for ``kind`` ("sqlite" or "postgresql"), skipping or failing as configured."""
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'test.sqlite3'}"
    if not PG_URL:
        if REQUIRE_PG:
            pytest.fail("CLINIC_TEST_REQUIRE_POSTGRES=1 but CLINIC_TEST_DATABASE_URL is not set")
        pytest.skip("PostgreSQL tests need CLINIC_TEST_DATABASE_URL")
    try:
        _prepare_postgres()
    except Exception as exc:  # noqa: BLE001
        if REQUIRE_PG:
            pytest.fail(f"PostgreSQL at CLINIC_TEST_DATABASE_URL is not usable: {exc}")
        pytest.skip(f"PostgreSQL not reachable: {exc}")
    _truncate_postgres()
    return PG_URL


@pytest.fixture(params=["sqlite", "postgresql"])
def db_kind(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(START)


@pytest.fixture
def app_config(db_kind: str, tmp_path: Path, clock: FrozenClock) -> dict[str, Any]:
    """The test configuration; tests may change it before asking for ``app``."""
    return {
        "TESTING": True,
        "DATABASE_URL": database_url(db_kind, tmp_path),
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "DEV_MAILBOX_DIR": str(tmp_path / "mailbox"),
        "SECRET_KEY": "test-secret-key-that-is-long-enough",
        "BASE_URL": "http://clinic.test",
        "MAIL_BACKEND": "dev",
        "WTF_CSRF_ENABLED": False,
        "RATELIMIT_STORAGE_URL": "memory://",
        "EMBEDDED": True,
        "CLOCK": clock,
    }


class IsolatedClient(FlaskClient):
    """A test client whose every request runs in its own app context, like a real
    server: its own database session and ``g``, torn down afterwards.

    Before each request the test's own session is committed, so that a read in
    the test does not hold SQLite's write lock (every transaction there begins
    IMMEDIATE) and the test sees fresh data afterwards.
    """

    def open(self, *args: Any, **kwargs: Any) -> Any:
        if has_app_context():
            _db.session.commit()
        return contextvars.Context().run(super().open, *args, **kwargs)


@pytest.fixture
def app(app_config: dict[str, Any]) -> Iterator[Any]:
    app = create_app(app_config)
    app.test_client_class = IsolatedClient
    with app.app_context():
        if app.config["DATABASE_URL"].startswith("sqlite"):
            _db.create_all()
        yield app
        _db.session.remove()
        _db.engine.dispose()


@pytest.fixture
def client(app: Any) -> Any:
    return app.test_client()


@pytest.fixture
def runner(app: Any) -> Any:
    return app.test_cli_runner()


@pytest.fixture
def db(app: Any) -> Any:
    return _db


class Mailbox:
    """The dev backend's messages, after running the outbox dispatcher."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.box: DevMailbox = app.extensions["mail_backend"]

    def deliver(self) -> list[EmailMessage]:
        from clinic_app.worker import dispatch_outbox_job

        if has_app_context():
            _db.session.commit()
        contextvars.Context().run(dispatch_outbox_job, self.app)
        return self.messages()

    def messages(self, to: str | None = None) -> list[EmailMessage]:
        out = [m for _, m in self.box.messages()]
        if to is not None:
            out = [m for m in out if to.lower() in str(m["To"]).lower()]
        return out

    @staticmethod
    def text(message: EmailMessage) -> str:
        part = message.get_body(preferencelist=("plain",))
        return part.get_content() if part is not None else ""

    def links(self, to: str, contains: str = "") -> list[str]:
        found = []
        for m in self.deliver() if not self.messages(to) else self.messages(to):
            found += re.findall(r"https?://\S+", self.text(m))
        return [u for u in found if contains in u]

    def last_link(self, to: str, contains: str) -> str:
        self.deliver()
        links = self.links(to, contains)
        assert links, f"no link containing {contains!r} in mail to {to}"
        return links[-1]


@pytest.fixture
def mailbox(app: Any) -> Mailbox:
    return Mailbox(app)


def path_of(url: str) -> str:
    """The path of an absolute link from an email, for the test client."""
    return re.sub(r"^https?://[^/]+", "", url)
