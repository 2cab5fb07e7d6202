"""Where a batch is in its life, computed from elapsed time (no background worker), and its API object."""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field

from ..settings import Settings

COMPLETION_WINDOW_SECONDS = 24 * 3600
ACTIVE = ("validating", "in_progress", "finalizing")
CANCELLABLE = ("validating", "in_progress")
# Statuses that end with result files; their contents depend on how many requests ran.
ENDS_WITH_RESULTS = ("completed", "expired", "cancelled")
TIMESTAMPS = (
    "in_progress_at",
    "finalizing_at",
    "completed_at",
    "failed_at",
    "expired_at",
    "cancelling_at",
    "cancelled_at",
)


@dataclass(frozen=True)
class Phase:
    """A batch's status at one instant, the times its transitions happened, and how many requests ran."""

    status: str
    times: dict = field(default_factory=dict)
    processed: int = 0


def phase_at(record: dict, now: float, settings: Settings) -> Phase:
    """Return the batch's phase at ``now``, from its record (creation, validation outcome, cancel time).

    A batch still awaiting validation stays ``validating``: only the locked refresh validates.
    """
    validated_at = record["created"] + settings.validating
    cancel = record.get("cancel_at")
    if cancel is not None and cancel < validated_at:
        return _cancelled_phase({}, cancel, now, settings, processed=0)
    if now < validated_at or record.get("validation") is None:
        return Phase("validating")
    if record["validation"] == "failed":
        return Phase("failed", {"failed_at": validated_at})
    return _running_phase(record, validated_at, now, settings)


def _running_phase(record: dict, started: float, now: float, settings: Settings) -> Phase:
    times = {"in_progress_at": started}
    total = record["total"]
    ends = started + (COMPLETION_WINDOW_SECONDS if "hold" in record["markers"] else settings.in_progress)
    expires = started + settings.in_progress / 2 if "expire" in record["markers"] else None
    stop = min(ends, expires) if expires is not None else ends
    cancel = record.get("cancel_at")
    if cancel is not None and cancel < stop:
        return _cancelled_phase(times, cancel, now, settings, processed_by(total, started, cancel, settings))
    if now < stop:
        return Phase("in_progress", times, processed_by(total, started, now, settings))
    if expires is not None:
        return Phase("expired", {**times, "expired_at": expires}, total // 2)
    times["finalizing_at"] = ends
    finalized = ends + (settings.slow_finalize if "slow_finalize" in record["markers"] else settings.finalizing)
    if now < finalized:
        return Phase("finalizing", times, total)
    return Phase("completed", {**times, "completed_at": finalized}, total)


def _cancelled_phase(times: dict, cancel: float, now: float, settings: Settings, processed: int) -> Phase:
    times = {**times, "cancelling_at": cancel}
    if now < cancel + settings.cancelling:
        return Phase("cancelling", times, processed)
    return Phase("cancelled", {**times, "cancelled_at": cancel + settings.cancelling}, processed)


def processed_by(total: int, started: float, now: float, settings: Settings) -> int:
    """Requests finish at an even pace over the in_progress window."""
    if settings.in_progress <= 0:
        return total
    share = (now - started) / settings.in_progress
    return max(0, min(total, math.floor(total * share)))


def request_counts(record: dict, phase: Phase) -> dict:
    if record.get("results"):
        return record["results"]["request_counts"]
    total = record.get("total", 0) if record.get("validation") == "ok" else 0
    failed = bisect.bisect_left(record.get("failing", []), phase.processed)
    return {"total": total, "completed": phase.processed - failed, "failed": failed}


def empty_usage() -> dict:
    return {
        "input_tokens": 0,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": 0,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 0,
    }


def render(record: dict, phase: Phase) -> dict:
    """Return the batch as the API shows it (``openai.types.Batch``), timestamps in Unix seconds."""
    results = record.get("results") or {}
    errors = record.get("errors") or []
    batch = {
        "id": record["id"],
        "object": "batch",
        "endpoint": record["endpoint"],
        "model": record.get("model"),
        "errors": {"object": "list", "data": errors} if errors else None,
        "input_file_id": record["input_file_id"],
        "completion_window": record["completion_window"],
        "status": phase.status,
        "output_file_id": results.get("output_file_id"),
        "error_file_id": results.get("error_file_id"),
        "created_at": int(record["created"]),
        "expires_at": int(record["created"]) + COMPLETION_WINDOW_SECONDS,
        "request_counts": request_counts(record, phase),
        "metadata": record.get("metadata"),
        "usage": results.get("usage") or empty_usage(),
    }
    batch.update({name: None for name in TIMESTAMPS})
    batch.update({name: int(value) for name, value in phase.times.items()})
    return batch
