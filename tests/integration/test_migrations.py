"""The committed migrations build exactly the schema the models describe."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade
from flask_migrate import upgrade
from sqlalchemy import create_engine
from sqlalchemy import inspect
from sqlalchemy import text
from sqlalchemy.engine import make_url

from clinic_app import create_app
from clinic_app.db import Base
from clinic_app.extensions import db
from clinic_app.models.catalog_stamp import CATALOG_TABLES
from tests.conftest import PG_URL
from tests.conftest import REQUIRE_PG


def _empty_database(kind: str, tmp_path) -> str:
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'migrated.sqlite3'}"
    if not PG_URL:
        if REQUIRE_PG:
            pytest.fail("CLINIC_TEST_REQUIRE_POSTGRES=1 but CLINIC_TEST_DATABASE_URL is not set")
        pytest.skip("PostgreSQL tests need CLINIC_TEST_DATABASE_URL")
    url = make_url(PG_URL)
    name = f"{url.database}_migrations"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return url.set(database=name).render_as_string(hide_password=False)


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_upgrade_from_empty_matches_the_models(kind, tmp_path):
    url = _empty_database(kind, tmp_path)
    app = create_app({"TESTING": True, "DATABASE_URL": url,
                      "INSTANCE_PATH": str(tmp_path / "instance")})
    with app.app_context():
        upgrade()
        with db.engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            diff = compare_metadata(context, Base.metadata)
        assert diff == [], f"models and migrations differ: {diff}"
        tables = set(inspect(db.engine).get_table_names())
        assert {"users", "bookings", "outbox", "session_records"} <= tables
        if kind == "postgresql":
            with db.engine.connect() as conn:
                names = set(conn.scalars(text(
                    "SELECT conname FROM pg_constraint WHERE contype = 'x'")))
            assert names == {"ex_bookings_therapist_overlap", "ex_bookings_room_overlap"}
        # Every catalogue table still has its stamp trigger at head: a later migration that
        # recreates a table (SQLite batch mode) would drop them, and the slot search's
        # per-process cache would then miss changes.
        with db.engine.connect() as conn:
            if kind == "postgresql":
                triggers = set(conn.scalars(text(
                    "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal")))
                expected = {f"{t}_catalog_stamp" for t in CATALOG_TABLES}
            else:
                triggers = set(conn.scalars(text(
                    "SELECT name FROM sqlite_master WHERE type = 'trigger'")))
                expected = {f"{t}_catalog_stamp_{a}" for t in CATALOG_TABLES
                            for a in ("insert", "update", "delete")}
        assert expected <= triggers, f"stamp triggers missing: {expected - triggers}"
        downgrade(revision="base")
        assert set(inspect(db.engine).get_table_names()) <= {"alembic_version"}
        db.engine.dispose()
