"""The migration history: one head, and upgrade/downgrade giving exactly the models' schema on both backends."""

import uuid

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask_migrate import downgrade, upgrade
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url

from tests.conftest import TEST_DATABASE_URL, base_config
from webapp import create_app
from webapp.config import database_url
from webapp.extensions import db, migrate


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
