"""reconcile with the provider: the name an input file is uploaded under, and a random installation id

Revision ID: f2b8d6a4c9e1
Revises: e7a1c4d9b8f2
Create Date: 2026-11-30 06:00:00

An installation's id used to be derived from SECRET_KEY (the first 16 hex digits of a SHA-256), and every batch
carries it in its metadata, which let anyone who saw a batch test guesses of a weak key offline. It is now random
and stored here; the old value is kept only to recognise batches an earlier version created.
"""

import hashlib
import secrets
from datetime import datetime, timezone

import sqlalchemy as sa
from alembic import op
from flask import current_app

revision = "f2b8d6a4c9e1"
down_revision = "e7a1c4d9b8f2"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("provider_batches") as batch_op:
        batch_op.add_column(sa.Column("input_file_name", sa.String(length=200), nullable=True))
    installation = op.create_table(
        "installation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("install_id", sa.String(length=32), nullable=False),
        sa.Column("legacy_install_id", sa.String(length=32), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_installation")),
    )
    op.bulk_insert(
        installation,
        [
            {
                "id": 1,
                "install_id": secrets.token_hex(8),
                "legacy_install_id": _legacy_id(),
                "created_at": datetime.now(timezone.utc),
            }
        ],
    )


def _legacy_id():
    """The id batches of an existing installation carry, so batches in flight across the upgrade are found again."""
    has_batches = op.get_bind().execute(sa.text("SELECT 1 FROM provider_batches LIMIT 1")).first()
    secret = current_app.config.get("SECRET_KEY")
    if not (has_batches and secret):
        return None
    return hashlib.sha256(("install:" + secret).encode()).hexdigest()[:16]


def downgrade():
    op.drop_table("installation")
    with op.batch_alter_table("provider_batches") as batch_op:
        batch_op.drop_column("input_file_name")
