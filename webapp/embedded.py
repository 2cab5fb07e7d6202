"""The embedded runtime (no REDIS_URL): one RQ worker and the scheduler in daemon threads of the web process."""

from __future__ import annotations

import logging
import threading
from typing import cast

from flask import Flask
from rq import SimpleWorker
from rq.timeouts import TimerDeathPenalty
from rq_scheduler import Scheduler

from webapp.queue import is_embedded, new_worker
from webapp.schedule import new_scheduler, schedule_periodic_jobs

log = logging.getLogger(__name__)
EXTENSION_KEY = "batches_embedded_runtime"


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


class EmbeddedRuntime:
    """Runs one worker and the scheduler in daemon threads of the web process (no REDIS_URL)."""

    def __init__(self, app: Flask):
        self.app = app
        self._lock = threading.Lock()
        self.started = False
        self.threads: list[threading.Thread] = []

    def start(self) -> None:
        with self._lock:
            if self.started:
                return
            self.scheduler = cast(ThreadScheduler, new_scheduler(self.app, ThreadScheduler, interval=1))
            schedule_periodic_jobs(self.app, self.scheduler)
            self.worker = new_worker(self.app, ThreadWorker)
            self.threads = [
                threading.Thread(target=self.worker.work, name="embedded-worker", daemon=True),
                threading.Thread(target=self.scheduler.run, name="embedded-scheduler", daemon=True),
            ]
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
    app.extensions[EXTENSION_KEY] = runtime
    app.before_request(runtime.start)
