"""Result ingest on PostgreSQL: the raw result lines are COPYed as ``jsonb`` and settled in SQL.

Python never parses a well-formed result file: the file is streamed into a temporary table in blocks, one
``INSERT ... SELECT`` extracts every field (``results.parse_result_line`` is the same reading in Python, used
on SQLite; ``tests/test_ingest.py`` holds the two to the same answers) and upserts the responses, and one
``UPDATE ... FROM`` settles the batch's requests. A file PostgreSQL cannot take as it is (a line that is not
JSON, a NUL escape, a repeated ``custom_id``, bytes that are not UTF-8) is loaded again line by line through
Python, which drops and logs what cannot be stored, so one bad line never blocks a batch.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Iterable, Iterator

import orjson
import psycopg
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from webapp.extensions import db
from webapp.models import RequestStatus
from webapp.services.jobs import TOKEN_COLUMNS
from webapp.services.results import CANCELLED, MISSING_RESULT, RETRYABLE_CODES

log = logging.getLogger(__name__)
BLOCK = 1 << 20
ERROR_LIMIT = 10_000
# COPY's CSV format with a quote and a delimiter that valid JSON never holds unescaped: each line arrives as is.
COPY_LINES = "COPY ingest_lines (j) FROM STDIN (FORMAT csv, DELIMITER E'\\x02', QUOTE E'\\x01')"
# Bytes COPY would not pass through unchanged: the quote and delimiter, a CR (COPY wants one kind of line end),
# and a line that is only "\." (COPY's end-of-data marker: what follows would be dropped).
UNSAFE_BYTES = (b"\x01", b"\x02", b"\r", b"\\.\n")


class _NeedsCarefulLoad(Exception):
    """The file holds bytes the raw COPY cannot pass through unchanged."""


def _int(expr: str) -> str:
    """A JSON integer that fits an ``integer`` column, else 0 (as ``results._int``)."""
    return (f"(CASE WHEN jsonb_typeof({expr}) = 'number' AND ({expr})::text ~ '^-?[0-9]{{1,9}}$' "
            f"THEN ({expr})::text::int ELSE 0 END)")


def _object(expr: str) -> str:
    return f"(CASE WHEN jsonb_typeof({expr}) = 'object' THEN {expr} END)"


def _truthy(expr: str) -> str:
    """Python's truth of a JSON value: not null, false, 0, "", [] or {}."""
    return f"(coalesce({expr}, 'null') NOT IN ('null', 'false', '0', '\"\"', '[]', '{{}}'))"


def _first_int(first: str, second: str) -> str:
    """``usage.get(first, usage.get(second))`` as an integer."""
    return f"(CASE WHEN usage ? '{first}' THEN {_int(f'usage -> {first!r}')} ELSE {_int(f'usage -> {second!r}')} END)"


def _details(first: str, second: str, name: str) -> str:
    """``(usage.get(first) or usage.get(second) or {}).get(name)`` as an integer."""
    a, b = f"usage -> '{first}'", f"usage -> '{second}'"
    return _int(f"(CASE WHEN {_truthy(a)} THEN {a} ELSE {b} END) -> '{name}'")


CUSTOM_ID = "(CASE WHEN jsonb_typeof(j -> 'custom_id') = 'string' THEN j ->> 'custom_id' END)"
OUTPUT_PARTS = """(SELECT nullif(string_agg(part ->> 'text', '' ORDER BY i, k), '')
    FROM jsonb_array_elements(body -> 'output') WITH ORDINALITY AS o(item, i),
         jsonb_array_elements(CASE WHEN jsonb_typeof(item -> 'content') = 'array' THEN item -> 'content'
                                   ELSE '[]' END) WITH ORDINALITY AS c(part, k)
    WHERE jsonb_typeof(item) = 'object' AND part ->> 'type' = 'output_text' AND part ? 'text')"""
OUTPUT_TEXT = f"""CASE WHEN NOT succeeded THEN NULL
    WHEN jsonb_typeof(body -> 'choices') = 'array' AND jsonb_array_length(body -> 'choices') > 0 THEN
        CASE WHEN coalesce(message -> 'content', 'null') <> 'null' THEN
                 CASE WHEN jsonb_typeof(message -> 'content') = 'string' THEN message ->> 'content'
                      ELSE (message -> 'content')::text END
             WHEN {_truthy("message -> 'tool_calls'")} THEN (message -> 'tool_calls')::text
             WHEN {_truthy("message -> 'refusal'")} THEN message ->> 'refusal'
             ELSE choice ->> 'text' END
    WHEN jsonb_typeof(body -> 'output') = 'array' THEN {OUTPUT_PARTS}
    WHEN jsonb_typeof(body -> 'results') = 'array' AND jsonb_array_length(body -> 'results') > 0 THEN
        CASE WHEN {_object("body -> 'results' -> 0")} -> 'flagged' = 'true' THEN 'flagged' ELSE 'not flagged' END
END"""
ERROR_CODE = """CASE WHEN succeeded THEN NULL
    WHEN err IS NOT NULL THEN left(coalesce(nullif(err ->> 'code', ''), 'error'), 64)
    ELSE left(coalesce(nullif(detail ->> 'code', ''), nullif(detail ->> 'type', ''),
                       CASE WHEN status_code > 0 THEN 'http_' || status_code END, 'error'), 64) END"""
ERROR_MESSAGE = f"""CASE WHEN succeeded THEN NULL
    WHEN err IS NOT NULL THEN left(coalesce(err ->> 'message', ''), {ERROR_LIMIT})
    ELSE left(coalesce(nullif(detail ->> 'message', ''),
                       CASE WHEN status_code > 0 THEN 'HTTP ' || status_code ELSE 'no response' END), {ERROR_LIMIT})
END"""

# A result line read in layers, each computed once per line (OFFSET 0 keeps PostgreSQL from folding a layer
# into the next, which would repeat its expressions wherever they are used); the result has the columns of
# ``batch_responses``. ``:job_id`` and ``:batch_id`` pick the in-flight requests the lines answer.
RESULT_ROWS = f"""
SELECT request_id, job_id, provider_batch_id, succeeded, status_code, body, error_code, error,
       prompt_tokens, completion_tokens,
       coalesce(nullif(total_tokens, 0), prompt_tokens + completion_tokens) AS total_tokens,
       cached_tokens, reasoning_tokens, output_text, provider_request_id
FROM (
    SELECT request_id, job_id, provider_batch_id, succeeded, status_code, body,
           {ERROR_CODE} AS error_code,
           {ERROR_MESSAGE} AS error,
           {_first_int("prompt_tokens", "input_tokens")} AS prompt_tokens,
           {_first_int("completion_tokens", "output_tokens")} AS completion_tokens,
           {_int("usage -> 'total_tokens'")} AS total_tokens,
           {_details("prompt_tokens_details", "input_tokens_details", "cached_tokens")} AS cached_tokens,
           {_details("completion_tokens_details", "output_tokens_details", "reasoning_tokens")} AS reasoning_tokens,
           {OUTPUT_TEXT} AS output_text,
           provider_request_id
    FROM (
        SELECT *, {_object("body -> 'usage'")} AS usage, {_object("body -> 'error'")} AS detail,
               {_object("body -> 'choices' -> 0")} AS choice, {_object("body -> 'choices' -> 0 -> 'message'")} AS message
        FROM (
            SELECT request_id, job_id, provider_batch_id, err, status_code,
                   coalesce(status_code = 200, false) AND err IS NULL AS succeeded,
                   {_object("response -> 'body'")} AS body,
                   left(response ->> 'request_id', 100) AS provider_request_id
            FROM (
                SELECT request_id, job_id, provider_batch_id, response, err,
                       CASE WHEN jsonb_typeof(response -> 'status_code') = 'number'
                                 AND response ->> 'status_code' ~ '^[0-9]{{1,9}}$'
                            THEN (response ->> 'status_code')::int END AS status_code
                FROM (
                    SELECT r.id AS request_id, r.job_id, r.provider_batch_id,
                           {_object("l.j -> 'response'")} AS response,
                           CASE WHEN {_truthy(_object("l.j -> 'error'"))} THEN l.j -> 'error' END AS err
                    FROM ingest_lines AS l
                    JOIN batch_requests AS r ON r.job_id = :job_id AND r.custom_id = {CUSTOM_ID.replace("j ", "l.j ")}
                    WHERE r.provider_batch_id = :batch_id AND r.status = '{RequestStatus.IN_FLIGHT}'
                    OFFSET 0) AS line
                OFFSET 0) AS response
            OFFSET 0) AS parts
        OFFSET 0) AS found
    OFFSET 0) AS fields
"""
RESPONSE_COLUMNS = ("request_id", "job_id", "provider_batch_id", "succeeded", "status_code", "body", "error_code",
                    "error", "prompt_tokens", "completion_tokens", "total_tokens", "cached_tokens",
                    "reasoning_tokens", "output_text", "provider_request_id")

RETRY = """NOT CAST(:cancelled AS boolean) AND r.retry_count < :max_retries AND ({failed})"""
RETRYABLE = "(o.status_code IN (408, 409, 429) OR o.status_code >= 500 OR o.error_code = ANY(:retryable_codes))"
NEW_STATE = f"""
    status = CASE WHEN {{succeeded}} THEN '{RequestStatus.SUCCEEDED}' WHEN {{retry}} THEN '{RequestStatus.PENDING}'
                  ELSE '{RequestStatus.FAILED}' END,
    error_code = CASE WHEN {{succeeded}} THEN NULL ELSE {{code}} END,
    error = CASE WHEN {{succeeded}} THEN NULL ELSE nullif({{message}}, '') END,
    retry_count = r.retry_count + CASE WHEN {{retry}} THEN 1 ELSE 0 END,
    provider_batch_id = CASE WHEN {{retry}} THEN NULL ELSE r.provider_batch_id END"""

# One statement stores the responses (an upsert: a retried request's earlier response is replaced) and settles
# the requests they answer from what the upsert returns, so no plan ever joins the freshly written responses
# back (their statistics cannot know them yet). Answers each outcome with its count and token sums.
STORE_RESULTS = f"""
WITH stored AS (
    INSERT INTO batch_responses ({", ".join(RESPONSE_COLUMNS)}, created_at)
    SELECT *, now() FROM ({RESULT_ROWS}) AS result
    ON CONFLICT (request_id) DO UPDATE SET
        {", ".join(f"{name} = EXCLUDED.{name}" for name in (*RESPONSE_COLUMNS[2:], "created_at"))}
    RETURNING request_id, succeeded, status_code, error_code, error, {", ".join(TOKEN_COLUMNS)}
), settled AS (
    UPDATE batch_requests AS r SET {NEW_STATE.format(
        succeeded="o.succeeded", retry=RETRY.format(failed=f"NOT o.succeeded AND {RETRYABLE}"),
        code="o.error_code", message="o.error")}
    FROM stored AS o
    WHERE r.id = o.request_id AND r.provider_batch_id = :batch_id AND r.status = '{RequestStatus.IN_FLIGHT}'
    RETURNING o.succeeded, r.status = '{RequestStatus.PENDING}' AS retry, r.error_code,
              {", ".join(f"o.{name}" for name in TOKEN_COLUMNS)}
)
SELECT succeeded, retry, error_code, count(*), {", ".join(f"sum({name})" for name in TOKEN_COLUMNS)}
FROM settled GROUP BY 1, 2, 3
"""

# The batch's requests still in flight got no result: missing (retried) or, in a cancelled batch, cancelled.
SETTLE_UNANSWERED = f"""
WITH settled AS (
    UPDATE batch_requests AS r SET {NEW_STATE.format(
        succeeded="false", retry=RETRY.format(failed="true"),
        code="CAST(:absent_code AS text)", message="CAST(:absent_message AS text)")}
    WHERE r.provider_batch_id = :batch_id AND r.status = '{RequestStatus.IN_FLIGHT}'
    RETURNING r.status = '{RequestStatus.PENDING}' AS retry
)
SELECT retry, count(*) FROM settled GROUP BY 1
"""

LINE_COUNTS = f"SELECT count(*), count({CUSTOM_ID}) FROM ingest_lines WHERE j IS NOT NULL"


def ingest(batch, job, paths: Iterable[Path], summary, *, cancelled: bool) -> dict[str, int]:
    """Store every result of ``batch`` in ``paths`` and settle its requests, filling ``summary`` (no commit);
    return the token counts of the responses stored."""
    _load(batch, list(paths), summary)
    lines, identified = db.session.execute(text(LINE_COUNTS)).one()
    summary.bad_lines += lines - identified
    decision = {"job_id": job.id, "batch_id": batch.id, "cancelled": cancelled, "max_retries": job.max_retries,
                "retryable_codes": sorted(RETRYABLE_CODES)}
    added = dict.fromkeys(TOKEN_COLUMNS, 0)
    matched = 0
    for succeeded, retry, code, count, *tokens in db.session.execute(text(STORE_RESULTS), decision):
        matched += count
        added = {name: added[name] + int(value) for name, value in zip(TOKEN_COLUMNS, tokens)}
        summary.count(count, succeeded=succeeded, retry=retry, code=code)
    summary.unknown_lines += identified - matched
    _settle_unanswered(decision, summary)
    return added


def _load(batch, paths: list[Path], summary) -> None:
    """The result lines into the session's ``ingest_lines`` table: as they are if PostgreSQL takes them."""
    session = db.session
    session.execute(text("CREATE TEMP TABLE IF NOT EXISTS ingest_lines (j jsonb) ON COMMIT DELETE ROWS"))
    # A repeated custom_id fails the fast load, and the careful one keeps the first line of each.
    session.execute(text(f"CREATE UNIQUE INDEX IF NOT EXISTS ingest_lines_custom_id "
                         f"ON ingest_lines ({CUSTOM_ID})"))
    session.execute(text("TRUNCATE ingest_lines"))
    try:
        with session.begin_nested():
            _copy_raw(paths)
    except (_NeedsCarefulLoad, psycopg.Error, DBAPIError) as exc:
        log.info("batch %s: result files need a line-by-line load (%s)", batch.id, str(exc).splitlines()[0])
        _copy_lines(_careful_lines(paths, summary))


def _settle_unanswered(decision: dict, summary) -> None:
    cancelled = decision["cancelled"]
    outcomes = db.session.execute(text(SETTLE_UNANSWERED), {
        **decision, "absent_code": CANCELLED if cancelled else MISSING_RESULT,
        "absent_message": "cancelled before it ran" if cancelled else "the provider returned no result for this request",
    }).all()
    for retry, count in outcomes:
        summary.missing += count
        summary.count(count, succeeded=False, retry=retry, code=CANCELLED if cancelled else MISSING_RESULT)


def _raw_connection():
    return db.session.connection().connection.driver_connection


def _copy_raw(paths: list[Path]) -> None:
    """The files as they are, in 1 MiB blocks; PostgreSQL parses each line into ``jsonb``."""
    with _raw_connection().cursor() as cursor, cursor.copy(COPY_LINES) as copy:
        for path in paths:
            tail = b"\n"  # the end of the previous block, so a marker split between two blocks is seen
            with open(path, "rb") as fh:
                while block := fh.read(BLOCK):
                    if any(unsafe in tail + block for unsafe in UNSAFE_BYTES):
                        raise _NeedsCarefulLoad("control characters, CR line ends or a \\. line")
                    copy.write(block)
                    tail = block[-2:]
            if tail.endswith(b"\\."):
                raise _NeedsCarefulLoad("a \\. line")
            if not tail.endswith(b"\n"):
                copy.write(b"\n")


def _copy_lines(lines: Iterator[bytes]) -> None:
    with _raw_connection().cursor() as cursor, cursor.copy(COPY_LINES) as copy:
        for line in lines:
            copy.write(line + b"\n")


def _careful_lines(paths: list[Path], summary) -> Iterator[bytes]:
    """Each line that is a JSON object, once per ``custom_id``, re-encoded so PostgreSQL takes it."""
    seen: set[str] = set()
    for path in paths:
        with open(path, "rb") as fh:
            for number, raw in enumerate(fh, 1):
                if not raw.strip():
                    continue
                try:
                    obj = orjson.loads(raw)
                    custom_id = obj.get("custom_id") if isinstance(obj, dict) else None
                    if isinstance(custom_id, str):
                        if custom_id in seen:
                            summary.unknown_lines += 1
                            continue
                        seen.add(custom_id)
                    yield orjson.dumps(_without_nul(obj) if b"\\u0000" in raw else obj)
                except (ValueError, TypeError) as exc:
                    summary.bad_lines += 1
                    log.warning("skipping unreadable result line %s of %s: %s", number, path.name, exc)


def _without_nul(value):
    """PostgreSQL's ``jsonb`` refuses the NUL character: it becomes U+FFFD."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, list):
        return [_without_nul(v) for v in value]
    if isinstance(value, dict):
        return {_without_nul(k): _without_nul(v) for k, v in value.items()}
    return value
