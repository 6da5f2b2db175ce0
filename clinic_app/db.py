"""Database foundation: declarative base, naming convention, UTC datetimes, SQLite hooks."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextlib import suppress
from contextvars import ContextVar
from datetime import UTC
from datetime import datetime
from typing import Any

from sqlalchemy import DateTime
from sqlalchemy import MetaData
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

log = logging.getLogger(__name__)

# Stable constraint names so that Alembic batch migrations on SQLite can find them.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """The one declarative base of every model."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that is always an aware UTC datetime in Python.

    SQLite keeps no offset, so values are stored as naive UTC there and made
    aware on the way out; PostgreSQL stores ``timestamptz``. Naive values are
    refused: they are always a bug (local time mistaken for UTC).
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"UTCDateTime needs a datetime, got {type(value).__name__}")
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("UTCDateTime refuses naive datetimes; pass an aware UTC value")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class WriteInReadTransaction(RuntimeError):
    """A write statement reached a transaction that was begun read-only.

    Read-only transactions (GET/HEAD/OPTIONS requests, jobs under :func:`read_only`) begin
    deferred on SQLite and in autocommit on PostgreSQL, so a write there would either race
    for SQLite's write lock with a stale snapshot or commit statement by statement on
    PostgreSQL. The statement is refused *before* it runs: a request is then restarted in a
    write transaction (:func:`install_transaction_modes`), a job marked read-only fails loudly.
    """


# Which kind of transaction the next BEGIN opens, for the current request or job (a context
# variable: each request of a threaded server runs in its own context).
_READ_ONLY: ContextVar[bool] = ContextVar("clinic_read_only_transaction", default=False)
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Statements that write or lock: refused in a read-only transaction. SAVEPOINT too, because
# PostgreSQL refuses it outside a transaction block (autocommit).
_WRITE_HEADS = ("INSERT", "UPDATE", "DELETE", "REPLAC", "CREATE", "DROP", "ALTER", "SAVEPO")
_INFO_KEY = "clinic_read_only"


def transaction_is_read_only() -> bool:
    """True when the next transaction of this context begins read-only."""
    return _READ_ONLY.get()


@contextmanager
def read_only(enabled: bool = True) -> Iterator[None]:
    """Transactions begun inside this block are read-only (deferred / autocommit).

    The explicit marker for read-only jobs; a write inside raises WriteInReadTransaction.
    The session's current transaction, if any, is not changed: end it before the block.
    """
    token = _READ_ONLY.set(enabled)
    try:
        yield
    finally:
        _READ_ONLY.reset(token)


_CTE_WRITE = re.compile(r"\b(INSERT\s+INTO|UPDATE|DELETE\s+FROM)\b")


def _is_write(statement: str) -> bool:
    head = statement.lstrip()[:6].upper()
    if head.startswith(_WRITE_HEADS):
        return True
    if not head.startswith(("SELECT", "WITH")):
        return False
    upper = statement.upper()
    # A row lock means the caller is about to write what it read; a WITH may hold a write
    # (PostgreSQL's data-modifying CTE: a new booking's INSERT joined to its parties).
    return " FOR UPDATE" in upper or (head.startswith("WITH")
                                       and _CTE_WRITE.search(upper) is not None)


def install_transaction_hooks(engine: Engine, busy_timeout_ms: int = 10_000) -> None:
    """Begin each transaction read-only or for writing, as the current context asks.

    SQLite: pysqlite's own transaction handling is switched off and we emit ``BEGIN`` (a
    deferred transaction: it reads a WAL snapshot and never takes the write lock) for
    read-only transactions and ``BEGIN IMMEDIATE`` for the rest, so a writer takes the write
    lock at its start and a second writer waits (busy timeout) and then re-checks against
    committed data (pysqlite's lazy deferred BEGIN would let two writers both read "slot is
    free" and then both write).

    PostgreSQL: a read-only transaction runs the connection in autocommit, so psycopg sends
    no ``BEGIN`` and the end of the request no ``ROLLBACK``: the SELECTs are the only round
    trips. At READ COMMITTED (the default) every statement takes its own snapshot anyway, so
    reads see the same data as inside a transaction block.

    Both: a write statement in a read-only transaction raises WriteInReadTransaction before
    it reaches the database.
    """
    dialect = engine.dialect.name

    if dialect == "sqlite":

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection: Any, connection_record: Any) -> None:
            dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
            if engine.url.database not in (None, "", ":memory:"):
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        read = _READ_ONLY.get()
        conn.info[_INFO_KEY] = read
        if dialect == "sqlite":
            conn.exec_driver_sql("BEGIN" if read else "BEGIN IMMEDIATE")
        elif dialect == "postgresql":
            raw = conn.connection.dbapi_connection
            if raw.autocommit != read:
                raw.autocommit = read

    @event.listens_for(engine, "before_cursor_execute")
    def _refuse_writes(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if conn.info.get(_INFO_KEY) and _is_write(statement):
            raise WriteInReadTransaction(
                f"write in a read-only transaction: {statement.split(None, 1)[0]}")

    def _ended(conn: Any) -> None:
        conn.info.pop(_INFO_KEY, None)

    event.listen(engine, "commit", _ended)
    event.listen(engine, "rollback", _ended)

    if dialect == "postgresql":

        @event.listens_for(engine, "checkin")
        def _back_to_transactions(dbapi_connection: Any, connection_record: Any) -> None:
            # Pooled connections go back to psycopg's default (implicit BEGIN); the next
            # begin sets the mode it needs. A broken connection is discarded by the pool.
            if dbapi_connection is not None and dbapi_connection.autocommit:
                with suppress(Exception):
                    dbapi_connection.autocommit = False
            connection_record.info.pop(_INFO_KEY, None)

        install_idle_ping(engine)


#: Connections idle longer than this are pinged on checkout; busier ones are trusted.
IDLE_PING_SECONDS = 30.0


def install_idle_ping(engine: Engine, idle_seconds: float = IDLE_PING_SECONDS) -> None:
    """Ping a pooled connection on checkout only if it sat idle for ``idle_seconds``.

    ``pool_pre_ping`` costs a round trip on every checkout, i.e. on every request. A
    connection used seconds ago is alive (a server restart since then is caught by
    SQLAlchemy's disconnect handling, which invalidates the whole pool); one idle longer
    may have been closed by the server or a firewall, so it is pinged and replaced if dead.
    """

    @event.listens_for(engine, "checkin")
    def _stamp(dbapi_connection: Any, connection_record: Any) -> None:
        connection_record.info["clinic_idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping_if_idle(dbapi_connection: Any, connection_record: Any, proxy: Any) -> None:
        since = connection_record.info.get("clinic_idle_since")
        if since is None or time.monotonic() - since < idle_seconds:
            return
        try:
            cursor = dbapi_connection.cursor()
            try:
                cursor.execute("SELECT 1")
            finally:
                cursor.close()
            if not dbapi_connection.autocommit:
                dbapi_connection.rollback()
        except Exception as exc:  # noqa: BLE001 - any failure means "replace this connection"
            raise DisconnectionError(str(exc)) from exc


_RESTARTED = "clinic.restarted_for_write"
_MODE_KEY = "clinic.transaction_mode"


def install_transaction_modes(app: Any) -> None:
    """Requests with a read method run read-only; a write there restarts the request.

    GET/HEAD/OPTIONS begin read-only transactions. If such a request writes after all (a
    verification link, the settings row created on first use), the statement is refused
    before it runs, the session is rolled back and the request runs again from the start in
    a write transaction: nothing it did before touched the database, so the rerun is exact.
    The view is rerun on its own (its error handlers would otherwise turn the refusal into
    a 500); a write in an error handler or ``after_request`` reruns the whole dispatch.
    """
    from flask import request  # Flask only where a Flask app is given (db.py stays Flask-free)

    from clinic_app.extensions import db

    @app.before_request
    def _choose_transaction_mode() -> None:
        read = request.method in READ_METHODS and not request.environ.get(_RESTARTED)
        token = _READ_ONLY.set(read)
        request.environ.setdefault(_MODE_KEY, token)

    @app.teardown_request
    def _restore_transaction_mode(exc: BaseException | None) -> None:
        # A server may run the next request, or a test its next step, in the same context:
        # the mode must not outlive its request.
        token = request.environ.pop(_MODE_KEY, None)
        if token is not None:
            _READ_ONLY.reset(token)

    def restarted(run: Any) -> Any:
        def wrapper() -> Any:
            try:
                return run()
            except WriteInReadTransaction:
                if not _READ_ONLY.get():
                    raise
                log.info("%s %s writes: restarted in a write transaction",
                         request.method, request.path)
                db.session.rollback()
                request.environ[_RESTARTED] = True
                _READ_ONLY.set(False)
                return run()

        return wrapper

    app.dispatch_request = restarted(app.dispatch_request)
    app.full_dispatch_request = restarted(app.full_dispatch_request)


def raw_timestamp(column: Any, dialect_name: str) -> Any:
    """``column`` selected without UTCDateTime's per-value processing, for hot paths.

    On SQLite the stored text comes back as is (``fromisoformat`` in
    :func:`utc_from_raw` is several times faster than the generic DateTime parser);
    on PostgreSQL psycopg already returns aware datetimes.
    """
    from sqlalchemy import String
    from sqlalchemy import type_coerce

    if dialect_name == "sqlite":
        return type_coerce(column, String)
    return type_coerce(column, DateTime(timezone=True))


def utc_from_raw(value: str | datetime) -> datetime:
    """The aware UTC datetime for a value selected with :func:`raw_timestamp`."""
    if isinstance(value, str):
        # SQLite keeps naive UTC text; parsing it with its offset is one C call.
        return datetime.fromisoformat(value + "+00:00")
    return value.astimezone(UTC)
