"""Staff bookings are no longer all "booked before the recommended date"

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01

Until now every booking an admin made on the pages was stored with early_confirmed = true,
and the flag reached the client's data export. Bookings made by someone other than the
client never went through the early-booking check, so on none of them does the flag record
a confirmed early booking: clear it there. Bookings the client made keep theirs. (Data
only; the schema does not change. Nothing to undo: the old values were wrong.)
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade():
    op.execute(
        sa.text(
            "UPDATE bookings SET early_confirmed = :no "
            "WHERE booked_by_id IS NOT NULL AND booked_by_id <> client_id AND early_confirmed"
        ).bindparams(no=False)
    )


def downgrade():
    pass
