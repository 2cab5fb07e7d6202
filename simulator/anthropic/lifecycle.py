"""Message batch use cases: create (requests inline), read (advancing by elapsed time), list, cancel, delete, and
the results, written once when the batch ends."""

from __future__ import annotations

import json
import os
import random
import re
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime

from ..markers import batch_markers
from ..openai.progress import processed_by
from ..settings import Settings
from ..store import Store, random_token
from .errors import APIError, not_found
from .messages import errored_result, planned_failure, result_key, simulated_message

DIALECT = "anthropic"
WINDOW_SECONDS = 24 * 3600  # a batch that has not ended by then expires
MAX_REQUESTS = 100_000
CUSTOM_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
RESULT_TYPES = ("succeeded", "errored", "canceled", "expired")


@dataclass(frozen=True)
class Phase:
    """Where a batch is at one instant: its status, how many requests ran, when it ended, and whether the
    requests that did not run expired (else they were canceled)."""

    status: str  # in_progress | canceling | ended
    processed: int = 0
    ended_at: float | None = None
    expired: bool = False


def create_batch(store: Store, requests: object, now: float, settings: Settings) -> dict:
    """Check the requests as the API does at once (shape, custom_ids, count), keep them and return the record.
    Each request's params are checked only when it runs, as the real API does."""
    requests = _checked(requests)
    batch_id = f"msgbatch_{random_token(24)}"
    record = {
        "id": batch_id,
        "dialect": DIALECT,
        "created": now,
        "total": len(requests),
        "markers": sorted(_batch_markers(requests)),
        "failure_rate": settings.failure_rate,  # drawn against when the batch ends, as it was when it began
        "cancel_at": None,
        "results": None,
    }
    with open(store.batch_input_path(batch_id), "w", encoding="utf-8") as out:
        for request in requests:
            out.write(json.dumps(request) + "\n")
    store.save_batch(record)
    return record


def _checked(requests: object) -> list[dict]:
    if not isinstance(requests, list) or not requests:
        raise APIError(400, "requests: Field required" if requests is None else "requests: at least one is needed")
    if len(requests) > MAX_REQUESTS:
        raise APIError(400, f"requests: a batch holds at most {MAX_REQUESTS:,} requests (got {len(requests):,})")
    seen: set[str] = set()
    for index, request in enumerate(requests):
        if not isinstance(request, dict) or not isinstance(request.get("params"), dict):
            raise APIError(400, f"requests.{index}.params: Field required")
        custom_id = request.get("custom_id")
        if not isinstance(custom_id, str) or not CUSTOM_ID.match(custom_id):
            raise APIError(400, f"requests.{index}.custom_id: String should match pattern '{CUSTOM_ID.pattern}'")
        if custom_id in seen:
            raise APIError(400, f"requests.{index}.custom_id: duplicate custom_id '{custom_id}'")
        seen.add(custom_id)
    return requests


def _batch_markers(requests: list[dict]) -> set[str]:
    return set().union(*(batch_markers(json.dumps(request["params"])) for request in requests))


def load(store: Store, batch_id: str) -> dict:
    record = store.load_batch(batch_id, DIALECT)
    if record is None:
        raise not_found(batch_id)
    return record


def list_page(store: Store, limit: int, after_id: str | None, before_id: str | None) -> tuple[list[dict], bool]:
    """One page of batches, newest first: those after ``after_id`` (older), or before ``before_id`` (newer)."""
    records = sorted(store.list_batches(DIALECT), key=lambda r: (r["created"], r["id"]), reverse=True)
    ids = [record["id"] for record in records]
    if before_id:
        end = ids.index(before_id) if before_id in ids else 0
        start = max(0, end - limit)
        return records[start:end], start > 0
    start = ids.index(after_id) + 1 if after_id in ids else (len(ids) if after_id else 0)
    return records[start : start + limit], start + limit < len(records)


def phase_at(record: dict, now: float, settings: Settings) -> Phase:
    """The batch's phase at ``now``: requests run at an even pace over the in_progress window; ``[[sim:expire]]``
    ends it half way with the rest expired, ``[[sim:hold]]`` keeps it running until cancelled or expired."""
    created, total = record["created"], record["total"]
    held = "hold" in record["markers"]
    ends = created + (WINDOW_SECONDS if held else settings.in_progress)
    expires = created + settings.in_progress / 2 if "expire" in record["markers"] else None
    stop = min(ends, expires) if expires is not None else ends
    cancel = record.get("cancel_at")
    if cancel is not None and cancel < stop:
        processed = processed_by(total, created, cancel, settings)
        done = cancel + settings.cancelling
        return Phase("canceling", processed) if now < done else Phase("ended", processed, done)
    if now < stop:
        return Phase("in_progress", processed_by(total, created, now, settings))
    if expires is not None:
        return Phase("ended", total // 2, expires, expired=True)
    return Phase("ended", total, ends)


def refresh(store: Store, record: dict, now: float, settings: Settings) -> tuple[dict, Phase]:
    """The record brought up to ``now``: a batch that has ended gets its results, written once under its lock."""
    phase = phase_at(record, now, settings)
    if phase.status != "ended" or record["results"] is not None:
        return record, phase
    with store.batch_lock(record["id"]):
        record = load(store, record["id"])
        if record["results"] is None:
            record["results"] = write_results(store, record, phase)
            store.save_batch(record)
    return record, phase


def cancel_batch(store: Store, batch_id: str, now: float, settings: Settings) -> tuple[dict, Phase]:
    """Start cancelling a running batch; cancelling twice is harmless, an ended batch cannot be cancelled."""
    with store.batch_lock(batch_id):
        record = load(store, batch_id)
        phase = phase_at(record, now, settings)
        if phase.status == "ended":
            raise APIError(400, f"Message Batch {batch_id} has already ended and can no longer be canceled.")
        if phase.status == "in_progress":
            record["cancel_at"] = now
            store.save_batch(record)
    return refresh(store, record, now, settings)


def delete_batch(store: Store, batch_id: str, now: float, settings: Settings) -> None:
    """Delete an ended batch and its results; a running one must be cancelled first."""
    record, phase = refresh(store, load(store, batch_id), now, settings)
    if phase.status != "ended":
        raise APIError(400, f"Message Batch {batch_id} cannot be deleted while it is processing; cancel it first.")
    store.delete_batch(batch_id)


def write_results(store: Store, record: dict, phase: Phase) -> dict:
    """Run the first ``phase.processed`` requests into the results file (shuffled, as the API gives no order); the
    others expired or were canceled. Returns the final counts."""
    lines = []
    with open(store.batch_input_path(record["id"]), encoding="utf-8") as source:
        for index, text in enumerate(source):
            request = json.loads(text)
            lines.append({"custom_id": request["custom_id"], "result": _result(record, request, index, phase)})
    random.Random(record["id"]).shuffle(lines)
    tmp = store.temp_path()
    with open(tmp, "w", encoding="utf-8") as out:
        for line in lines:
            out.write(json.dumps(line) + "\n")
    os.replace(tmp, store.batch_results_path(record["id"]))
    counts = Counter(line["result"]["type"] for line in lines)
    return {"counts": {kind: counts.get(kind, 0) for kind in RESULT_TYPES}}


def _result(record: dict, request: dict, index: int, phase: Phase) -> dict:
    if index >= phase.processed:
        return {"type": "expired" if phase.expired else "canceled"}
    key = result_key(record["id"], request["custom_id"])
    failure = planned_failure(request["params"], request["custom_id"], record["id"], record["failure_rate"])
    if failure is not None:
        return errored_result(failure, key)
    return {"type": "succeeded", "message": simulated_message(request["params"], key)}


def render(record: dict, phase: Phase, results_url: str) -> dict:
    """The batch as the API shows it (``anthropic.types.messages.MessageBatch``), times in RFC 3339."""
    ended = phase.status == "ended"
    counts = dict.fromkeys(RESULT_TYPES, 0)
    if ended and record.get("results"):
        counts.update(record["results"]["counts"])
    return {
        "id": record["id"],
        "type": "message_batch",
        "processing_status": phase.status,
        "request_counts": {"processing": 0 if ended else record["total"], **counts},
        "created_at": rfc3339(record["created"]),
        "expires_at": rfc3339(record["created"] + WINDOW_SECONDS),
        "ended_at": rfc3339(phase.ended_at),
        "cancel_initiated_at": rfc3339(record.get("cancel_at")),
        "archived_at": None,
        "results_url": results_url if ended else None,
    }


def rfc3339(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
