"""request state in its own narrow table: moving a batch through its life rewrites a few dozen bytes a request

No foreign key ties a state to its request (the application writes and deletes both together): checking it
was a third of the time of storing an upload.

Revision ID: d5f3a9b6c2e1
Revises: c4d2e8f1a7b3
Create Date: 2026-11-27 09:00:00

"""

import sqlalchemy as sa
from alembic import op

revision = "d5f3a9b6c2e1"
down_revision = "c4d2e8f1a7b3"
branch_labels = None
depends_on = None

KEY = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
STATE_COLUMNS = "job_id, status, retry_count, provider_batch_id, error_code, error"
RETRIED_PENDING = "status = 'pending' AND retry_count > 0"
ASSIGNED = "provider_batch_id IS NOT NULL"


def upgrade():
    op.create_table(
        "request_states",
        sa.Column("request_id", KEY, nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("retry_count", sa.Integer(), nullable=False),
        sa.Column("provider_batch_id", sa.Integer(), nullable=True),
        sa.Column("error_code", sa.String(length=64), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["provider_batch_id"],
            ["provider_batches.id"],
            name=op.f("fk_request_states_provider_batch_id_provider_batches"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("request_id", name=op.f("pk_request_states")),
    )
    op.execute(
        f"INSERT INTO request_states (request_id, {STATE_COLUMNS}) SELECT id, {STATE_COLUMNS} FROM batch_requests"
    )
    op.create_index("ix_request_states_job_id_status_request_id", "request_states", ["job_id", "status", "request_id"])
    op.create_index(
        "ix_request_states_provider_batch_id",
        "request_states",
        ["provider_batch_id"],
        postgresql_where=sa.text(ASSIGNED),
        sqlite_where=sa.text(ASSIGNED),
    )
    op.create_index(
        "ix_request_states_job_id_retried_pending",
        "request_states",
        ["job_id"],
        postgresql_where=sa.text(RETRIED_PENDING),
        sqlite_where=sa.text(RETRIED_PENDING),
    )
    with op.batch_alter_table("batch_requests") as table:
        table.drop_index("ix_batch_requests_job_id_status_id")
        table.drop_index("ix_batch_requests_provider_batch_id")
        table.drop_index("ix_batch_requests_job_id_retried_pending")
        table.drop_constraint("fk_batch_requests_provider_batch_id_provider_batches", type_="foreignkey")
        for column in ("status", "error_code", "error", "retry_count", "provider_batch_id"):
            table.drop_column(column)


def downgrade():
    with op.batch_alter_table("batch_requests") as table:
        table.add_column(sa.Column("status", sa.String(length=16), nullable=False, server_default="pending"))
        table.add_column(sa.Column("error_code", sa.String(length=64), nullable=True))
        table.add_column(sa.Column("error", sa.Text(), nullable=True))
        table.add_column(sa.Column("retry_count", sa.Integer(), nullable=False, server_default="0"))
        table.add_column(sa.Column("provider_batch_id", sa.Integer(), nullable=True))
    op.execute(
        "UPDATE batch_requests SET (status, error_code, error, retry_count, provider_batch_id) = "
        "(SELECT status, error_code, error, retry_count, provider_batch_id FROM request_states s "
        " WHERE s.request_id = batch_requests.id) "
        "WHERE EXISTS (SELECT 1 FROM request_states s WHERE s.request_id = batch_requests.id)"
    )
    with op.batch_alter_table("batch_requests") as table:
        table.alter_column("status", server_default=None)
        table.alter_column("retry_count", server_default=None)
        table.create_foreign_key(
            "fk_batch_requests_provider_batch_id_provider_batches",
            "provider_batches",
            ["provider_batch_id"],
            ["id"],
            ondelete="SET NULL",
        )
        table.create_index("ix_batch_requests_job_id_status_id", ["job_id", "status", "id"])
        table.create_index("ix_batch_requests_provider_batch_id", ["provider_batch_id"])
        table.create_index(
            "ix_batch_requests_job_id_retried_pending",
            ["job_id"],
            postgresql_where=sa.text(RETRIED_PENDING),
            sqlite_where=sa.text(RETRIED_PENDING),
        )
    op.drop_table("request_states")
