"""Problem reports: warning signs a client reports after a session, any number of times

Revision ID: 0010
Revises: 0008
Create Date: 2026-12-01

Check-ins stay one per booking and kind; a report is its own row (several per booking),
read by the recommender beside the check-ins' red flags.
"""

import sqlalchemy as sa
from alembic import op

import clinic_app.db

revision = "0010"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "problem_reports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("booking_id", sa.Integer(), nullable=False),
        sa.Column("red_flags", sa.JSON(), nullable=False),
        sa.Column("submitted_at", clinic_app.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["booking_id"], ["bookings.id"],
                                name=op.f("fk_problem_reports_booking_id_bookings")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_problem_reports")),
    )
    with op.batch_alter_table("problem_reports", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_problem_reports_booking_id"), ["booking_id"],
                              unique=False)


def downgrade():
    with op.batch_alter_table("problem_reports", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_problem_reports_booking_id"))
    op.drop_table("problem_reports")
