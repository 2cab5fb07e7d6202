"""The simulator blueprint: authentication, injected faults, and OpenAI-shaped errors for every failure.

Only whoever holds ``SIMULATOR_API_KEY`` may call it (the app's own provider client sends it as its bearer key):
files hold users' prompts and outputs, and batches are theirs to cancel. The ``/_control`` endpoints, which
inject faults, exist only where ``SIMULATOR_CONTROL`` is on (the test suite) and need the key too.
"""

from __future__ import annotations

from flask import Blueprint, Response, current_app, request
from werkzeug.exceptions import HTTPException

from ..auth import bearer_token, key_matches
from ..routing import api_path, inject_fault, lose_answer, remember_prefix
from .errors import APIError, error_body, standard_error, to_response

bp = Blueprint("simulator", __name__)
CONTROL_PREFIX = "/_control"
ALL_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]


bp.record(remember_prefix)


@bp.before_request
def _authenticate_and_inject_faults() -> None:
    path = api_path()
    control = path.startswith(CONTROL_PREFIX)
    if control and not current_app.config.get("SIMULATOR_CONTROL"):
        raise APIError(404, f"Invalid URL ({request.method} /v1{path})")
    _authenticate()
    if not control:
        inject_fault(standard_error)


def _authenticate() -> None:
    token = bearer_token(request.headers.get("Authorization", ""))
    if token is None:
        raise APIError(
            401,
            "You didn't provide an API key. You need to provide your API key in an "
            "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
        )
    if not key_matches(token, current_app.config.get("SIMULATOR_API_KEY")):
        raise APIError(
            401,
            "Incorrect API key provided. The simulator answers only this installation's own workers.",
            code="invalid_api_key",
        )


@bp.after_request
def _lose_the_answer(response: Response) -> Response:
    return lose_answer(response, lambda status: to_response(standard_error(status)))


@bp.errorhandler(APIError)
def _api_error(exc: APIError):
    return to_response(exc)


@bp.errorhandler(HTTPException)
def _http_error(exc: HTTPException):
    # Werkzeug's own errors (malformed multipart, body too large) keep their status but speak the API's JSON,
    # not the host app's HTML.
    status = exc.code or 500
    body = error_body(status, exc.description if status < 500 else None)["error"]
    return to_response(APIError(status, body["message"], type=body["type"], code=body["code"]))


@bp.errorhandler(Exception)
def _unexpected_error(exc: Exception):
    # A bug here must still reach the SDK as a retryable OpenAI-shaped 500, not the host app's HTML page;
    # the traceback goes to the log, so nothing is hidden.
    current_app.logger.exception("simulator: unhandled error on %s %s", request.method, request.path)
    return to_response(
        APIError(
            500,
            "The simulator failed unexpectedly; its log has the traceback.",
            type="server_error",
            code="server_error",
        )
    )


@bp.route("/", defaults={"anything": ""}, methods=ALL_METHODS)
@bp.route("/<path:anything>", methods=ALL_METHODS)
def unknown_url(anything: str):
    """Answer any path the API does not have the way OpenAI does: 404 ``Invalid URL``."""
    raise APIError(404, f"Invalid URL ({request.method} /v1/{anything})")
