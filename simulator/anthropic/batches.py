"""Message Batches API views: create (requests inline), retrieve, list, cancel, delete, and the results (JSONL)."""

from __future__ import annotations

import time

from flask import Response, jsonify, request, stream_with_context, url_for

from ..settings import current_store, load_settings
from . import lifecycle
from .blueprint import bp
from .errors import APIError

MAX_BODY_BYTES = 256 * 1024 * 1024
RESULTS_CHUNK = 64 * 1024


@bp.post("/messages/batches")
def create_batch():
    if (request.content_length or 0) > MAX_BODY_BYTES:
        raise APIError(413, f"Request exceeds the maximum size of {MAX_BODY_BYTES:,} bytes for a batch.")
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise APIError(400, "The request body is not valid JSON.")
    settings = load_settings()
    record = lifecycle.create_batch(current_store(), data.get("requests"), time.time(), settings)
    return _shown(record, lifecycle.phase_at(record, time.time(), settings))


@bp.get("/messages/batches")
def list_batches():
    limit = _limit(request.args.get("limit", "20"))
    store, now, settings = current_store(), time.time(), load_settings()
    page, has_more = lifecycle.list_page(store, limit, request.args.get("after_id"), request.args.get("before_id"))
    data = [_object(*lifecycle.refresh(store, record, now, settings)) for record in page]
    return jsonify(
        {
            "data": data,
            "has_more": has_more,
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None,
        }
    )


@bp.get("/messages/batches/<batch_id>")
def retrieve_batch(batch_id: str):
    store = current_store()
    return _shown(*lifecycle.refresh(store, lifecycle.load(store, batch_id), time.time(), load_settings()))


@bp.post("/messages/batches/<batch_id>/cancel")
def cancel_batch(batch_id: str):
    return _shown(*lifecycle.cancel_batch(current_store(), batch_id, time.time(), load_settings()))


@bp.delete("/messages/batches/<batch_id>")
def delete_batch(batch_id: str):
    lifecycle.delete_batch(current_store(), batch_id, time.time(), load_settings())
    return jsonify({"id": batch_id, "type": "message_batch_deleted"})


@bp.get("/messages/batches/<batch_id>/results")
def batch_results(batch_id: str):
    """The results as JSONL, streamed; only once the batch has ended."""
    store = current_store()
    record, phase = lifecycle.refresh(store, lifecycle.load(store, batch_id), time.time(), load_settings())
    if phase.status != "ended":
        raise APIError(400, f"Message Batch {batch_id} has not yet ended; its results are not available.")
    try:
        source = open(store.batch_results_path(batch_id), "rb")  # noqa: SIM115 - closed by the generator
    except FileNotFoundError:
        raise APIError(404, f"No results for Message Batch {batch_id}.") from None

    def chunks():
        with source:
            while chunk := source.read(RESULTS_CHUNK):
                yield chunk

    return Response(stream_with_context(chunks()), mimetype="application/binary")


def _limit(raw: str) -> int:
    if not raw.isdigit() or not 1 <= int(raw) <= 1000:
        raise APIError(400, "limit: Input should be between 1 and 1000")
    return int(raw)


def _object(record: dict, phase: lifecycle.Phase) -> dict:
    results_url = url_for(".batch_results", batch_id=record["id"], _external=True)
    return lifecycle.render(record, phase, results_url)


def _shown(record: dict, phase: lifecycle.Phase):
    return jsonify(_object(record, phase))
