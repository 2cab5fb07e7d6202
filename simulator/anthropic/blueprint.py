"""The Anthropic dialect's blueprint: authentication, ``anthropic-version``, injected faults, and Anthropic-shaped
errors for every failure.

The key is the simulator's own (``SIMULATOR_API_KEY``), checked as the OpenAI dialect checks its bearer key, so
only this installation's workers get in. It may come as ``x-api-key`` (the API's documented header) or as
``Authorization: Bearer`` (what the ``anthropic`` SDK 2.x sends for an ``api_key``). Faults are the shared ones
(``/_control`` on the OpenAI dialect), matched against paths below this dialect's ``/v1``: ``/messages/batches``,
``/messages/batches/*/results``.
"""

from __future__ import annotations

from flask import Blueprint, Response, current_app, request
from werkzeug.exceptions import HTTPException

from ..auth import bearer_token, key_matches
from ..routing import inject_fault, lose_answer, remember_prefix
from .errors import APIError, standard_error, to_response

bp = Blueprint("simulator_anthropic", __name__)
ALL_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]

bp.record(remember_prefix)


@bp.before_request
def _authenticate_and_inject_faults() -> None:
    key = request.headers.get("x-api-key") or bearer_token(request.headers.get("Authorization", ""))
    if not key:
        raise APIError(401, "x-api-key header is required")
    if not key_matches(key, current_app.config.get("SIMULATOR_API_KEY")):
        raise APIError(401, "invalid x-api-key: the simulator answers only this installation's own workers")
    if not request.headers.get("anthropic-version"):
        raise APIError(400, "anthropic-version: header is required")
    inject_fault(standard_error)


@bp.after_request
def _lose_the_answer(response: Response) -> Response:
    return lose_answer(response, lambda status: to_response(standard_error(status)))


@bp.errorhandler(APIError)
def _api_error(exc: APIError):
    return to_response(exc)


@bp.errorhandler(HTTPException)
def _http_error(exc: HTTPException):
    status = exc.code or 500
    message = exc.description if status < 500 and exc.description else "Internal server error"
    return to_response(APIError(status, message))


@bp.errorhandler(Exception)
def _unexpected_error(exc: Exception):
    # A bug here must reach the SDK as a retryable Anthropic-shaped 500, not the host app's HTML page.
    current_app.logger.exception("simulator: unhandled error on %s %s", request.method, request.path)
    return to_response(APIError(500, "The simulator failed unexpectedly; its log has the traceback."))


@bp.route("/", defaults={"anything": ""}, methods=ALL_METHODS)
@bp.route("/<path:anything>", methods=ALL_METHODS)
def unknown_url(anything: str):
    raise APIError(404, "Not Found")
