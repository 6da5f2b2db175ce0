"""One check-in per booking and kind

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21

Two racing submissions of the same check-in link must give one answer and one 409,
so the database enforces it.
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("check_ins", schema=None) as batch_op:
        batch_op.create_unique_constraint("uq_check_ins_booking_kind", ["booking_id", "kind"])


def downgrade():
    with op.batch_alter_table("check_ins", schema=None) as batch_op:
        batch_op.drop_constraint("uq_check_ins_booking_kind", type_="unique")
