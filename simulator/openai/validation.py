"""Validation of a batch input file, done when ``validating`` ends, as the real API does."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from ..markers import batch_markers
from ..texts import prompt_tokens
from .outputs import request_fails

MAX_REPORTED_ERRORS = 1000
REQUIRED_FIELDS = ("custom_id", "method", "url", "body")
MODEL_OPTIONAL = ("/v1/moderations",)


@dataclass
class InputReport:
    """What validating an input file found; ``failing`` holds 0-based indices of requests that will fail."""

    errors: list[dict] = field(default_factory=list)
    model: str | None = None
    total: int = 0
    prompt_tokens: int = 0
    failing: list[int] = field(default_factory=list)
    markers: set[str] = field(default_factory=set)

    def add(self, code: str, message: str, line: int | None, param: str | None = None) -> None:
        if len(self.errors) < MAX_REPORTED_ERRORS:
            self.errors.append({"code": code, "message": message, "param": param, "line": line})


def iter_requests(path: str):
    """Yield (1-based line number, text) for each line but trailing blank ones.

    An interior blank line is yielded as "" because it is a malformed request, not padding.
    """
    blanks: list[int] = []
    with open(path, "rb") as fh:
        for number, raw in enumerate(fh, 1):
            text = raw.decode("utf-8", errors="replace")
            if not text.strip():
                blanks.append(number)
                continue
            for blank in blanks:
                yield blank, ""
            blanks = []
            yield number, text


def parse_line(text: str) -> dict | None:
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def inspect_input(path: str, endpoint: str, *, max_requests: int, failure_rate: float, batch_id: str) -> InputReport:
    """Read the input once: collect every validation error, and what running the batch needs."""
    report = InputReport()
    seen: set[str] = set()
    for number, text in iter_requests(path):
        report.total += 1
        report.markers |= batch_markers(text)
        request = parse_line(text)
        if request is None:
            report.add("invalid_json_line", "This line is not parseable as valid JSON.", number)
            continue
        if _check_request(report, request, endpoint, number, seen):
            report.prompt_tokens += prompt_tokens(request["body"])
            if request_fails(request, failure_rate, batch_id):
                report.failing.append(report.total - 1)
    _check_file(report, max_requests)
    return report


def _check_file(report: InputReport, max_requests: int) -> None:
    if report.total == 0:
        report.add("empty_file", "The batch input file is empty.", None)
    elif report.total > max_requests:
        report.add(
            "too_many_tasks",
            f"The batch input file contains {report.total} requests, more than the "
            f"limit of {max_requests} requests per batch.",
            None,
        )


def _check_request(report: InputReport, request: dict, endpoint: str, number: int, seen: set[str]) -> bool:
    """Record the line's errors; return True when the line is valid."""
    before = len(report.errors)
    missing = [name for name in REQUIRED_FIELDS if name not in request]
    for name in missing:
        report.add("missing_required_parameter", f"Missing required parameter: '{name}'.", number, name)
    if missing:
        return False
    _check_envelope(report, request, endpoint, number, seen)
    if isinstance(request["body"], dict):
        _check_body(report, request["body"], endpoint, number)
    return len(report.errors) == before


def _check_envelope(report: InputReport, request: dict, endpoint: str, number: int, seen: set[str]) -> None:
    custom_id = request["custom_id"]
    if not isinstance(custom_id, str) or not custom_id:
        report.add("invalid_value", "custom_id must be a non-empty string.", number, "custom_id")
    elif custom_id in seen:
        report.add(
            "duplicate_custom_id",
            f"The custom_id '{custom_id}' appears more than once in the batch "
            "input file; custom_id values must be unique.",
            number,
            "custom_id",
        )
    else:
        seen.add(custom_id)
    if request["method"] != "POST":
        report.add("invalid_value", "Only the POST method is supported in the Batch API.", number, "method")
    if request["url"] != endpoint:
        report.add(
            "url_mismatch", f"The url '{request['url']}' does not match the batch endpoint '{endpoint}'.", number, "url"
        )
    if not isinstance(request["body"], dict):
        report.add("invalid_value", "body must be a JSON object.", number, "body")


def _check_body(report: InputReport, body: dict, endpoint: str, number: int) -> None:
    model = body.get("model")
    if model is None and endpoint not in MODEL_OPTIONAL:
        report.add("missing_required_parameter", "Missing required parameter: 'body.model'.", number, "body.model")
    elif model is not None and report.model is None:
        report.model = model
    elif model is not None and model != report.model:
        report.add(
            "model_mismatch",
            f"The model '{model}' differs from the model '{report.model}' used earlier "
            "in the file; all requests in a batch must use the same model.",
            number,
            "body.model",
        )
    if body.get("stream") is True:
        report.add(
            "unsupported_value",
            "Streaming is not supported in the Batch API ('stream' must not be true).",
            number,
            "body.stream",
        )
