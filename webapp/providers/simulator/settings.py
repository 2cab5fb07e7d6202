"""The simulator's tunables, read from the Flask config with their defaults."""

from __future__ import annotations

import os
from dataclasses import dataclass

from flask import current_app

DEFAULTS = {
    "SIMULATOR_VALIDATING_SECONDS": 1.0,
    "SIMULATOR_IN_PROGRESS_SECONDS": 5.0,
    "SIMULATOR_FINALIZING_SECONDS": 1.0,
    "SIMULATOR_CANCELLING_SECONDS": 0.5,
    "SIMULATOR_SLOW_FINALIZE_SECONDS": 30.0,
    "SIMULATOR_MAX_REQUESTS": 50_000,
    "SIMULATOR_MAX_FILE_BYTES": 200 * 1024 * 1024,
    "SIMULATOR_ENQUEUED_TOKEN_LIMIT": None,
    "SIMULATOR_FAILURE_RATE": 0.0,
    "SIMULATOR_RETENTION_SECONDS": 7 * 86400,
}


@dataclass(frozen=True)
class Settings:
    validating: float = 1.0
    in_progress: float = 5.0
    finalizing: float = 1.0
    cancelling: float = 0.5
    slow_finalize: float = 30.0
    max_requests: int = 50_000
    max_file_bytes: int = 200 * 1024 * 1024
    token_limit: int | None = None
    failure_rate: float = 0.0
    retention: float = 7 * 86400


def load_settings() -> Settings:
    """Return the current app's Settings; a missing key takes its default."""
    def get(key):
        value = current_app.config.get(key)
        return DEFAULTS[key] if value is None else value

    limit = get("SIMULATOR_ENQUEUED_TOKEN_LIMIT")
    return Settings(
        validating=float(get("SIMULATOR_VALIDATING_SECONDS")),
        in_progress=float(get("SIMULATOR_IN_PROGRESS_SECONDS")),
        finalizing=float(get("SIMULATOR_FINALIZING_SECONDS")),
        cancelling=float(get("SIMULATOR_CANCELLING_SECONDS")),
        slow_finalize=float(get("SIMULATOR_SLOW_FINALIZE_SECONDS")),
        max_requests=int(get("SIMULATOR_MAX_REQUESTS")),
        max_file_bytes=int(get("SIMULATOR_MAX_FILE_BYTES")),
        token_limit=None if limit is None else int(limit),
        failure_rate=float(get("SIMULATOR_FAILURE_RATE")),
        retention=float(get("SIMULATOR_RETENTION_SECONDS")),
    )


def store_dir() -> str:
    """Return SIMULATOR_DIR, or a folder in the instance path so every worker process shares one store."""
    configured = current_app.config.get("SIMULATOR_DIR")
    return str(configured) if configured else os.path.join(current_app.instance_path, "simulator")


def current_store():
    """Return the Store for the current app, created once per app and directory."""
    from .store import Store

    root = store_dir()
    stores = current_app.extensions.setdefault("simulator_stores", {})
    if root not in stores:
        stores[root] = Store(root, load_settings().retention)
    return stores[root]
