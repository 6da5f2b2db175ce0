"""Catalogue stamp for the slot search's per-process cache

Revision ID: 0009
Revises: 0010
Create Date: 2026-12-01

One row whose value database triggers renew on every change to settings, closures, rooms,
therapists, services (and their therapists and rooms), weekly hours and overrides
(clinic_app/models/catalog_stamp.py explains why triggers and why not a counter), and an
index covering the slot search's bookings range query.
"""

import sqlalchemy as sa
from alembic import op

from clinic_app.models.catalog_stamp import CATALOG_TABLES
from clinic_app.models.catalog_stamp import trigger_statements

revision = "0009"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "catalog_stamp",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("stamp", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_catalog_stamp")),
    )
    for statement in trigger_statements(op.get_bind().dialect.name):
        op.execute(statement)
    op.create_index("ix_bookings_blocked_cover", "bookings",
                    ["blocked_start", "blocked_end", "therapist_id", "room_id", "status",
                     "expires_at"])


def downgrade():
    op.drop_index("ix_bookings_blocked_cover", table_name="bookings")
    dialect = op.get_bind().dialect.name
    for table in CATALOG_TABLES:
        if dialect == "postgresql":
            op.execute(f"DROP TRIGGER IF EXISTS {table}_catalog_stamp ON {table}")
        else:
            for action in ("insert", "update", "delete"):
                op.execute(f"DROP TRIGGER IF EXISTS {table}_catalog_stamp_{action}")
    if dialect == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS clinic_bump_catalog_stamp()")
    op.drop_table("catalog_stamp")
