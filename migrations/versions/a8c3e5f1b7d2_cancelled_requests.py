"""cancelled requests: a state and a counter of their own (they were failed with error_code "cancelled")

Revision ID: a8c3e5f1b7d2
Revises: f3b8d2c6a9e4
Create Date: 2026-12-01 09:00:00

A request the job's cancel stopped before it ran was stored as failed with the code "cancelled", so a cancelled
job showed "Failed 237" and offered to retry them as failures. Such rows become ``cancelled``; the jobs that
hold any get both counters recounted, and a job summary that listed only cancels ("errors: cancelled ×N")
is cleared. The UPDATE reads the failed rows through the (job_id, status, request_id) index.
"""

import sqlalchemy as sa
from alembic import op

revision = "a8c3e5f1b7d2"
down_revision = "f3b8d2c6a9e4"
branch_labels = None
depends_on = None

COUNT = "(SELECT count(*) FROM request_states s WHERE s.job_id = batch_jobs.id AND s.status = '{status}')"
HAS_CANCELLED = "EXISTS (SELECT 1 FROM request_states s WHERE s.job_id = batch_jobs.id AND s.status = 'cancelled')"


def upgrade():
    with op.batch_alter_table("batch_jobs") as table:
        table.add_column(sa.Column("cancelled_requests", sa.Integer(), nullable=False, server_default="0"))
    with op.batch_alter_table("batch_jobs") as table:
        table.alter_column("cancelled_requests", server_default=None)
    op.execute("UPDATE request_states SET status = 'cancelled' WHERE status = 'failed' AND error_code = 'cancelled'")
    op.execute(
        f"UPDATE batch_jobs SET cancelled_requests = {COUNT.format(status='cancelled')}, "
        f"failed_requests = {COUNT.format(status='failed')} WHERE {HAS_CANCELLED}"
    )
    op.execute(
        "UPDATE batch_jobs SET last_error = NULL "
        "WHERE last_error LIKE 'errors: cancelled ×%' AND last_error NOT LIKE '%,%'"
    )


def downgrade():
    op.execute(
        "UPDATE batch_jobs SET failed_requests = failed_requests + cancelled_requests WHERE cancelled_requests > 0"
    )
    op.execute(
        "UPDATE request_states SET status = 'failed', error_code = coalesce(error_code, 'cancelled') "
        "WHERE status = 'cancelled'"
    )
    with op.batch_alter_table("batch_jobs") as table:
        table.drop_column("cancelled_requests")
