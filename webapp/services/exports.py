"""Results as downloads: JSONL in OpenAI's output format and CSV in the user's own columns, streamed."""

from __future__ import annotations

import csv
import io
import json
from typing import Iterator

from sqlalchemy import select

from webapp.extensions import db
from webapp.models import BatchJob, BatchRequest, BatchResponse, RequestStatus

FETCH_ROWS = 2000
FLUSH_BYTES = 256 * 1024
# A spreadsheet runs a cell that starts with one of these as a formula (OWASP "CSV injection").
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _rows(job: BatchJob, failed_only: bool):
    stmt = (
        select(BatchRequest, BatchResponse)
        .outerjoin(BatchResponse, BatchResponse.request_id == BatchRequest.id)
        .where(BatchRequest.job_id == job.id)
        .order_by(BatchRequest.id)
        .execution_options(yield_per=FETCH_ROWS)
    )
    if failed_only:
        stmt = stmt.where(BatchRequest.status == RequestStatus.FAILED)
    for request, response in db.session.execute(stmt):
        yield request, response
        db.session.expunge(request)  # keep the identity map from growing with the export
        if response is not None:
            db.session.expunge(response)


def jsonl_lines(job: BatchJob, failed_only: bool = False) -> Iterator[bytes]:
    """One OpenAI-style output line per request, in request order; unfinished requests carry their state."""
    buffer = io.BytesIO()
    for request, response in _rows(job, failed_only):
        buffer.write(json.dumps(_output_line(request, response), ensure_ascii=False).encode("utf-8") + b"\n")
        if buffer.tell() >= FLUSH_BYTES:
            yield buffer.getvalue()
            buffer = io.BytesIO()
    if buffer.tell():
        yield buffer.getvalue()


def _output_line(request: BatchRequest, response: BatchResponse | None) -> dict:
    """An HTTP result keeps its response; anything else (non-HTTP failure, no result yet) gets an error."""
    line = {"id": response.provider_request_id if response else None, "custom_id": request.custom_id,
            "response": None, "error": None}
    if response is not None and response.status_code is not None:
        line["response"] = {"status_code": response.status_code, "request_id": response.provider_request_id,
                            "body": response.body}
    settled_by_response = request.status == RequestStatus.SUCCEEDED or (
        request.status == RequestStatus.FAILED and line["response"] is not None)
    if not settled_by_response:
        line["error"] = {"code": request.error_code or request.status, "message": request.error or "no result yet"}
    return line


def source_columns(job: BatchJob) -> list[str]:
    """The columns of the user's CSV file, in order; none for a JSONL job."""
    source = job.source or {}
    return list(source.get("columns") or []) if source.get("format") == "csv" else []


def csv_header(job: BatchJob) -> list[str]:
    fields = [f"output.{name}" for name in schema_fields(job)]
    return [*source_columns(job), "custom_id", "status", "output_text", *fields, "error",
            "prompt_tokens", "completion_tokens", "total_tokens"]


def schema_fields(job: BatchJob) -> list[str]:
    """The structured-output fields of a CSV job with a JSON schema, in the schema's order."""
    return list((job.source or {}).get("output_fields") or [])


def csv_chunks(job: BatchJob, failed_only: bool = False) -> Iterator[str]:
    """The CSV export, in chunks: the original columns in order, then the results."""
    fields = schema_fields(job)
    original = len(source_columns(job))
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(csv_header(job))
    for request, response in _rows(job, failed_only):
        cells = _pad(request.source_row or [], original)
        cells += [request.custom_id, request.status, (response.output_text if response else None) or ""]
        cells += _structured(response, fields)
        cells += [_error_text(request), *(_tokens(response))]
        writer.writerow([neutralise(c) for c in cells])
        if buffer.tell() >= FLUSH_BYTES:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def _pad(values: list, width: int) -> list:
    return (list(values) + [""] * width)[:width]


def _structured(response: BatchResponse | None, fields: list[str]) -> list:
    if not fields:
        return []
    try:
        data = json.loads(response.output_text) if response and response.output_text else {}
    except ValueError:
        data = {}
    data = data if isinstance(data, dict) else {}
    return [_cell(data.get(name)) for name in fields]


def _cell(value) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _error_text(request: BatchRequest) -> str:
    if request.status == RequestStatus.SUCCEEDED or not (request.error_code or request.error):
        return ""
    return f"{request.error_code}: {request.error}" if request.error_code else request.error


def _tokens(response: BatchResponse | None) -> list:
    if response is None:
        return ["", "", ""]
    return [response.prompt_tokens, response.completion_tokens, response.total_tokens]


def neutralise(value) -> object:
    """Prefix text a spreadsheet would run as a formula with a quote; numbers pass unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value
