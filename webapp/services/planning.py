"""Splitting a job's pending requests into provider batches within the request, byte and token limits."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from flask import current_app
from sqlalchemy import LargeBinary, Text, cast, func, select, update

from webapp.extensions import db
from webapp.models import BatchJob, BatchRequest, ProviderBatch, RequestStatus


@dataclass
class Chunk:
    first_id: int = 0
    last_id: int = 0
    count: int = 0
    bytes: int = 0
    tokens: int = 0


def _prefix(custom_id: str, endpoint: str) -> bytes:
    return (f'{{"custom_id":{json.dumps(custom_id, ensure_ascii=False)},"method":"POST",'
            f'"url":{json.dumps(endpoint)},"body":').encode("utf-8")


def input_line(custom_id: str, endpoint: str, body_text: str) -> bytes:
    """One line of a provider input file, newline included; the body is the database's JSON text as it is."""
    return _prefix(custom_id, endpoint) + body_text.encode("utf-8") + b"}\n"


def _body_text():
    """The stored body as JSON text, so writing a file never parses and re-serialises it."""
    return cast(BatchRequest.body, Text)


def _body_bytes():
    if db.session.get_bind().dialect.name == "postgresql":
        return func.octet_length(_body_text())
    return func.length(cast(_body_text(), LargeBinary))


def token_limit(model: str) -> int:
    """The enqueued-token limit for ``model``: its own entry in ENQUEUED_TOKEN_LIMITS, else the default."""
    return current_app.config["ENQUEUED_TOKEN_LIMITS"].get(model, current_app.config["ENQUEUED_TOKEN_LIMIT"])


def plan_batches(job: BatchJob) -> list[ProviderBatch]:
    """Assign the job's unassigned pending requests to new PENDING batches (flushed, not committed)."""
    chunks = list(_chunks(job))
    if not chunks:
        return []
    attempt = (db.session.scalar(select(func.max(ProviderBatch.attempt)).where(ProviderBatch.job_id == job.id))
               if job.batches else None)
    attempt = 0 if attempt is None else attempt + 1
    created = []
    for index, chunk in enumerate(chunks):
        batch = ProviderBatch(
            job_id=job.id, attempt=attempt, chunk_index=index, model=job.model, endpoint=job.endpoint,
            estimated_tokens=chunk.tokens, input_bytes=chunk.bytes,
        )
        db.session.add(batch)
        db.session.flush()
        batch.request_count = db.session.execute(
            update(BatchRequest)
            .where(*_unassigned(job), BatchRequest.id.between(chunk.first_id, chunk.last_id))
            .values(provider_batch_id=batch.id)
            .execution_options(synchronize_session=False)
        ).rowcount
        if batch.request_count:
            created.append(batch)
        else:  # another planner took these rows first
            db.session.delete(batch)
    return created


def _unassigned(job: BatchJob) -> tuple:
    return (
        BatchRequest.job_id == job.id,
        BatchRequest.status == RequestStatus.PENDING,
        BatchRequest.provider_batch_id.is_(None),
    )


def _chunks(job: BatchJob):
    """Walk the unassigned requests in id order, cutting a chunk before any limit would be passed."""
    config = current_app.config
    max_requests, max_bytes, max_tokens = config["BATCH_MAX_REQUESTS"], config["BATCH_MAX_BYTES"], token_limit(job.model)
    rows = db.session.execute(
        select(BatchRequest.id, BatchRequest.custom_id, _body_bytes(), BatchRequest.estimated_tokens)
        .where(*_unassigned(job)).order_by(BatchRequest.id).execution_options(yield_per=5000)
    )
    chunk = Chunk()
    for request_id, custom_id, body_bytes, tokens in rows:
        size = len(_prefix(custom_id, job.endpoint)) + body_bytes + 2
        if chunk.count and (
            chunk.count + 1 > max_requests or chunk.bytes + size > max_bytes or chunk.tokens + tokens > max_tokens
        ):
            yield chunk
            chunk = Chunk()
        if not chunk.count:
            chunk.first_id = request_id
        chunk.last_id = request_id
        chunk.count += 1
        chunk.bytes += size
        chunk.tokens += tokens
    if chunk.count:
        yield chunk


def write_input_file(batch: ProviderBatch, path: Path) -> tuple[int, int]:
    """Stream the batch's requests, in id order, to a JSONL file; return (lines, bytes)."""
    lines = size = 0
    rows = db.session.execute(
        select(BatchRequest.custom_id, _body_text())
        .where(BatchRequest.provider_batch_id == batch.id).order_by(BatchRequest.id)
        .execution_options(yield_per=5000)
    )
    with open(path, "wb", buffering=1024 * 1024) as out:
        for custom_id, body_text in rows:
            data = input_line(custom_id, batch.endpoint, body_text)
            out.write(data)
            lines += 1
            size += len(data)
    return lines, size


def request_ids_in_file_order(batch: ProviderBatch) -> list[int]:
    """Request ids in the order their lines were written, so provider line n is element n-1."""
    return list(db.session.scalars(
        select(BatchRequest.id).where(BatchRequest.provider_batch_id == batch.id).order_by(BatchRequest.id)
    ))
