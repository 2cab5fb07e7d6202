"""The batch lifecycle engine against the simulator over HTTP, through the real OpenAI SDK."""

from __future__ import annotations

import time
from decimal import Decimal

from sqlalchemy import func, select

from simulator import simulated_text
from tests.factories import new_job, run_until_done
from tests.simulated import add_fault, wait_at_provider
from webapp.extensions import db
from webapp.models import (
    BatchRequest,
    BatchResponse,
    BatchStatus,
    JobEvent,
    JobStatus,
    ProviderBatch,
    RequestStatus,
)
from webapp.services import sync
from webapp.services.pricing import price_table


def responses(job_id: int) -> list[tuple[BatchRequest, BatchResponse]]:
    return db.session.execute(
        select(BatchRequest, BatchResponse)
        .join(BatchResponse, BatchResponse.request_id == BatchRequest.id)
        .where(BatchRequest.job_id == job_id)
    ).all()


def event_kinds(job_id: int) -> list[str]:
    return list(db.session.scalars(select(JobEvent.kind).where(JobEvent.job_id == job_id).order_by(JobEvent.id)))


def test_job_is_split_submitted_and_every_result_stored_once(app_ctx, simulator, config):
    config(BATCH_MAX_REQUESTS=10)
    job = new_job(count=25, submit=True)
    job = run_until_done(job.id)

    assert job.status == JobStatus.COMPLETED
    batches = db.session.scalars(select(ProviderBatch).where(ProviderBatch.job_id == job.id)).all()
    assert sorted(b.request_count for b in batches) == [5, 10, 10]
    assert all(b.status == BatchStatus.COMPLETED and b.ingested_at and b.files_deleted_at for b in batches)
    pairs = responses(job.id)
    assert len(pairs) == 25
    for request, response in pairs:
        assert response.succeeded and response.status_code == 200
        assert response.output_text == simulated_text(request.body)
        assert request.status == RequestStatus.SUCCEEDED
    assert (job.total_requests, job.succeeded_requests, job.failed_requests, job.pending_requests) == (25, 25, 0, 0)
    assert job.prompt_tokens == sum(r.prompt_tokens for _, r in pairs) > 0
    assert job.completion_tokens == sum(r.completion_tokens for _, r in pairs) > 0
    expected = price_table().cost("gpt-4o-mini", job.prompt_tokens, job.completion_tokens, job.cached_tokens)
    assert job.actual_cost == expected > Decimal(0)
    assert job.estimated_cost is not None and job.estimated_cost > 0
    kinds = event_kinds(job.id)
    assert kinds[:3] == ["created", "requests_added", "submitted"]
    assert kinds.count("batch_created") == 3 and kinds.count("results_ingested") == 3
    assert kinds[-1] == "completed"


def by_custom_id(job_id: int) -> dict[str, BatchRequest]:
    return {r.custom_id: r for r in db.session.scalars(select(BatchRequest).where(BatchRequest.job_id == job_id))}


def test_split_respects_the_byte_limit(app_ctx, simulator, config):
    config(BATCH_MAX_BYTES=1000)
    job = run_until_done(new_job(count=12, submit=True).id)
    batches = db.session.scalars(select(ProviderBatch).where(ProviderBatch.job_id == job.id)).all()
    assert len(batches) > 1
    assert all(0 < b.input_bytes <= 1000 for b in batches)
    assert sum(b.request_count for b in batches) == 12
    assert job.status == JobStatus.COMPLETED


def test_permanent_failures_keep_their_error_and_transient_ones_are_retried(app_ctx, simulator):
    texts = ["fine", "bad [[sim:status=400]]", "flaky [[sim:status=500]]", "broken [[sim:error=server_error]]"]
    job = run_until_done(new_job(texts, submit=True, max_retries=2).id)
    requests = by_custom_id(job.id)
    assert requests["req-0"].status == RequestStatus.SUCCEEDED
    bad = requests["req-1"]
    assert (bad.status, bad.retry_count) == (RequestStatus.FAILED, 0)  # a 4xx is never retried
    assert bad.error_code and bad.error
    # The markers make these fail every time: retried up to max_retries, then failed for good.
    for custom_id in ("req-2", "req-3"):
        assert requests[custom_id].status == RequestStatus.FAILED
        assert requests[custom_id].retry_count == 2
    assert requests["req-3"].error_code == "server_error"
    assert job.status == JobStatus.COMPLETED_WITH_ERRORS
    assert (job.succeeded_requests, job.failed_requests) == (1, 3)
    assert len(responses(job.id)) == 4
    attempts = sorted({b.attempt for b in job.batches})
    assert attempts == [0, 1, 2]
    assert "errors:" in job.last_error


def test_every_request_failing_ends_the_job_failed(app_ctx, simulator):
    job = run_until_done(new_job(["a [[sim:status=400]]", "b [[sim:status=401]]"], submit=True).id)
    assert job.status == JobStatus.FAILED
    assert job.batches[0].output_file_id is None  # completed with no output file
    assert job.failed_requests == 2


def test_empty_string_error_file_id_is_treated_as_absent(app_ctx, simulator):
    job = run_until_done(new_job(["ok [[sim:empty_error_file_id]]", "fine"], submit=True).id)
    assert job.status == JobStatus.COMPLETED
    assert job.batches[0].error_file_id is None


def test_validation_failure_maps_errors_to_lines_and_reruns_the_good_requests(app_ctx, simulator):
    job = new_job(count=3)
    # A body the provider rejects but which got past our checks (e.g. written straight into the database).
    bad = db.session.scalars(select(BatchRequest).where(BatchRequest.custom_id == "req-1")).one()
    bad.body = {**bad.body, "stream": True}
    bad.source_line = 7
    db.session.commit()
    from webapp.services import jobs

    jobs.submit_job(job)
    job = run_until_done(job.id)
    requests = by_custom_id(job.id)
    assert requests["req-1"].status == RequestStatus.FAILED
    assert "line 7 of the uploaded file" in requests["req-1"].error
    assert requests["req-0"].status == requests["req-2"].status == RequestStatus.SUCCEEDED
    first = job.batches[0]
    assert first.status == BatchStatus.FAILED and first.errors[0]["line"] == 2
    assert job.status == JobStatus.COMPLETED_WITH_ERRORS
    assert "batch_failed" in event_kinds(job.id)


def test_expired_batch_keeps_partial_results_and_retries_the_rest(app_ctx, simulator):
    texts = ["first [[sim:expire]]"] + [f"item {i}" for i in range(1, 8)]
    job = run_until_done(new_job(texts, submit=True).id)
    assert job.batches[0].status == BatchStatus.EXPIRED
    assert job.batches[0].attempt == 0 and job.batches[1].attempt == 1
    assert 0 < job.batches[1].request_count < 8
    assert job.status == JobStatus.COMPLETED
    assert len(responses(job.id)) == 8
    assert all(r.succeeded for _, r in responses(job.id))


def test_cancel_stops_the_job_and_keeps_partial_results(app_ctx, simulator, config):
    from webapp.services import jobs, sync

    # In progress long enough that the cancel lands inside it on a loaded machine, after some requests ran.
    simulator.app.config["SIMULATOR_IN_PROGRESS_SECONDS"] = 8.0
    config(BATCH_MAX_REQUESTS=5)
    job = new_job(count=10, submit=True)
    sync.sync_all()
    db.session.expire_all()
    assert job.status == JobStatus.RUNNING
    wait_at_provider(simulator, "in_progress")
    time.sleep(2.0)
    jobs.cancel_job(job)
    job = run_until_done(job.id)
    assert job.status == JobStatus.CANCELLED
    assert all(b.status == BatchStatus.CANCELLED for b in job.batches)
    assert len(job.batches) == 2  # no batch created after the cancel
    assert job.succeeded_requests + job.failed_requests + job.cancelled_requests == 10
    assert job.succeeded_requests > 0  # partial results were ingested
    assert job.failed_requests == 0  # what the cancel stopped is cancelled, not failed
    cancelled = [r for r in by_custom_id(job.id).values() if r.status == RequestStatus.CANCELLED]
    assert len(cancelled) == job.cancelled_requests > 0 and all(r.error_code == "cancelled" for r in cancelled)
    assert {"cancel_requested", "cancelled"} <= set(event_kinds(job.id))


def test_cancel_before_any_batch_is_sent(app_ctx, simulator):
    from webapp.services import jobs

    job = new_job(count=3, submit=True)
    jobs.cancel_job(job)
    job = run_until_done(job.id)
    assert job.status == JobStatus.CANCELLED
    assert job.batches == []
    assert (job.cancelled_requests, job.failed_requests) == (3, 0)


def test_provider_errors_back_off_and_recover(app_ctx, simulator, config):
    config(PROVIDER_BACKOFF_SECONDS=0.01)
    add_fault(simulator, status=500, count=4, path_prefix="/batches")  # the SDK retries twice itself
    add_fault(simulator, status=429, count=3, path_prefix="/files")
    job = run_until_done(new_job(count=4, submit=True).id)
    assert job.status == JobStatus.COMPLETED
    assert len(job.batches) == 1
    assert "provider_error" in event_kinds(job.id)
    assert db.session.scalar(select(func.count()).select_from(BatchResponse).where(BatchResponse.job_id == job.id)) == 4


def test_rejected_create_fails_the_batch_with_a_readable_reason(app_ctx, simulator):
    add_fault(simulator, status=400, count=1, method="POST", path_prefix="/batches")
    job = run_until_done(new_job(count=2, submit=True).id)
    assert job.status == JobStatus.FAILED
    assert job.batches[0].status == BatchStatus.FAILED
    assert "HTTP 400" in job.batches[0].last_error
    assert all(r.error_code == "provider_rejected" for r in by_custom_id(job.id).values())


def test_slow_finalizing_batch_is_polled_until_it_completes(app_ctx, simulator):
    simulator.app.config["SIMULATOR_SLOW_FINALIZE_SECONDS"] = 3.0
    job = new_job(["x [[sim:slow_finalize]]", "y"], submit=True)
    sync.sync_all()  # planned, uploaded, created
    wait_at_provider(simulator, "finalizing")
    sync.sync_all()  # reads it finalizing: not an end, nothing ingested yet
    db.session.expire_all()
    assert job.batches[0].status == BatchStatus.FINALIZING and job.batches[0].ingested_at is None
    assert job.status == JobStatus.RUNNING
    job = run_until_done(job.id)
    assert job.status == JobStatus.COMPLETED


def test_chunks_wait_for_the_enqueued_token_limit(app_ctx, simulator, config):
    config(ENQUEUED_TOKEN_LIMITS={"gpt-4o-mini": 40})
    job = new_job([f"{'word ' * 20} {i}" for i in range(4)], submit=True)
    job = run_until_done(job.id)
    assert job.status == JobStatus.COMPLETED
    assert len(job.batches) >= 2
    assert "batch_waiting" in event_kinds(job.id)
    assert all(b.estimated_tokens <= 40 for b in job.batches)


def test_retry_failed_by_hand(app_ctx, simulator):
    from webapp.services import jobs

    job = run_until_done(new_job(["ok", "no [[sim:status=400]]"], submit=True).id)
    assert job.status == JobStatus.COMPLETED_WITH_ERRORS
    assert jobs.retry_failed(job) == 1
    assert job.status == JobStatus.QUEUED
    job = run_until_done(job.id)
    assert job.status == JobStatus.COMPLETED_WITH_ERRORS
    assert by_custom_id(job.id)["req-1"].retry_count == 1
    assert "retried" in event_kinds(job.id)
