"""Waitlist offers, the queue of freed time, and the clinic's offer hold time (issue 13.2)

Revision ID: 0011
Revises: 0009
Create Date: 2026-12-02

A freed slot is offered to one waiting client at a time (``waitlist_offers``, at most one
open offer per client: a partial unique index); every change that frees time queues a row in
``freed_slots`` for the worker. ``clinic_settings.offer_minutes`` says how long an offer holds
the slot.

``clinic_settings`` carries the catalogue stamp triggers of 0009: its column is added with a
plain ADD COLUMN (SQLite supports it), never with batch mode, which would recreate the table
and drop the triggers.
"""

import sqlalchemy as sa
from alembic import op

import clinic_app.db

revision = "0011"
down_revision = "0009"
branch_labels = None
depends_on = None

_OPEN = sa.text("status = 'open'")
_PENDING = sa.text("processed_at IS NULL")


def upgrade():
    op.add_column("clinic_settings", sa.Column("offer_minutes", sa.Integer(), nullable=False,
                                               server_default="30"))
    op.create_table(
        "waitlist_offers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("entry_id", sa.Integer(), nullable=False),
        sa.Column("client_id", sa.Integer(), nullable=False),
        sa.Column("service_id", sa.Integer(), nullable=False),
        sa.Column("therapist_id", sa.Integer(), nullable=False),
        sa.Column("start_at", clinic_app.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("end_at", clinic_app.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("hold_id", sa.Integer(), nullable=False),
        sa.Column("booking_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("freed_at", clinic_app.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_at", clinic_app.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", clinic_app.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("responded_at", clinic_app.db.UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('open', 'accepted', 'declined', 'expired', 'withdrawn')",
            name=op.f("ck_waitlist_offers_status"),
        ),
        sa.CheckConstraint("end_at > start_at", name=op.f("ck_waitlist_offers_times_ordered")),
        sa.ForeignKeyConstraint(["booking_id"], ["bookings.id"], ondelete="SET NULL",
                                name=op.f("fk_waitlist_offers_booking_id_bookings")),
        sa.ForeignKeyConstraint(["client_id"], ["users.id"],
                                name=op.f("fk_waitlist_offers_client_id_users")),
        sa.ForeignKeyConstraint(["entry_id"], ["waitlist_entries.id"],
                                name=op.f("fk_waitlist_offers_entry_id_waitlist_entries")),
        sa.ForeignKeyConstraint(["service_id"], ["services.id"],
                                name=op.f("fk_waitlist_offers_service_id_services")),
        sa.ForeignKeyConstraint(["therapist_id"], ["therapists.id"],
                                name=op.f("fk_waitlist_offers_therapist_id_therapists")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_waitlist_offers")),
    )
    op.create_index("uq_waitlist_offers_open_client", "waitlist_offers", ["client_id"],
                    unique=True, sqlite_where=_OPEN, postgresql_where=_OPEN)
    op.create_index("ix_waitlist_offers_therapist_start", "waitlist_offers",
                    ["therapist_id", "start_at"])
    op.create_index("ix_waitlist_offers_status_expires", "waitlist_offers",
                    ["status", "expires_at"])
    op.create_table(
        "freed_slots",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("therapist_id", sa.Integer(), nullable=False),
        sa.Column("start_at", clinic_app.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("end_at", clinic_app.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("created_at", clinic_app.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("processed_at", clinic_app.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("source_booking_id", sa.Integer(), nullable=True),
        sa.CheckConstraint("end_at > start_at", name=op.f("ck_freed_slots_times_ordered")),
        sa.ForeignKeyConstraint(["therapist_id"], ["therapists.id"],
                                name=op.f("fk_freed_slots_therapist_id_therapists")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_freed_slots")),
    )
    op.create_index("ix_freed_slots_pending", "freed_slots", ["created_at"],
                    sqlite_where=_PENDING, postgresql_where=_PENDING)
    op.create_index("ix_freed_slots_source", "freed_slots", ["source_booking_id"])


def downgrade():
    op.drop_table("freed_slots")
    op.drop_table("waitlist_offers")
    # SQLite 3.35+ drops a column in place (no table copy, so the stamp triggers stay).
    op.drop_column("clinic_settings", "offer_minutes")
