"""A job's ledger: its timeline, request counters, token totals and cost, kept by every step that changes them."""

from __future__ import annotations

import logging
from decimal import Decimal

from sqlalchemy import func, select, update

from webapp.extensions import db
from webapp.models import BatchJob, BatchResponse, JobEvent, RequestStatus, request_states
from webapp.services.pricing import price_table

log = logging.getLogger(__name__)


def record_event(job: BatchJob, kind: str, message: str, *, data: dict | None = None, actor: str = "system") -> None:
    """Append to the job's timeline (committed with the caller's unit of work) and log it with the job's id."""
    db.session.add(JobEvent(job_id=job.id, kind=kind, message=message, data=data, actor=actor))
    log.info("%s", message, extra={"job_id": job.id, "event": kind})


def recount(job: BatchJob) -> None:
    """Refresh the job's request counters and token totals from its rows (on transitions, never per poll)."""
    by_status: dict[str, int] = dict(
        db.session.execute(
            select(request_states.c.status, func.count())
            .where(request_states.c.job_id == job.id)
            .group_by(request_states.c.status)
        ).all()
    )
    job.total_requests = sum(by_status.values())
    job.pending_requests = by_status.get(RequestStatus.PENDING, 0)
    job.in_flight_requests = by_status.get(RequestStatus.IN_FLIGHT, 0)
    job.succeeded_requests = by_status.get(RequestStatus.SUCCEEDED, 0)
    job.failed_requests = by_status.get(RequestStatus.FAILED, 0)
    job.cancelled_requests = by_status.get(RequestStatus.CANCELLED, 0)
    for name, total in token_sums(BatchResponse.job_id == job.id).items():
        setattr(job, name, total)
    _price(job)


TOKEN_COLUMNS = ("prompt_tokens", "completion_tokens", "cached_tokens", "reasoning_tokens")


def token_sums(*where) -> dict[str, int]:
    """The token counts of the responses ``where`` selects, summed column by column."""
    sums = db.session.execute(
        select(*(func.coalesce(func.sum(getattr(BatchResponse, name)), 0) for name in TOKEN_COLUMNS)).where(*where)
    ).one()
    return dict(zip(TOKEN_COLUMNS, (int(v) for v in sums), strict=True))


REQUEST_COUNTERS = (
    "pending_requests",
    "in_flight_requests",
    "succeeded_requests",
    "failed_requests",
    "cancelled_requests",
)


def adjust_counters(job: BatchJob, *, tokens: dict[str, int] | None = None, **requests: int) -> None:
    """Move the job's counters by what one step changed (``pending_requests=-5, in_flight_requests=5``, token
    totals by ``tokens``), in one atomic UPDATE: workers settling different batches of one job at once each
    add their own share, and the cost of a step no longer grows with the job (``recount`` counts every row).
    """
    changes = {name: getattr(BatchJob, name) + delta for name, delta in requests.items() if delta}
    changes.update({name: getattr(BatchJob, name) + delta for name, delta in (tokens or {}).items() if delta})
    if not changes:
        return
    db.session.flush()  # the job's own pending changes first: the refresh below reads the row back
    db.session.execute(
        update(BatchJob).where(BatchJob.id == job.id).values(changes).execution_options(synchronize_session=False)
    )
    db.session.refresh(job, [*REQUEST_COUNTERS, *TOKEN_COLUMNS])
    if tokens:
        _price(job)


def _price(job: BatchJob) -> None:
    cost = price_table().cost(job.model, job.prompt_tokens, job.completion_tokens, job.cached_tokens)
    job.actual_cost = cost if cost is not None else Decimal(0)
