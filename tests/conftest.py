"""Shared fixtures: the app on PostgreSQL/Redis (TEST_DATABASE_URL, TEST_REDIS_URL) or SQLite/fakeredis.

The schema is created once per session; each test runs inside an outer transaction that is rolled back
(SQLAlchemy's "join a session into an external transaction" recipe, with the engine swapped because
Flask-SQLAlchemy ignores a session-level bind). Tests whose work crosses threads or processes use
``committed_db`` instead, which commits for real and empties the tables afterwards.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
from sqlalchemy import create_engine, make_url, text
from werkzeug.serving import make_server

from simulator import create_app as create_simulator_app
from webapp import create_app
from webapp.config import database_url
from webapp.extensions import db
from webapp.services import installation

WORKER = os.environ.get("PYTEST_XDIST_WORKER")  # gw0, gw1, ... when pytest-xdist runs the suite in processes


def _own_database(url: str | None) -> str | None:
    """Under pytest-xdist each process gets a database of its own: ``test`` becomes ``test_gw1``, created once."""
    if not (url and WORKER):
        return url
    server = make_url(database_url(url, ""))
    name = f"{server.database}_{WORKER}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        if not conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name}):
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return server.set(database=name).render_as_string(hide_password=False)


def _own_redis_database(url: str | None) -> str | None:
    """Under pytest-xdist, process N uses the Redis database N below the one given (15, 14, 13, ...)."""
    if not (url and WORKER):
        return url
    base, _, number = url.rstrip("/").rpartition("/")
    own = int(number or 0) - int(WORKER.removeprefix("gw"))
    if own < 0:
        raise pytest.UsageError(f"TEST_REDIS_URL: too many processes below Redis database {number}")
    return f"{base}/{own}"


TEST_DATABASE_URL = _own_database(os.environ.get("TEST_DATABASE_URL"))
TEST_REDIS_URL = _own_redis_database(os.environ.get("TEST_REDIS_URL"))
SIMULATOR_KEY = "sim"  # the key the app's provider client sends and every simulator in the suite expects
FAST_SIMULATOR = {
    "SIMULATOR_API_KEY": SIMULATOR_KEY,
    "SIMULATOR_CONTROL": True,  # the suite injects faults
    "SIMULATOR_VALIDATING_SECONDS": 0.05,
    "SIMULATOR_IN_PROGRESS_SECONDS": 0.2,
    "SIMULATOR_FINALIZING_SECONDS": 0.05,
    "SIMULATOR_CANCELLING_SECONDS": 0.05,
}


def backend_summary() -> str:
    return (
        f"database={'postgresql' if TEST_DATABASE_URL else 'sqlite'} redis={'redis' if TEST_REDIS_URL else 'fakeredis'}"
    )


def pytest_collection_modifyitems(items):
    """Browser and end-to-end tests are slow too: ``make test-fast`` (``-m "not slow"``) leaves them out."""
    for item in items:
        if item.get_closest_marker("browser") or item.get_closest_marker("e2e"):
            item.add_marker(pytest.mark.slow)


def pytest_report_header(config):
    return f"backends: {backend_summary()}"


def base_config(tmp: Path, **overrides) -> dict:
    """Settings for a test app, independent of the developer's environment and .env file."""
    url = database_url(TEST_DATABASE_URL, str(tmp)) if TEST_DATABASE_URL else f"sqlite:///{tmp / 'test.db'}"
    config = {
        "TESTING": True,
        "ENVIRON": {"LOG_FORMAT": "text", "LOG_LEVEL": "WARNING", "SECRET_KEY": "test-secret"},
        "INSTANCE_PATH": str(tmp / "instance"),
        "SQLALCHEMY_DATABASE_URI": url,
        "REDIS_URL": TEST_REDIS_URL,
        "EMBEDDED_WORKERS": False,
        "SIMULATOR_DIR": str(tmp / "simulator"),
        "CLAIM_LEASE_SECONDS": 60,
        # Generous limits for the suite; the rate-limit tests lower them.
        "LOGIN_RATE_LIMIT": "10000 per minute",
        "LOGIN_ACCOUNT_RATE_LIMIT": "10000 per minute",
        "API_RATE_LIMIT": "100000 per minute",
        "API_AUTH_FAILURE_LIMIT": "10000 per minute",
        # scrypt takes 0.12 s a hash; tests create and sign in users hundreds of times (tests/test_accounts.py
        # checks the scrypt default).
        "PASSWORD_HASH_METHOD": "pbkdf2:sha256:1000",
        **FAST_SIMULATOR,
    }
    config.update(overrides)
    return config


@pytest.fixture(scope="session")
def app(tmp_path_factory):
    app = create_app(base_config(tmp_path_factory.mktemp("app")))
    with app.app_context():
        _reset_schema()
        installation.install_id()  # written once for the session, as the migrations do
        db.session.commit()
        if TEST_REDIS_URL:
            from webapp import queue

            queue.connection(app).flushdb()
    yield app
    with app.app_context():
        db.engine.dispose()


def _reset_schema() -> None:
    if db.engine.dialect.name == "postgresql":
        with db.engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
    else:
        db.drop_all()
    db.create_all()


@pytest.fixture
def app_ctx(app):
    with app.app_context():
        yield app


@pytest.fixture(autouse=True)
def _rollback(request, app):
    """Run each test inside one outer transaction, rolled back at the end (unless it uses committed_db)."""
    if "committed_db" in request.fixturenames:
        yield
        return
    with app.app_context():
        engines = db._app_engines[app]
        engine = engines[None]
        connection = engine.connect()
        outer = connection.begin()
        engines[None] = connection
        db.session.remove()
        db.session.configure(join_transaction_mode="create_savepoint")
        try:
            yield
        finally:
            db.session.remove()
            db.session.configure(join_transaction_mode="conditional_savepoint")
            engines[None] = engine
            outer.rollback()
            connection.close()


@pytest.fixture
def committed_db(app):
    """Real commits (for threads and other processes); every table is emptied afterwards."""
    yield
    with app.app_context():
        db.session.remove()
        with db.engine.begin() as conn:
            for table in reversed(db.metadata.sorted_tables):
                conn.execute(table.delete())


@pytest.fixture
def config(app):
    """Change settings for one test: ``config(NAME=value, ...)``; all are put back afterwards."""
    saved = dict(app.config)
    yield app.config.update
    app.config.clear()
    app.config.update(saved)


@pytest.fixture
def client(app):
    return app.test_client()


class Server:
    """A WSGI app served on 127.0.0.1 in a daemon thread (real HTTP for the SDK)."""

    def __init__(self, wsgi_app):
        self.httpd = make_server("127.0.0.1", 0, wsgi_app, threaded=True)
        self.port = self.httpd.server_port
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.thread.join(5)


@pytest.fixture
def simulator(app, tmp_path):
    """The built-in simulator served over HTTP; the app's simulator provider points at it."""
    sim_app = create_simulator_app({**FAST_SIMULATOR, "SIMULATOR_DIR": str(tmp_path / "sim")})
    server = Server(sim_app)
    previous = app.config["SIMULATOR_BASE_URL"]
    app.config["SIMULATOR_BASE_URL"] = f"{server.url}/simulator/v1"
    server.app = sim_app
    yield server
    app.config["SIMULATOR_BASE_URL"] = previous
    server.stop()


PASSWORD = "a long enough password"


@pytest.fixture
def admin_user(app_ctx):
    from webapp.services import accounts

    return accounts.create_user("admin@example.com", PASSWORD, role="admin")


@pytest.fixture
def member_user(app_ctx):
    from webapp.services import accounts

    return accounts.create_user("member@example.com", PASSWORD)


def sign_in(client, user) -> None:
    """Start a signed-in session for ``user`` in the test client (as the sign-in page and login_user would)."""
    from webapp.services import accounts

    accounts.start_session(user)
    with client.session_transaction() as session:
        session["_user_id"] = user.get_id()
        session["_fresh"] = True


def api_token(user) -> str:
    """A fresh personal API token for ``user``."""
    from webapp.services import accounts

    return accounts.create_token(user, "tests")[1]


@pytest.fixture
def json_logs():
    """Log records as JSON lines into a string buffer (the suite's text logging is put back afterwards)."""
    import io

    from webapp.logs import configure_logging

    stream = io.StringIO()
    configure_logging("INFO", "json", stream)
    yield stream
    configure_logging("WARNING", "text")


@pytest.fixture
def request_limit(app):
    """Lower MAX_REQUEST_MB's limit for one test (in bytes)."""
    saved = app.config["MAX_REQUEST_BYTES"]
    yield lambda limit: app.config.update(MAX_REQUEST_BYTES=limit)
    app.config["MAX_REQUEST_BYTES"] = saved
