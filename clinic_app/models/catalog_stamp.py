"""The catalogue stamp: one row whose value changes with every change to what can be booked.

The slot search caches settings, services and hours per process (they change rarely and
cost most of a one-day search to read). The cache is only valid while this stamp is the one
it was loaded with. Database triggers (not application code) set a new stamp on every
INSERT, UPDATE or DELETE of the tables in :data:`CATALOG_TABLES`, so no code path, bulk
statement or manual SQL can change the catalogue without the search noticing.

The new value is unique, not a counter: PostgreSQL uses the writing transaction's id and
SQLite a 64-bit random number, so a stamp written by a transaction that rolls back is never
seen again (a counter would come back to the same value with different data).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import DDL
from sqlalchemy import BigInteger
from sqlalchemy import event
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from clinic_app.db import Base

#: Every table whose rows decide which slots a search offers (bookings excepted: they are
#: read on every search anyway).
CATALOG_TABLES = (
    "clinic_settings",
    "closures",
    "rooms",
    "therapists",
    "services",
    "service_therapists",
    "service_rooms",
    "weekly_hours",
    "hours_overrides",
)
STAMP_ROW_ID = 1


class CatalogStamp(Base):
    """The one row (``id = 1``) holding the current catalogue stamp."""

    __tablename__ = "catalog_stamp"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    stamp: Mapped[int] = mapped_column(BigInteger)


PG_FUNCTION = """
CREATE OR REPLACE FUNCTION clinic_bump_catalog_stamp() RETURNS trigger AS $$
BEGIN
    UPDATE catalog_stamp SET stamp = txid_current() WHERE id = 1;
    RETURN NULL;
END
$$ LANGUAGE plpgsql
"""


def trigger_statements(dialect: str) -> list[str]:
    """DDL creating the stamp row and the triggers that renew it (used by the migration too)."""
    if dialect == "postgresql":
        out = [PG_FUNCTION, "INSERT INTO catalog_stamp (id, stamp) VALUES (1, txid_current())"]
        for table in CATALOG_TABLES:
            out.append(
                f"CREATE TRIGGER {table}_catalog_stamp AFTER INSERT OR UPDATE OR DELETE OR "
                f"TRUNCATE ON {table} FOR EACH STATEMENT "
                f"EXECUTE FUNCTION clinic_bump_catalog_stamp()")
        return out
    out = ["INSERT INTO catalog_stamp (id, stamp) VALUES (1, random())"]
    # Only the fixed names of CATALOG_TABLES are interpolated.
    for table in CATALOG_TABLES:
        for action in ("INSERT", "UPDATE", "DELETE"):
            name = f"{table}_catalog_stamp_{action.lower()}"
            body = "UPDATE catalog_stamp SET stamp = random() WHERE id = 1;"
            out.append(f"CREATE TRIGGER {name} AFTER {action} ON {table} FOR EACH ROW "
                       f"BEGIN {body} END")
    return out


@event.listens_for(Base.metadata, "after_create")
def _create_triggers(target: Any, connection: Any, **kw: Any) -> None:
    # metadata.create_all (tests, benchmarks) gets the same triggers as the migration.
    if "catalog_stamp" not in {t.name for t in kw.get("tables", ())}:
        return
    for statement in trigger_statements(connection.dialect.name):
        connection.execute(DDL(statement))
