"""The periodic jobs: one declarative table, reconciled with rq-scheduler at every start."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from flask import Flask
from rq_scheduler import Scheduler

from webapp import jobs
from webapp.queue import QUEUE_NAME, connection, job_class_for

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PeriodicJob:
    """A job the scheduler runs every ``interval_setting`` seconds; ``id`` keeps it unique in Redis."""

    id: str
    func: Callable
    interval_setting: str
    timeout: int


PERIODIC_JOBS = (
    PeriodicJob("periodic-sync", jobs.sync_all, "SYNC_INTERVAL_SECONDS", timeout=jobs.SYNC_TIMEOUT),
    PeriodicJob("periodic-sweep", jobs.sweep_provider_files, "SWEEP_INTERVAL_SECONDS", timeout=jobs.SWEEP_TIMEOUT),
)


def schedule_periodic_jobs(app: Flask, scheduler: Scheduler) -> None:
    """Reconcile the scheduler's periodic jobs with ``PERIODIC_JOBS``: safe at every start."""
    wanted = {job.id: job for job in PERIODIC_JOBS}
    for scheduled in scheduler.get_jobs():
        if scheduled.id in wanted:
            scheduler.cancel(scheduled)
    for job in wanted.values():
        scheduler.schedule(
            scheduled_time=datetime.now(UTC).replace(tzinfo=None),
            func=job.func,
            interval=app.config[job.interval_setting],
            repeat=None,
            id=job.id,
            timeout=job.timeout,
            result_ttl=600,
            queue_name=QUEUE_NAME,
        )
        log.info("periodic job scheduled", extra={"periodic_job": job.id, "interval": app.config[job.interval_setting]})


def new_scheduler(app: Flask, scheduler_class: type[Scheduler] = Scheduler, interval: float | None = None) -> Scheduler:
    return scheduler_class(
        queue_name=QUEUE_NAME,
        connection=connection(app),
        job_class=job_class_for(app),
        interval=interval if interval is not None else min(5, app.config["SYNC_INTERVAL_SECONDS"]),
    )
