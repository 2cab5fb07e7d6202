"""The migration history: one head, and upgrade/downgrade giving exactly the models' schema on both backends."""

import json
import uuid

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask_migrate import downgrade, upgrade
from sqlalchemy import MetaData, Table, create_engine, inspect, text
from sqlalchemy.engine import make_url

from tests.conftest import TEST_DATABASE_URL, base_config
from webapp import create_app
from webapp.config import database_url
from webapp.extensions import db, migrate
from webapp.models import BatchJob, ProviderBatch


def backends():
    yield "sqlite"
    if TEST_DATABASE_URL:
        yield "postgresql"


@pytest.fixture(params=list(backends()))
def empty_database(request, tmp_path):
    """The URL of a brand-new, empty database on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'migrations.db'}"
        return
    server = make_url(database_url(TEST_DATABASE_URL, str(tmp_path)))
    name = f"migrations_{uuid.uuid4().hex[:8]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


def test_history_has_a_single_head(app):
    with app.app_context():
        script = ScriptDirectory.from_config(migrate.get_config())
        assert len(script.get_heads()) == 1


def test_upgrade_matches_models_and_downgrade_empties(empty_database, tmp_path):
    app = create_app(base_config(tmp_path, SQLALCHEMY_DATABASE_URI=empty_database))
    with app.app_context():
        upgrade()
        with db.engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), db.metadata)
        assert diff == [], f"models and migrations differ: {diff}"
        downgrade(revision="base")
        assert set(inspect(db.engine).get_table_names()) <= {"alembic_version"}
        upgrade()  # and back up again: the downgrade left nothing behind that blocks it
        assert "batch_requests" in inspect(db.engine).get_table_names()
        db.engine.dispose()


def as_of_now(conn, model) -> Table:
    """The model's table with only the columns the database has at its current revision, defaults included."""
    existing = {column["name"] for column in inspect(conn).get_columns(model.__tablename__)}
    return Table(model.__tablename__, MetaData(), *(c._copy() for c in model.__table__.c if c.name in existing))


def test_request_states_migration_keeps_every_request_state(empty_database, tmp_path):
    """Moving state out of batch_requests (d5f3a9b6c2e1) and back keeps each request's status, tries, batch
    and error; responses keep their bodies through the JSONB -> JSON change (e7a1c4d9b8f2)."""
    app = create_app(base_config(tmp_path, SQLALCHEMY_DATABASE_URI=empty_database))
    with app.app_context():
        upgrade(revision="c4d2e8f1a7b3")
        with db.engine.begin() as conn:
            # Jobs and batches as the models have them (their defaults fill every column) at that revision.
            conn.execute(
                as_of_now(conn, BatchJob).insert(), {"id": 1, "name": "j", "provider": "simulator", "model": "m"}
            )
            conn.execute(
                as_of_now(conn, ProviderBatch).insert(),
                {"id": 7, "job_id": 1, "model": "m", "endpoint": "/v1/chat/completions"},
            )
            conn.execute(
                text(
                    "INSERT INTO batch_requests (id, job_id, custom_id, body, status, error_code, error, "
                    "retry_count, provider_batch_id, source_line, estimated_tokens) VALUES "
                    "(1, 1, 'a', '{\"x\": 1}', 'succeeded', NULL, NULL, 0, 7, 1, 5), "
                    "(2, 1, 'b', '{\"x\": 2}', 'failed', 'server_error', 'boom', 2, 7, 2, 6)"
                )
            )
            conn.execute(
                text(
                    "INSERT INTO batch_responses (request_id, job_id, provider_batch_id, succeeded, "
                    "status_code, body, prompt_tokens, completion_tokens, total_tokens, cached_tokens, "
                    'reasoning_tokens, created_at) VALUES (1, 1, 7, true, 200, \'{"ok": [1, "ü"]}\', '
                    "1, 2, 3, 0, 0, '2026-01-01')"
                )
            )
        upgrade()
        with db.engine.connect() as conn:
            states = conn.execute(
                text(
                    "SELECT request_id, job_id, status, retry_count, provider_batch_id, "
                    "error_code, error FROM request_states ORDER BY request_id"
                )
            ).all()
            body = conn.execute(text("SELECT body FROM batch_responses")).scalar_one()
        assert [tuple(s) for s in states] == [
            (1, 1, "succeeded", 0, 7, None, None),
            (2, 1, "failed", 2, 7, "server_error", "boom"),
        ]
        assert (body if isinstance(body, dict) else json.loads(body)) == {"ok": [1, "ü"]}
        downgrade(revision="c4d2e8f1a7b3")
        with db.engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT id, status, retry_count, provider_batch_id, error_code, error "
                    "FROM batch_requests ORDER BY id"
                )
            ).all()
        assert [tuple(r) for r in rows] == [
            (1, "succeeded", 0, 7, None, None),
            (2, "failed", 2, 7, "server_error", "boom"),
        ]
        db.engine.dispose()


def test_user_sessions_migration_keeps_accounts(empty_database, tmp_path):
    """Sign-ins as rows (f3b8d2c6a9e4): accounts and tokens stay; sign-ins can be stored; back down gives every
    account a session version again."""
    app = create_app(base_config(tmp_path, SQLALCHEMY_DATABASE_URI=empty_database))
    with app.app_context():
        upgrade(revision="e7a1c4d9b8f2")
        with db.engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO users (id, email, password_hash, role, active, session_version, created_at) "
                    "VALUES (1, 'a@example.com', 'h', 'admin', true, 3, '2026-01-01')"
                )
            )
            conn.execute(
                text(
                    "INSERT INTO api_tokens (user_id, name, token_hash, prefix, created_at) "
                    "VALUES (1, 't', 'x', 'bp_', '2026-01-01')"
                )
            )
        upgrade()
        assert "session_version" not in {c["name"] for c in inspect(db.engine).get_columns("users")}
        with db.engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO user_sessions (user_id, key_hash, created_at, expires_at) "
                    "VALUES (1, 'k', '2026-01-01', '2027-01-01')"
                )
            )
            assert conn.execute(text("SELECT email FROM users JOIN api_tokens ON users.id = user_id")).all() == [
                ("a@example.com",)
            ]
        downgrade(revision="e7a1c4d9b8f2")
        with db.engine.connect() as conn:
            assert conn.execute(text("SELECT id, session_version FROM users")).all() == [(1, 1)]
        assert "user_sessions" not in inspect(db.engine).get_table_names()
        db.engine.dispose()


def test_cancelled_requests_migration_moves_cancels_out_of_the_failures(empty_database, tmp_path):
    """Cancelled requests (a8c3e5f1b7d2): "failed with code cancelled" becomes its own state, the jobs that hold
    any are recounted, a summary of cancels only is cleared; down again, they are failures as before."""
    app = create_app(base_config(tmp_path, SQLALCHEMY_DATABASE_URI=empty_database))
    with app.app_context():
        upgrade(revision="f3b8d2c6a9e4")
        with db.engine.begin() as conn:
            jobs = as_of_now(conn, BatchJob)
            for job_id, failed, summary in (
                (1, 3, "errors: cancelled ×2, server_error ×1"),
                (2, 2, "errors: cancelled ×2"),
            ):
                conn.execute(
                    jobs.insert(),
                    {
                        "id": job_id,
                        "name": "j",
                        "provider": "simulator",
                        "model": "m",
                        "status": "cancelled",
                        "total_requests": failed + 1,
                        "succeeded_requests": 1,
                        "failed_requests": failed,
                        "last_error": summary,
                    },
                )
            conn.execute(
                text(
                    "INSERT INTO request_states (request_id, job_id, status, retry_count, error_code, error) VALUES "
                    "(1, 1, 'succeeded', 0, NULL, NULL), (2, 1, 'failed', 0, 'cancelled', 'c'), "
                    "(3, 1, 'failed', 0, 'cancelled', 'c'), (4, 1, 'failed', 3, 'server_error', 'boom'), "
                    "(5, 2, 'succeeded', 0, NULL, NULL), (6, 2, 'failed', 0, 'cancelled', 'c'), "
                    "(7, 2, 'failed', 0, 'cancelled', 'c')"
                )
            )
        upgrade()
        with db.engine.connect() as conn:
            states = conn.execute(text("SELECT request_id, status, error_code FROM request_states ORDER BY 1")).all()
            counters = conn.execute(
                text("SELECT id, failed_requests, cancelled_requests, last_error FROM batch_jobs ORDER BY id")
            ).all()
        assert [tuple(row) for row in states] == [
            (1, "succeeded", None),
            (2, "cancelled", "cancelled"),
            (3, "cancelled", "cancelled"),
            (4, "failed", "server_error"),
            (5, "succeeded", None),
            (6, "cancelled", "cancelled"),
            (7, "cancelled", "cancelled"),
        ]
        assert [tuple(row) for row in counters] == [
            (1, 1, 2, "errors: cancelled ×2, server_error ×1"),
            (2, 0, 2, None),
        ]
        downgrade(revision="f3b8d2c6a9e4")
        with db.engine.connect() as conn:
            failed = conn.execute(text("SELECT count(*) FROM request_states WHERE status = 'failed'")).scalar_one()
            counters = conn.execute(text("SELECT id, failed_requests FROM batch_jobs ORDER BY id")).all()
        assert failed == 5 and [tuple(row) for row in counters] == [(1, 3), (2, 2)]
        db.engine.dispose()
