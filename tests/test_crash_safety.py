"""A worker killed at any step, and two workers at once: no duplicate batch, no lost or doubled result."""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import timedelta

import openai
import pytest
from sqlalchemy import func, select, update

from tests.factories import new_job, run_until_done, set_states
from tests.simulated import provider_files
from webapp.extensions import db
from webapp.models import BatchJob, BatchResponse, BatchStatus, JobStatus, ProviderBatch
from webapp.providers.openai_provider import OpenAIProvider
from webapp.services import ingest, leases, sync


class Killed(BaseException):
    """Stands for the process dying: not an Exception, so no handler of ours swallows it."""


def provider_batches_by_local_id(simulator) -> Counter:
    client = openai.OpenAI(base_url=f"{simulator.url}/simulator/v1", api_key="sim", max_retries=0)
    return Counter(b.metadata.get("local_batch_id") for b in client.batches.list(limit=100))


def die_once(monkeypatch, owner, name):
    original = getattr(owner, name)
    calls = {"n": 0}

    def dying(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 1:
            raise Killed(name)
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, dying)


def expire_leases() -> None:
    """The dead worker's lease runs out."""
    db.session.rollback()
    db.session.execute(update(ProviderBatch).values(claimed_until=sync.utcnow() - timedelta(seconds=1)))
    db.session.commit()


def crash_then_resume(job_id: int) -> BatchJob:
    with pytest.raises(Killed):
        for _ in range(50):
            sync.sync_all()
    expire_leases()
    return run_until_done(job_id)


def assert_exactly_once(job: BatchJob, simulator) -> None:
    assert job.status == JobStatus.COMPLETED
    per_request = db.session.execute(
        select(BatchResponse.request_id, func.count())
        .where(BatchResponse.job_id == job.id)
        .group_by(BatchResponse.request_id)
    ).all()
    assert len(per_request) == job.total_requests and all(n == 1 for _, n in per_request)
    created = provider_batches_by_local_id(simulator)
    assert all(created[str(b.id)] == 1 for b in job.batches if b.provider_batch_id)


def test_killed_between_upload_and_create(app_ctx, simulator, monkeypatch):
    job = new_job(count=6, submit=True)
    die_once(monkeypatch, OpenAIProvider, "create_batch")
    with pytest.raises(Killed):
        sync.sync_all()
    expire_leases()
    db.session.expire_all()
    assert job.batches[0].status == BatchStatus.UPLOADED and job.batches[0].input_file_id
    assert_exactly_once(run_until_done(job.id), simulator)


def test_killed_after_create_before_recording_it(app_ctx, simulator, monkeypatch):
    job = new_job(count=6, submit=True)
    die_once(monkeypatch, sync, "_record_created")
    job = crash_then_resume(job.id)
    assert_exactly_once(job, simulator)
    assert any("found again after a restart" in e.message for e in job.events)


def test_killed_during_ingestion(app_ctx, simulator, monkeypatch):
    job = new_job(count=8, submit=True)
    # Responses are written, the requests not yet settled.
    die_once(monkeypatch, ingest, "_apply")
    assert_exactly_once(crash_then_resume(job.id), simulator)


def test_killed_before_upload(app_ctx, simulator, monkeypatch):
    job = new_job(count=4, submit=True)
    die_once(monkeypatch, OpenAIProvider, "upload_input")
    assert_exactly_once(crash_then_resume(job.id), simulator)


def test_a_live_lease_keeps_other_workers_off_the_batch(app_ctx, simulator):
    job = new_job(count=2, submit=True)
    sync.sync_all()  # plans and sends the batch
    batch = job.batches[0]
    lease = leases.claim(batch.id)
    assert lease is not None
    assert leases.claim(batch.id) is None  # a second worker cannot take it
    before = batch.last_synced_at
    sync.sync_batch(batch.id)
    db.session.expire_all()
    assert batch.last_synced_at == before
    leases.release(lease)
    assert leases.claim(batch.id) is not None


def test_ingesting_the_same_files_twice_stores_one_response_each(app_ctx, simulator, monkeypatch):
    job = new_job(count=5, submit=True)
    seen = {}
    original = ingest.ingest_files

    def capture(batch, job_, paths, cancelled):
        paths = list(paths)
        copies = []
        for path in paths:
            copy = path.with_suffix(".copy")
            copy.write_bytes(path.read_bytes())
            copies.append(copy)
        seen.setdefault(batch.id, copies)
        return original(batch, job_, paths, cancelled=cancelled)

    monkeypatch.setattr(ingest, "ingest_files", capture)
    monkeypatch.setattr(ingest, "temporary_workdir", lambda: _KeepDir())
    job = run_until_done(job.id)
    ((batch_id, copies),) = seen.items()
    batch = db.session.get(ProviderBatch, batch_id)
    # Replay the same files with the requests put back in flight, as a half-done crash would leave them.
    from webapp.models import RequestStatus, request_states

    set_states(request_states.c.job_id == job.id, status=RequestStatus.IN_FLIGHT)
    original(batch, job, copies, cancelled=False)
    db.session.commit()
    assert db.session.scalar(select(func.count()).select_from(BatchResponse).where(BatchResponse.job_id == job.id)) == 5


class _KeepDir:
    def __enter__(self):
        import tempfile

        return tempfile.mkdtemp(prefix="kept-")

    def __exit__(self, *exc):
        return False


def test_two_workers_syncing_at_once(app, committed_db, simulator):
    app.config["BATCH_MAX_REQUESTS"] = 7
    try:
        with app.app_context():
            job_id = new_job(count=40, submit=True).id
        errors = []

        def worker():
            with app.app_context():
                try:
                    run_until_done(job_id, timeout=60, pause=0.01)
                except Exception as exc:  # noqa: BLE001 - reported by the assertion below
                    errors.append(exc)

        threads = [threading.Thread(target=worker) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(90)
        assert errors == []
        with app.app_context():
            job = db.session.get(BatchJob, job_id)
            assert len(job.batches) == 6
            assert_exactly_once(job, simulator)
            assert job.succeeded_requests == 40
    finally:
        app.config["BATCH_MAX_REQUESTS"] = 50_000


def test_killed_between_upload_and_recording_the_file_id(app_ctx, simulator, monkeypatch):
    job = new_job(count=4, submit=True)
    original = OpenAIProvider.upload_input

    def upload_then_die(self, path, filename):
        original(self, path, filename)  # the provider has the file; the worker dies before it hears the id
        raise Killed("upload_input")

    monkeypatch.setattr(OpenAIProvider, "upload_input", upload_then_die)
    with pytest.raises(Killed):
        sync.sync_all()
    monkeypatch.undo()
    expire_leases()
    db.session.expire_all()
    assert job.batches[0].input_file_id is None and job.batches[0].input_file_name
    job = run_until_done(job.id)
    assert_exactly_once(job, simulator)
    assert provider_files(simulator) == []  # the file was found by its name and used, not uploaded again


# --- leases ------------------------------------------------------------------------------------------------


def wait_for(condition, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_live_worker_keeps_its_lease_past_the_lease_length(app, committed_db, config):
    config(CLAIM_LEASE_SECONDS=1.5)
    with app.app_context():
        batch_id = planned_batch()
        with leases.claim(batch_id) as lease:
            time.sleep(4)  # more than twice the lease: renewed by the heartbeat meanwhile
            assert lease.held
            assert leases.claim(batch_id) is None
        leases.release(lease)
        assert leases.claim(batch_id) is not None


def test_a_dead_workers_lease_runs_out_and_it_may_not_call_the_provider(app, committed_db, config):
    config(CLAIM_LEASE_SECONDS=1)
    with app.app_context():
        batch_id = planned_batch()
        dead = leases.claim(batch_id)  # claimed, never renewed: the worker died (or froze)
        wait_for(lambda: leases.claim(batch_id) is not None)
        with pytest.raises(leases.LeaseLost):
            dead.check()
        assert not dead.renew() and dead.taken_over  # the new holder keeps it


def test_a_worker_that_lost_its_lease_does_not_create_the_batch(app_ctx, simulator, monkeypatch):
    job = new_job(count=3, submit=True)
    original = OpenAIProvider.upload_input

    def slow_upload(self, path, filename):
        file_id = original(self, path, filename)
        # The worker froze past its lease meanwhile: another worker may have the batch now.
        later = leases.monotonic() + 3600
        monkeypatch.setattr(leases, "monotonic", lambda: later)
        return file_id

    monkeypatch.setattr(OpenAIProvider, "upload_input", slow_upload)
    creates = []
    monkeypatch.setattr(OpenAIProvider, "create_batch", lambda *args: creates.append(args))
    sync.sync_all()
    assert creates == []  # fenced: it stopped before creating the batch
    monkeypatch.undo()
    expire_leases()
    job = run_until_done(job.id)
    assert_exactly_once(job, simulator)


def planned_batch() -> int:
    job = new_job(count=2, submit=True)
    sync.sync_job(job.id, run_batch=lambda batch_id: None)  # plans the batch, sends nothing
    return db.session.scalars(select(ProviderBatch.id).where(ProviderBatch.job_id == job.id)).one()
