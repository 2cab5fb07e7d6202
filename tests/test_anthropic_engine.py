"""The engine on Anthropic's API, through the official SDK against the simulator's Anthropic dialect over HTTP:
the same exports as on OpenAI's, and exactly once when the provider misbehaves or a worker dies.

A batch sent inline carries no metadata, so what these tests count at the provider is read from the labels the
engine sends (``abp-<install>-<local batch>-...``) in each provider batch's request ids.
"""

from __future__ import annotations

import csv
import io
import json
import time
from collections import Counter

import anthropic
import pytest
from sqlalchemy import select

from simulator.store import Store
from tests.factories import chat_body, run_until_done
from tests.simulated import add_fault, assert_counters_and_cost_exact, assert_one_response_per_request
from tests.test_crash_safety import Killed, die_once, expire_leases
from tests.test_uploads import csv_file
from webapp.extensions import db
from webapp.intake import imports
from webapp.intake.mapping import Mapping
from webapp.models import BatchJob, JobEvent, JobStatus, RequestStatus
from webapp.providers.anthropic_provider import AnthropicProvider, wire_label
from webapp.services import exports, ingest, jobs, reconcile, sync

PROVIDER = "simulator-anthropic"
MODEL = "claude-haiku-4-5"
SCHEMA = {
    "type": "object",
    "properties": {"sentiment": {"type": "string", "enum": ["pos", "neg"]}, "score": {"type": "integer"}},
    "required": ["sentiment", "score"],
    "additionalProperties": False,
}
LOST_ANSWERS = {
    "500 after the work": {"status": 500, "after": True},
    "connection reset after the work": {"reset": True, "after": True},
}


def claude(simulator) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=f"{simulator.url}/simulator/anthropic", api_key="sim", max_retries=0)


def new_claude_job(texts: list[str] | None = None, count: int = 5, submit: bool = True, **settings) -> BatchJob:
    texts = texts if texts is not None else [f"Classify review number {i}: great product" for i in range(count)]
    fields = {"name": "claude job", "provider": PROVIDER, "model": MODEL, **settings}
    job = jobs.create_job(fields, allow_unknown_model=True)
    imports.add_requests(job, [{"custom_id": f"req {i}", "body": chat_body(t, job.model)} for i, t in enumerate(texts)])
    if submit:
        jobs.submit_job(job)
    return job


def sent_batches(simulator) -> dict[str, str]:
    """Every batch the simulator's Anthropic dialect holds, by id: the label its requests carry."""
    store = Store(simulator.app.config["SIMULATOR_DIR"])
    labels = {}
    for record in store.list_batches("anthropic"):
        with open(store.batch_input_path(record["id"]), encoding="utf-8") as lines:
            labels[record["id"]] = wire_label(json.loads(next(lines))["custom_id"])
    return labels


def assert_exactly_once(job: BatchJob, simulator) -> None:
    """One response per request, counters and cost exact, and no local batch sent twice to the provider (counted
    by the label its requests carry): each provider batch is one local batch's, and the one it recorded."""
    assert_one_response_per_request(job)
    assert_counters_and_cost_exact(job)
    labels = sent_batches(simulator)
    per_local = Counter(label.split("-")[2] for label in labels.values())
    assert all(n == 1 for n in per_local.values()), f"a local batch was sent twice: {per_local}"
    assert {b.provider_batch_id for b in job.batches if b.provider_batch_id} <= set(labels)
    for batch in job.batches:
        if batch.provider_batch_id:
            assert labels[batch.provider_batch_id] == batch.input_file_name


def events(job_id: int, kind: str) -> list[str]:
    return list(db.session.scalars(select(JobEvent.message).where(JobEvent.job_id == job_id, JobEvent.kind == kind)))


@pytest.fixture
def kept(config):
    """Ended batches stay at the provider (they are deleted with their results otherwise), to be counted."""
    config(DELETE_PROVIDER_FILES=False, PROVIDER_BACKOFF_SECONDS=0.01)


# --- the same job on either API ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("provider", "model"),
    [
        ("simulator", "gpt-4o-mini"),
        (PROVIDER, "claude-sonnet-5-5"),  # structured output
        (PROVIDER, "claude-3-5-haiku-20241022"),  # before structured output: a forced tool
    ],
)
def test_a_csv_job_with_a_schema_exports_the_same_columns_filled_on_either_api(
    app_ctx, simulator, tmp_path, provider, model
):
    job = jobs.create_job({"name": "reviews", "provider": provider, "model": model}, allow_unknown_model=True)
    mapping = Mapping("Classify: {{ Text }}", system_prompt="You label reviews.", json_schema=SCHEMA)
    imports.import_table(job, csv_file(tmp_path), mapping, filename="reviews.csv")
    jobs.submit_job(job)
    job = run_until_done(job.id)
    assert job.status == JobStatus.COMPLETED and job.succeeded_requests == 3

    rows = list(csv.reader(io.StringIO(b"".join(exports.csv_chunks(job)).decode())))
    assert rows[0] == [
        *("Id", "Text", "Stars", "custom_id", "status", "output_text", "output.sentiment", "output.score"),
        *("error", "prompt_tokens", "completion_tokens", "total_tokens"),
    ]
    for row in rows[1:]:
        assert row[4] == "succeeded" and row[6] in ("pos", "neg") and row[7].isdigit()
        assert json.loads(row[5]) == {"sentiment": row[6], "score": int(row[7])}
        assert int(row[9]) > 0 and int(row[10]) > 0 and row[8] == ""
    lines = [json.loads(line) for line in b"".join(exports.jsonl_lines(job)).splitlines()]
    assert all(line["response"]["body"]["object"] == "chat.completion" for line in lines)
    assert job.prompt_tokens > 0 and job.completion_tokens > 0
    if model != "claude-3-5-haiku-20241022":  # not in the price table
        assert job.actual_cost > 0


def test_a_job_runs_and_leaves_nothing_at_the_provider(app_ctx, simulator, config):
    config(BATCH_MAX_REQUESTS=3)
    job = run_until_done(new_claude_job(count=7).id)
    assert job.status == JobStatus.COMPLETED and job.succeeded_requests == 7 and len(job.batches) == 3
    assert_one_response_per_request(job)
    assert_counters_and_cost_exact(job)
    assert sent_batches(simulator) == {}  # each batch deleted with its results once they were stored
    assert all(b.files_deleted_at for b in job.batches)


def test_failed_requests_are_retried_when_passing_and_failed_when_not(app_ctx, simulator, kept):
    texts = ["fine", "busy [[sim:status=529]]", "limited [[sim:status=429]]", "bad [[sim:status=400]]"]
    job = run_until_done(new_claude_job(texts, max_retries=1).id)
    assert job.status == JobStatus.COMPLETED_WITH_ERRORS
    states = {r.custom_id: (r.status, r.error_code, r.retry_count) for r in job_requests(job)}
    # The markers fail the request every time: the passing ones were sent once more, then given up.
    assert states["req 0"] == (RequestStatus.SUCCEEDED, None, 0)
    assert states["req 1"] == (RequestStatus.FAILED, "overloaded_error", 1)
    assert states["req 2"] == (RequestStatus.FAILED, "rate_limit_error", 1)
    assert states["req 3"] == (RequestStatus.FAILED, "invalid_request_error", 0)
    assert_counters_and_cost_exact(job)


def job_requests(job: BatchJob):
    from webapp.models import BatchRequest

    return db.session.scalars(select(BatchRequest).where(BatchRequest.job_id == job.id)).all()


# --- lost answers, refusals, results not there yet ---------------------------------------------------------------


@pytest.mark.parametrize("lost", LOST_ANSWERS.values(), ids=LOST_ANSWERS.keys())
def test_a_lost_answer_to_create_makes_no_second_batch(app_ctx, simulator, config, kept, lost):
    config(BATCH_MAX_REQUESTS=3)  # batches of 3, 3 and 1: two of one size, told apart by their labels
    add_fault(simulator, method="POST", path="/messages/batches", count=2, **lost)
    job = run_until_done(new_claude_job(count=7).id)
    assert job.status == JobStatus.COMPLETED and job.succeeded_requests == 7
    assert_exactly_once(job, simulator)
    assert len(sent_batches(simulator)) == 3
    assert sum("found again" in m for m in events(job.id, "batch_created")) == 2


@pytest.mark.parametrize("status", [429, 529, 503])
def test_a_refused_create_is_sent_again_after_a_back_off(app_ctx, simulator, kept, status):
    add_fault(simulator, status=status, method="POST", path="/messages/batches", count=3)
    job = run_until_done(new_claude_job(count=4).id)
    assert job.status == JobStatus.COMPLETED and job.succeeded_requests == 4
    assert events(job.id, "provider_error")  # the engine backed off itself (the create is never resent by the SDK)
    assert_exactly_once(job, simulator)


def test_reads_that_fail_for_a_while_are_tried_again(app_ctx, simulator, kept):
    add_fault(simulator, status=529, method="GET", path_prefix="/messages/batches", count=4)
    add_fault(simulator, status=404, method="GET", path="/messages/batches/*/results", count=2)
    job = run_until_done(new_claude_job(count=4).id)
    assert job.status == JobStatus.COMPLETED and [b.attempt for b in job.batches] == [0]
    assert_exactly_once(job, simulator)


def test_someone_elses_batch_of_the_same_size_is_never_taken_for_ours(app_ctx, simulator, config, kept):
    """The create fails before the work; meanwhile another batch of the same size runs: the engine waits for it to
    end rather than send again, then sees by its results that it is not ours, and sends its own."""
    simulator.app.config["SIMULATOR_IN_PROGRESS_SECONDS"] = 30
    add_fault(simulator, status=500, method="POST", path="/messages/batches", count=1)  # refused: nothing made
    job = new_claude_job(count=2)
    sync.sync_all()  # the send fails with a 500: was it made?
    other = claude(simulator).messages.batches.create(
        requests=[
            {
                "custom_id": f"theirs-{i}",
                "params": {"model": MODEL, "max_tokens": 9, "messages": [{"role": "user", "content": "x"}]},
            }
            for i in range(2)
        ]
    )
    config(PROVIDER_BACKOFF_SECONDS=0)
    for _ in range(3):
        sync.sync_all()
    db.session.expire_all()
    (batch,) = job.batches
    assert batch.provider_batch_id is None and batch.status == "uploaded"  # waiting, nothing sent again
    assert list(sent_batches(simulator)) == [other.id]
    assert any("recognised by its results" in m for m in events(job.id, "batch_waiting"))

    claude(simulator).messages.batches.cancel(other.id)  # theirs ends
    simulator.app.config["SIMULATOR_IN_PROGRESS_SECONDS"] = 0.2
    job = run_until_done(job.id)
    assert job.status == JobStatus.COMPLETED and job.succeeded_requests == 2
    assert job.batches[0].provider_batch_id != other.id
    assert other.id in sent_batches(simulator)  # left alone: never taken for ours, nor cancelled by us


# --- a worker killed at any step ---------------------------------------------------------------------------------


def crash_then_resume(job_id: int) -> BatchJob:
    with pytest.raises(Killed):
        for _ in range(50):
            sync.sync_all()
    expire_leases()
    return run_until_done(job_id)


def test_killed_before_the_send(app_ctx, simulator, kept, monkeypatch):
    job = new_claude_job(count=4)
    die_once(monkeypatch, AnthropicProvider, "send_batch")
    job = crash_then_resume(job.id)
    assert job.status == JobStatus.COMPLETED and job.succeeded_requests == 4
    assert_exactly_once(job, simulator)
    assert len(sent_batches(simulator)) == 1


def test_killed_after_the_send_before_recording_it(app_ctx, simulator, kept, monkeypatch):
    job = new_claude_job(count=4)
    die_once(monkeypatch, sync, "_record_created")
    job = crash_then_resume(job.id)
    assert job.status == JobStatus.COMPLETED and job.succeeded_requests == 4
    assert_exactly_once(job, simulator)
    assert any("found again after a restart" in m for m in events(job.id, "batch_created"))


def test_killed_during_ingestion(app_ctx, simulator, kept, monkeypatch):
    job = new_claude_job(count=6)
    die_once(monkeypatch, ingest, "_apply")  # responses written, requests not yet settled
    job = crash_then_resume(job.id)
    assert job.status == JobStatus.COMPLETED and job.succeeded_requests == 6
    assert_exactly_once(job, simulator)


# --- expiry and cancels ------------------------------------------------------------------------------------------


def test_an_expired_batch_keeps_what_ran_and_sends_the_rest_again(app_ctx, simulator, kept):
    # The marker is in the first request, which runs: the follow-up batch of the expired ones does not expire.
    texts = ["first [[sim:expire]]", *(f"q{i}" for i in range(5))]
    job = run_until_done(new_claude_job(texts, max_retries=1).id)
    assert job.status == JobStatus.COMPLETED and job.succeeded_requests == 6
    first, follow_up = sorted(job.batches, key=lambda b: b.attempt)
    assert (first.status, first.counts_completed, first.counts_failed) == ("expired", 3, 3)
    assert (follow_up.attempt, follow_up.request_count) == (1, 3)
    assert_exactly_once(job, simulator)


def test_a_late_cancel_keeps_every_result(app_ctx, simulator, kept):
    job = new_claude_job(["a [[sim:hold]]", "b", "c"])
    send(job.id)
    time.sleep(0.3)  # every request has run; the held batch has not ended
    jobs.cancel_job(job)
    job = run_until_done(job.id)
    assert job.status == JobStatus.CANCELLED
    assert (job.succeeded_requests, job.cancelled_requests, job.failed_requests) == (3, 0, 0)
    assert_exactly_once(job, simulator)


def test_a_cancel_in_time_cancels_what_had_not_run(app_ctx, simulator, kept):
    simulator.app.config["SIMULATOR_IN_PROGRESS_SECONDS"] = 30
    job = new_claude_job(count=4)
    send(job.id)
    jobs.cancel_job(job)
    job = run_until_done(job.id)
    assert job.status == JobStatus.CANCELLED
    assert (job.succeeded_requests, job.cancelled_requests, job.failed_requests) == (0, 4, 0)
    assert {r.error_code for r in job_requests(job)} == {"cancelled"}
    assert_exactly_once(job, simulator)


def test_cancelling_a_job_whose_batch_just_ended_keeps_every_result(app_ctx, simulator, kept):
    job = new_claude_job(count=5)
    send(job.id)
    deadline = time.monotonic() + 10
    while claude(simulator).messages.batches.retrieve(job.batches[0].provider_batch_id).processing_status != "ended":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    jobs.cancel_job(job)  # the provider refuses to cancel an ended batch: it is read instead
    job = run_until_done(job.id)
    assert job.status == JobStatus.CANCELLED and (job.succeeded_requests, job.failed_requests) == (5, 0)
    assert_exactly_once(job, simulator)


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


def test_a_send_label_fits_anthropics_custom_id_and_says_when(app_ctx):
    job = new_claude_job(count=1, submit=False)
    from webapp.models import ProviderBatch

    batch = ProviderBatch(id=2_000_000_000, job_id=job.id, model=MODEL, endpoint=job.endpoint)
    label = reconcile.send_label(batch)
    assert len(f"{label}-99999") <= 64 and all(c.isalnum() or c in "-_" for c in label)
    assert abs((reconcile.label_time(label) - reconcile.utcnow()).total_seconds()) < 2
