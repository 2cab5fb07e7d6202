"""Background processes: ``python worker.py`` runs an RQ worker, ``python worker.py scheduler`` the periodic sync.

Both need REDIS_URL; without it the web process runs an embedded worker and scheduler itself.
Run as many workers as you like and exactly one scheduler.
"""

from __future__ import annotations

import argparse
import sys

from rq import Worker
from sqlalchemy.orm import configure_mappers

from webapp import create_app_or_exit, queue, schedule


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", nargs="?", choices=("worker", "scheduler"), default="worker")
    parser.add_argument("--burst", action="store_true", help="worker: exit once the queue is empty")
    parser.add_argument("--name", help="worker: a unique name (default: host and pid)")
    parser.add_argument(
        "-i", "--interval", type=float, default=5.0, help="scheduler: seconds between checks for due jobs (default 5)"
    )
    args = parser.parse_args(argv)

    app = create_app_or_exit()
    if queue.is_embedded(app):
        print(
            "worker.py needs REDIS_URL (e.g. redis://127.0.0.1:6379/0); without it the web process "
            "runs its own embedded worker and scheduler",
            file=sys.stderr,
        )
        return 2
    if args.command == "scheduler":
        return run_scheduler(app, args.interval)
    return run_worker(app, burst=args.burst, name=args.name)


def run_worker(app, *, burst: bool, name: str | None) -> int:
    configure_mappers()  # once here, not in every forked work horse
    with app.app_context():
        # Keeps a bare `rqscheduler` process enough: any worker start (re)registers the periodic jobs.
        schedule.schedule_periodic_jobs(app, schedule.new_scheduler(app))
    worker = queue.new_worker(app, Worker, name=name)
    worker.work(burst=burst, logging_level=app.config["LOG_LEVEL"])
    return 0


def run_scheduler(app, interval: float) -> int:
    scheduler = schedule.new_scheduler(app, interval=interval)
    schedule.schedule_periodic_jobs(app, scheduler)
    scheduler.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
