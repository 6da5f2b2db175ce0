"""Held slots: a bookings row with status 'held' reserves a slot until it expires

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01

A hold (issue 12.1) blocks the therapist and the room through the same exclusion
constraints as a booking (their predicate, status <> 'cancelled', already covers it). A
visitor may hold a slot before having an account, so client_id becomes nullable for holds
only; every hold has an expiry and a purpose. The clinic setting hold_minutes says how long.
"""

import sqlalchemy as sa
from alembic import op

from clinic_app.db import UTCDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_OLD_STATUSES = "status IN ('pending', 'booked', 'completed', 'cancelled', 'no_show')"
_NEW_STATUSES = "status IN ('pending', 'booked', 'completed', 'cancelled', 'no_show', 'held')"


def upgrade():
    with op.batch_alter_table("clinic_settings", schema=None) as batch_op:
        batch_op.add_column(sa.Column("hold_minutes", sa.Integer(), nullable=False,
                                      server_default="10"))
    with op.batch_alter_table("bookings", schema=None) as batch_op:
        batch_op.add_column(sa.Column("expires_at", UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("hold_purpose", sa.String(length=16), nullable=True))
        batch_op.alter_column("client_id", existing_type=sa.Integer(), nullable=True)
        batch_op.drop_constraint(op.f("ck_bookings_status"), type_="check")
        batch_op.create_check_constraint(op.f("ck_bookings_status"), _NEW_STATUSES)
        batch_op.create_check_constraint(op.f("ck_bookings_client_unless_held"),
                                         "status = 'held' OR client_id IS NOT NULL")
        batch_op.create_check_constraint(
            op.f("ck_bookings_hold_expires"),
            "status <> 'held' OR (expires_at IS NOT NULL AND hold_purpose IS NOT NULL)")
        batch_op.create_index("ix_bookings_expires_at", ["expires_at"], unique=False)


def downgrade():
    # Holds are minutes-long reservations, not appointments: dropping them loses nothing.
    op.execute(sa.text("DELETE FROM bookings WHERE status = 'held'"))
    with op.batch_alter_table("bookings", schema=None) as batch_op:
        batch_op.drop_index("ix_bookings_expires_at")
        batch_op.drop_constraint(op.f("ck_bookings_hold_expires"), type_="check")
        batch_op.drop_constraint(op.f("ck_bookings_client_unless_held"), type_="check")
        batch_op.drop_constraint(op.f("ck_bookings_status"), type_="check")
        batch_op.create_check_constraint(op.f("ck_bookings_status"), _OLD_STATUSES)
        batch_op.alter_column("client_id", existing_type=sa.Integer(), nullable=False)
        batch_op.drop_column("hold_purpose")
        batch_op.drop_column("expires_at")
    with op.batch_alter_table("clinic_settings", schema=None) as batch_op:
        batch_op.drop_column("hold_minutes")
