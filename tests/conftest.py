"""Fixtures: app, client, db, clock, mailbox, factories — on SQLite and PostgreSQL.

Every test that asks for ``app`` runs twice: on SQLite and on PostgreSQL
(``CLINIC_TEST_DATABASE_URL``). Without that variable the PostgreSQL case is skipped, unless
``CLINIC_TEST_REQUIRE_POSTGRES=1`` (as in CI), where a missing server is a failure.

Two database modes:

* **savepoint** (the default): the schema is built once per test session (SQLite: one file per
  session; PostgreSQL: the test database). Each test runs inside one outer transaction on one
  connection, which is rolled back at the end. Every session the test makes (its own, one per
  request of the test client, the worker's jobs) joins that connection with
  ``join_transaction_mode="create_savepoint"``: the code's ``commit()`` releases a SAVEPOINT,
  its ``rollback()`` returns to it, and nothing outlives the test.
* **real**: a database of its own per test (SQLite: a fresh file; PostgreSQL: the tables
  emptied), committed for real, for tests whose code opens other connections — threads, live
  servers, worker or CLI processes, a second app on the same database, or counting every
  statement sent (savepoints would be counted). A test gets it with the ``real_db`` marker or
  fixture, or by using ``live_server``, ``live_server_factory``, ``runner`` or ``app_config``
  without ``app``; all of them are marked ``slow``.
"""

from __future__ import annotations

import contextvars
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC
from datetime import datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from flask import has_app_context
from flask.testing import FlaskClient
from flask_sqlalchemy.session import Session as FlaskSession
from flask_sqlalchemy.session import _app_ctx_id  # its scope: one session per app context
from sqlalchemy import create_engine
from sqlalchemy import text
from sqlalchemy.orm import scoped_session
from sqlalchemy.orm import sessionmaker

from clinic_app import create_app
from clinic_app import models  # noqa: F401  (every table on Base.metadata for create_all)
from clinic_app.clock import FrozenClock
from clinic_app.db import Base
from clinic_app.extensions import db as _db
from clinic_app.mail.backends import DevMailbox

PG_URL = os.environ.get("CLINIC_TEST_DATABASE_URL", "")
REQUIRE_PG = os.environ.get("CLINIC_TEST_REQUIRE_POSTGRES", "") == "1"
# A Monday, 08:00 UTC (09:00 in London? no: November is GMT, so 08:00 local).
START = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)

#: Fixtures whose tests need committed data in a database of their own (see the docstring).
REAL_DB_FIXTURES = ("real_db", "live_server", "live_server_factory", "runner")

_pg_ready = False
# True once a real-mode test may have committed rows; the next test empties the tables.
_pg_dirty = True


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that need a real database are ``slow`` (``-m "not slow"`` leaves them out)."""
    for item in items:
        names = getattr(item, "fixturenames", ())
        if item.get_closest_marker("real_db") or any(n in names for n in REAL_DB_FIXTURES) or (
                "app_config" in names and "app" not in names):
            item.add_marker(pytest.mark.slow)


def _prepare_postgres() -> None:
    """Create the schema once per test session."""
    global _pg_ready
    if _pg_ready:
        return
    engine = create_engine(PG_URL)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
        conn.execute(text("CREATE EXTENSION IF NOT EXISTS btree_gist"))
    Base.metadata.create_all(engine)
    engine.dispose()
    _pg_ready = True


def _truncate_postgres() -> None:
    engine = create_engine(PG_URL)
    names = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    engine.dispose()


def _postgres_url(*, empty: bool) -> str:
    """PG_URL with the schema built; ``empty``: its tables emptied when a test may have
    committed rows since they were last emptied."""
    global _pg_dirty
    if not PG_URL:
        if REQUIRE_PG:
            pytest.fail("CLINIC_TEST_REQUIRE_POSTGRES=1 but CLINIC_TEST_DATABASE_URL is not set")
        pytest.skip("PostgreSQL tests need CLINIC_TEST_DATABASE_URL")
    try:
        _prepare_postgres()
        if empty or _pg_dirty:
            _truncate_postgres()
    except Exception as exc:  # noqa: BLE001
        if REQUIRE_PG:
            pytest.fail(f"PostgreSQL at CLINIC_TEST_DATABASE_URL is not usable: {exc}")
        pytest.skip(f"PostgreSQL not reachable: {exc}")
    _pg_dirty = empty
    return PG_URL


def database_url(kind: str, tmp_path: Path) -> str:
    """A database of its own for one test: ``kind`` "sqlite" (a new file under ``tmp_path``)
    or "postgresql" (its tables emptied), skipping or failing as configured."""
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'test.sqlite3'}"
    return _postgres_url(empty=True)


def uses_real_database(request: pytest.FixtureRequest) -> bool:
    """Whether this test runs in real mode (see the module docstring)."""
    names = request.fixturenames
    return (request.node.get_closest_marker("real_db") is not None
            or any(name in names for name in REAL_DB_FIXTURES) or "app" not in names)


@pytest.fixture(scope="session")
def shared_sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One SQLite file per test session with the schema built, for savepoint-mode tests."""
    url = f"sqlite:///{tmp_path_factory.mktemp('shared-db') / 'test.sqlite3'}"
    engine = create_engine(url)
    Base.metadata.create_all(engine)
    engine.dispose()
    return url


@pytest.fixture
def real_db() -> None:
    """Ask for this (or mark the test ``real_db``) to give it a database of its own,
    committed for real; such tests are ``slow``."""


@pytest.fixture(params=["sqlite", "postgresql"])
def db_kind(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(START)


@pytest.fixture
def app_config(request: pytest.FixtureRequest, db_kind: str, tmp_path: Path,
               clock: FrozenClock) -> dict[str, Any]:
    """The test configuration; tests may change it before asking for ``app``."""
    if uses_real_database(request):
        url = database_url(db_kind, tmp_path)
    elif db_kind == "sqlite":
        url = request.getfixturevalue("shared_sqlite_url")
    else:
        url = _postgres_url(empty=False)
    return {
        "TESTING": True,
        "DATABASE_URL": url,
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
    IMMEDIATE) and the test sees fresh data afterwards. (In savepoint mode this also
    keeps the savepoints nested: the request's opens after the test's was released.)
    """

    def open(self, *args: Any, **kwargs: Any) -> Any:
        if has_app_context():
            _db.session.commit()
        return contextvars.Context().run(super().open, *args, **kwargs)


class _ConnectionSession(FlaskSession):
    """Flask-SQLAlchemy's session, bound to the test's one connection whatever the model.

    Flask-SQLAlchemy picks the app's engine per model and ignores ``bind``; here every
    statement must go through the connection that holds the test's outer transaction.
    """

    def get_bind(self, mapper: Any = None, clause: Any = None, bind: Any = None,
                 **kwargs: Any) -> Any:
        return bind if bind is not None else self.bind


@contextmanager
def _savepoint_sessions() -> Iterator[None]:
    """Inside an app context: ``db.session`` joins one connection's outer transaction (each
    session's transactions are SAVEPOINTs in it); the transaction is rolled back at the end."""
    connection = _db.engine.connect()
    outer = connection.begin()
    original = _db.session
    options = dict(original.session_factory.kw)
    options.update(bind=connection, join_transaction_mode="create_savepoint")
    _db.session = scoped_session(sessionmaker(class_=_ConnectionSession, **options),
                                 scopefunc=_app_ctx_id)
    try:
        yield
    finally:
        _db.session.remove()
        _db.session = original
        outer.rollback()
        connection.close()


@pytest.fixture
def app(request: pytest.FixtureRequest, app_config: dict[str, Any]) -> Iterator[Any]:
    app = create_app(app_config)
    app.test_client_class = IsolatedClient
    with app.app_context():
        if uses_real_database(request):
            if app.config["DATABASE_URL"].startswith("sqlite"):
                _db.create_all()
            yield app
        else:
            with _savepoint_sessions():
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
