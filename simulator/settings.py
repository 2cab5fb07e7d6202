"""The simulator's tunables, read from the Flask config with their defaults."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from flask import current_app

from .store import Store

# Every tunable once: its config key, the Settings field it fills, its type, default and least value. An app
# that embeds the simulator reads these keys from its environment (webapp/config.py does, from this table).
TUNABLES = (
    ("SIMULATOR_VALIDATING_SECONDS", "validating", float, 1.0, 0),
    ("SIMULATOR_IN_PROGRESS_SECONDS", "in_progress", float, 5.0, 0),
    ("SIMULATOR_FINALIZING_SECONDS", "finalizing", float, 1.0, 0),
    ("SIMULATOR_CANCELLING_SECONDS", "cancelling", float, 0.5, 0),
    ("SIMULATOR_SLOW_FINALIZE_SECONDS", "slow_finalize", float, 30.0, 0),
    ("SIMULATOR_MAX_REQUESTS", "max_requests", int, 50_000, 1),
    ("SIMULATOR_MAX_FILE_BYTES", "max_file_bytes", int, 200 * 1024 * 1024, 1),
    ("SIMULATOR_ENQUEUED_TOKEN_LIMIT", "token_limit", int, None, 1),  # None: no limit
    ("SIMULATOR_FAILURE_RATE", "failure_rate", float, 0.0, 0),
    ("SIMULATOR_RETENTION_SECONDS", "retention", float, 7 * 86400.0, 60),
)


@dataclass(frozen=True)
class Settings:
    validating: float
    in_progress: float
    finalizing: float
    cancelling: float
    slow_finalize: float
    max_requests: int
    max_file_bytes: int
    token_limit: int | None
    failure_rate: float
    retention: float


def load_settings() -> Settings:
    """Return the current app's Settings; a key the config lacks (or holds as None) takes its default."""
    values: dict[str, Any] = {}
    for key, name, kind, default, _ in TUNABLES:
        value = current_app.config.get(key)
        value = default if value is None else value
        values[name] = None if value is None else kind(value)
    return Settings(**values)


def store_dir() -> str:
    """Return SIMULATOR_DIR, or a folder in the instance path so every worker process shares one store."""
    configured = current_app.config.get("SIMULATOR_DIR")
    return str(configured) if configured else os.path.join(current_app.instance_path, "simulator")


def current_store():
    """Return the Store for the current app, created once per app and directory."""
    root = store_dir()
    stores = current_app.extensions.setdefault("simulator_stores", {})
    if root not in stores:
        stores[root] = Store(root, load_settings().retention)
    return stores[root]
