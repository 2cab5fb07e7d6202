"""The data model: defaults, aware UTC timestamps, JSON bodies, uniqueness and cascades."""

from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError, StatementError

from webapp.extensions import db
from webapp.models import (
    BatchJob,
    BatchRequest,
    BatchResponse,
    JobEvent,
    JobStatus,
    ProviderBatch,
    RequestStatus,
    request_rows,
    request_states,
)
from webapp.services import jobs


def make_job(**values) -> BatchJob:
    job = BatchJob(**{"name": "reviews", "provider": "simulator", "model": "gpt-4o-mini", **values})
    db.session.add(job)
    db.session.flush()
    return job


def test_job_defaults(app_ctx):
    job = make_job()
    assert job.status == JobStatus.DRAFT
    assert job.endpoint == "/v1/chat/completions"
    assert job.max_retries == 3
    assert (job.total_requests, job.succeeded_requests, job.failed_requests) == (0, 0, 0)
    assert job.meta == {}
    assert job.owner_id is None


def test_timestamps_are_aware_utc_after_reload(app_ctx):
    job = make_job(submitted_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC))
    db.session.commit()
    db.session.expire_all()
    loaded = db.session.get(BatchJob, job.id)
    assert loaded.created_at.tzinfo is not None
    assert loaded.submitted_at == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_naive_datetimes_are_refused(app_ctx):
    with pytest.raises(StatementError, match="naive datetime"):
        make_job(submitted_at=datetime(2026, 1, 1))
    db.session.rollback()


def test_each_row_gets_its_own_creation_time(app_ctx):
    first, second = make_job(), make_job()
    assert first.created_at <= second.created_at
    assert first.created_at is not second.created_at


def test_request_body_round_trips_as_json(app_ctx):
    job = make_job()
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "héllo ✓"}], "n": 1}
    db.session.add(BatchRequest(job_id=job.id, custom_id="a", body=body, source_line=3))
    db.session.commit()
    db.session.expire_all()
    request = db.session.scalars(select(BatchRequest)).one()
    assert request.body == body
    assert request.status == RequestStatus.PENDING


def test_custom_id_is_unique_per_job(app_ctx):
    job, other = make_job(), make_job()
    db.session.add_all(
        [
            BatchRequest(job_id=job.id, custom_id="same", body={}),
            BatchRequest(job_id=other.id, custom_id="same", body={}),
        ]
    )
    db.session.flush()
    db.session.add(BatchRequest(job_id=job.id, custom_id="same", body={}))
    with pytest.raises(IntegrityError):
        db.session.flush()
    db.session.rollback()


def test_one_response_per_request(app_ctx):
    job = make_job()
    request = BatchRequest(job_id=job.id, custom_id="r", body={})
    db.session.add(request)
    db.session.flush()
    db.session.add(BatchResponse(request_id=request.id, job_id=job.id, status_code=200))
    db.session.flush()
    db.session.add(BatchResponse(request_id=request.id, job_id=job.id, status_code=500))
    with pytest.raises(IntegrityError):
        db.session.flush()
    db.session.rollback()


def job_with_every_row() -> BatchJob:
    job = make_job()
    batch = ProviderBatch(job_id=job.id, model=job.model, endpoint=job.endpoint)
    db.session.add(batch)
    db.session.flush()
    request = BatchRequest(job_id=job.id, custom_id="r", body={}, provider_batch_id=batch.id)
    db.session.add_all([request, JobEvent(job_id=job.id, kind="created")])
    db.session.flush()
    db.session.add(BatchResponse(request_id=request.id, job_id=job.id))
    db.session.commit()
    return job


def test_deleting_a_job_removes_its_rows(app_ctx):
    job = job_with_every_row()
    jobs.delete_job(job)  # the job row stays, for its timeline
    tables = (request_rows, request_states, BatchResponse.__table__, ProviderBatch.__table__)
    for table in tables:  # the states have no foreign key to cascade along: they must go by the service
        assert db.session.execute(select(func.count()).select_from(table)).scalar_one() == 0, table.name


def test_an_object_request_is_written_as_its_two_rows(app_ctx):
    job = job_with_every_row()
    [(request_id, custom_id)] = db.session.execute(select(request_rows.c.id, request_rows.c.custom_id)).all()
    [(state_id, state_job, batch_id)] = db.session.execute(
        select(request_states.c.request_id, request_states.c.job_id, request_states.c.provider_batch_id)
    ).all()
    assert (custom_id, state_id, state_job) == ("r", request_id, job.id) and batch_id is not None


def test_progress_counts_finished_requests(app_ctx):
    job = make_job(total_requests=4, succeeded_requests=2, failed_requests=1)
    assert job.finished_requests == 3
    assert job.progress == 0.75
    assert make_job().progress == 0.0
