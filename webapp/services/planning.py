"""Splitting a job's pending requests into provider batches within the request, byte and token limits.

Planning cuts by request count and estimated tokens, which it reads from two integer columns; the byte limit
is kept by the writer of the input file, which knows each line's exact size as it writes it and hands the
requests past the limit back to the next planning pass. So no pass ever serialises a body only to measure it.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from flask import current_app
from sqlalchemy import Text, cast, func, select, update

from webapp import bulk
from webapp.extensions import db
from webapp.models import BatchJob, BatchRequest, ProviderBatch, RequestStatus, request_rows, request_states

STATE = request_states.c


@dataclass
class Chunk:
    first_id: int = 0
    last_id: int = 0
    count: int = 0
    tokens: int = 0
    retries: int = 0  # the most tries any of its requests has had: the batch's retry round


def _prefix(custom_id: str, endpoint: str) -> bytes:
    return (
        f'{{"custom_id":{json.dumps(custom_id, ensure_ascii=False)},"method":"POST",'
        f'"url":{json.dumps(endpoint)},"body":'
    ).encode()


def input_line(custom_id: str, endpoint: str, body_text: str) -> bytes:
    """One line of a provider input file, newline included; the body is the database's JSON text as it is."""
    return _prefix(custom_id, endpoint) + body_text.encode("utf-8") + b"}\n"


def _body_text():
    """The stored body as JSON text, so writing a file never parses and re-serialises it."""
    return cast(BatchRequest.body, Text)


def token_limit(model: str) -> int:
    """The enqueued-token limit for ``model``: its own entry in ENQUEUED_TOKEN_LIMITS, else the default."""
    return current_app.config["ENQUEUED_TOKEN_LIMITS"].get(model, current_app.config["ENQUEUED_TOKEN_LIMIT"])


def plan_batches(job: BatchJob) -> list[ProviderBatch]:
    """Assign the job's unassigned pending requests to new PENDING batches (flushed, not committed)."""
    created = []
    for chunk in list(_chunks(job)):
        batch = ProviderBatch(
            job_id=job.id,
            attempt=chunk.retries,
            chunk_index=_batches_of_round(job, chunk.retries),
            model=job.model,
            endpoint=job.endpoint,
            estimated_tokens=chunk.tokens,
        )
        db.session.add(batch)
        db.session.flush()
        batch.request_count = bulk.changed(
            update(request_states)
            .where(*unassigned(job.id), STATE.request_id.between(chunk.first_id, chunk.last_id))
            .values(provider_batch_id=batch.id)
            .execution_options(synchronize_session=False)
        )
        if batch.request_count:
            created.append(batch)
        else:  # another planner took these rows first
            db.session.delete(batch)
            db.session.flush()
    return created


def _batches_of_round(job: BatchJob, attempt: int) -> int:
    """How many batches the job has in this retry round: the next one's index."""
    return db.session.execute(
        select(func.count())
        .select_from(ProviderBatch)
        .where(ProviderBatch.job_id == job.id, ProviderBatch.attempt == attempt)
    ).scalar_one()


def unassigned(job_id: int) -> tuple:
    """Conditions on ``request_states`` for the job's pending requests no batch holds yet; copies are never sent
    (they take their first request's result: ``copies``)."""
    return (
        STATE.job_id == job_id,
        STATE.status == RequestStatus.PENDING,
        STATE.provider_batch_id.is_(None),
        STATE.copy_of_id.is_(None),
    )


def _chunks(job: BatchJob):
    """Walk the unassigned requests in id order, cutting a chunk before the request or token limit is passed."""
    config = current_app.config
    max_requests, max_tokens = config["BATCH_MAX_REQUESTS"], token_limit(job.model)
    rows = itertools.chain.from_iterable(
        bulk.stream_rows(
            select(STATE.request_id, request_rows.c.estimated_tokens, STATE.retry_count)
            .join_from(request_states, request_rows, request_rows.c.id == STATE.request_id)
            .where(*unassigned(job.id))
            .order_by(STATE.request_id),
            10_000,
        )
    )
    chunk = Chunk()
    for request_id, tokens, retries in rows:
        if chunk.count and (chunk.count + 1 > max_requests or chunk.tokens + tokens > max_tokens):
            yield chunk
            chunk = Chunk()
        if not chunk.count:
            chunk.first_id = request_id
        chunk.last_id = request_id
        chunk.count += 1
        chunk.tokens += tokens
        chunk.retries = max(chunk.retries, retries)
    if chunk.count:
        yield chunk


def write_input_file(batch: ProviderBatch, path: Path) -> tuple[int, int]:
    """Stream the batch's requests, in id order, to a JSONL file of at most BATCH_MAX_BYTES; return (lines, bytes).

    The requests that would pass the byte limit leave the batch (flushed, not committed): they are pending and
    unassigned again, so the next planning pass puts them in a batch of their own. The batch's request count,
    estimated tokens and input bytes are set to what the file holds. A single request larger than the limit
    still gets its own file, and the provider's answer to it becomes the request's error.
    """
    max_bytes = current_app.config["BATCH_MAX_BYTES"]
    lines = size = tokens = 0
    released = None
    with open(path, "wb", buffering=1024 * 1024) as out:
        for request_id, estimated, data in _input_lines(batch):
            if released is not None:
                continue  # the rest of the stream is read, not written
            if lines and size + len(data) > max_bytes:
                released = request_id
                continue
            out.write(data)
            lines += 1
            size += len(data)
            tokens += estimated
    if released is not None:
        _release(batch, released)
    batch.request_count, batch.input_bytes, batch.estimated_tokens = lines, size, tokens
    return lines, size


def _input_lines(batch: ProviderBatch) -> Iterator[tuple[int, int, bytes]]:
    """(request id, estimated tokens, input-file line) of each of the batch's requests, in id order."""
    if bulk.is_postgresql():
        yield from _copied_lines(batch)
        return
    rows = db.session.execute(
        select(BatchRequest.id, BatchRequest.estimated_tokens, BatchRequest.custom_id, _body_text())
        .where(BatchRequest.provider_batch_id == batch.id)
        .order_by(BatchRequest.id)
        .execution_options(yield_per=5000)
    )
    for request_id, estimated, custom_id, body_text in rows:
        yield request_id, estimated, input_line(custom_id, batch.endpoint, body_text)


# PostgreSQL writes each line itself and sends it by COPY, one message per row, as "id \x02 tokens \x02 line":
# JSON text never holds a raw \x01, \x02 or line break, so COPY's CSV format with those as quote and delimiter
# passes every line through as it is.
COPY_INPUT_LINES = """COPY (
    SELECT id, estimated_tokens,
           '{"custom_id":' || to_json(custom_id)::text || ',"method":"POST","url":' || %(url)s
           || ',"body":' || body::text || '}'
    FROM request_states JOIN batch_requests ON id = request_id
    WHERE provider_batch_id = %(batch_id)s ORDER BY request_id
) TO STDOUT (FORMAT csv, DELIMITER E'\\x02', QUOTE E'\\x01')"""


def _copied_lines(batch: ProviderBatch) -> Iterator[tuple[int, int, bytes]]:
    raw = bulk.psycopg_connection()
    params = {"url": json.dumps(batch.endpoint), "batch_id": batch.id}
    with raw.cursor() as cursor, cursor.copy(COPY_INPUT_LINES, params) as copy:
        for message in copy:
            request_id, estimated, line = bytes(message).split(b"\x02", 2)
            yield int(request_id), int(estimated), line


def _release(batch: ProviderBatch, first_id: int) -> None:
    """Hand the batch's requests from ``first_id`` on back to planning."""
    db.session.execute(
        update(request_states)
        .where(STATE.provider_batch_id == batch.id, STATE.request_id >= first_id)
        .values(provider_batch_id=None)
        .execution_options(synchronize_session=False)
    )


def custom_ids_in_file_order(batch: ProviderBatch) -> list[str]:
    """The custom_ids of the batch's requests in the order their lines were written (and sent)."""
    return list(
        db.session.scalars(
            select(request_rows.c.custom_id)
            .join_from(request_states, request_rows, request_rows.c.id == STATE.request_id)
            .where(STATE.provider_batch_id == batch.id)
            .order_by(STATE.request_id)
        )
    )


def request_ids_in_file_order(batch: ProviderBatch) -> list[int]:
    """Request ids in the order their lines were written, so provider line n is element n-1."""
    return list(
        db.session.scalars(
            select(STATE.request_id).where(STATE.provider_batch_id == batch.id).order_by(STATE.request_id)
        )
    )
