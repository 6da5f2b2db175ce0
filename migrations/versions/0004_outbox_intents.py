"""Outbox rows as intents rendered at send time; worker job status

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01

An outbox row records what is to be said (kind, booking, recipient, due time, key and
small ``params``); the worker renders subject and bodies when it sends, so they are
empty until then. ``worker_job_runs`` keeps each worker job's last run and last error
for the admin outbox page.
"""

import sqlalchemy as sa
from alembic import op

import clinic_app.db

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.alter_column("subject", existing_type=sa.String(length=255), nullable=True)
        batch_op.alter_column("body_text", existing_type=sa.Text(), nullable=True)
        batch_op.add_column(sa.Column("params", sa.JSON(), nullable=True))
    op.create_table(
        "worker_job_runs",
        sa.Column("job", sa.String(length=40), nullable=False),
        sa.Column("last_run_at", clinic_app.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_ok_at", clinic_app.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_error_at", clinic_app.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("job"),
    )


def downgrade():
    op.drop_table("worker_job_runs")
    # Rows not rendered yet cannot satisfy NOT NULL: they are dropped (their causes
    # would be re-planned by a worker of the older version where that applies).
    op.execute("DELETE FROM outbox WHERE subject IS NULL OR body_text IS NULL")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_column("params")
        batch_op.alter_column("body_text", existing_type=sa.Text(), nullable=False)
        batch_op.alter_column("subject", existing_type=sa.String(length=255), nullable=False)
