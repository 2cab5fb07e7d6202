"""responses without the foreign keys of their copied job and batch ids: storing results checks one key per row

Revision ID: c4d2e8f1a7b3
Revises: b3c91f0a2d15
Create Date: 2026-11-27 06:30:00

"""

from alembic import op

revision = "c4d2e8f1a7b3"
down_revision = "b3c91f0a2d15"
branch_labels = None
depends_on = None

KEYS = (
    ("fk_batch_responses_job_id_batch_jobs", "job_id", "batch_jobs", "CASCADE"),
    ("fk_batch_responses_provider_batch_id_provider_batches", "provider_batch_id", "provider_batches", "SET NULL"),
)


def upgrade():
    # The request_id key stays: it ties each response to its request, and through it to the job and batch.
    with op.batch_alter_table("batch_responses") as table:
        for name, *_ in KEYS:
            table.drop_constraint(name, type_="foreignkey")


def downgrade():
    with op.batch_alter_table("batch_responses") as table:
        for name, column, referred, ondelete in KEYS:
            table.create_foreign_key(name, referred, [column], ["id"], ondelete=ondelete)
