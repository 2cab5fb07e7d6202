"""Prompts sent once for every row that asked them: the repeats wait for the first request, then take its result.

A copy (``request_states.copy_of_id``) is never planned into a provider batch. When the request it copies ends,
``settle`` gives it the same state and error and a response of its own: the same status code, body and output,
with token counts of zero, because the provider answered, and billed, once. So the job's tokens and cost (the
sums of its responses) count each answer once, and the copies' rows in an export sum to what was paid.

Settling runs when the job is finished (``sync.finish_job``, under the job's lock) and is safe to run again: it
only touches copies still pending, replaces any response a copy kept from an earlier round (a retried original
sends its copies back to pending), and the unique request id of responses keeps one per copy.
"""

from __future__ import annotations

from typing import cast

from sqlalchemy import Table, and_, delete, func, insert, literal, select, update

from webapp import bulk
from webapp.extensions import db
from webapp.models import BatchResponse, RequestStatus, request_rows, request_states

STATE = request_states.c
RESPONSES = cast(Table, BatchResponse.__table__)
ENDED = (RequestStatus.SUCCEEDED, RequestStatus.FAILED, RequestStatus.CANCELLED)
ZERO_TOKENS = ("prompt_tokens", "completion_tokens", "total_tokens", "cached_tokens", "reasoning_tokens")
COPIED = ("provider_batch_id", "succeeded", "status_code", "body", "error_code", "error", "output_text")


def mark(job_id: int, after_id: int) -> tuple[int, int]:
    """Make each of the job's requests after ``after_id`` whose body an earlier request of the job has a copy
    of the first one; return (how many, their estimated prompt tokens), which will not be sent."""
    rows = request_rows.c
    first = (
        select(rows.id, func.min(rows.id).over(partition_by=rows.body).label("first"))
        .where(rows.job_id == job_id)
        .subquery()
    )
    count = bulk.changed(
        update(request_states)
        .where(STATE.request_id == first.c.id, first.c.first != first.c.id, STATE.request_id > after_id)
        .values(copy_of_id=first.c.first)
        .execution_options(synchronize_session=False)
    )
    tokens = db.session.scalar(
        select(func.coalesce(func.sum(rows.estimated_tokens), 0))
        .join_from(request_rows, request_states, STATE.request_id == rows.id)
        .where(STATE.job_id == job_id, STATE.request_id > after_id, STATE.copy_of_id.is_not(None))
    )
    return count, int(tokens or 0)


def copy_rows(job_id: int, after_id: int, limit: int) -> list[int]:
    """The source lines (rows) of the first ``limit`` copies made after ``after_id``."""
    return list(
        db.session.scalars(
            select(request_rows.c.source_line)
            .join_from(request_states, request_rows, request_rows.c.id == STATE.request_id)
            .where(STATE.job_id == job_id, STATE.request_id > after_id, STATE.copy_of_id.is_not(None))
            .order_by(STATE.request_id)
            .limit(limit)
        )
    )


def settle(job_id: int) -> int:
    """Give every pending copy whose original has ended the original's outcome (no commit); return how many."""
    original = request_states.alias("original")
    ready = select(STATE.request_id).where(
        STATE.job_id == job_id,
        STATE.status == RequestStatus.PENDING,
        STATE.copy_of_id.is_not(None),
        select(original.c.request_id)
        .where(original.c.request_id == STATE.copy_of_id, original.c.status.in_(ENDED))
        .exists(),
    )
    ids = list(db.session.scalars(ready))
    for chunk in (ids[start : start + 1000] for start in range(0, len(ids), 1000)):
        _settle(chunk)
    return len(ids)


def _settle(copy_ids: list[int]) -> None:
    """Replace the copies' responses with the originals', then set their states from the originals'."""
    db.session.execute(delete(RESPONSES).where(RESPONSES.c.request_id.in_(copy_ids)))
    source = RESPONSES.alias("source")
    copies = select(
        STATE.request_id,
        STATE.job_id,
        *(source.c[name] for name in COPIED),
        *(literal(0).label(name) for name in ZERO_TOKENS),
        source.c.provider_request_id,
        source.c.created_at,
    ).join_from(request_states, source, source.c.request_id == STATE.copy_of_id)
    db.session.execute(
        insert(RESPONSES).from_select(
            ["request_id", "job_id", *COPIED, *ZERO_TOKENS, "provider_request_id", "created_at"],
            copies.where(STATE.request_id.in_(copy_ids)),
        )
    )
    original = request_states.alias("original")

    def of_original(column: str):
        return select(original.c[column]).where(original.c.request_id == STATE.copy_of_id).scalar_subquery()

    db.session.execute(
        update(request_states)
        .where(and_(STATE.request_id.in_(copy_ids), STATE.status == RequestStatus.PENDING))
        .values(status=of_original("status"), error_code=of_original("error_code"), error=of_original("error"))
        .execution_options(synchronize_session=False)
    )
