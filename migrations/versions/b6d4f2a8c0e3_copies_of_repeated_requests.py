"""copies of repeated requests: a request whose body an earlier one of its job has is sent once, for both

Revision ID: b6d4f2a8c0e3
Revises: a8c3e5f1b7d2
Create Date: 2026-12-02 09:00:00

``request_states.copy_of_id`` names the first request with the same body; such a request is never planned
into a provider batch and takes the first one's outcome and a copy of its response when that one ends. A
nullable column without a default: adding it rewrites no row. No foreign key, like the table's others.
"""

import sqlalchemy as sa
from alembic import op

revision = "b6d4f2a8c0e3"
down_revision = "a8c3e5f1b7d2"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("request_states") as table:
        table.add_column(sa.Column("copy_of_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True))


def downgrade():
    with op.batch_alter_table("request_states") as table:
        table.drop_column("copy_of_id")
