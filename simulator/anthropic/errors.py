"""Anthropic-shaped API errors: ``{"type": "error", "error": {"type", "message"}, "request_id"}`` with a status."""

from __future__ import annotations

import secrets

from flask import Response, jsonify

# status -> (error type, message) as the real API words them, for faults and refused calls alike.
STANDARD_ERRORS = {
    400: ("invalid_request_error", "Invalid request (simulated)."),
    401: ("authentication_error", "invalid x-api-key (simulated)"),
    403: ("permission_error", "Your API key does not have permission to use the specified resource (simulated)."),
    404: ("not_found_error", "The requested resource could not be found (simulated)."),
    409: ("conflict_error", "Conflict (simulated)."),
    413: ("request_too_large", "Request exceeds the maximum allowed number of bytes (simulated)."),
    429: ("rate_limit_error", "Number of requests has exceeded your rate limit (simulated)."),
    500: ("api_error", "Internal server error (simulated)."),
    504: ("timeout_error", "Request timed out (simulated)."),
    529: ("overloaded_error", "Overloaded (simulated)."),
}


def error_type(status: int) -> str:
    """The error type the API gives a failure of HTTP ``status``."""
    known = STANDARD_ERRORS.get(status)
    return known[0] if known else ("api_error" if status >= 500 else "invalid_request_error")


class APIError(Exception):
    """A call the simulated API refuses; rendered as Anthropic's error object with ``status``."""

    def __init__(self, status: int, message: str, *, type: str | None = None, headers: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.type = status, message, type or error_type(status)
        self.headers = headers or {}


def standard_error(status: int) -> APIError:
    """The APIError for an injected fault of ``status`` (a 429 or 529 carries ``retry-after: 0``)."""
    _, message = STANDARD_ERRORS.get(status, (None, f"HTTP {status} (simulated)."))
    headers = {"retry-after": "0"} if status in (429, 529) else {}
    return APIError(status, message, headers=headers)


def not_found(object_id: str) -> APIError:
    return APIError(404, f"Message Batch {object_id} not found" if object_id else "Not Found")


def request_id() -> str:
    return "req_sim" + secrets.token_hex(12)


def error_object(type: str, message: str, request: str | None = None) -> dict:
    """The body of an error answer, also the ``error`` of an errored result."""
    return {"type": "error", "error": {"type": type, "message": message}, "request_id": request or request_id()}


def to_response(exc: APIError) -> Response:
    body = error_object(exc.type, exc.message)
    response = jsonify(body)
    response.status_code = exc.status
    response.headers.update({"request-id": body["request_id"], **exc.headers})
    return response
