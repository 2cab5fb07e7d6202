"""The job queue: the embedded default (no REDIS_URL), periodic jobs, worker.py, the sync command, the job class."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import fakeredis
import pytest
from rq import SimpleWorker
from rq.job import Job
from rq.job import JobStatus as RQJobStatus
from rq_scheduler import Scheduler
from sqlalchemy import select

from simulator import simulated_text
from tests.conftest import PASSWORD, SIMULATOR_KEY, api_token, base_config
from tests.factories import new_job
from webapp import ROOT, create_app, jobs, queue, schedule
from webapp.extensions import db
from webapp.models import BatchJob, BatchRequest, BatchResponse, BatchStatus, JobStatus
from webapp.services import accounts

PASSED_THROUGH = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT")


def sqlite_url(tmp_path: Path, name: str) -> str:
    return f"sqlite:///{tmp_path / name}"


def command_env(tmp_path: Path, **settings: str) -> dict[str, str]:
    """A clean environment for a CLI process: no REDIS_URL, a SQLite file, nothing from the caller's settings."""
    env = {key: os.environ[key] for key in PASSED_THROUGH if key in os.environ}
    env.update(
        DATABASE_URL=sqlite_url(tmp_path, "cli.db"),
        SECRET_KEY="test-secret",
        OPENAI_API_KEY="",
        SIMULATOR_API_KEY=SIMULATOR_KEY,
        **settings,
    )
    return env


def wait_until_terminal(job_id: int, timeout: float) -> str:
    """Poll (ending each read transaction: SQLite readers would otherwise hold the write lock) until the job ends."""
    deadline = time.monotonic() + timeout
    status = None
    while time.monotonic() < deadline:
        status = db.session.scalar(select(BatchJob.status).where(BatchJob.id == job_id))
        db.session.rollback()
        if status not in (JobStatus.QUEUED, JobStatus.RUNNING):
            return status
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} still {status} after {timeout}s")


@pytest.fixture
def restore_worker_side_effects():
    """An RQ worker sets its logger's level (and, in the main thread, signal handlers); put them back."""
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    level = logging.getLogger("rq.worker").level
    yield
    for sig, handler in handlers.items():
        signal.signal(sig, handler)
    logging.getLogger("rq.worker").setLevel(level)


# --- the embedded default ----------------------------------------------------------------------------------


@pytest.fixture
def embedded(monkeypatch, simulator, tmp_path, restore_worker_side_effects):
    """An app on the embedded defaults (no REDIS_URL, a SQLite file); its threads are stopped at the end."""
    app = create_app(
        base_config(
            tmp_path,
            REDIS_URL=None,
            EMBEDDED_WORKERS=True,
            SQLALCHEMY_DATABASE_URI=sqlite_url(tmp_path, "embedded.db"),
            SIMULATOR_BASE_URL=f"{simulator.url}/simulator/v1",
            SYNC_INTERVAL_SECONDS=1,
        )
    )
    with app.app_context():
        db.create_all()
    runtime = app.extensions["batches_embedded_runtime"]
    yield app, runtime
    runtime.stop()
    with app.app_context():
        db.engine.dispose()
    assert not any(thread.is_alive() for thread in runtime.threads), "an embedded thread did not stop"


def test_embedded_worker_and_scheduler_start_with_the_first_request_and_finish_a_job(embedded):
    app, runtime = embedded
    assert queue.is_embedded(app)
    assert not runtime.started and runtime.threads == []
    with app.app_context():
        token = api_token(accounts.create_user("ops@example.com", PASSWORD))

    health = app.test_client().get("/health", headers={"Authorization": f"Bearer {token}"})
    assert health.status_code == 200
    assert health.json["queue"] == {"ok": True, "backend": "embedded"}
    assert health.json["workers"] == {"ok": True, "mode": "embedded", "running": True}
    first = list(runtime.threads)
    assert len(first) == 2 and all(thread.is_alive() and thread.daemon for thread in first)
    app.test_client().get("/health")
    assert runtime.threads == first  # started once, not per request

    with app.app_context():
        job_id = new_job(count=20, submit=True).id
        assert wait_until_terminal(job_id, timeout=30) == JobStatus.COMPLETED
        job = db.session.get(BatchJob, job_id)
        assert job.succeeded_requests == 20 and job.batches[0].status == BatchStatus.COMPLETED
        pairs = db.session.execute(
            select(BatchRequest, BatchResponse)
            .join(BatchResponse, BatchResponse.request_id == BatchRequest.id)
            .where(BatchRequest.job_id == job_id)
        ).all()
        assert len(pairs) == 20
        assert all(response.output_text == simulated_text(request.body) for request, response in pairs)
        db.session.rollback()


# --- periodic jobs -----------------------------------------------------------------------------------------


def test_scheduling_periodic_jobs_again_keeps_one_of_each_with_the_configured_interval(app, monkeypatch):
    scheduler = Scheduler(queue_name=queue.QUEUE_NAME, connection=fakeredis.FakeRedis(server=fakeredis.FakeServer()))
    unrelated = scheduler.schedule(scheduled_time=datetime(2030, 1, 1), func=jobs.process_job, args=[1], interval=60)
    monkeypatch.setitem(app.config, "SYNC_INTERVAL_SECONDS", 7)
    monkeypatch.setitem(app.config, "SWEEP_INTERVAL_SECONDS", 600)
    schedule.schedule_periodic_jobs(app, scheduler)
    schedule.schedule_periodic_jobs(app, scheduler)

    wanted = {job.id: job for job in schedule.PERIODIC_JOBS}
    assert set(wanted) == {"periodic-sync", "periodic-sweep"}
    scheduled = {job.id: job for job in list(scheduler.get_jobs()) if job.id != unrelated.id}
    assert set(scheduled) == set(wanted)  # one of each, however often the scheduler starts
    sync, sweep = scheduled["periodic-sync"], scheduled["periodic-sweep"]
    assert (sync.func_name, sweep.func_name) == ("webapp.jobs.sync_all", "webapp.jobs.sweep_provider_files")
    assert (sync.meta["interval"], sync.timeout, sync.origin) == (7, wanted["periodic-sync"].timeout, queue.QUEUE_NAME)
    assert (sweep.meta["interval"], sweep.timeout) == (600, wanted["periodic-sweep"].timeout)
    assert unrelated.id in {job.id for job in list(scheduler.get_jobs())}  # not ours: left alone
    due = scheduler.get_jobs(until=datetime.now(UTC).replace(tzinfo=None) + timedelta(seconds=1))
    assert set(wanted) <= {job.id for job in due}  # each runs at once, then every interval

    monkeypatch.setitem(app.config, "SYNC_INTERVAL_SECONDS", 11)  # restarted with a new setting
    schedule.schedule_periodic_jobs(app, scheduler)
    (sync,) = [job for job in list(scheduler.get_jobs()) if job.id == "periodic-sync"]
    assert sync.meta["interval"] == 11
    assert len(list(scheduler.get_jobs())) == 3


# --- the command-line entry points -------------------------------------------------------------------------


def test_worker_py_without_redis_url_exits_2_with_one_clear_line(tmp_path):
    result = subprocess.run(
        [sys.executable, "worker.py"], cwd=ROOT, env=command_env(tmp_path), capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert result.stdout == ""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "REDIS_URL" in lines[0] and "Traceback" not in result.stderr


def test_flask_batches_sync_runs_one_pass_and_prints_a_json_summary(tmp_path, simulator):
    simulator.app.config["SIMULATOR_VALIDATING_SECONDS"] = 60  # the pass cannot see the batch end
    other = create_app(base_config(tmp_path, REDIS_URL=None, SQLALCHEMY_DATABASE_URI=sqlite_url(tmp_path, "cli.db")))
    with other.app_context():
        db.create_all()
        job_id = new_job(count=3, submit=True).id
        db.session.remove()
        db.engine.dispose()
    flask = str(Path(sys.executable).with_name("flask"))
    env = command_env(tmp_path, SIMULATOR_BASE_URL=f"{simulator.url}/simulator/v1")
    result = subprocess.run(
        [flask, "--app", "webapp:create_app_or_exit()", "batches", "sync"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"jobs": 1, "files_cleaned": 0}
    with other.app_context():
        job = db.session.get(BatchJob, job_id)
        assert job.status == JobStatus.RUNNING  # one pass: planned, uploaded and created
        (batch,) = job.batches
        assert batch.provider_batch_id and batch.status == BatchStatus.VALIDATING
        db.session.remove()
        db.engine.dispose()


# --- the job class -----------------------------------------------------------------------------------------


def test_process_job_runs_in_a_worker_inside_the_app_context_with_the_job_id_in_its_logs(
    app, committed_db, simulator, json_logs, restore_worker_side_effects
):
    simulator.app.config["SIMULATOR_VALIDATING_SECONDS"] = 60  # the job stays running after its one pass
    rq_queue = queue.get_queue(app)
    rq_queue.empty()
    with app.app_context():
        job_id = new_job(count=3, submit=True).id
    (rq_job_id,) = rq_queue.job_ids
    assert Job.fetch(rq_job_id, connection=queue.connection(app)).func_name == "webapp.jobs.process_job"
    logged_before = len(json_logs.getvalue())

    assert queue.new_worker(app, SimpleWorker).work(burst=True)

    assert Job.fetch(rq_job_id, connection=queue.connection(app)).get_status() == RQJobStatus.FINISHED
    with app.app_context():  # the job reached the database, so it ran inside the app's context
        job = db.session.get(BatchJob, job_id)
        assert job.status == JobStatus.RUNNING and job.batches[0].provider_batch_id
        db.session.rollback()
    records = [json.loads(line) for line in json_logs.getvalue()[logged_before:].splitlines() if line.strip()]
    about_the_job = [r for r in records if r.get("job_id") == job_id]
    events = {r.get("event"): r.get("rq_job_id") for r in about_the_job if r.get("event")}
    # process_job plans the batches and hands each to a worker as its own sync_batch job.
    assert events["batches_planned"] == rq_job_id
    batch_job = Job.fetch(events["batch_created"], connection=queue.connection(app))
    assert batch_job.func_name == "webapp.jobs.sync_batch" and batch_job.get_status() == RQJobStatus.FINISHED
    assert all(r.get("rq_job_id") for r in about_the_job)


def test_a_batch_is_queued_once_until_its_job_starts(app):
    with app.app_context():
        rq_queue = queue.get_queue(app)
        rq_queue.empty()
        queue.connection(app).delete(queue.PENDING_KEY.format("sync-batch-999999"))
        jobs.dispatch_batch(999999)
        jobs.dispatch_batch(999999)
        assert rq_queue.count == 1  # a second pass while it waits adds nothing
        queue.started("sync-batch-999999")  # what sync_batch does first
        jobs.dispatch_batch(999999)
        assert rq_queue.count == 2  # a running (or lost) job never blocks the next
        rq_queue.empty()
        queue.started("sync-batch-999999")


def test_one_periodic_pass_at_a_time(app):
    with app.app_context():
        connection = queue.connection(app)
        connection.set(jobs.SYNC_LOCK, "1", ex=60)
        try:
            assert jobs.sync_all() == {"skipped": True}
        finally:
            connection.delete(jobs.SYNC_LOCK)
        assert "jobs" in jobs.sync_all()
        assert not connection.exists(jobs.SYNC_LOCK)


def test_the_pass_lock_is_short_and_renewed_while_a_pass_runs(app, monkeypatch):
    """A pass killed with its worker blocks the next for one lock length; a live one keeps its lock however long."""
    monkeypatch.setitem(app.config, "SYNC_INTERVAL_SECONDS", 1)  # the lock then lives its minimum, 3 s
    inside, release = threading.Event(), threading.Event()

    def long_pass(run_batch):
        inside.set()
        release.wait(20)
        return {"jobs": 0}

    monkeypatch.setattr(jobs.sync, "sync_all", long_pass)

    def run_pass():
        with app.app_context():
            jobs.sync_all()

    with app.app_context():
        connection = queue.connection(app)
        running = threading.Thread(target=run_pass)
        running.start()
        try:
            assert inside.wait(10)
            assert 0 < connection.pttl(jobs.SYNC_LOCK) <= jobs.SYNC_LOCK_MIN_SECONDS * 1000
            time.sleep(jobs.SYNC_LOCK_MIN_SECONDS * 2)  # twice the lock's life: renewed meanwhile
            assert connection.exists(jobs.SYNC_LOCK)
            assert jobs.sync_all() == {"skipped": True}
        finally:
            release.set()
            running.join(20)
        assert not connection.exists(jobs.SYNC_LOCK)
