"""The benchmarks' databases: dropped and re-created with the app's migrations, and checkpointed between steps."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent


def reset_database(url: str) -> None:
    """Drop and re-create the database, then bring it to the head migration as `flask db upgrade` does."""
    parsed = make_url(url.replace("postgresql://", "postgresql+psycopg://", 1))
    admin = create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{parsed.database}"'))
    admin.dispose()
    env = {**os.environ, "DATABASE_URL": url, "LOG_LEVEL": "WARNING", "LOG_FORMAT": "text", "SECRET_KEY": "bench"}
    subprocess.run(
        [sys.executable, "-m", "flask", "--app", "webapp:create_app_or_exit()", "db", "upgrade"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )


def checkpoint(url: str) -> None:
    """Write out what earlier steps left in the write-ahead log, so that no step pays for the one before it."""
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text("CHECKPOINT"))
    engine.dispose()
