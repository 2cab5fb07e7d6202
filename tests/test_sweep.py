"""The sweep: provider files and batches of this installation that no local batch uses are deleted or cancelled."""

from __future__ import annotations

import io
import json
import time
from datetime import timedelta

import pytest

from tests.factories import chat_body, new_job, run_until_done
from tests.simulated import client, provider_batches, provider_files
from webapp.extensions import db
from webapp.providers import get_provider
from webapp.services import jobs as job_service
from webapp.services import reconcile, sync
from webapp.services.installation import install_id


@pytest.fixture
def settled_at_once(monkeypatch):
    """Everything counts as old enough to sweep (the grace period protects uploads about to be recorded)."""
    monkeypatch.setattr(reconcile, "SWEEP_GRACE", timedelta(seconds=-5))


def upload(simulator, name: str, text: str = "hello") -> str:
    line = {"custom_id": "x", "method": "POST", "url": "/v1/chat/completions", "body": chat_body(text)}
    return (
        client(simulator)
        .files.create(file=(name, io.BytesIO(json.dumps(line).encode()), "application/jsonl"), purpose="batch")
        .id
    )


def ours(name: str) -> str:
    return f"{reconcile.FILE_PREFIX}{install_id()}-{name}.jsonl"


def remote_batch(simulator, local_batch_id: str, text: str = "hello", install: str | None = None) -> str:
    file_id = upload(simulator, ours(f"stray-{local_batch_id}"), text)
    metadata = {"install": install or install_id(), "local_batch_id": local_batch_id}
    return (
        client(simulator)
        .batches.create(
            input_file_id=file_id, endpoint="/v1/chat/completions", completion_window="24h", metadata=metadata
        )
        .id
    )


def wait_until(simulator, batch_id: str, status: str) -> None:
    deadline = time.monotonic() + 10
    while client(simulator).batches.retrieve(batch_id).status != status:
        assert time.monotonic() < deadline
        time.sleep(0.02)


def test_orphaned_input_files_of_ours_are_deleted_and_nothing_else(app_ctx, simulator, settled_at_once):
    orphan = upload(simulator, ours("job1-batch1-aaaaaa"))
    someone_elses = upload(simulator, "abp-0123456789abcdef-job1-batch1-aaaaaa.jsonl")
    not_ours = upload(simulator, "reviews.jsonl")
    job = new_job(count=2, submit=True)
    sync.sync_all()  # the job's batch is uploaded and created: its input file is in use
    db.session.expire_all()
    in_use = job.batches[0].input_file_id
    assert in_use

    report = reconcile.sweep(get_provider("simulator"))

    remaining = {f.id for f in provider_files(simulator)}
    assert orphan not in remaining
    assert {someone_elses, not_ours, in_use} <= remaining
    assert report.files_deleted == 1


def test_a_file_whose_upload_is_being_recorded_is_left_alone(app_ctx, simulator, settled_at_once):
    job = new_job(count=2, submit=True)
    sync.sync_job(job.id, run_batch=lambda batch_id: None)  # planned, not sent
    batch = job.batches[0]
    batch.input_file_name = ours(f"job{job.id}-batch{batch.id}-bbbbbb")
    db.session.commit()
    pending = upload(simulator, batch.input_file_name)  # uploaded; its answer not yet recorded
    assert reconcile.sweep(get_provider("simulator")).files_deleted == 0
    assert pending in {f.id for f in provider_files(simulator)}


def test_nothing_younger_than_the_grace_period_is_swept(app_ctx, simulator):
    orphan = upload(simulator, ours("job1-batch1-cccccc"))
    assert reconcile.sweep(get_provider("simulator")).files_deleted == 0
    assert orphan in {f.id for f in provider_files(simulator)}


def test_a_stray_batch_of_ours_is_cancelled_and_its_results_deleted(app_ctx, simulator, settled_at_once):
    running = remote_batch(simulator, "999998", "stuck [[sim:hold]]")
    finished = remote_batch(simulator, "999999")
    someone_elses = remote_batch(simulator, "999997", "theirs [[sim:hold]]", install="0123456789abcdef")
    wait_until(simulator, running, "in_progress")
    wait_until(simulator, finished, "completed")
    output = client(simulator).batches.retrieve(finished).output_file_id

    report = reconcile.sweep(get_provider("simulator"))

    statuses = {b.id: b.status for b in provider_batches(simulator)}
    assert statuses[running] in ("cancelling", "cancelled")
    assert statuses[someone_elses] == "in_progress"
    assert output not in {f.id for f in provider_files(simulator)}
    assert (report.batches_cancelled, report.result_files_deleted) == (1, 1)


def test_the_batch_an_uploaded_batch_is_about_to_adopt_is_not_a_stray(app_ctx, simulator, settled_at_once):
    job = new_job(count=2, submit=True)
    sync.sync_job(job.id, run_batch=lambda batch_id: None)
    batch = job.batches[0]
    batch.input_file_id, batch.status = upload(simulator, ours("job-adopt")), "uploaded"
    db.session.commit()
    remote = client(simulator).batches.create(
        input_file_id=batch.input_file_id,
        endpoint="/v1/chat/completions",
        completion_window="24h",
        metadata=sync.batch_metadata(batch),
    )  # created, its answer lost: the next step adopts it
    assert reconcile.sweep(get_provider("simulator")).batches_cancelled == 0
    sync.sync_batch(batch.id)
    db.session.expire_all()
    assert batch.provider_batch_id == remote.id


def test_the_sweep_does_nothing_when_provider_files_are_kept(app_ctx, simulator, settled_at_once, config):
    config(DELETE_PROVIDER_FILES=False)
    orphan = upload(simulator, ours("job1-batch1-dddddd"))
    assert reconcile.sweep_all() == {}
    assert orphan in {f.id for f in provider_files(simulator)}


def test_a_deleted_jobs_leftover_result_files_are_swept(app_ctx, simulator, settled_at_once, config):
    config(DELETE_PROVIDER_FILES=False)  # the files stay behind when the job ends
    job = run_until_done(new_job(count=2, submit=True).id)
    job_service.delete_job(job)
    assert provider_files(simulator)
    config(DELETE_PROVIDER_FILES=True)
    reconcile.sweep_all()
    assert provider_files(simulator) == []
