"""Exactly once when the provider misbehaves: lost answers, late cancels, late results, high error rates.

Every case runs the engine through the real SDK against the simulator over HTTP, with faults injected into the
simulator's API, and checks the result exactly: each request one response, the provider ran each request once,
no batch created twice, no file left behind, counters and cost equal to the responses'.
"""

from __future__ import annotations

import io
import json
import time

import pytest
from sqlalchemy import select

from tests.factories import chat_body, new_job, run_until_done
from tests.simulated import (
    add_fault,
    assert_counters_and_cost_exact,
    assert_nothing_left_at_the_provider,
    assert_one_response_per_request,
    assert_provider_ran_each_request_once,
    clear_faults,
    client,
    provider_batches,
    provider_files,
    wait_at_provider,
)
from webapp.extensions import db
from webapp.models import BatchJob, BatchRequest, BatchStatus, JobEvent, JobStatus, RequestStatus
from webapp.services import jobs, sync

LOST_ANSWERS = {
    "500 after the work": {"status": 500, "after": True},
    "connection reset after the work": {"reset": True, "after": True},
}


def assert_exactly_once(job: BatchJob, simulator) -> None:
    assert_one_response_per_request(job)
    assert_provider_ran_each_request_once(job, simulator)
    assert_counters_and_cost_exact(job)
    assert_nothing_left_at_the_provider(simulator)


def statuses(job_id: int) -> dict[str, str]:
    return dict(
        db.session.execute(
            select(BatchRequest.custom_id, BatchRequest.status).where(BatchRequest.job_id == job_id)
        ).all()
    )


def events(job_id: int, kind: str) -> list[str]:
    return list(db.session.scalars(select(JobEvent.message).where(JobEvent.job_id == job_id, JobEvent.kind == kind)))


# --- lost answers ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("call", ["/batches", "/files"], ids=["create batch", "upload file"])
@pytest.mark.parametrize("lost", LOST_ANSWERS.values(), ids=LOST_ANSWERS.keys())
def test_a_lost_answer_makes_no_second_batch_or_file(app_ctx, simulator, config, call, lost):
    config(BATCH_MAX_REQUESTS=3, PROVIDER_BACKOFF_SECONDS=0.01)
    add_fault(simulator, method="POST", path=call, count=2, **lost)
    job = run_until_done(new_job(count=7, submit=True).id)
    assert job.status == JobStatus.COMPLETED and job.succeeded_requests == 7
    assert_exactly_once(job, simulator)
    # What the lost answers made was found and used: one input file and one provider batch per local batch.
    assert len({b.input_file_id for b in job.batches}) == len({b.provider_batch_id for b in job.batches}) == 3
    adopted = sum("found again" in m for m in events(job.id, "batch_created"))
    assert adopted == (2 if call == "/batches" else 0)


def test_a_refused_create_is_certain_and_sends_nothing_twice(app_ctx, simulator, config):
    config(PROVIDER_BACKOFF_SECONDS=0.01)
    add_fault(simulator, status=429, method="POST", path="/batches", count=3)
    job = run_until_done(new_job(count=4, submit=True).id)
    assert job.status == JobStatus.COMPLETED
    assert_exactly_once(job, simulator)
    assert job.batches[0].sync_failures == 0 and events(job.id, "provider_error")  # the engine backed off itself


# --- late cancels ----------------------------------------------------------------------------------------


def send(job_id: int) -> None:
    """Run passes until every batch of the job is at the provider."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        sync.sync_all()
        db.session.expire_all()
        job = db.session.get(BatchJob, job_id)
        if job.batches and all(b.provider_batch_id for b in job.batches):
            return
    raise AssertionError("the job's batches were never created")


def test_cancelling_a_job_whose_batch_just_completed_keeps_every_result(app_ctx, simulator):
    job = new_job(count=6, submit=True)
    send(job.id)
    wait_at_provider(simulator, "completed")  # done at the provider, not yet seen by the engine
    jobs.cancel_job(job)
    job = run_until_done(job.id)
    assert job.status == JobStatus.CANCELLED
    assert (job.succeeded_requests, job.failed_requests) == (6, 0)
    assert set(statuses(job.id).values()) == {RequestStatus.SUCCEEDED}
    assert_exactly_once(job, simulator)


def test_cancelling_a_job_whose_batch_is_finalizing_keeps_every_result(app_ctx, simulator):
    simulator.app.config["SIMULATOR_SLOW_FINALIZE_SECONDS"] = 2.0
    job = new_job(["a [[sim:slow_finalize]]", "b", "c"], submit=True)
    send(job.id)
    wait_at_provider(simulator, "finalizing")
    jobs.cancel_job(job)  # refused by the provider (400), as it would be once completed too
    job = run_until_done(job.id)
    assert job.status == JobStatus.CANCELLED
    assert (job.succeeded_requests, job.failed_requests) == (3, 0)
    assert_exactly_once(job, simulator)


def test_a_refused_cancel_is_read_back_and_the_cancel_sent_again(app_ctx, simulator, config):
    config(PROVIDER_BACKOFF_SECONDS=0.01)
    simulator.app.config["SIMULATOR_IN_PROGRESS_SECONDS"] = 30.0  # still running when the cancel comes
    job = new_job(count=5, submit=True)
    send(job.id)
    add_fault(simulator, status=400, method="POST", path="/batches/*/cancel", count=1)
    jobs.cancel_job(job)
    job = run_until_done(job.id)
    assert job.status == JobStatus.CANCELLED
    (remote,) = provider_batches(simulator)
    assert remote.status == "cancelled"
    # What ran keeps its result, what never ran is cancelled; nothing is failed for the refusal.
    ran = remote.request_counts.completed
    assert job.succeeded_requests == ran
    assert (job.cancelled_requests, job.failed_requests) == (5 - ran, 0)
    assert all(
        r.error_code == "cancelled"
        for r in db.session.scalars(
            select(BatchRequest).where(BatchRequest.job_id == job.id, BatchRequest.status == RequestStatus.CANCELLED)
        )
    )
    assert_exactly_once(job, simulator)


# --- results that are not there yet ----------------------------------------------------------------------


def test_results_that_answer_404_for_a_moment_are_fetched_again(app_ctx, simulator, config):
    config(PROVIDER_BACKOFF_SECONDS=0.01)
    add_fault(simulator, status=404, method="GET", path="/files/*/content", count=3)
    job = run_until_done(new_job(count=5, submit=True).id)
    assert job.status == JobStatus.COMPLETED and job.succeeded_requests == 5
    assert [b.attempt for b in job.batches] == [0]  # no follow-up batch: nothing was given up for lost
    assert_exactly_once(job, simulator)


def test_results_that_never_come_are_given_up_after_some_tries(app_ctx, simulator, config):
    config(PROVIDER_BACKOFF_SECONDS=0.01)
    add_fault(simulator, status=404, method="GET", path="/files/*/content", count=sync.RESULT_FILE_TRIES)
    job = run_until_done(new_job(count=3, submit=True, max_retries=1).id)
    # The first batch's results were lost: its requests ran again in a follow-up batch.
    assert sorted(b.attempt for b in job.batches) == [0, 1]
    assert job.status == JobStatus.COMPLETED and job.succeeded_requests == 3
    assert_one_response_per_request(job)


# --- a provider that fails often -------------------------------------------------------------------------


@pytest.mark.slow  # a fault storm: 12 s
def test_under_high_error_rates_every_result_is_stored_once(app_ctx, simulator, config):
    config(BATCH_MAX_REQUESTS=4, PROVIDER_BACKOFF_SECONDS=0.01)
    add_fault(simulator, status=500, after=True, method="POST", path="/batches", count=1)  # at least one
    add_fault(simulator, status=429, rate=0.2, count=10_000)
    add_fault(simulator, status=503, rate=0.2, count=10_000)
    add_fault(simulator, status=500, after=True, rate=0.2, method="POST", count=10_000)
    add_fault(simulator, reset=True, after=True, rate=0.1, count=10_000)
    job = run_until_done(new_job(count=18, submit=True).id, timeout=120)
    assert job.status == JobStatus.COMPLETED and job.succeeded_requests == 18
    assert events(job.id, "provider_error"), "the engine's own back-off never ran"
    clear_faults(simulator)
    sync.clean_up_files()  # deletes the engine could not get through under the faults
    assert_exactly_once(job, simulator)


# --- files of refused batches, and the sweep -------------------------------------------------------------


def test_token_limit_exceeded_is_resubmitted_not_failed_and_leaves_no_file(app_ctx, simulator, config):
    config(BATCH_MAX_REQUESTS=2, PROVIDER_BACKOFF_SECONDS=0.01)
    simulator.app.config["SIMULATOR_ENQUEUED_TOKEN_LIMIT"] = 80
    blocker = hold_tokens(simulator, "word " * 40)  # holds the limit until it is cancelled
    job = new_job([f"{'word ' * 15} {i}" for i in range(4)], submit=True)
    deadline = time.monotonic() + 20
    while not any("enqueued-token limit" in m for m in events(job.id, "batch_waiting")):
        assert time.monotonic() < deadline, "no batch was ever refused for the token limit"
        sync.sync_all()
        db.session.expire_all()
    client(simulator).batches.cancel(blocker)
    job = run_until_done(job.id, timeout=60)
    release_tokens(simulator, blocker)
    assert job.status == JobStatus.COMPLETED and job.failed_requests == 0
    assert all(b.status == BatchStatus.COMPLETED for b in job.batches)
    assert_exactly_once(job, simulator)


def hold_tokens(simulator, text: str) -> str:
    """A batch of someone else's, in progress until cancelled, that holds ``text``'s tokens of the limit."""
    line = {
        "custom_id": "blocker",
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": chat_body(f"{text} [[sim:hold]]"),
    }
    sdk = client(simulator)
    upload = sdk.files.create(
        file=("blocker.jsonl", io.BytesIO(json.dumps(line).encode()), "application/jsonl"), purpose="batch"
    )
    batch = sdk.batches.create(input_file_id=upload.id, endpoint="/v1/chat/completions", completion_window="24h")
    deadline = time.monotonic() + 10
    while sdk.batches.retrieve(batch.id).status != "in_progress":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    return batch.id


def release_tokens(simulator, batch_id: str) -> None:
    """Delete the blocking batch's files, once it has ended."""
    sdk = client(simulator)
    deadline = time.monotonic() + 10
    while (batch := sdk.batches.retrieve(batch_id)).status != "cancelled":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    for file_id in filter(None, (batch.input_file_id, batch.output_file_id, batch.error_file_id)):
        sdk.files.delete(file_id)


def test_provider_files_of_a_cancelled_unsent_batch_are_deleted(app_ctx, simulator, config):
    config(PROVIDER_BACKOFF_SECONDS=0.01)
    add_fault(simulator, reset=True, after=True, method="POST", path="/files", count=1)
    job = new_job(count=3, submit=True)
    sync.sync_all()  # the upload arrives, its answer does not
    db.session.expire_all()
    assert job.batches[0].input_file_id is None and len(provider_files(simulator)) == 1
    jobs.cancel_job(job)
    job = run_until_done(job.id)
    assert job.status == JobStatus.CANCELLED and (job.cancelled_requests, job.failed_requests) == (3, 0)
    assert provider_files(simulator) == []  # found by its name and deleted
