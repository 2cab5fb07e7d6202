"""Job use cases: create, update, submit, cancel, retry, delete (requests come in through ``webapp.intake``; the
ledger the use cases keep: ``ledger``)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, cast

from flask import current_app
from sqlalchemy import Table, delete, func, select, update

from webapp import bulk, queue
from webapp import jobs as job_functions
from webapp.errors import AppError, Conflict, NotFound, ValidationFailed
from webapp.extensions import db
from webapp.intake import requests as request_lines
from webapp.models import (
    ACTIVE_JOB_STATUSES,
    DEFAULT_ENDPOINT,
    ENDPOINTS,
    TERMINAL_JOB_STATUSES,
    BatchJob,
    BatchResponse,
    EventKind,
    JobStatus,
    ProviderBatch,
    RequestStatus,
    request_rows,
    request_states,
)
from webapp.models.job_settings import JOB_SETTINGS
from webapp.providers import ANTHROPIC, available_providers, dialect
from webapp.services import catalog
from webapp.services.ledger import record_event, recount
from webapp.services.pricing import price_table
from webapp.words import count_of

log = logging.getLogger(__name__)
SETTINGS = ("provider", "endpoint", "model", "max_tokens", "temperature", "max_retries")
DETAILS = ("name", "description", "meta")
UNKNOWN_MODEL = " (a model neither the price table nor the provider lists, confirmed)"


def get_job(job_id: int, *, owner_id: int | None = None) -> BatchJob:
    """The job; with ``owner_id``, only if that account owns it. Someone else's job does not exist (404)."""
    job = db.session.get(BatchJob, job_id)
    if job is None or job.deleted_at is not None or (owner_id is not None and job.owner_id != owner_id):
        raise NotFound(f"job {job_id} not found")
    return job


def create_job(
    data: dict[str, Any], *, actor: str = "system", owner_id: int | None = None, allow_unknown_model: bool = False
) -> BatchJob:
    """Create a draft job from its fields (name, model, ...); provider defaults to the configured one, the other
    settings to their own defaults. Raises ValidationFailed for a setting out of bounds, and for a model neither
    the price table nor the provider knows unless ``allow_unknown_model`` confirms it."""
    job = new_draft(data, actor=actor, owner_id=owner_id, allow_unknown_model=allow_unknown_model)
    db.session.commit()
    return job


def new_draft(
    data: dict[str, Any], *, actor: str = "system", owner_id: int | None = None, allow_unknown_model: bool = False
) -> BatchJob:
    """``create_job`` without the commit: for a use case that creates the job as one of its steps."""
    defaults = {name: setting.default for name, setting in JOB_SETTINGS.items()}
    values = {**defaults, "provider": current_app.config["DEFAULT_PROVIDER"], "endpoint": DEFAULT_ENDPOINT, **data}
    _check_settings(values)
    known = catalog.check_model(values["provider"], values["model"], confirmed=allow_unknown_model)
    job = BatchJob(**{k: v for k, v in values.items() if k in SETTINGS + DETAILS}, owner_id=owner_id)
    db.session.add(job)
    db.session.flush()
    message = f"Job created for {job.model} on {job.provider}{'' if known else UNKNOWN_MODEL}"
    record_event(job, EventKind.CREATED, message, actor=actor)
    return job


def update_job(
    job: BatchJob, data: dict[str, Any], *, actor: str = "system", allow_unknown_model: bool = False
) -> BatchJob:
    """Change name/description/metadata any time, settings only while the job is a draft without requests; the
    same checks as ``create_job`` (a new model or provider has its model checked again)."""
    changed = {k: v for k, v in data.items() if k in SETTINGS + DETAILS and getattr(job, k) != v}
    settings = [k for k in changed if k in SETTINGS]
    if settings and job.status != JobStatus.DRAFT:
        raise Conflict(f"settings ({', '.join(settings)}) can only change while the job is a draft")
    if {"endpoint", "model"} & set(settings) and job.total_requests:
        raise Conflict("endpoint and model cannot change once the job has requests")
    _check_settings({**{k: getattr(job, k) for k in SETTINGS}, **changed})
    known = True
    if {"model", "provider"} & set(changed):
        model, provider = changed.get("model", job.model), changed.get("provider", job.provider)
        known = catalog.check_model(provider, model, confirmed=allow_unknown_model)
    for key, value in changed.items():
        setattr(job, key, value)
    if changed:
        message = "Updated " + ", ".join(sorted(changed)) + ("" if known else UNKNOWN_MODEL)
        record_event(job, EventKind.UPDATED, message, actor=actor)
    db.session.commit()
    return job


def _check_settings(values: dict) -> None:
    """Every setting within its bounds (webapp/models/job_settings.py), whoever calls; raises ValidationFailed."""
    problems = [
        {"field": name, "message": problem}
        for name, setting in JOB_SETTINGS.items()
        if name in values and (problem := setting.problem(values[name]))
    ]
    if values["provider"] not in available_providers():
        problems.append({"field": "provider", "message": f"provider {values['provider']!r} is not available here"})
    if values["endpoint"] not in ENDPOINTS:
        problems.append({"field": "endpoint", "message": f"endpoint must be one of {', '.join(ENDPOINTS)}"})
    elif dialect(values["provider"]) == ANTHROPIC and values["endpoint"] != DEFAULT_ENDPOINT:
        message = f"Anthropic's API runs only {DEFAULT_ENDPOINT} requests (chat messages), not {values['endpoint']}"
        problems.append({"field": "endpoint", "message": message})
    if problems:
        raise ValidationFailed("invalid job settings: " + "; ".join(p["message"] for p in problems), details=problems)


def submit_job(job: BatchJob, *, actor: str = "system") -> BatchJob:
    """Send a draft job to the engine: it is split into provider batches by the worker."""
    require_draft(job, "submit")
    if not job.total_requests:
        raise Conflict("the job has no requests; add some before submitting")
    _check_running_limit(job)
    job.status = JobStatus.QUEUED
    job.submitted_at = datetime.now(UTC)
    job.estimated_cost = estimate_cost(job)
    cost = f", estimated cost ${job.estimated_cost:.4f}" if job.estimated_cost is not None else ""
    record_event(job, EventKind.SUBMITTED, f"Submitted {count_of(job.total_requests, 'request')}{cost}", actor=actor)
    db.session.commit()
    _kick(job)
    return job


def _check_running_limit(job: BatchJob) -> None:
    """Each account may have MAX_ACTIVE_JOBS_PER_USER jobs queued or running at once."""
    limit = current_app.config["MAX_ACTIVE_JOBS_PER_USER"]
    if job.owner_id is None or not limit:
        return
    active = (
        db.session.scalar(
            select(func.count())
            .select_from(BatchJob)
            .where(BatchJob.owner_id == job.owner_id, BatchJob.status.in_(ACTIVE_JOB_STATUSES))
        )
        or 0
    )
    if active >= limit:
        raise AppError(
            f"you already have {count_of(active, 'running job')}, the most allowed at once; wait for one to finish",
            status=429,
            code="too_many_running_jobs",
        )


def cancel_job(job: BatchJob, *, actor: str = "system") -> BatchJob:
    """Ask the engine to cancel a queued or running job; no new batch is created for it afterwards."""
    if job.status not in (JobStatus.QUEUED, JobStatus.RUNNING):
        raise Conflict(f"a {job.status} job cannot be cancelled")
    job.status = JobStatus.CANCELLING
    record_event(job, EventKind.CANCEL_REQUESTED, "Cancellation requested", actor=actor)
    db.session.commit()
    _kick(job)
    return job


def retry_failed(job: BatchJob, *, actor: str = "system") -> int:
    """Send the failed requests of a finished job again (each counts as one more try); return how many."""
    return _send_again(job, RequestStatus.FAILED, EventKind.RETRIED, actor=actor, tries=1)


def resend_cancelled(job: BatchJob, *, actor: str = "system") -> int:
    """Send the requests a cancel stopped before they ran (they used no try); return how many."""
    return _send_again(job, RequestStatus.CANCELLED, EventKind.RESENT, actor=actor, tries=0)


def _send_again(job: BatchJob, status: RequestStatus, kind: EventKind, *, actor: str, tries: int) -> int:
    """Put a finished job's requests in ``status`` back in the queue; Conflict when there are none."""
    if job.status not in TERMINAL_JOB_STATUSES:
        raise Conflict(f"only a finished job's requests can be sent again (this one is {job.status})")
    count = bulk.changed(
        update(request_states)
        .where(request_states.c.job_id == job.id, request_states.c.status == status)
        .values(
            status=RequestStatus.PENDING,
            provider_batch_id=None,
            error=None,
            error_code=None,
            retry_count=request_states.c.retry_count + tries,
        )
    )
    if not count:
        raise Conflict(f"the job has no {status} requests to send again")
    job.status = JobStatus.QUEUED
    job.completed_at = None
    job.last_error = None
    recount(job)
    record_event(job, kind, f"Sending {count_of(count, f'{status} request')} again", actor=actor)
    db.session.commit()
    _kick(job)
    return count


def delete_job(job: BatchJob, *, actor: str = "system") -> None:
    """Delete a job that is not running: its requests, results and batches go; the job row and its
    timeline stay (hidden from every list) so who deleted it remains on record."""
    if job.is_active:
        raise Conflict(f"a {job.status} job cannot be deleted; cancel it first")
    _delete_requests(job)
    db.session.execute(delete(ProviderBatch).where(ProviderBatch.job_id == job.id))
    job.deleted_at = datetime.now(UTC)
    record_event(job, EventKind.DELETED, f"Job deleted with its {count_of(job.total_requests, 'request')}", actor=actor)
    db.session.commit()


def _delete_requests(job: BatchJob) -> None:
    """Bulk deletes, table by table (a job may hold millions of rows): no cascade runs row by row."""
    for table in (cast(Table, BatchResponse.__table__), request_states, request_rows):
        db.session.execute(delete(table).where(table.c.job_id == job.id))


def require_draft(job: BatchJob, action: str) -> None:
    if job.status != JobStatus.DRAFT:
        raise Conflict(f"cannot {action} a job that is {job.status}; only drafts can")


def _kick(job: BatchJob) -> None:
    """Have a worker advance the job now rather than at the next periodic sync."""
    queue.enqueue(job_functions.process_job, job.id, timeout=3600)


def estimate_cost(job: BatchJob) -> Decimal | None:
    """Cost if every request sent (copies are not: ``copies``) uses its estimated prompt and its full output
    allowance."""
    sent = (
        select(request_rows.c.body)
        .join_from(request_rows, request_states, request_states.c.request_id == request_rows.c.id)
        .where(request_rows.c.job_id == job.id, request_states.c.copy_of_id.is_(None))
        .execution_options(yield_per=2000)
    )
    output = sum(request_lines.estimate_output_tokens(body, job.endpoint) for body in db.session.scalars(sent))
    return price_table().cost(job.model, job.estimated_tokens, output)
