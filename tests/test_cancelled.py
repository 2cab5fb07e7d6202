"""Cancelled is not failed: requests a cancel stopped have their own state and counter, and are sent again apart."""

from __future__ import annotations

import csv
import io
import json

import pytest
from sqlalchemy import select

from tests.factories import new_job, run_until_done, set_states
from webapp.errors import Conflict
from webapp.extensions import db
from webapp.models import BatchRequest, JobStatus, RequestStatus
from webapp.services import exports, jobs
from webapp.services.ledger import recount


def statuses(job_id: int) -> dict[str, tuple[str, int]]:
    rows = db.session.execute(
        select(BatchRequest.custom_id, BatchRequest.status, BatchRequest.retry_count).where(
            BatchRequest.job_id == job_id
        )
    ).all()
    return {custom_id: (status, tries) for custom_id, status, tries in rows}


def cancelled_job(count: int = 3):
    """A job cancelled before any of its requests was sent."""
    job = new_job(count=count, submit=True)
    jobs.cancel_job(job)
    return run_until_done(job.id)


def test_a_cancel_counts_what_it_stopped_as_cancelled_not_failed(app_ctx, simulator):
    job = cancelled_job()
    assert job.status == JobStatus.CANCELLED
    assert (job.cancelled_requests, job.failed_requests, job.succeeded_requests) == (3, 0, 0)
    assert job.last_error is None  # a cancel is no error
    assert set(statuses(job.id).values()) == {(RequestStatus.CANCELLED, 0)}
    assert job.events[-1].message == "Job cancelled: 3 cancelled"


def test_sending_the_cancelled_requests_again_runs_them_without_using_a_try(app_ctx, simulator):
    job = cancelled_job()
    assert jobs.resend_cancelled(job, actor="ana@example.com") == 3
    assert job.status == JobStatus.QUEUED and (job.pending_requests, job.cancelled_requests) == (3, 0)
    assert set(statuses(job.id).values()) == {(RequestStatus.PENDING, 0)}
    assert job.events[-1].kind == "resent" and job.events[-1].message == "Sending 3 cancelled requests again"

    job = run_until_done(job.id)
    assert job.status == JobStatus.COMPLETED and job.succeeded_requests == 3


def test_retry_failed_leaves_the_cancelled_alone_and_the_job_stays_cancelled(app_ctx, simulator):
    job = run_until_done(new_job(["fine", "broken [[sim:status=400]]", "also fine"], submit=True).id)
    set_states(job_id=job.id, custom_ids=("req-2",), status=RequestStatus.CANCELLED, error_code="cancelled")
    recount(job)
    job.status = JobStatus.CANCELLED
    db.session.commit()

    assert jobs.retry_failed(job) == 1
    assert statuses(job.id)["req-1"] == (RequestStatus.PENDING, 1)  # a retry by hand is one more try
    assert statuses(job.id)["req-2"] == (RequestStatus.CANCELLED, 0)
    job = run_until_done(job.id)
    assert job.status == JobStatus.CANCELLED  # what the cancel stopped is still not run
    assert (job.succeeded_requests, job.failed_requests, job.cancelled_requests) == (1, 1, 1)


@pytest.mark.parametrize(
    "send, message",
    [
        (jobs.retry_failed, "the job has no failed requests to send again"),
        (jobs.resend_cancelled, "the job has no cancelled requests to send again"),
    ],
)
def test_each_action_refuses_when_it_has_nothing_to_send(app_ctx, simulator, send, message):
    job = run_until_done(new_job(count=2, submit=True).id)
    with pytest.raises(Conflict, match=message):
        send(job)


def test_only_a_finished_job_has_requests_to_send_again(app_ctx):
    job = new_job(count=2, submit=True)
    with pytest.raises(Conflict, match="only a finished job's requests can be sent again"):
        jobs.resend_cancelled(job)


def test_downloads_say_cancelled(app_ctx, simulator):
    job = cancelled_job(count=2)
    header, *rows = list(csv.reader(io.StringIO(b"".join(exports.csv_chunks(job)).decode())))
    status, error = header.index("status"), header.index("error")
    assert [row[status] for row in rows] == ["cancelled", "cancelled"]
    assert rows[0][error] == "cancelled: the job was cancelled before this request was sent"
    lines = [json.loads(line) for line in b"".join(exports.jsonl_lines(job)).splitlines()]
    assert [line["error"]["code"] for line in lines] == ["cancelled", "cancelled"]
    assert b"".join(exports.jsonl_lines(job, failed_only=True)) == b""  # the failed rows: none
