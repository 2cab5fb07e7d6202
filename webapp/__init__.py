"""The AI batch processor: create_app builds the Flask application (no I/O happens at import)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

from flask import Flask
from sqlalchemy import event
from sqlalchemy.engine import Engine

if TYPE_CHECKING:
    from flask_openapi3 import OpenAPI

from webapp.about import ROOT, SERVICE_NAME, __version__

__all__ = ["ROOT", "SERVICE_NAME", "__version__", "create_app", "create_app_or_exit"]


def create_app(config: dict | None = None) -> Flask:
    """Build the app from the environment, then ``config`` overrides (tests pass settings here).

    Raises webapp.config.ConfigError when a setting is missing or malformed.
    """
    from flask_openapi3 import OpenAPI  # a Flask subclass that collects the API's OpenAPI document

    from webapp.api import openapi_options

    app = OpenAPI(
        __name__,
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
        instance_path=(config or {}).get("INSTANCE_PATH"),
        **openapi_options(),
    )
    configure(app, config)
    register_extensions(app)
    register_blueprints(app)
    register_errorhandlers(app)
    register_commands(app)
    return app


def create_app_or_exit() -> Flask:
    """Entry point for the CLI and gunicorn: a configuration error becomes one line on stderr and exit 2."""
    from webapp.config import ConfigError

    try:
        return create_app()
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def configure(app: Flask, overrides: dict | None) -> None:
    from webapp import config
    from webapp.logs import configure_logging

    environ = (overrides or {}).get("ENVIRON")
    app.config.update(config.from_env(app.instance_path, environ))
    app.config.update(overrides or {})
    app.config.setdefault("SQLALCHEMY_ENGINE_OPTIONS", _engine_options(app.config["SQLALCHEMY_DATABASE_URI"]))
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    configure_logging(app.config["LOG_LEVEL"], app.config["LOG_FORMAT"])
    from flask.logging import default_handler

    app.logger.removeHandler(default_handler)  # our root handler formats everything; no second copy


def register_extensions(app: Flask) -> None:
    from webapp import (
        embedded,
        inputs,
        models,  # noqa: F401  (registers the tables)
        queue,
    )
    from webapp.extensions import csrf, db, htmx, migrate
    from webapp.logs import init_request_logging

    db.init_app(app)
    migrate.init_app(app, db, directory=str(ROOT / "migrations"), render_as_batch=True, compare_type=True)
    csrf.init_app(app)
    htmx.init_app(app)
    queue.init_app(app)
    embedded.init_embedded_runtime(app)
    init_request_logging(app)
    inputs.init_app(app)  # before register_blueprints: the id converters must exist when routes are added
    from webapp import security

    security.init_app(app)


def register_blueprints(app: OpenAPI) -> None:
    from simulator import ANTHROPIC_URL_PREFIX, anthropic_blueprint
    from simulator import URL_PREFIX as SIMULATOR_PREFIX
    from simulator import openai_blueprint as simulator_bp
    from webapp.auth import bp as auth_bp
    from webapp.dashboard import bp as dashboard_bp
    from webapp.main import bp as main_bp

    app.register_api(main_bp)  # registered and documented (GET / and GET /health in the OpenAPI document)
    app.register_blueprint(auth_bp)
    app.register_blueprint(dashboard_bp)
    if app.config["SIMULATOR_ENABLED"]:  # only the app's own workers may call it: see the blueprint's key check
        from webapp.extensions import csrf

        app.register_blueprint(simulator_bp, url_prefix=SIMULATOR_PREFIX)
        app.register_blueprint(anthropic_blueprint, url_prefix=ANTHROPIC_URL_PREFIX)
        csrf.exempt(simulator_bp)
        csrf.exempt(anthropic_blueprint)
    from webapp import api

    api.init_app(app)


def register_errorhandlers(app: Flask) -> None:
    from webapp import errors

    errors.init_app(app)


def register_commands(app: Flask) -> None:
    from webapp import cli

    cli.init_app(app)


def _engine_options(url: str) -> dict:
    # A failed statement's parameters (token hashes, emails, request bodies) stay out of its message and the logs.
    if url.startswith("sqlite"):
        # The embedded worker thread and web threads share the file: wait for locks instead of failing.
        return {"connect_args": {"timeout": 30, "check_same_thread": False}, "hide_parameters": True}
    return {"pool_pre_ping": True, "pool_size": 5, "max_overflow": 10, "hide_parameters": True}


@event.listens_for(Engine, "connect")
def _sqlite_connect(dbapi_connection, connection_record) -> None:
    """Foreign keys on, WAL for concurrent readers, and transactions begun by SQLAlchemy (so savepoints work)."""
    import sqlite3

    if isinstance(dbapi_connection, sqlite3.Connection):
        dbapi_connection.isolation_level = None  # pysqlite's own BEGIN handling breaks SAVEPOINT
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()


@event.listens_for(Engine, "begin")
def _sqlite_begin(conn) -> None:
    """IMMEDIATE takes the write lock up front: two deferred transactions that both later write would
    deadlock, and SQLite then fails one at once instead of waiting out the busy timeout."""
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("BEGIN IMMEDIATE")
