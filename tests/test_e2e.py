"""End to end: real RQ worker and scheduler processes on PostgreSQL and Redis, the simulator over HTTP."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import openai
import pytest
from sqlalchemy import func, select

from simulator import prompt_tokens, simulated_text
from tests.conftest import TEST_DATABASE_URL, TEST_REDIS_URL
from tests.factories import new_job
from webapp import ROOT, jobs, queue
from webapp.extensions import db
from webapp.models import (
    TERMINAL_JOB_STATUSES,
    BatchJob,
    BatchRequest,
    BatchResponse,
    BatchStatus,
    JobEvent,
    JobStatus,
    ProviderBatch,
    RequestStatus,
)
from webapp.services.pricing import PER_TOKENS, price_table

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        not (TEST_DATABASE_URL and TEST_REDIS_URL),
        reason="end-to-end tests run real worker processes: set TEST_DATABASE_URL and TEST_REDIS_URL",
    ),
]
BATCH_MAX_REQUESTS = 500
LEASE_SECONDS = 10  # the smallest CLAIM_LEASE_SECONDS: how long a killed worker's batch stays claimed
PASSED_THROUGH = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT")


class Cluster:
    """The service's background processes, started as an operator would; each writes one log file."""

    def __init__(self, workdir: Path, env: dict[str, str]):
        self.workdir = workdir
        self.env = env
        self.procs: dict[str, subprocess.Popen] = {}

    def start(self, name: str, *command: str) -> subprocess.Popen:
        with open(self.log_path(name), "wb") as log:
            proc = subprocess.Popen(command, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        self.procs[name] = proc
        return proc

    def start_worker(self, name: str) -> subprocess.Popen:
        return self.start(name, sys.executable, "worker.py")

    def log_path(self, name: str) -> Path:
        return self.workdir / f"{name}.log"

    def kill(self, name: str) -> None:
        """SIGKILL a process and its work horse, as a crashed host or an OOM kill would."""
        proc = self.procs.pop(name)
        for pid in [*children(proc.pid), proc.pid]:
            _signal(pid, signal.SIGKILL)
        proc.wait(10)

    def check_running(self) -> None:
        dead = {name: proc.returncode for name, proc in self.procs.items() if proc.poll() is not None}
        assert not dead, f"processes exited early: {dead}\n{self.tails()}"

    def tails(self, lines: int = 15) -> str:
        return "\n".join(
            f"--- {path.name}\n" + "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
            for path in sorted(self.workdir.glob("*.log"))
        )

    def stop_all(self) -> None:
        """SIGTERM (a warm shutdown lets a running job finish), then SIGKILL whatever is left."""
        horses = {name: children(proc.pid) for name, proc in self.procs.items()}
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        for name, proc in self.procs.items():
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
            for pid in horses[name]:
                _signal(pid, signal.SIGKILL)
        self.procs.clear()


def children(pid: int) -> list[int]:
    """Pids whose parent is ``pid`` (an RQ worker forks one work horse per job)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # the process ended while we looked
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def _signal(pid: int, sig: signal.Signals) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


@pytest.fixture
def cluster(app, committed_db, simulator, tmp_path):
    """Empty Redis, an environment like production's, and every process stopped before the tables are emptied."""
    if not Path("/proc").is_dir():
        pytest.skip("finding an RQ work horse needs /proc")
    redis = queue.connection(app)
    redis.flushdb()  # jobs other tests queued, and any scheduler lock left behind
    env = {key: os.environ[key] for key in PASSED_THROUGH if key in os.environ}
    env.update(
        DATABASE_URL=TEST_DATABASE_URL,
        REDIS_URL=TEST_REDIS_URL,
        SECRET_KEY=app.config["SECRET_KEY"],
        OPENAI_API_KEY="",
        SIMULATOR_BASE_URL=f"{simulator.url}/simulator/v1",
        SIMULATOR_API_KEY=simulator.app.config["SIMULATOR_API_KEY"],
        BATCH_MAX_REQUESTS=str(BATCH_MAX_REQUESTS),
        SYNC_INTERVAL_SECONDS="1",
        CLAIM_LEASE_SECONDS=str(LEASE_SECONDS),
        PROVIDER_BACKOFF_SECONDS="0.2",
        LOG_FORMAT="json",
        LOG_LEVEL="INFO",
        PYTHONUNBUFFERED="1",
    )
    processes = Cluster(tmp_path, env)
    yield processes
    processes.stop_all()
    redis.flushdb()


def wait_for_job(job_id: int, cluster: Cluster, timeout: float) -> BatchJob:
    """Poll the database until the job ends; fail with the processes' logs when it does not."""
    deadline = time.monotonic() + timeout
    status = None
    while time.monotonic() < deadline:
        status = db.session.scalar(select(BatchJob.status).where(BatchJob.id == job_id))
        db.session.rollback()
        if status in TERMINAL_JOB_STATUSES:
            return db.session.get(BatchJob, job_id)
        cluster.check_running()
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} still {status} after {timeout}s\n{cluster.tails()}")


def simulator_batches(simulator) -> list:
    client = openai.OpenAI(base_url=f"{simulator.url}/simulator/v1", api_key="sim", max_retries=0)
    return list(client.batches.list(limit=100))


def simulator_files(simulator) -> list:
    client = openai.OpenAI(base_url=f"{simulator.url}/simulator/v1", api_key="sim", max_retries=0)
    return list(client.files.list())


def assert_one_matching_response_per_request(job: BatchJob) -> list[tuple[BatchRequest, BatchResponse]]:
    pairs = db.session.execute(
        select(BatchRequest, BatchResponse)
        .outerjoin(BatchResponse, BatchResponse.request_id == BatchRequest.id)
        .where(BatchRequest.job_id == job.id)
        .order_by(BatchRequest.id)
    ).all()
    assert len(pairs) == job.total_requests
    assert all(response is not None for _, response in pairs), "a request has no response"
    stored = db.session.scalar(select(func.count()).select_from(BatchResponse).where(BatchResponse.job_id == job.id))
    assert stored == len(pairs), "more responses than requests"
    for request, response in pairs:
        assert request.status == RequestStatus.SUCCEEDED, (request.custom_id, request.error)
        assert (response.succeeded, response.status_code, response.error) == (True, 200, None)
        assert response.output_text == simulated_text(request.body), request.custom_id
        assert response.body["choices"][0]["message"]["content"] == response.output_text
        assert response.provider_batch_id == request.provider_batch_id
    return pairs


def assert_each_batch_created_once(job: BatchJob, simulator) -> None:
    remote = simulator_batches(simulator)
    created = Counter(b.metadata["local_batch_id"] for b in remote)
    assert created == Counter({str(batch.id): 1 for batch in job.batches}), "a provider batch was created twice"
    remote_ids = {b.metadata["local_batch_id"]: b.id for b in remote}
    assert all(remote_ids[str(batch.id)] == batch.provider_batch_id for batch in job.batches)


def json_log(path: Path) -> list[dict]:
    records = []
    for line in path.read_text().splitlines():
        if line.strip():
            try:
                records.append(json.loads(line))
            except ValueError:
                raise AssertionError(f"{path.name} has a line that is not JSON: {line[:300]!r}") from None
    return records


def test_a_large_job_runs_through_real_workers_and_the_scheduler(app_ctx, cluster, simulator):
    cluster.start_worker("worker-1")
    cluster.start_worker("worker-2")
    cluster.start("scheduler", sys.executable, "worker.py", "scheduler", "-i", "1")
    job = wait_for_job(new_job(count=2500, submit=True).id, cluster, timeout=120)

    assert job.status == JobStatus.COMPLETED, f"{job.status}: {job.last_error}\n{cluster.tails()}"
    assert (job.total_requests, job.succeeded_requests, job.failed_requests) == (2500, 2500, 0)
    assert (job.pending_requests, job.in_flight_requests) == (0, 0)
    pairs = assert_one_matching_response_per_request(job)

    batches = job.batches
    assert len(batches) == 5
    for batch in batches:
        assert batch.status == BatchStatus.COMPLETED and batch.attempt == 0
        assert batch.request_count == batch.counts_total == batch.counts_completed == BATCH_MAX_REQUESTS
        assert batch.counts_failed == 0
        assert batch.ingested_at and batch.files_deleted_at and batch.claim_token is None
        mine = [response for _, response in pairs if response.provider_batch_id == batch.id]
        assert len(mine) == BATCH_MAX_REQUESTS
        assert batch.usage["input_tokens"] == sum(r.prompt_tokens for r in mine)
        assert batch.usage["output_tokens"] == sum(r.completion_tokens for r in mine)
    assert len({b.provider_batch_id for b in batches}) == 5
    assert_each_batch_created_once(job, simulator)
    assert {b.status for b in simulator_batches(simulator)} == {"completed"}
    assert simulator_files(simulator) == []  # input, output and error files all cleaned up

    responses = [response for _, response in pairs]
    assert job.prompt_tokens == sum(r.prompt_tokens for r in responses) == sum(prompt_tokens(q.body) for q, _ in pairs)
    assert job.completion_tokens == sum(r.completion_tokens for r in responses) > 0
    assert job.cached_tokens == sum(r.cached_tokens for r in responses)
    assert all(r.total_tokens == r.prompt_tokens + r.completion_tokens for r in responses)
    table = price_table()
    price = table.price_for(job.model)
    expected = (
        (
            (job.prompt_tokens - job.cached_tokens) * price.input
            + job.cached_tokens * price.cached_input
            + job.completion_tokens * price.output
        )
        * table.batch_discount
        / PER_TOKENS
    )
    assert job.actual_cost == expected.quantize(Decimal("0.00000001")) > 0

    kinds = list(db.session.scalars(select(JobEvent.kind).where(JobEvent.job_id == job.id).order_by(JobEvent.id)))
    assert kinds.count("batch_created") == 5 and kinds.count("results_ingested") == 5
    assert kinds[-1] == "completed"

    logs = {name: json_log(cluster.log_path(name)) for name in ("worker-1", "worker-2")}
    assert all(logs.values()), "a worker wrote no log at all"
    assert all({"time", "level", "logger", "message"} <= set(r) for records in logs.values() for r in records)
    assert any(r.get("job_id") == job.id for records in logs.values() for r in records), "no log line names the job"


def hold_a_lease(worker: subprocess.Popen, job_id: int, timeout: float = 30) -> None:
    """Freeze the worker's horse (SIGSTOP) at a moment it holds a provider batch's lease, i.e. mid-step."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for horse in children(worker.pid):
            _signal(horse, signal.SIGSTOP)
            if claimed_batches(job_id):
                return
            _signal(horse, signal.SIGCONT)
        time.sleep(0.005)
    raise AssertionError(f"the worker never held a batch of job {job_id} within {timeout}s")


def claimed_batches(job_id: int) -> list[int]:
    claimed = list(
        db.session.scalars(
            select(ProviderBatch.id).where(
                ProviderBatch.job_id == job_id,
                ProviderBatch.claim_token.is_not(None),
                ProviderBatch.claimed_until > datetime.now(UTC),
            )
        )
    )
    db.session.rollback()
    return claimed


def test_a_worker_killed_mid_job_loses_and_doubles_nothing(app_ctx, cluster, simulator):
    # The default lease: a live worker renews it, so a dead one's batch waits at most that long for another.
    del cluster.env["CLAIM_LEASE_SECONDS"]
    simulator.app.config["SIMULATOR_IN_PROGRESS_SECONDS"] = 2.0  # batches stay in flight across the crash
    worker = cluster.start_worker("worker-1")
    cluster.start("scheduler", sys.executable, "worker.py", "scheduler", "-i", "1")
    job = new_job(count=1500, submit=True)

    hold_a_lease(worker, job.id)
    cluster.kill("worker-1")
    killed_at = time.monotonic()
    held = claimed_batches(job.id)
    assert held, "the killed worker held no lease: it was not killed mid-step"
    db.session.expire_all()
    assert job.status in (JobStatus.QUEUED, JobStatus.RUNNING)

    cluster.start_worker("worker-2")
    job = wait_for_job(job.id, cluster, timeout=90)
    delay = time.monotonic() - killed_at
    print(f"job done {delay:.1f} s after its worker was killed holding a lease")

    assert job.status == JobStatus.COMPLETED, f"{job.status}: {job.last_error}\n{cluster.tails()}"
    assert job.succeeded_requests == job.total_requests == 1500
    assert_one_matching_response_per_request(job)
    assert len(job.batches) == 3
    assert all(b.status == BatchStatus.COMPLETED and b.attempt == 0 for b in job.batches)
    assert_each_batch_created_once(job, simulator)
    assert delay < 60, f"a killed worker delayed the job by {delay:.0f} s"


def hold_the_pass(worker: subprocess.Popen, timeout: float = 30) -> None:
    """Freeze the worker's horse (SIGSTOP) at a moment it runs the periodic pass (holds the pass's lock)."""
    redis = queue.connection()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for horse in children(worker.pid):
            _signal(horse, signal.SIGSTOP)
            if redis.exists(jobs.SYNC_LOCK):
                return
            _signal(horse, signal.SIGCONT)
        time.sleep(0.002)
    raise AssertionError(f"the worker never ran a pass within {timeout}s")


def test_a_pass_killed_mid_way_delays_the_next_by_seconds(app_ctx, cluster, simulator):
    simulator.app.config["SIMULATOR_IN_PROGRESS_SECONDS"] = 2.0
    worker = cluster.start_worker("worker-1")
    cluster.start("scheduler", sys.executable, "worker.py", "scheduler", "-i", "1")
    job = new_job(count=200, submit=True)

    hold_the_pass(worker)
    cluster.kill("worker-1")
    killed_at = time.monotonic()
    assert queue.connection().exists(jobs.SYNC_LOCK), "the pass was not killed while it held its lock"
    cluster.start_worker("worker-2")
    job = wait_for_job(job.id, cluster, timeout=60)
    delay = time.monotonic() - killed_at
    print(f"job done {delay:.1f} s after a pass was killed")

    assert job.status == JobStatus.COMPLETED, f"{job.status}: {job.last_error}\n{cluster.tails()}"
    assert_one_matching_response_per_request(job)
    assert_each_batch_created_once(job, simulator)
    assert delay < 30, f"a killed pass delayed the job by {delay:.0f} s"


def test_plain_rqscheduler_runs_the_periodic_sync(app_ctx, cluster, simulator):
    # A worker's start registers the periodic sync, so rq-scheduler's own command is enough to run it;
    # the job can only finish through it (the submit's one process_job pass leaves the batch validating).
    simulator.app.config["SIMULATOR_VALIDATING_SECONDS"] = 1.0
    cluster.start_worker("worker-1")
    rqscheduler = str(Path(sys.executable).with_name("rqscheduler"))
    cluster.start("rqscheduler", rqscheduler, "--url", TEST_REDIS_URL, "-i", "1")
    job = wait_for_job(new_job(count=20, submit=True).id, cluster, timeout=60)
    assert job.status == JobStatus.COMPLETED
    assert job.succeeded_requests == 20
    assert "periodic-sync" in queue.get_queue(app_ctx).finished_job_registry.get_job_ids()
