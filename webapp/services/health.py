"""Health of the service's dependencies: database, queue, workers and provider."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import redis
from flask import Flask
from rq import Worker
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from webapp import queue
from webapp.embedded import EXTENSION_KEY as EMBEDDED_RUNTIME
from webapp.extensions import db
from webapp.providers import provider_info

log = logging.getLogger(__name__)
WORKER_STALE_SECONDS = 120


def check_health(app: Flask) -> tuple[dict, bool]:
    """Return the health report and whether the service can serve (False when the database is down)."""
    database = _database()
    report: dict[str, Any] = {
        "status": "ok",
        "database": database,
        "queue": _queue(app),
        "workers": _workers(app),
        "provider": provider_info(app),
    }
    healthy = database["ok"]
    if not healthy:
        report["status"] = "down"
    elif not (report["queue"]["ok"] and report["workers"]["ok"]):
        report["status"] = "degraded"
    return report, healthy


def _database() -> dict:
    try:
        db.session.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        db.session.rollback()
        log.error("health: database unreachable: %s", exc.__class__.__name__)
        return {"ok": False, "backend": db.engine.dialect.name, "error": "database unreachable"}
    return {"ok": True, "backend": db.engine.dialect.name}


def _queue(app: Flask) -> dict:
    if queue.is_embedded(app):
        return {"ok": True, "backend": "embedded"}
    try:
        queue.connection(app).ping()
    except redis.RedisError as exc:
        log.error("health: redis unreachable: %s", exc.__class__.__name__)
        return {"ok": False, "backend": "redis", "error": "redis unreachable"}
    return {"ok": True, "backend": "redis", "queued_jobs": queue.get_queue(app).count}


def _workers(app: Flask) -> dict:
    if queue.is_embedded(app):
        runtime = app.extensions.get(EMBEDDED_RUNTIME)
        return {"ok": True, "mode": "embedded", "running": bool(runtime and runtime.running)}
    try:
        workers = Worker.all(connection=queue.connection(app))
    except redis.RedisError:
        return {"ok": False, "mode": "redis", "count": 0, "error": "redis unreachable"}
    now = datetime.now(UTC)
    alive = [w for w in workers if w.last_heartbeat and _age(now, w.last_heartbeat) < WORKER_STALE_SECONDS]
    beats = [w.last_heartbeat for w in workers if w.last_heartbeat]
    return {
        "ok": bool(alive),
        "mode": "redis",
        "count": len(alive),
        "last_heartbeat": max(beats).replace(tzinfo=UTC).isoformat() if beats else None,
    }


def _age(now: datetime, beat: datetime) -> float:
    return (now - (beat if beat.tzinfo else beat.replace(tzinfo=UTC))).total_seconds()
