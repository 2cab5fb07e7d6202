"""OpenAI-shaped API errors: the exception views raise and the JSON body every failure carries."""

from __future__ import annotations

from flask import Response, jsonify

# status -> (type, code, message) as the real API words them, for faults and failed requests alike.
STANDARD_ERRORS = {
    400: ("invalid_request_error", None, "Invalid request (simulated)."),
    401: ("invalid_request_error", None, "Incorrect API key provided (simulated)."),
    403: ("invalid_request_error", "unsupported_country_region_territory", "Request not allowed (simulated)."),
    404: ("invalid_request_error", None, "Resource not found (simulated)."),
    408: ("server_error", "timeout", "Request timed out (simulated)."),
    409: ("invalid_request_error", "conflict", "Conflict (simulated)."),
    429: ("requests", "rate_limit_exceeded", "Rate limit reached for requests (simulated)."),
    500: (
        "server_error",
        "server_error",
        "The server had an error while processing your request. Sorry about that! (simulated)",
    ),
    502: ("server_error", None, "Bad gateway (simulated)."),
    503: ("server_error", None, "The engine is currently overloaded, please try again later. (simulated)"),
    504: ("server_error", None, "Gateway timeout (simulated)."),
}


class APIError(Exception):
    """A request the simulated API refuses; rendered as ``{"error": {...}}`` with ``status``."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        type: str = "invalid_request_error",
        headers: dict | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.param = param
        self.type = type
        self.headers = headers or {}


def error_body(
    status: int,
    message: str | None = None,
    *,
    code: str | None = None,
    param: str | None = None,
    type: str | None = None,
) -> dict:
    """Return the ``{"error": {message, type, param, code}}`` object for ``status``, filling blanks from the table."""
    default_type, default_code, default_message = STANDARD_ERRORS.get(
        status, ("server_error" if status >= 500 else "invalid_request_error", None, f"HTTP {status} (simulated).")
    )
    return {
        "error": {
            "message": message or default_message,
            "type": type or default_type,
            "param": param,
            "code": code if code is not None else default_code,
        }
    }


def standard_error(status: int) -> APIError:
    """Return the APIError for an injected fault of ``status`` (429 carries ``Retry-After: 0``)."""
    body = error_body(status)["error"]
    headers = {"Retry-After": "0"} if status == 429 else {}
    return APIError(status, body["message"], code=body["code"], type=body["type"], headers=headers)


def not_found(kind: str, object_id: str, param: str = "id") -> APIError:
    return APIError(404, f"No such {kind} object: {object_id}", param=param)


def missing_parameter(name: str) -> APIError:
    return APIError(400, f"Missing required parameter: '{name}'.", code="missing_required_parameter", param=name)


def invalid_value(name: str, message: str) -> APIError:
    return APIError(400, message, code="invalid_value", param=name)


def to_response(exc: APIError) -> Response:
    body = error_body(exc.status, exc.message, code=exc.code, param=exc.param, type=exc.type)
    response = jsonify(body)
    response.status_code = exc.status
    response.headers.update(exc.headers)
    return response
