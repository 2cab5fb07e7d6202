"""Request lines: validation against the job (as the provider would check them), token estimates, bulk insert."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterable

import orjson
from sqlalchemy import select

from webapp import bulk

from webapp.extensions import db
from webapp.models import BatchJob, RequestStatus, request_rows, request_states

MAX_CUSTOM_ID = 255
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


@dataclass(frozen=True)
class JobSettings:
    """What validation reads of a job, copied once: an ORM attribute read per line adds up over a million."""

    id: int
    model: str
    endpoint: str
    max_tokens: int | None
    temperature: float | None

    @classmethod
    def of(cls, job: BatchJob) -> "JobSettings":
        return cls(job.id, job.model, job.endpoint, job.max_tokens, job.temperature)


@dataclass
class RequestValidator:
    """Checks request lines for one job: shape, endpoint, model, duplicates (within the input and the job)."""

    job: BatchJob
    max_line_bytes: int
    # Repeated custom_ids among the checked requests; off for files, whose repeats the database's unique
    # constraint finds (``uploads.store_file_rows``) so that memory does not grow with the file.
    track_repeats: bool = True
    seen: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.settings = JobSettings.of(self.job)

    def check_text(self, text: str, line: int) -> dict:
        """Validate one JSONL line; return the row to insert or raise InvalidLine."""
        if len(text) * 4 > self.max_line_bytes and len(text.encode("utf-8")) > self.max_line_bytes:
            raise InvalidLine("line_too_large", f"line is larger than the {self.max_line_bytes:,}-byte file limit")
        try:
            obj = orjson.loads(text)
        except ValueError as exc:
            raise InvalidLine("invalid_json_line", f"not valid JSON ({exc.msg} at column {exc.colno})") from None
        # orjson refuses NaN, infinities and lone surrogates, so of what PostgreSQL cannot store only an
        # escaped NUL can come through, and only a line that spells one out needs the full walk.
        return self.check(obj, line, trusted="\\u0000" not in text)

    def check(self, obj: Any, line: int, trusted: bool = False) -> dict:
        """Validate a parsed request (a batch line, or ``{custom_id, body}``); return the row to insert.

        ``trusted``: ``obj`` is known to hold only storable values (see ``unstorable``)."""
        if not isinstance(obj, dict):
            raise InvalidLine("invalid_request", "each line must be a JSON object")
        if not trusted and (problem := unstorable(obj)):
            raise InvalidLine("unstorable_value", problem)
        custom_id = _custom_id(obj)
        settings = self.settings
        try:
            _check_envelope(obj, settings.endpoint)
            body = normalised_body(obj.get("body"), settings)
        except InvalidLine as exc:
            exc.custom_id = custom_id
            raise
        if self.track_repeats:
            if custom_id in self.seen:
                raise InvalidLine("duplicate_custom_id", repeated(custom_id), custom_id)
            self.seen.add(custom_id)
        return {
            "job_id": settings.id, "custom_id": custom_id, "body": body,
            "source_line": line, "estimated_tokens": estimate_prompt_tokens(body, settings.endpoint),
        }


def repeated(custom_id: str) -> str:
    return f"custom_id {custom_id!r} appears more than once"


def unstorable(value: Any) -> str | None:
    """Why ``value`` cannot be stored as PostgreSQL JSON or text, or None when it can.

    PostgreSQL refuses the NUL character, lone surrogates, NaN and infinities; left to the database
    they fail the whole insert, so they are reported as problems of the line instead.
    """
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return "text must not contain the NUL character (\\u0000)"
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return "text must be valid Unicode (it holds a lone surrogate such as \\ud800)"
        elif isinstance(item, float) and not math.isfinite(item):
            return "numbers must be finite (NaN and Infinity are not JSON)"
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return None


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
        if job.max_tokens is not None and not any(k in body for k in _token_limit_keys()):
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
        if not isinstance(value, list) or not all(isinstance(m, dict) and m.get("role") for m in value):
            raise InvalidLine("invalid_messages", "'body.messages' must be a list of objects with a 'role'")


def _token_limit_keys() -> tuple[str, ...]:
    return ("max_tokens", "max_completion_tokens", "max_output_tokens")


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
            for key in TEXT_KEYS:
                if key in item:
                    text = item[key]
                    total += len(text) if isinstance(text, str) else _text_chars(text)
        elif isinstance(item, list):
            total += _text_chars(item)
    return total


def existing_custom_ids(job_id: int, custom_ids: list[str]) -> dict[str, int]:
    """Those of ``custom_ids`` the job already has, with the id of the request holding each."""
    found: dict[str, int] = {}
    for start in range(0, len(custom_ids), 1000):
        chunk = custom_ids[start:start + 1000]
        found.update((custom_id, request_id) for custom_id, request_id in db.session.execute(
            select(request_rows.c.custom_id, request_rows.c.id)
            .where(request_rows.c.job_id == job_id, request_rows.c.custom_id.in_(chunk))
        ))
    return found


REQUEST_COLUMNS = ("job_id", "custom_id", "body", "source_line", "source_row", "estimated_tokens")
STATE_COLUMNS = ("request_id", "job_id", "status", "retry_count")


def insert_rows(rows: Iterable[dict]) -> tuple[int, int]:
    """Insert new (pending) requests in bulk, a chunk at a time (no commit); return (count, estimated tokens).

    Each chunk is written as its request rows, whose new ids then key their state rows: two bulk writes, each
    one ``COPY`` on PostgreSQL.
    """
    count = tokens = 0
    for chunk in bulk.chunks(rows, bulk.COPY_CHUNK):
        ids = bulk.insert_with_ids(request_rows, REQUEST_COLUMNS, [
            (row["job_id"], row["custom_id"], row["body"], row["source_line"], row.get("source_row"),
             row["estimated_tokens"]) for row in chunk], json_columns=("body", "source_row"))
        bulk.copy_rows(request_states, STATE_COLUMNS,
                       [(request_id, row["job_id"], RequestStatus.PENDING, 0) for request_id, row in zip(ids, chunk)])
        count += len(chunk)
        tokens += sum(row["estimated_tokens"] for row in chunk)
    return count, tokens
