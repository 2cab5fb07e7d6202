"""The job queue: Redis or the embedded in-process queue, the app-context job class, and periodic jobs."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable

import fakeredis
import redis
from flask import Flask, current_app
from rq import Queue, SimpleWorker, Worker
from rq.job import Job
from rq.timeouts import TimerDeathPenalty
from rq_scheduler import Scheduler

from webapp.config import ConfigError
from webapp.logs import log_context

log = logging.getLogger(__name__)
QUEUE_NAME = "batches"
EXTENSION_KEY = "batches_queue"


@dataclass(frozen=True)
class PeriodicJob:
    """A job the scheduler runs every ``interval_setting`` seconds; ``id`` keeps it unique in Redis."""

    id: str
    func: Callable
    interval_setting: str
    timeout: int


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
            raise ConfigError(f"REDIS_URL: cannot reach Redis at {_redacted(url)} ({exc}); start it or fix the URL")
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
        func, args=args, kwargs=kwargs, timeout=timeout, result_ttl=3600, failure_ttl=7 * 86400,
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


def periodic_jobs() -> list[PeriodicJob]:
    from webapp import jobs

    return [
        PeriodicJob("periodic-sync", jobs.sync_all, "SYNC_INTERVAL_SECONDS", timeout=jobs.SYNC_TIMEOUT),
        PeriodicJob("periodic-sweep", jobs.sweep_provider_files, "SWEEP_INTERVAL_SECONDS", timeout=jobs.SWEEP_TIMEOUT),
    ]


def schedule_periodic_jobs(app: Flask, scheduler: Scheduler) -> None:
    """Reconcile the scheduler's periodic jobs with ``periodic_jobs()``: safe at every start."""
    wanted = {job.id: job for job in periodic_jobs()}
    for scheduled in scheduler.get_jobs():
        if scheduled.id in wanted:
            scheduler.cancel(scheduled)
    for job in wanted.values():
        scheduler.schedule(
            scheduled_time=datetime.now(timezone.utc).replace(tzinfo=None),
            func=job.func, interval=app.config[job.interval_setting], repeat=None,
            id=job.id, timeout=job.timeout, result_ttl=600, queue_name=QUEUE_NAME,
        )
        log.info("periodic job scheduled", extra={"periodic_job": job.id, "interval": app.config[job.interval_setting]})


def new_scheduler(app: Flask, scheduler_class: type[Scheduler] = Scheduler, interval: float | None = None) -> Scheduler:
    return scheduler_class(
        queue_name=QUEUE_NAME, connection=connection(app), job_class=job_class_for(app),
        interval=interval if interval is not None else min(5, app.config["SYNC_INTERVAL_SECONDS"]),
    )


class ThreadWorker(SimpleWorker):
    """An RQ worker that runs in a background thread: no signal handlers, timer-based job timeouts."""

    death_penalty_class = TimerDeathPenalty

    def _install_signal_handlers(self):
        pass


class _Stop(Exception):
    """Ends rq-scheduler's loop, which otherwise only a signal ends."""


class ThreadScheduler(Scheduler):
    """rq-scheduler's loop, in a background thread (signals belong to the main thread); ``stopping`` ends it."""

    stopping = False

    def _install_signal_handlers(self):
        pass

    def heartbeat(self):
        if self.stopping:
            raise _Stop
        super().heartbeat()

    def run(self, burst: bool = False):
        try:
            super().run(burst=burst)
        except _Stop:
            pass  # run() has removed its lock and registered its death on the way out


def new_worker(app: Flask, worker_class: type[Worker] = Worker, **kwargs) -> Worker:
    return worker_class([get_queue(app)], connection=connection(app), job_class=job_class_for(app), **kwargs)


class EmbeddedRuntime:
    """Runs one worker and the scheduler in daemon threads of the web process (no REDIS_URL)."""

    def __init__(self, app: Flask):
        self.app = app
        self._lock = threading.Lock()
        self.started = False
        self.worker: ThreadWorker | None = None
        self.scheduler: ThreadScheduler | None = None
        self.threads: list[threading.Thread] = []

    def start(self) -> None:
        with self._lock:
            if self.started:
                return
            self.scheduler = new_scheduler(self.app, ThreadScheduler, interval=1)
            schedule_periodic_jobs(self.app, self.scheduler)
            self.worker = new_worker(self.app, ThreadWorker)
            self.threads = [threading.Thread(target=self.worker.work, name="embedded-worker", daemon=True),
                            threading.Thread(target=self.scheduler.run, name="embedded-scheduler", daemon=True)]
            for thread in self.threads:
                thread.start()
            self.started = True
        log.info("embedded queue started: one worker and the scheduler in this process")

    @property
    def running(self) -> bool:
        return self.started and all(thread.is_alive() for thread in self.threads)

    def stop(self, timeout: float = 10) -> None:
        """Stop both threads: the worker after its current job (the scheduler feeds it one each second)."""
        if not self.started:
            return
        self.worker._stop_requested = True
        self.threads[0].join(timeout)
        self.scheduler.stopping = True
        self.threads[1].join(timeout)


def init_embedded_runtime(app: Flask) -> None:
    """Start the embedded worker with the first request, so CLI commands and the reloader start none."""
    if not is_embedded(app) or not app.config.get("EMBEDDED_WORKERS", True):
        return
    runtime = EmbeddedRuntime(app)
    app.extensions["batches_embedded_runtime"] = runtime
    app.before_request(runtime.start)


def _redacted(url: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password:
        parts = parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@"))
    return urlunsplit(parts)
