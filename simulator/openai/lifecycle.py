"""Batch use cases: create, read (advancing state lazily), list, cancel."""

from __future__ import annotations

import uuid

from ..settings import Settings
from ..store import Store
from .errors import APIError, not_found
from .progress import ACTIVE, CANCELLABLE, ENDS_WITH_RESULTS, Phase, phase_at, render
from .results import write_results
from .validation import inspect_input

ORGANIZATION = "org-sim"
DEFAULT_MODELS = {"/v1/moderations": "omni-moderation-latest"}


def create_batch(store: Store, params: dict, now: float, settings: Settings) -> dict:
    """Create a ``validating`` batch over a snapshot of the input file and return its API object."""
    meta = store.file_meta(params["input_file_id"])
    if meta is None:
        raise not_found("File", params["input_file_id"], param="input_file_id")
    if meta["purpose"] != "batch":
        raise APIError(
            400,
            f"The input file {meta['id']} was uploaded with purpose '{meta['purpose']}'; "
            "batch input files must have purpose 'batch'.",
            param="input_file_id",
        )
    record = {
        **params,
        "id": f"batch_{uuid.uuid4().hex}",
        "created": now,
        "validation": None,
        "errors": [],
        "model": None,
        "total": 0,
        "prompt_tokens": 0,
        "failing": [],
        "markers": [],
        "failure_rate": settings.failure_rate,
        "cancel_at": None,
        "results": None,
    }
    try:
        store.snapshot_input(record["id"], meta["id"])
    except FileNotFoundError:
        raise not_found("File", meta["id"], param="input_file_id") from None
    store.save_batch(record)
    return render(record, phase_at(record, now, settings))


def get_batch(store: Store, batch_id: str, now: float, settings: Settings) -> dict:
    record = _load(store, batch_id)
    return render(*refresh(store, record, now, settings))


def list_batches(store: Store, limit: int, after: str | None, now: float, settings: Settings) -> dict:
    """Return one cursor page of batches, newest first."""
    records = sorted(store.list_batches(), key=lambda r: (r["created"], r["id"]), reverse=True)
    ids = [record["id"] for record in records]
    start = ids.index(after) + 1 if after in ids else (len(ids) if after else 0)
    page = [render(*refresh(store, record, now, settings)) for record in records[start : start + limit]]
    return {
        "object": "list",
        "data": page,
        "first_id": page[0]["id"] if page else None,
        "last_id": page[-1]["id"] if page else None,
        "has_more": start + limit < len(records),
    }


def cancel_batch(store: Store, batch_id: str, now: float, settings: Settings) -> dict:
    """Move a validating or in_progress batch to ``cancelling``; cancelling twice is harmless."""
    refresh(store, _load(store, batch_id), now, settings)  # a validation now due decides the status
    with store.batch_lock(batch_id):
        record = _load(store, batch_id)
        phase = phase_at(record, now, settings)
        if phase.status in CANCELLABLE:
            record["cancel_at"] = now
            store.save_batch(record)
        elif phase.status not in ("cancelling", "cancelled"):
            raise APIError(400, f"Cannot cancel a batch with status '{phase.status}'.", param="batch_id")
    return render(*refresh(store, record, now, settings))


def _load(store: Store, batch_id: str) -> dict:
    record = store.load_batch(batch_id)
    if record is None:
        raise not_found("Batch", batch_id, param="batch_id")
    return record


def refresh(store: Store, record: dict, now: float, settings: Settings) -> tuple[dict, Phase]:
    """Bring the record up to ``now``: validate when validating ends, write results when it finishes.

    Both happen once, under the batch lock; reads that find nothing due take no lock at all.
    """
    if not _work_due(record, now, settings):
        return record, phase_at(record, now, settings)
    with store.batch_lock(record["id"]):
        record = _load(store, record["id"])
        if _validation_due(record, now, settings):
            _validate(store, record, now, settings)
        phase = phase_at(record, now, settings)
        if phase.status in ENDS_WITH_RESULTS and record["results"] is None:
            started = phase.times.get("in_progress_at", record["created"])
            record["results"] = write_results(
                store, record, phase.processed, phase.status == "expired", started, settings.in_progress
            )
        store.save_batch(record)
    return record, phase


def _validation_due(record: dict, now: float, settings: Settings) -> bool:
    ends = record["created"] + settings.validating
    cancelled_first = record["cancel_at"] is not None and record["cancel_at"] < ends
    return record["validation"] is None and now >= ends and not cancelled_first


def _work_due(record: dict, now: float, settings: Settings) -> bool:
    if _validation_due(record, now, settings):
        return True
    return record["results"] is None and phase_at(record, now, settings).status in ENDS_WITH_RESULTS


def _validate(store: Store, record: dict, now: float, settings: Settings) -> None:
    report = inspect_input(
        store.batch_input_path(record["id"]),
        record["endpoint"],
        max_requests=settings.max_requests,
        failure_rate=settings.failure_rate,
        batch_id=record["id"],
    )
    record.update(
        model=report.model or DEFAULT_MODELS.get(record["endpoint"]),
        total=report.total,
        prompt_tokens=report.prompt_tokens,
        failing=report.failing,
        markers=sorted(report.markers),
        failure_rate=settings.failure_rate,
        errors=report.errors,
    )
    if report.errors:
        record["validation"] = "failed"
        return
    # One validation at a time per store, so two batches cannot both squeeze under the token limit.
    with store.lock("enqueue"):
        limit = settings.token_limit
        if limit is not None and _enqueued_tokens(store, record, now, settings) + report.prompt_tokens > limit:
            record["errors"] = [token_limit_error(record["model"], limit)]
        record["validation"] = "failed" if record["errors"] else "ok"
        store.save_batch(record)


def _enqueued_tokens(store: Store, record: dict, now: float, settings: Settings) -> int:
    """Sum the prompt tokens of the other validated, still-running batches of the same model."""
    return sum(
        other["prompt_tokens"]
        for other in store.list_batches()
        if other["id"] != record["id"]
        and other.get("validation") == "ok"
        and other.get("model") == record["model"]
        and phase_at(other, now, settings).status in ACTIVE
    )


def token_limit_error(model: str | None, limit: int) -> dict:
    return {
        "code": "token_limit_exceeded",
        "param": None,
        "line": None,
        "message": f"Enqueued token limit reached for {model} in organization {ORGANIZATION}. "
        f"Limit: {limit:,} enqueued tokens. Please try again once some in_progress batches "
        "have been completed.",
    }
