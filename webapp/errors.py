"""Error responses: one JSON shape under /api and for JSON clients, the site's layout for browsers."""

from __future__ import annotations

import logging

from flask import Flask, jsonify, render_template, request
from pydantic import ValidationError as PydanticError
from werkzeug.exceptions import HTTPException, InternalServerError

log = logging.getLogger(__name__)
CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
    500: "internal_error",
    503: "unavailable",
}


class AppError(Exception):
    """An expected failure a service reports to its caller: status, machine code, message, field details."""

    status = 400
    code = "bad_request"

    def __init__(
        self,
        message: str,
        *,
        details: list[dict] | None = None,
        status: int | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message)
        self.message = message
        self.details = details or []
        self.headers = headers or {}
        if status is not None:
            self.status = status
        if code is not None:
            self.code = code


class NotFound(AppError):
    status, code = 404, "not_found"


class Conflict(AppError):
    status, code = 409, "conflict"


class ValidationFailed(AppError):
    status, code = 422, "validation_error"

    @classmethod
    def from_pydantic(cls, exc: PydanticError, at: tuple = ()) -> ValidationFailed:
        """Pydantic's errors as field details: dotted paths, list positions as ``[i]`` (``[2].body``); ``at``:
        where the validated value sits (``(2,)`` for the third item of a list validated one item at a time)."""
        details = [{"field": field_path((*at, *error["loc"])), "message": error["msg"]} for error in exc.errors()]
        first = details[0] if details else {"field": "", "message": "invalid input"}
        more = f" (and {len(details) - 1} more)" if len(details) > 1 else ""
        where = f"{first['field']}: " if first["field"] else ""
        return cls(f"invalid input: {where}{first['message']}{more}", details=details)


def field_path(loc: tuple) -> str:
    """``("items", 2, "body")`` -> ``items[2].body``."""
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def error_body(code: str, message: str, details: list[dict] | None = None) -> dict:
    body: dict[str, object] = {"code": code, "message": message}
    if details:
        body["details"] = details
    return {"error": body}


def wants_json() -> bool:
    if request.path.startswith("/api/") or request.path == "/health":  # JSON endpoints answer errors in JSON
        return True
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json"


def init_app(app: Flask) -> None:
    @app.errorhandler(AppError)
    def _app_error(exc: AppError):
        response, status = _respond(exc.status, exc.code, exc.message, exc.details)
        return response, status, exc.headers

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        response, status = _respond(exc.code or 500, CODES.get(exc.code or 500, "error"), exc.description or exc.name)
        return response, status, _kept_headers(exc)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        log.exception("unhandled error")
        return _respond(500, "internal_error", InternalServerError.description)


def _kept_headers(exc: HTTPException) -> list[tuple[str, str]]:
    """Headers the status needs (Allow on 405, Retry-After on 429/503), without the default Content-Type."""
    return [(name, value) for name, value in exc.get_headers() if name.lower() != "content-type"]


def _respond(status: int, code: str, message: str, details: list[dict] | None = None):
    if wants_json():
        return jsonify(error_body(code, message, details)), status
    return render_template("errors/error.html", status=status, code=code, message=message), status
