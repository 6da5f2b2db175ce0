"""The front desk: phone-only clients, staff booking options, private notes

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01

A client created at the desk may have a phone number and no email (users.email becomes
nullable; the unique constraint still holds for every address given). Bookings record
whether the client was emailed, the reason of an admin's notice/horizon override and the
therapist's private note.
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.alter_column("email", existing_type=sa.String(length=254), nullable=True)
    with op.batch_alter_table("bookings", schema=None) as batch_op:
        batch_op.add_column(sa.Column("notify_client", sa.Boolean(), nullable=False,
                                      server_default=sa.text("true")))
        batch_op.add_column(sa.Column("override_reason", sa.String(length=255), nullable=False,
                                      server_default=""))
        batch_op.add_column(sa.Column("private_note", sa.Text(), nullable=False,
                                      server_default=""))


def downgrade():
    with op.batch_alter_table("bookings", schema=None) as batch_op:
        batch_op.drop_column("private_note")
        batch_op.drop_column("override_reason")
        batch_op.drop_column("notify_client")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.alter_column("email", existing_type=sa.String(length=254), nullable=False)
