"""The job queue: the Redis connection (or the embedded in-process one), the app-context job class, enqueueing."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar
from urllib.parse import urlsplit, urlunsplit

import fakeredis
import redis
from flask import Flask, current_app
from rq import Queue
from rq.job import Job
from rq.worker import BaseWorker

from webapp.config import ConfigError
from webapp.logs import log_context

log = logging.getLogger(__name__)
W = TypeVar("W", bound=BaseWorker)
QUEUE_NAME = "batches"
EXTENSION_KEY = "batches_queue"


class AppJob(Job):
    """An RQ job that runs inside the Flask app's context (cf. Flask-RQ2's FlaskJob)."""

    flask_app: Flask | None = None

    def perform(self):
        if self.flask_app is None:
            raise RuntimeError("AppJob.flask_app is not set; use job_class_for(app)")
        with self.flask_app.app_context(), log_context(rq_job_id=self.id):
            return super().perform()


def job_class_for(app: Flask) -> type[AppJob]:
    """A job class bound to ``app``, so workers need no global app."""
    return type("AppJob", (AppJob,), {"flask_app": app})


def init_app(app: Flask) -> None:
    """Connect to REDIS_URL (checked now, to fail fast) or create the embedded in-process Redis."""
    url = app.config.get("REDIS_URL")
    if url:
        conn = redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=30, health_check_interval=30)
        try:
            conn.ping()
        except redis.RedisError as exc:
            raise ConfigError(
                f"REDIS_URL: cannot reach Redis at {_redacted(url)} ({exc}); start it or fix the URL"
            ) from None
    else:
        conn = fakeredis.FakeRedis(server=fakeredis.FakeServer())
    app.extensions[EXTENSION_KEY] = conn


def connection(app: Flask | None = None) -> redis.Redis:
    return (app or current_app).extensions[EXTENSION_KEY]


def is_embedded(app: Flask | None = None) -> bool:
    return not (app or current_app).config.get("REDIS_URL")


def get_queue(app: Flask | None = None) -> Queue:
    app = app or current_app
    return Queue(
        QUEUE_NAME,
        connection=connection(app),
        job_class=job_class_for(app),
        is_async=not app.config.get("QUEUE_SYNCHRONOUS", False),
    )


def enqueue(func: Callable, *args, timeout: int = 600, **kwargs) -> Job:
    """Queue ``func(*args, **kwargs)``. Jobs are idempotent, so a duplicate costs a pass, never a wrong result."""
    return get_queue().enqueue_call(
        func,
        args=args,
        kwargs=kwargs,
        timeout=timeout,
        result_ttl=3600,
        failure_ttl=7 * 86400,
    )


PENDING_KEY = "batches:pending:{}"
PENDING_TTL = 120


def enqueue_once(func: Callable, *args, key: str, timeout: int = 600) -> Job | None:
    """Queue ``func(*args)`` unless a job for ``key`` is already waiting in the queue.

    The mark lasts from enqueueing until the job starts (``started(key)``), so a running job never blocks
    the next one, a job lost with a dead worker blocks nothing, and the mark expires on its own anyway.
    """
    if not connection().set(PENDING_KEY.format(key), "1", nx=True, ex=PENDING_TTL):
        return None
    return enqueue(func, *args, timeout=timeout)


def started(key: str) -> None:
    """Called by a job enqueued with ``enqueue_once`` as it starts: later work for ``key`` may queue again."""
    connection().delete(PENDING_KEY.format(key))


def new_worker(app: Flask, worker_class: type[W], **kwargs) -> W:
    return worker_class([get_queue(app)], connection=connection(app), job_class=job_class_for(app), **kwargs)


def _redacted(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        parts = parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@"))
    return urlunsplit(parts)
