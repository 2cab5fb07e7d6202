"""Request lines: validation against the job (as the provider would check them), token estimates, bulk insert."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson
import psycopg
from flask import current_app
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from webapp import bulk, json_input
from webapp.extensions import db
from webapp.models import BatchJob, RequestStatus, request_rows, request_states

MAX_CUSTOM_ID = 255
MAX_PROBLEMS_LISTED = 1000
# A chunk of rows also ends at this many bytes of requests: 10,000 requests of the largest size would not fit
# in memory. Typical requests (under 1 KB) fill the 10,000 rows first.
CHUNK_BYTES = 16 * 1024 * 1024
# Which body field carries the input, per endpoint, and whether generation settings apply.
INPUT_FIELDS = {
    "/v1/chat/completions": "messages",
    "/v1/responses": "input",
    "/v1/embeddings": "input",
    "/v1/completions": "prompt",
    "/v1/moderations": "input",
}
GENERATIVE = {"/v1/chat/completions", "/v1/responses", "/v1/completions"}
DEFAULT_OUTPUT_TOKENS = 256  # expected output when a request sets no limit, for estimates only


@dataclass(frozen=True)
class LineProblem:
    """Why one input line (1-based ``line``) cannot become a request."""

    line: int
    code: str
    message: str
    custom_id: str | None = None

    def as_dict(self) -> dict:
        return {"line": self.line, "code": self.code, "message": self.message, "custom_id": self.custom_id}


class InvalidLine(Exception):
    def __init__(self, code: str, message: str, custom_id: str | None = None):
        super().__init__(message)
        self.code, self.message, self.custom_id = code, message, custom_id


@dataclass
class UploadReport:
    """What happened to a set of request lines (a file, or the API's array): requests added, lines skipped,
    and the problems found (the first 1,000 listed). A table's rows also count those whose placeholders are
    all empty (left out with ``skipped_empty``) and those whose prompt repeats another row's (stored as
    ``copies`` of the first when each distinct prompt is sent once); the first 1,000 row numbers of each."""

    added: int = 0
    skipped: int = 0
    problem_count: int = 0
    problems: list[LineProblem] = field(default_factory=list)
    empty_rows: int = 0
    empty_row_numbers: list[int] = field(default_factory=list)
    skipped_empty: int = 0
    repeated_rows: int = 0
    repeated_row_numbers: list[int] = field(default_factory=list)
    copies: int = 0

    def note(self, problem: LineProblem) -> None:
        self.problem_count += 1
        if len(self.problems) < MAX_PROBLEMS_LISTED:
            self.problems.append(problem)

    def note_empty(self, row: int) -> None:
        self.empty_rows += 1
        if len(self.empty_row_numbers) < MAX_PROBLEMS_LISTED:
            self.empty_row_numbers.append(row)

    def note_repeated(self, row: int) -> None:
        self.repeated_rows += 1
        if len(self.repeated_row_numbers) < MAX_PROBLEMS_LISTED:
            self.repeated_row_numbers.append(row)

    def as_dict(self) -> dict:
        return {
            "added": self.added,
            "skipped": self.skipped,
            "problem_count": self.problem_count,
            "problems": [p.as_dict() for p in self.problems],
            "empty_rows": self.empty_rows,
            "empty_row_numbers": self.empty_row_numbers,
            "skipped_empty": self.skipped_empty,
            "repeated_rows": self.repeated_rows,
            "repeated_row_numbers": self.repeated_row_numbers,
            "copies": self.copies,
        }


def max_request_bytes() -> int:
    """The largest request accepted (a JSONL line, an API item, a request made from a CSV row): MAX_REQUEST_MB,
    and never more than one provider input file holds."""
    return min(current_app.config["MAX_REQUEST_BYTES"], current_app.config["BATCH_MAX_BYTES"])


def too_large(max_bytes: int) -> str:
    return (
        f"larger than {max_bytes / 1024 / 1024:g} MB ({max_bytes:,} bytes), the most one request may be "
        "(MAX_REQUEST_MB)"
    )


@dataclass(frozen=True)
class JobSettings:
    """What validation reads of a job, copied once: an ORM attribute read per line adds up over a million."""

    id: int
    model: str
    endpoint: str
    max_tokens: int | None
    temperature: float | None

    @classmethod
    def of(cls, job: BatchJob) -> JobSettings:
        return cls(job.id, job.model, job.endpoint, job.max_tokens, job.temperature)


@dataclass
class RequestValidator:
    """Checks request lines for one job: shape, endpoint, model, size. Repeated custom_ids are left to the
    database's unique constraint (``insert_new``), so that memory does not grow with the input."""

    job: BatchJob
    max_request_bytes: int

    def __post_init__(self) -> None:
        self.settings = JobSettings.of(self.job)

    def check_text(self, text: str | bytes, line: int) -> dict:
        """Validate one JSONL line (its length was checked as it was read); return the row or raise InvalidLine."""
        try:
            obj = json_input.loads(text)
        except json_input.JsonRefused as exc:
            raise InvalidLine(LINE_CODES.get(exc.code, exc.code), exc.reason) from None
        # orjson refuses NaN, infinities and lone surrogates, so of what PostgreSQL cannot store only an
        # escaped NUL can come through, and only a line that spells one out needs the full walk.
        return self.check(obj, line, trusted=ESCAPED_NUL[type(text)] not in text, size=len(text))

    def check(self, obj: Any, line: int, trusted: bool = False, size: int | None = None) -> dict:
        """Validate a parsed request (a batch line, or ``{custom_id, body}``); return the row to insert.

        ``trusted``: ``obj`` is known to hold only storable values (see ``json_input.unstorable``). ``size``: its
        length as text, when known; else the body is measured as it will be stored.
        """
        if not isinstance(obj, dict):
            raise InvalidLine("invalid_request", "each line must be a JSON object")
        if not trusted and (problem := json_input.unstorable(obj)):
            raise InvalidLine("unstorable_value", problem)
        custom_id = _custom_id(obj)
        settings = self.settings
        try:
            _check_envelope(obj, settings.endpoint)
            body = normalised_body(obj.get("body"), settings)
            size = _stored_size(body) if size is None else size
        except InvalidLine as exc:
            exc.custom_id = custom_id
            raise
        if size > self.max_request_bytes:
            raise InvalidLine("request_too_large", f"the request is {too_large(self.max_request_bytes)}", custom_id)
        return {
            "job_id": settings.id,
            "custom_id": custom_id,
            "body": body,
            "source_line": line,
            "size": size,
            "estimated_tokens": estimate_prompt_tokens(body, settings.endpoint),
        }


ESCAPED_NUL: dict[type, Any] = {str: "\\u0000", bytes: b"\\u0000"}
# Problem codes of a refused JSON line, as the provider names them where it has a name.
LINE_CODES = {"invalid_json": "invalid_json_line", "too_deep": "nested_too_deep"}


def _stored_size(body: dict) -> int:
    """The body's size as orjson writes it for the database, which also proves that it can be written."""
    try:
        return len(orjson.dumps(body))
    except TypeError as exc:  # nested past orjson's 254 levels, or an object that is not JSON
        raise InvalidLine("unstorable_value", f"the body cannot be stored as JSON ({exc})") from None


def repeated(custom_id: str) -> str:
    return f"custom_id {custom_id!r} appears more than once"


def _custom_id(obj: dict) -> str:
    custom_id = obj.get("custom_id")
    if custom_id is None or custom_id == "":
        raise InvalidLine("missing_custom_id", "missing field 'custom_id'")
    if not isinstance(custom_id, str):
        raise InvalidLine("invalid_custom_id", "'custom_id' must be a string")
    if len(custom_id) > MAX_CUSTOM_ID:
        raise InvalidLine("invalid_custom_id", f"'custom_id' is longer than {MAX_CUSTOM_ID} characters", custom_id)
    return custom_id


def _check_envelope(obj: dict, endpoint: str) -> None:
    method = obj.get("method", "POST")
    if method != "POST":
        raise InvalidLine("invalid_method", f"'method' must be \"POST\" (got {method!r})")
    url = obj.get("url", endpoint)
    if url != endpoint:
        raise InvalidLine("url_mismatch", f"'url' is {url!r} but the job's endpoint is {endpoint!r}")
    if "body" not in obj:
        raise InvalidLine("missing_body", "missing field 'body'")


def normalised_body(body: Any, job: BatchJob | JobSettings) -> dict:
    """Check a request body for the job's endpoint and fill in the job's model and settings where absent."""
    if not isinstance(body, dict):
        raise InvalidLine("invalid_body", "'body' must be a JSON object")
    model = body.get("model", job.model)
    if model != job.model:
        raise InvalidLine("model_mismatch", f"model {model!r} differs from the job's model {job.model!r}")
    if body.get("stream"):
        raise InvalidLine("stream_not_supported", "'stream': true is not allowed in a batch")
    _check_input(body, job.endpoint)
    body = {**body, "model": job.model}
    if job.endpoint in GENERATIVE:
        if job.max_tokens is not None and body.keys().isdisjoint(TOKEN_LIMIT_KEYS):
            body[_max_tokens_key(job.endpoint, job.model)] = job.max_tokens
        if job.temperature is not None and "temperature" not in body and not is_reasoning_model(job.model):
            body["temperature"] = job.temperature
    return body


def _check_input(body: dict, endpoint: str) -> None:
    key = INPUT_FIELDS[endpoint]
    value = body.get(key)
    if value is None or value == "" or value == []:
        raise InvalidLine("missing_input", f"'body.{key}' is required for {endpoint}")
    if key == "messages":
        if not isinstance(value, list):
            raise InvalidLine("invalid_messages", "'body.messages' must be a list of objects with a 'role'")
        for message in value:  # a loop, not all() over a generator: this runs for every request of an upload
            if not isinstance(message, dict) or not message.get("role"):
                raise InvalidLine("invalid_messages", "'body.messages' must be a list of objects with a 'role'")


TOKEN_LIMIT_KEYS = ("max_tokens", "max_completion_tokens", "max_output_tokens")


def _token_limit_keys() -> tuple[str, ...]:
    return TOKEN_LIMIT_KEYS


def _max_tokens_key(endpoint: str, model: str) -> str:
    if endpoint == "/v1/responses":
        return "max_output_tokens"
    if endpoint == "/v1/chat/completions" and is_reasoning_model(model):
        return "max_completion_tokens"
    return "max_tokens"


def is_reasoning_model(model: str) -> bool:
    return model.startswith(("o1", "o3", "o4", "gpt-5"))


def estimate_prompt_tokens(body: dict, endpoint: str) -> int:
    """A provider-independent estimate (about 4 characters a token), used for limits and cost estimates."""
    chars = _text_chars(body.get(INPUT_FIELDS[endpoint]))
    overhead = 4 * len(body["messages"]) if endpoint == "/v1/chat/completions" else 0
    return max(1, math.ceil(chars / 4) + overhead)


def estimate_output_tokens(body: dict, endpoint: str) -> int:
    if endpoint not in GENERATIVE:
        return 0
    for key in _token_limit_keys():
        if isinstance(body.get(key), int):
            return body[key]
    return DEFAULT_OUTPUT_TOKENS


TEXT_KEYS = ("content", "text", "input_text", "output_text")


def _text_chars(value: Any) -> int:
    """Characters of every string inside a message list, input list or prompt."""
    if isinstance(value, str):
        return len(value)
    items = value if isinstance(value, list) else [value] if isinstance(value, dict) else ()
    total = 0
    for item in items:
        if isinstance(item, str):
            total += len(item)
        elif isinstance(item, dict):
            if len(item) == 2 and "role" in item and isinstance(text := item.get("content"), str):
                total += len(text)  # the common message, {"role": ..., "content": "..."}, looked up once
                continue
            for key in TEXT_KEYS:
                if key in item:
                    text = item[key]
                    total += len(text) if isinstance(text, str) else _text_chars(text)
        elif isinstance(item, list):
            total += _text_chars(item)
    return total


def checked_rows(
    items: Iterable[tuple[int, Any]], check: Callable[[Any, int], dict], report: UploadReport
) -> Iterator[dict]:
    """The rows ``check`` makes of numbered items; each item it refuses is noted in ``report`` instead."""
    for number, item in items:
        try:
            yield check(item, number)
        except InvalidLine as exc:
            report.note(LineProblem(number, exc.code, exc.message, exc.custom_id))


def insert_new(job: BatchJob, rows: Iterable[dict], report: UploadReport) -> tuple[int, int]:
    """Insert the rows, a part at a time (no commit, but a rollback when reading them fails); return (count,
    estimated tokens) of those stored.

    A custom_id repeated in the rows or already in the job is caught by the database's unique constraint
    rather than a set of every custom_id seen (which grows with the input): a part that hits it is rolled
    back to its savepoint and written again without the repeats, each noted in ``report`` on its own line.
    ``rows`` must not query the database: they are written as they come (``insert_part``).
    """
    before = db.session.scalar(select(func.max(request_rows.c.id)).where(request_rows.c.job_id == job.id)) or 0
    count = tokens = 0
    try:
        with bulk.gc_paused():  # parsing the rows is part of the bulk write
            for part in bulk.parts(rows, weight=_row_size, max_weight=CHUNK_BYTES):
                try:
                    with db.session.begin_nested():
                        added, estimated = insert_part(part, part.size)
                except (IntegrityError, psycopg.IntegrityError):
                    kept = list(_without_repeats(job, part.finish(), before, report))
                    added, estimated = insert_part(kept, len(kept))
                count, tokens = count + added, tokens + estimated
                part.items.clear()  # before the next part is read, not after
    except BaseException:  # the input refused half way (a streamed body over a limit): no part of it stays
        db.session.rollback()
        raise
    return count, tokens


def _row_size(row: dict) -> int:
    return row["size"]


def _without_repeats(job: BatchJob, chunk: list[dict], before: int, report: UploadReport) -> Iterator[dict]:
    """The chunk's rows whose custom_id is new; ``before`` is the job's last request id before this input."""
    stored = existing_custom_ids(job.id, [row["custom_id"] for row in chunk])
    kept: set[str] = set()
    for row in chunk:
        custom_id = row["custom_id"]
        if custom_id in kept or stored.get(custom_id, 0) > before:
            message = repeated(custom_id)
        elif custom_id in stored:
            message = f"custom_id {custom_id!r} is already in the job"
        else:
            kept.add(custom_id)
            yield row
            continue
        report.note(LineProblem(row["source_line"], "duplicate_custom_id", message, custom_id))


def existing_custom_ids(job_id: int, custom_ids: list[str]) -> dict[str, int]:
    """Those of ``custom_ids`` the job already has, with the id of the request holding each."""
    found: dict[str, int] = {}
    for start in range(0, len(custom_ids), 1000):
        chunk = custom_ids[start : start + 1000]
        found.update(
            (custom_id, request_id)
            for custom_id, request_id in db.session.execute(
                select(request_rows.c.custom_id, request_rows.c.id).where(
                    request_rows.c.job_id == job_id, request_rows.c.custom_id.in_(chunk)
                )
            )
        )
    return found


REQUEST_COLUMNS = ("job_id", "custom_id", "body", "source_line", "source_row", "estimated_tokens")
STATE_COLUMNS = ("request_id", "job_id", "status", "retry_count")


def insert_rows(rows: Iterable[dict]) -> tuple[int, int]:
    """Insert new (pending) requests in bulk, a part at a time (no commit); return (count, estimated tokens)."""
    count = tokens = 0
    for part in bulk.parts(rows):
        added, estimated = insert_part(part, part.size)
        count, tokens = count + added, tokens + estimated
    return count, tokens


def insert_part(rows: Iterable[dict], most: int) -> tuple[int, int]:
    """Insert up to ``most`` new (pending) requests (no commit); return (count, estimated tokens).

    A request is a row of ``batch_requests`` and one of ``request_states`` under the same id. PostgreSQL: ``most``
    ids are drawn from the sequence, then one ``COPY`` writes the request rows as ``rows`` produces them (the
    database stores each while Python validates the next, so ``rows`` must not query it), and one their states.
    """
    if bulk.is_postgresql():
        count, tokens = _copy_requests(rows, most)
    else:
        count, tokens = _insert_portable(list(rows))
    for table in (request_rows, request_states):
        bulk.note_written(table, count)  # analyzed after the commit when they are enough to matter
    return count, tokens


def _copy_requests(rows: Iterable[dict], most: int) -> tuple[int, int]:
    """``insert_part`` on PostgreSQL: two COPYs, the first fed as ``rows`` are produced."""
    ids = bulk.reserve_ids(request_rows, most)
    states: list[bytes] = []  # each request's state row, in COPY's text format
    tokens = 0

    def lines() -> Iterator[bytes]:
        nonlocal tokens
        keep, pending = states.append, RequestStatus.PENDING.encode()
        for row, request_id in zip(rows, ids, strict=False):  # there may be more ids than rows
            keep(b"%d\t%d\t%s\t0\n" % (request_id, row["job_id"], pending))
            tokens += row["estimated_tokens"]
            yield _request_line(request_id, row)

    bulk.copy_lines(request_rows.name, ("id", *REQUEST_COLUMNS), lines())
    bulk.copy_lines(request_states.name, STATE_COLUMNS, states)
    return len(states), tokens


def _request_line(request_id: int, row: dict) -> bytes:
    """The request as a line of COPY's text format, in the order of ``("id", *REQUEST_COLUMNS)``."""
    source_line, source_row = row["source_line"], row.get("source_row")
    return b"%d\t%d\t%s\t%s\t%s\t%s\t%d\n" % (
        request_id,
        row["job_id"],
        bulk.copy_text(row["custom_id"]),
        bulk.copy_json(row["body"]),
        bulk.NULL if source_line is None else b"%d" % source_line,
        bulk.NULL if source_row is None else bulk.copy_json(source_row),
        row["estimated_tokens"],
    )


def _insert_portable(rows: list[dict]) -> tuple[int, int]:
    """``insert_part`` elsewhere (SQLite): the request rows returning their ids, then their states."""
    ids = bulk.insert_with_ids(
        request_rows,
        REQUEST_COLUMNS,
        [tuple(row.get(column) for column in REQUEST_COLUMNS) for row in rows],
        json_columns=("body", "source_row"),
    )
    bulk.copy_rows(
        request_states,
        STATE_COLUMNS,
        [(request_id, row["job_id"], RequestStatus.PENDING, 0) for request_id, row in zip(ids, rows, strict=True)],
    )
    return len(rows), sum(row["estimated_tokens"] for row in rows)
