"""responses written cheaper: bodies as plain JSON text (read whole, never queried inside), no request key check

Revision ID: e7a1c4d9b8f2
Revises: d5f3a9b6c2e1
Create Date: 2026-11-27 08:40:00

On PostgreSQL the body change rewrites batch_responses (JSONB -> JSON); elsewhere it is JSON text already.
The foreign key of request_id goes (its unique index stays): checking it was a third of storing a batch's results.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "e7a1c4d9b8f2"
down_revision = "d5f3a9b6c2e1"
branch_labels = None
depends_on = None


KEY = "fk_batch_responses_request_id_batch_requests"


def upgrade():
    with op.batch_alter_table("batch_responses") as table:
        table.drop_constraint(KEY, type_="foreignkey")
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column(
            "batch_responses", "body", type_=sa.JSON(), existing_type=postgresql.JSONB(), postgresql_using="body::json"
        )


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column(
            "batch_responses", "body", type_=postgresql.JSONB(), existing_type=sa.JSON(), postgresql_using="body::jsonb"
        )
    with op.batch_alter_table("batch_responses") as table:
        table.create_foreign_key(KEY, "batch_requests", ["request_id"], ["id"], ondelete="CASCADE")
