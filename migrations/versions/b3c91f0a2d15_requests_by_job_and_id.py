"""requests by job and id: the requests table pages by key without sorting a job's rows

Revision ID: b3c91f0a2d15
Revises: 7d44ae147edc
Create Date: 2026-11-27 04:20:00

"""

from alembic import op

revision = "b3c91f0a2d15"
down_revision = "7d44ae147edc"
branch_labels = None
depends_on = None

NAME = "ix_batch_requests_job_id_id"


def upgrade():
    # On PostgreSQL the index is built CONCURRENTLY: a large table keeps taking writes while it builds.
    if op.get_bind().dialect.name == "postgresql":
        with op.get_context().autocommit_block():
            op.create_index(NAME, "batch_requests", ["job_id", "id"], postgresql_concurrently=True, if_not_exists=True)
    else:
        op.create_index(NAME, "batch_requests", ["job_id", "id"])


def downgrade():
    op.drop_index(NAME, table_name="batch_requests")
