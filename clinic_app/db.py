"""Database foundation: declarative base, naming convention, UTC datetimes, SQLite hooks."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime
from typing import Any

from sqlalchemy import DateTime
from sqlalchemy import MetaData
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

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


def install_sqlite_hooks(engine: Engine, busy_timeout_ms: int = 10_000) -> None:
    """Make SQLite safe for concurrent writers.

    pysqlite issues a deferred BEGIN lazily, which lets two transactions both
    read "slot is free" and then both write. We switch its own transaction
    handling off and emit ``BEGIN IMMEDIATE`` ourselves, so the write lock is
    taken at the start and the second writer waits (busy timeout) and then
    re-checks against committed data.
    """
    if engine.dialect.name != "sqlite":
        return

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
        conn.exec_driver_sql("BEGIN IMMEDIATE")


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
