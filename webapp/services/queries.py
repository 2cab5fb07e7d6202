"""Read models for pages and the API: job lists, key-paged requests and responses, events, statistics, phase."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Generic, TypeVar

from sqlalchemy import Select, func, select, tuple_

from webapp.extensions import db
from webapp.models import (
    PROVIDER_RUNNING,
    PROVIDER_TERMINAL,
    BatchJob,
    BatchRequest,
    BatchResponse,
    BatchStatus,
    EventKind,
    JobEvent,
    JobStatus,
    ProviderBatch,
    RequestStatus,
    request_rows,
    request_states,
)
from webapp.words import count_of

T = TypeVar("T")
MAX_LIMIT = 500
MAX_PAGE = 100_000  # of a job list: a larger page's offset would not fit the database's integers
MAX_SEARCH = 200  # characters of a job name search (SQLite refuses LIKE patterns past 50,000 bytes)


@dataclass
class KeyPage(Generic[T]):
    """One page of a key-paged list; ``next_after`` is the cursor for the next page (None at the end)."""

    items: list[T]
    next_after: int | None


def jobs_query(*, status: str | None = None, search: str | None = None, owner_id: int | None = None) -> Select:
    """Jobs, newest first, filtered by status, a name search and (with accounts) owner."""
    stmt = (
        select(BatchJob).where(BatchJob.deleted_at.is_(None)).order_by(BatchJob.created_at.desc(), BatchJob.id.desc())
    )
    if status:
        stmt = stmt.where(BatchJob.status == status)
    if search:
        stmt = stmt.where(BatchJob.name.ilike(f"%{_escape_like(search.strip())}%", escape="\\"))
    if owner_id is not None:
        stmt = stmt.where(BatchJob.owner_id == owner_id)
    return stmt


def list_jobs(*, page: int = 1, per_page: int = 20, **filters):
    """A Flask-SQLAlchemy Pagination of jobs."""
    return db.paginate(jobs_query(**filters), page=page, per_page=per_page, max_per_page=100, error_out=False)


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _keyed(stmt: Select, key, after: int | None, limit: int) -> KeyPage:
    limit = _clamped(limit)
    if after is not None:
        stmt = stmt.where(key > after)
    rows, next_after = _one_page(
        db.session.execute(stmt.order_by(key).limit(limit + 1)).all(), limit, lambda row: row[0].id
    )
    return KeyPage([row if len(row) > 1 else row[0] for row in rows], next_after)


def _clamped(limit: int) -> int:
    return max(1, min(limit, MAX_LIMIT))


def _one_page(rows: Sequence, limit: int, key_of) -> tuple[Sequence, int | None]:
    """A page of ``rows`` (fetched with one extra) and the cursor to the next, None when this is the last."""
    return rows[:limit], key_of(rows[limit - 1]) if len(rows) > limit else None


def list_requests(
    job_id: int, *, status: str | None = None, search: str | None = None, after: int | None = None, limit: int = 50
) -> KeyPage:
    """The job's requests with their responses (tuples), by id, filtered by status and custom_id prefix.

    The page's ids come first, from the index that holds them in order: the states' ``(job_id, status,
    request_id)`` with a status, else the requests' ``(job_id, id)``. The range starts at a row comparison on
    that index's columns, not at ``... AND id > after``: with plain conditions PostgreSQL needs only ``id``
    order, which the primary key gives too, and it takes that path expecting a status's rows to be spread over
    the table; they sit together at the job's end, and it filtered a million rows (300 ms) to fill a page.
    """
    limit = _clamped(limit)
    state, row = request_states.c, request_rows.c
    key = (state.job_id, state.status, state.request_id) if status else (row.job_id, row.id)
    start = (job_id, status, after or 0) if status else (job_id, after or 0)
    # The end of the range as equalities with a status: PostgreSQL 15 stops a scan at a row comparison's first
    # column only, so "(job_id, status) <= (job, 'failed')" read on through the job's later statuses (a job of
    # 1,000,000 pending requests: 100 ms for an empty page of failures, 0.1 ms with the equalities).
    end = [state.job_id == job_id, state.status == status] if status else [row.job_id <= job_id]
    stmt = select(key[-1]).where(tuple_(*key) > tuple_(*start), *end)
    if search:
        if status:
            stmt = stmt.join(request_rows, row.id == state.request_id)
        stmt = stmt.where(row.custom_id.like(f"{_escape_like(search.strip())}%", escape="\\"))
    ids, next_after = _one_page(list(db.session.scalars(stmt.order_by(*key).limit(limit + 1))), limit, int)
    requests = db.session.scalars(select(BatchRequest).where(BatchRequest.id.in_(ids)).order_by(BatchRequest.id))
    responses = (
        {
            response.request_id: response
            for response in db.session.scalars(select(BatchResponse).where(BatchResponse.request_id.in_(ids)))
        }
        if ids
        else {}
    )
    return KeyPage([(request, responses.get(request.id)) for request in requests], next_after)


def list_responses(job_id: int, *, succeeded: bool | None = None, after: int | None = None, limit: int = 50) -> KeyPage:
    """The job's responses with their requests' custom_id, by id, filtered by success."""
    stmt = (
        select(BatchResponse, BatchRequest.custom_id)
        .join(BatchRequest, BatchRequest.id == BatchResponse.request_id)
        .where(BatchResponse.job_id == job_id)
    )
    if succeeded is not None:
        stmt = stmt.where(BatchResponse.succeeded.is_(succeeded))
    return _keyed(stmt, BatchResponse.id, after, limit)


def get_request(job_id: int, request_id: int) -> tuple[BatchRequest, BatchResponse | None] | None:
    return db.session.execute(
        select(BatchRequest, BatchResponse)
        .outerjoin(BatchResponse, BatchResponse.request_id == BatchRequest.id)
        .where(BatchRequest.job_id == job_id, BatchRequest.id == request_id)
    ).first()


def list_events(job_id: int, *, after: int | None = None, limit: int = 200) -> KeyPage:
    return _keyed(select(JobEvent).where(JobEvent.job_id == job_id), JobEvent.id, after, limit)


def overview(*, owner_id: int | None = None, days: int = 30) -> dict[str, Any]:
    """Processing statistics: jobs by status, requests and success rate, tokens and cost by model and day."""
    scope = [BatchJob.deleted_at.is_(None)] + ([] if owner_id is None else [BatchJob.owner_id == owner_id])
    by_status = dict(
        db.session.execute(select(BatchJob.status, func.count()).where(*scope).group_by(BatchJob.status)).all()
    )
    totals = db.session.execute(
        select(
            func.coalesce(func.sum(BatchJob.total_requests), 0),
            func.coalesce(func.sum(BatchJob.succeeded_requests), 0),
            func.coalesce(func.sum(BatchJob.failed_requests), 0),
            func.coalesce(func.sum(BatchJob.cancelled_requests), 0),
        ).where(*scope)
    ).one()
    finished = int(totals[1]) + int(totals[2])
    return {
        "jobs_by_status": {status.value: by_status.get(status.value, 0) for status in JobStatus},
        "jobs": sum(by_status.values()),
        "requests": {
            "total": int(totals[0]),
            "succeeded": int(totals[1]),
            "failed": int(totals[2]),
            "cancelled": int(totals[3]),
            "success_rate": round(int(totals[1]) / finished, 4) if finished else None,
        },
        "by_model": _usage_by(BatchJob.model, scope),
        "by_day": _usage_by(func.date(BatchJob.created_at), scope, since=days),
    }


def _usage_by(key, scope: list, since: int | None = None) -> list[dict]:
    conditions = list(scope)
    if since is not None:
        conditions.append(BatchJob.created_at >= datetime.now(UTC) - timedelta(days=since))
    rows = db.session.execute(
        select(
            key,
            func.count(),
            func.coalesce(func.sum(BatchJob.total_requests), 0),
            func.coalesce(func.sum(BatchJob.prompt_tokens), 0),
            func.coalesce(func.sum(BatchJob.completion_tokens), 0),
            func.coalesce(func.sum(BatchJob.actual_cost), 0),
        )
        .where(*conditions)
        .group_by(key)
        .order_by(key)
    ).all()
    return [
        {
            "key": str(k),
            "jobs": jobs,
            "requests": int(requests),
            "prompt_tokens": int(prompt),
            "completion_tokens": int(completion),
            "cost": Decimal(str(cost)).quantize(Decimal("0.000001")),
        }
        for k, jobs, requests, prompt, completion, cost in rows
    ]


def job_phase(job: BatchJob) -> str:
    """What the job is doing now, in words a person understands."""
    if job.status == JobStatus.DRAFT:
        return "Draft: add requests, then submit" if not job.total_requests else "Draft: ready to submit"
    if job.is_terminal:
        return {
            JobStatus.COMPLETED: "Completed",
            JobStatus.COMPLETED_WITH_ERRORS: "Completed with errors",
            JobStatus.FAILED: "Failed",
            JobStatus.CANCELLED: "Cancelled",
        }[JobStatus(job.status)]
    if job.status == JobStatus.CANCELLING:
        return "Cancelling: waiting for the provider to stop the running batches"
    statuses = {b.status for b in job.batches if b.ingested_at is None}
    retrying = bool(job.pending_requests) and _retried_pending(job.id)
    steps = [
        (statuses & set(PROVIDER_TERMINAL), "Downloading results"),
        ({BatchStatus.FINALIZING} & statuses, "Finalizing: the provider is preparing the results"),
        ({BatchStatus.IN_PROGRESS} & statuses, "Running"),
        ({BatchStatus.VALIDATING} & statuses, "Validating: the provider is checking the input file"),
        ({BatchStatus.WAITING} & statuses, "Waiting for capacity: the model's enqueued-token limit is full"),
        ({BatchStatus.PENDING, BatchStatus.UPLOADED} & statuses, "Uploading requests to the provider"),
    ]
    phase = next((text for match, text in steps if match), "Preparing provider batches")
    if retrying:
        phase += f"; sending {count_of(job.pending_requests, 'request')} again that failed for a passing reason"
    return phase


def _retried_pending(job_id: int) -> bool:
    state = request_states.c
    return (
        db.session.scalar(
            select(state.request_id)
            .where(state.job_id == job_id, state.status == RequestStatus.PENDING, state.retry_count > 0)
            .limit(1)
        )
        is not None
    )


def error_counts(job_id: int, limit: int = 10) -> list[tuple[str | None, int]]:
    """The job's failed requests by error code, most frequent first: ``[("server_error", 11), ...]``."""
    state = request_states.c
    return [
        (code, count)
        for code, count in db.session.execute(
            select(state.error_code, func.count())
            .where(state.job_id == job_id, state.status == RequestStatus.FAILED)
            .group_by(state.error_code)
            .order_by(func.count().desc(), state.error_code)
            .limit(limit)
        ).all()
    ]


ENDINGS = (EventKind.COMPLETED, EventKind.FAILED, EventKind.CANCELLED)


def failure_breakdown(job: BatchJob) -> list[tuple[str | None, int]]:
    """Why the ended job's requests failed, as ``error_counts`` found when it ended (kept with the event that
    ended it: a job of a million failures is not counted again on every view); counted now for a job that
    ended before the events kept it."""
    data = db.session.scalar(
        select(JobEvent.data)
        .where(JobEvent.job_id == job.id, JobEvent.kind.in_(ENDINGS))
        .order_by(JobEvent.id.desc())
        .limit(1)
    )
    if isinstance(data, dict) and isinstance(data.get("errors"), list):
        return [(code, count) for code, count in data["errors"]]
    return error_counts(job.id)


def answered_at_provider(job_ids: Iterable[int]) -> dict[int, int]:
    """Per job, the requests of its open provider batches that the provider reports done (completed or failed)
    but whose results are not stored yet: they move the progress bar while batches run, before any ingest.

    A few rows per job (its batches, by the ``(job_id, status)`` index), so the polled pages stay cheap.
    """
    ids = list(job_ids)
    if not ids:
        return {}
    rows = db.session.execute(
        select(ProviderBatch.job_id, func.sum(ProviderBatch.counts_completed + ProviderBatch.counts_failed))
        .where(
            ProviderBatch.job_id.in_(ids),
            ProviderBatch.status.in_(PROVIDER_RUNNING | PROVIDER_TERMINAL),
            ProviderBatch.ingested_at.is_(None),
        )
        .group_by(ProviderBatch.job_id)
    ).all()
    return {job_id: int(done or 0) for job_id, done in rows}


@dataclass(frozen=True)
class Timing:
    """When a running job should end: ``expected`` at the pace its batches have kept so far (None until every
    batch at the provider has answered some requests and none waits to be sent), and the ``deadline``, when the
    provider's 24-hour window closes on its latest batch (what it has not run by then is sent again)."""

    expected: datetime | None
    deadline: datetime | None

    def time_left(self) -> timedelta | None:
        """Until the deadline (never below zero); None without one."""
        return max(self.deadline - datetime.now(UTC), timedelta(0)) if self.deadline else None


def job_timing(job: BatchJob, now: datetime | None = None) -> Timing:
    """The expected end and the deadline of a job's open batches (both None when none is at the provider)."""
    now = now or datetime.now(UTC)
    open_batches = [b for b in job.batches if b.ingested_at is None]
    at_provider = [b for b in open_batches if b.status in PROVIDER_RUNNING | PROVIDER_TERMINAL]
    deadline = max((b.expires_at for b in at_provider if b.expires_at), default=None)
    ends = [_batch_end(b, now) for b in at_provider]
    unsent = job.pending_requests or len(at_provider) < len(open_batches)
    if unsent or not ends or None in ends:
        return Timing(None, deadline)
    expected = max(end for end in ends if end is not None)
    return Timing(min(expected, deadline) if deadline else expected, deadline)


def _batch_end(batch: ProviderBatch, now: datetime) -> datetime | None:
    """When the batch should be done at the pace it has kept since it started running (None before any answer)."""
    done = batch.counts_completed + batch.counts_failed
    started = batch.in_progress_at or batch.provider_created_at
    if batch.status not in (BatchStatus.VALIDATING, BatchStatus.IN_PROGRESS):
        return now  # finalizing or ended: its results come with the next check
    if not done or started is None or not batch.counts_total:
        return None
    return now + (now - started) * (batch.counts_total - done) / done


def job_recipe(job: BatchJob) -> dict[str, Any]:
    """What the job asks: model and settings, and a file job's prompts (CSV: template, system prompt, schema)."""
    source = job.source or {}
    prompts = "template" in source  # a file turned into requests by a template (a CSV); a JSONL has its own
    return {
        "model": job.model,
        "endpoint": job.endpoint,
        "max_tokens": job.max_tokens,
        "temperature": job.temperature,
        "max_retries": job.max_retries,
        "source_format": source.get("format") or "api",
        "filename": source.get("filename"),
        "sheet": source.get("sheet"),
        "prompt_template": source.get("template") if prompts else None,
        "system_prompt": (source.get("system_prompt") or None) if prompts else None,
        "id_column": (source.get("id_column") or None) if prompts else None,
        "json_schema": _schema_in_order(source) if prompts else None,
    }


def _schema_in_order(source: dict) -> dict | None:
    """The stored schema with its properties in the user's order (JSONB keeps objects' keys in its own)."""
    schema = source.get("json_schema")
    properties = schema.get("properties") if isinstance(schema, dict) else None
    if not isinstance(schema, dict) or not isinstance(properties, dict):
        return schema
    order = [name for name in source.get("output_fields") or [] if name in properties]
    ordered = {name: properties[name] for name in order} | properties
    return {**schema, "properties": ordered}
