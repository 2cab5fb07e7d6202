"""Results as downloads: JSONL in OpenAI's output format and CSV in the user's own columns, streamed (an .xlsx
workbook: ``xlsx_exports``).

Rows come from a server-side cursor as plain columns (no ORM objects), and response bodies are copied
as the database's JSON text, so an export of a million results runs in constant memory.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator

from sqlalchemy import Text, case, cast, func, literal, select

from webapp import bulk
from webapp.intake.formats import TABLES
from webapp.models import BatchJob, BatchRequest, BatchResponse, RequestStatus
from webapp.services.formulas import neutralise, neutralised

FETCH_ROWS = 10_000
FLUSH_BYTES = 256 * 1024


def jsonl_lines(job: BatchJob, failed_only: bool = False) -> Iterator[bytes]:
    """One OpenAI-style output line per request, in request order; unfinished requests carry their state."""
    columns = [
        BatchRequest.custom_id,
        BatchRequest.status,
        BatchRequest.error_code,
        BatchRequest.error,
        BatchResponse.status_code,
        BatchResponse.provider_request_id,
        cast(BatchResponse.body, Text),
    ]
    buffer = io.StringIO()
    for rows in row_chunks(job, failed_only, columns):
        for row in rows:
            buffer.write(_output_line(*row))
        if buffer.tell() >= FLUSH_BYTES:
            yield buffer.getvalue().encode("utf-8")
            buffer = io.StringIO()
    if buffer.tell():
        yield buffer.getvalue().encode("utf-8")


def _output_line(custom_id, status, error_code, error, status_code, request_id, body_text) -> str:
    """An HTTP result keeps its response; anything else (non-HTTP failure, no result yet) gets an error."""
    dump = json.dumps
    response = "null"
    if status_code is not None:
        response = (
            f'{{"status_code":{status_code},"request_id":{dump(request_id)},'
            f'"body":{body_text if body_text is not None else "null"}}}'
        )
    settled = status == RequestStatus.SUCCEEDED or (status == RequestStatus.FAILED and status_code is not None)
    failure = (
        "null"
        if settled
        else dump({"code": error_code or status, "message": error or "no result yet"}, ensure_ascii=False)
    )
    return (
        f'{{"id":{dump(request_id)},"custom_id":{dump(custom_id, ensure_ascii=False)},'
        f'"response":{response},"error":{failure}}}\n'
    )


def source_columns(job: BatchJob) -> list[str]:
    """The columns of the user's table (a CSV file or a workbook's sheet), in order; none for a JSONL job."""
    source = job.source or {}
    return list(source.get("columns") or []) if source.get("format") in TABLES else []


def schema_fields(job: BatchJob) -> list[str]:
    """The structured-output fields of a CSV job with a JSON schema, in the schema's order."""
    return list((job.source or {}).get("output_fields") or [])


def csv_header(job: BatchJob) -> list[str]:
    """The header row; the user's column names are neutralised like cells (a name can be a formula too)."""
    return [str(neutralise(name)) for name in source_columns(job)] + result_columns(job)


def result_columns(job: BatchJob) -> list[str]:
    """The columns every export has after the user's own: the request, its result and its usage."""
    fields = [f"output.{name}" for name in schema_fields(job)]
    return [
        "custom_id",
        "status",
        "output_text",
        *fields,
        "error",
        "prompt_tokens",
        "completion_tokens",
        "total_tokens",
    ]


def csv_chunks(job: BatchJob, failed_only: bool = False) -> Iterator[bytes]:
    """The CSV export as UTF-8, in chunks: the original columns in order, then the results; lines end in LF.

    The database hands over each row as its cells (a CSV job's original values taken from the stored row,
    the error joined to its code). On PostgreSQL it also neutralises formulas and writes the rows as CSV
    (``COPY ... TO STDOUT``), so Python only passes the bytes on; a job with structured-output fields, which
    are read from each output's JSON, is neutralised and written by Python's csv module, as on SQLite. Both
    apply the rule of ``webapp.services.formulas``.
    """
    fields = schema_fields(job)
    header = io.StringIO()
    _csv_writer(header).writerow(csv_header(job))
    yield header.getvalue().encode("utf-8")
    if bulk.is_postgresql() and not fields:
        cells = _cells(job, neutralised)
        yield from _batched(bulk.copy_csv(_rows_statement(job, failed_only, cells)))
        return
    cells = _cells(job, lambda column: column)
    if fields:
        cells.append(BatchResponse.output_text)  # read for the structured fields, not written as is
    buffer = io.StringIO()
    writer = _csv_writer(buffer)
    output_at = len(source_columns(job)) + 2  # position of output_text: the structured fields follow it
    for rows in row_chunks(job, failed_only, cells):
        if fields:
            rows = [(*row[: output_at + 1], *_structured(row[-1], fields), *row[output_at + 1 : -1]) for row in rows]
        writer.writerows([map(neutralise, row) for row in rows])
        if buffer.tell() >= FLUSH_BYTES:
            yield buffer.getvalue().encode("utf-8")
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode("utf-8")


def _cells(job: BatchJob, as_cell) -> list:
    """The columns of a row in the header's order (without structured fields); ``as_cell`` wraps each text one."""
    originals = (BatchRequest.source_row[i].as_string() for i in range(len(source_columns(job))))
    return [
        *map(as_cell, originals),
        as_cell(BatchRequest.custom_id),
        BatchRequest.status,
        as_cell(BatchResponse.output_text),
        as_cell(error_expression()),
        BatchResponse.prompt_tokens,
        BatchResponse.completion_tokens,
        BatchResponse.total_tokens,
    ]


def _csv_writer(buffer: io.StringIO):
    r"""Python's csv writer with LF line ends that quotes a cell holding a lone CR, as PostgreSQL's does.

    The csv module quotes line breaks only when they are in its line terminator: with ``"\n"`` a cell
    ``"a\rb"`` went out bare and split its row when read back. So rows are written with CRLF, which quotes
    both, and each line's CRLF end (one ``write`` per row) is cut to LF.
    """
    return csv.writer(_LfLines(buffer), lineterminator="\r\n")


class _LfLines:
    """The file the csv writer writes to: each ``write`` is one row, whose CRLF end becomes LF."""

    def __init__(self, buffer: io.StringIO):
        self.buffer = buffer

    def write(self, line: str) -> None:
        self.buffer.write(line[:-2] + "\n")


def _batched(rows: Iterator[bytes]) -> Iterator[bytes]:
    """Rows joined into chunks of about FLUSH_BYTES."""
    buffer = bytearray()
    for row in rows:
        buffer += row
        if len(buffer) >= FLUSH_BYTES:
            yield bytes(buffer)
            buffer.clear()
    if buffer:
        yield bytes(buffer)


def row_chunks(job: BatchJob, failed_only: bool, columns: list) -> Iterator[list]:
    """Plain rows (no ORM objects) from a server-side cursor, in lists of up to FETCH_ROWS."""
    yield from bulk.stream_rows(_rows_statement(job, failed_only, columns), FETCH_ROWS)


def _rows_statement(job: BatchJob, failed_only: bool, columns: list):
    stmt = (
        select(*columns)
        .select_from(BatchRequest)
        .outerjoin(BatchResponse, BatchResponse.request_id == BatchRequest.id)
        .where(BatchRequest.job_id == job.id)
        .order_by(BatchRequest.id)
    )
    return stmt.where(BatchRequest.status == RequestStatus.FAILED) if failed_only else stmt


def error_expression():
    """``code: message`` of a request that did not succeed, or only one of them; empty otherwise."""
    code, error = BatchRequest.error_code, BatchRequest.error
    return case(
        (BatchRequest.status == RequestStatus.SUCCEEDED, literal("")),
        (code.is_not(None), code + literal(": ") + func.coalesce(error, literal(""))),
        else_=func.coalesce(error, literal("")),
    )


def _structured(output: str | None, fields: list[str]) -> list:
    return [_cell(value) for value in structured_values(output, fields)]


def structured_values(output: str | None, fields: list[str]) -> list:
    """The values of the structured-output fields in an output text (JSON), None for each one it lacks."""
    if not fields:
        return []
    try:
        data = json.loads(output) if output else {}
    except ValueError:
        data = {}
    data = data if isinstance(data, dict) else {}
    return [data.get(name) for name in fields]


def _cell(value) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
