"""One output- or error-file line per request: success, HTTP failure, or non-HTTP failure."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from ..markers import drawn_to_fail, find_markers, requested_status
from ..texts import prompt_texts
from .errors import error_body
from .responses import simulated_response

ERROR_MESSAGES = {
    "batch_expired": "This request could not be executed before the completion window expired.",
    "batch_cancelled": "This request was not executed because the batch was cancelled.",
}


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode("utf-8")).hexdigest()


def line_ids(batch_id: str, custom_id: str) -> tuple[str, str]:
    """Return the (``batch_req_...`` line id, ``request_id``) of a request: stable across processes."""
    digest = _digest(batch_id, custom_id)
    return f"batch_req_{digest[:32]}", digest[32:64]


# Parameters each endpoint cannot do without: a request lacking one fails alone, with a 400, as it would live.
REQUIRED_BODY_PARAMS = {
    "/v1/chat/completions": "messages",
    "/v1/completions": "prompt",
    "/v1/embeddings": "input",
    "/v1/moderations": "input",
}


@dataclass(frozen=True)
class Failure:
    """How one request fails: an HTTP ``status`` (error in the response body) or a non-HTTP ``code``."""

    status: int | None = None
    code: str | None = None
    message: str | None = None
    param: str | None = None


def planned_failure(request: dict, failure_rate: float, batch_id: str) -> Failure | None:
    """Return how the request is meant to fail in batch ``batch_id``, or None when it succeeds."""
    body = request.get("body") or {}
    required = REQUIRED_BODY_PARAMS.get(str(request.get("url")))
    if required and required not in body:
        return Failure(400, "missing_required_parameter", f"Missing required parameter: '{required}'.", required)
    markers = find_markers("\n".join(prompt_texts(body)))
    status = requested_status(markers)
    if status is not None:
        return Failure(status=status)
    if markers.get("error"):
        return Failure(code=markers["error"])
    if drawn_to_fail(batch_id, str(request.get("custom_id")), failure_rate):
        return Failure(status=500)
    return None


def request_fails(request: dict, failure_rate: float, batch_id: str) -> bool:
    return planned_failure(request, failure_rate, batch_id) is not None


def error_output(batch_id: str, custom_id: str, code: str, message: str | None = None) -> dict:
    """Return a non-HTTP failure line (``response`` null, ``error`` set), e.g. ``batch_expired``."""
    line_id, _ = line_ids(batch_id, custom_id)
    return {
        "id": line_id,
        "custom_id": custom_id,
        "response": None,
        "error": {"code": code, "message": message or ERROR_MESSAGES.get(code, f"Simulated failure: {code}.")},
    }


def simulated_output(request: dict, *, batch_id: str, failure_rate: float = 0.0, created: int = 0) -> dict:
    """Return the output/error-file line the simulator writes for one input line ``request``.

    Success when ``line["response"]["status_code"] == 200 and line["error"] is None``.
    """
    custom_id = request["custom_id"]
    line_id, request_id = line_ids(batch_id, custom_id)
    failure = planned_failure(request, failure_rate, batch_id)
    if failure is not None and failure.code is not None and failure.status is None:
        return error_output(batch_id, custom_id, failure.code)
    if failure is not None and failure.status is not None:
        status = failure.status
        body = error_body(status, failure.message, code=failure.code, param=failure.param)
    else:
        status = 200
        body = simulated_response(
            request["url"], request["body"], key=_digest(batch_id, custom_id, "body"), created=created
        )
    return {
        "id": line_id,
        "custom_id": custom_id,
        "response": {"status_code": status, "request_id": request_id, "body": body},
        "error": None,
    }


def is_success(line: dict) -> bool:
    return line.get("error") is None and (line.get("response") or {}).get("status_code") == 200
