"""sign-ins as rows (user_sessions): signing out ends one for good; users.session_version goes

Revision ID: f3b8d2c6a9e4
Revises: f2b8d6a4c9e1
Create Date: 2026-11-30 05:10:00

The cookies now carry a random key per sign-in instead of "<user id>:<session_version>", so the cookies
issued before this revision no longer sign anyone in: everyone signs in once more after the upgrade.
"""

import sqlalchemy as sa
from alembic import op

import webapp.models.base

revision = "f3b8d2c6a9e4"
down_revision = "f2b8d6a4c9e1"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "user_sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", webapp.models.base.UTCDateTime(), nullable=False),
        sa.Column("expires_at", webapp.models.base.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_user_sessions_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_sessions")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_user_sessions_key_hash")),
    )
    with op.batch_alter_table("user_sessions") as table:
        table.create_index(table.f("ix_user_sessions_user_id"), ["user_id"], unique=False)
    with op.batch_alter_table("users") as table:
        table.drop_column("session_version")


def downgrade():
    # Every sign-in ends either way: the old cookies named a version, the new ones a key.
    with op.batch_alter_table("users") as table:
        table.add_column(sa.Column("session_version", sa.Integer(), nullable=False, server_default="1"))
    with op.batch_alter_table("users") as table:
        table.alter_column("session_version", server_default=None)
    op.drop_table("user_sessions")
