"""Writing a finished batch's output and error files: shuffled, deterministic, written once."""

from __future__ import annotations

import hashlib
import json
import os
import random
from contextlib import ExitStack

from ..store import Store
from .outputs import error_output, is_success, simulated_output
from .progress import empty_usage
from .responses import response_usage
from .validation import iter_requests, parse_line


def result_file_id(batch_id: str, kind: str) -> str:
    """Derive the file id from the batch id, so two processes finishing one batch cannot make two files."""
    return "file-" + hashlib.sha256(f"{batch_id}:{kind}".encode()).hexdigest()[:24]


def write_results(
    store: Store, record: dict, processed: int, expired: bool, started: float, in_progress_seconds: float
) -> dict:
    """Run the first ``processed`` requests into result files and return the record's ``results``.

    Requests past ``processed`` land in the error file as ``batch_expired`` when ``expired``; otherwise
    (a cancelled batch) they appear in neither file.
    """
    batch_id = record["id"]
    paths = {"output": store.temp_path(), "error": store.temp_path()}
    try:
        offsets, counts, usage = _run_requests(store, record, paths, processed, expired, started, in_progress_seconds)
        error_file_id = _publish(store, batch_id, "error", paths["error"], offsets["error"])
        return {
            "output_file_id": _publish(store, batch_id, "output", paths["output"], offsets["output"]),
            "error_file_id": error_file_id or ("" if "empty_error_file_id" in record["markers"] else None),
            "request_counts": counts,
            "usage": usage.as_dict(),
        }
    finally:
        for path in paths.values():
            os.remove(path)


def _run_requests(store, record, paths, processed, expired, started, in_progress_seconds):
    """Append each request's line to the unshuffled output or error file; return offsets, counts, usage."""
    usage = _Usage(record["endpoint"])
    counts = {"total": record.get("total", 0), "completed": 0, "failed": 0}
    offsets: dict[str, list[tuple[int, int]]] = {"output": [], "error": []}
    with ExitStack() as stack:
        files = {kind: stack.enter_context(open(path, "wb")) for kind, path in paths.items()}
        requests = iter_requests(store.batch_input_path(record["id"])) if record.get("validation") == "ok" else ()
        for index, (_, text) in enumerate(requests):
            line = _result_line(record, parse_line(text), index, processed, expired, started, in_progress_seconds)
            if line is None:
                continue
            kind = "output" if is_success(line) else "error"
            counts["completed" if kind == "output" else "failed"] += 1
            usage.add(line)
            data = (json.dumps(line) + "\n").encode("utf-8")
            offsets[kind].append((files[kind].tell(), len(data)))
            files[kind].write(data)
    return offsets, counts, usage


def _result_line(record, request, index, processed, expired, started, in_progress_seconds) -> dict | None:
    if index >= processed:
        return error_output(record["id"], request["custom_id"], "batch_expired") if expired else None
    total = max(record.get("total", 1), 1)
    finished = int(started + in_progress_seconds * (index + 1) / total)
    return simulated_output(request, batch_id=record["id"], failure_rate=record["failure_rate"], created=finished)


def _publish(store: Store, batch_id: str, kind: str, path: str, offsets: list[tuple[int, int]]) -> str | None:
    """Store the lines of ``path`` shuffled as a ``batch_output`` file; None when there are none."""
    if not offsets:
        return None
    order = shuffled(len(offsets), seed=f"{batch_id}:{kind}")

    def write(target: str) -> None:
        with open(path, "rb") as source, open(target, "wb") as out:
            for position in order:
                start, length = offsets[position]
                source.seek(start)
                out.write(source.read(length))

    file_id = result_file_id(batch_id, kind)
    meta = store.add_file(f"{batch_id}_{kind}.jsonl", "batch_output", write, file_id=file_id)
    return meta["id"]


def shuffled(count: int, seed: str) -> list[int]:
    """Return a seeded permutation of range(count) that never keeps the input order (when count > 1)."""
    order = list(range(count))
    random.Random(seed).shuffle(order)
    if count > 1 and order == sorted(order):
        order = order[1:] + order[:1]
    return order


class _Usage:
    """Token totals over the successful responses, in the batch object's ``usage`` shape."""

    def __init__(self, endpoint: str):
        self.endpoint = endpoint
        self.sums = {"input": 0, "output": 0, "cached": 0, "reasoning": 0}

    def add(self, line: dict) -> None:
        if is_success(line):
            for key, value in response_usage(self.endpoint, line["response"]["body"]).items():
                self.sums[key] += value

    def as_dict(self) -> dict:
        usage = empty_usage()
        usage.update(
            input_tokens=self.sums["input"],
            output_tokens=self.sums["output"],
            total_tokens=self.sums["input"] + self.sums["output"],
        )
        usage["input_tokens_details"]["cached_tokens"] = self.sums["cached"]
        usage["output_tokens_details"]["reasoning_tokens"] = self.sums["reasoning"]
        return usage
