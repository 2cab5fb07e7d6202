"""HTTP plumbing of the API: body checks before every view, Pydantic errors, JSON and streamed responses."""

import json
from collections.abc import Iterator
from functools import cache
from typing import NoReturn, get_type_hints

from flask import Response, current_app, request, stream_with_context
from pydantic import BaseModel, ValidationError
from werkzeug.exceptions import BadRequest, UnsupportedMediaType

from webapp.errors import ValidationFailed

JSON = "application/json"
MULTIPART = "multipart/form-data"
METHODS_WITH_BODY = {"POST", "PUT", "PATCH"}


def check_body() -> None:
    """Refuse a body the view cannot read before it is parsed: 415 for another media type, 400 for bad JSON."""
    expected = _expected_media_type(request.endpoint)
    if expected is None or request.method not in METHODS_WITH_BODY:
        return
    if expected == JSON and not request.is_json or expected == MULTIPART and request.mimetype != MULTIPART:
        raise UnsupportedMediaType(f"send the request body as {expected} (got {request.mimetype or 'no type'})")
    if expected == JSON:
        _parse_strictly(request.get_data(cache=True))


@cache  # by endpoint name: views and their annotations are fixed once the app is built
def _expected_media_type(endpoint: str | None) -> str | None:
    """What the view reads, from its flask-openapi3 annotations: ``body`` is JSON, ``form`` is multipart."""
    view = current_app.view_functions.get(endpoint) if endpoint else None
    hints = get_type_hints(view) if view else {}
    return JSON if "body" in hints else MULTIPART if "form" in hints else None


def _parse_strictly(data: bytes) -> None:
    try:
        json.loads(data, parse_constant=_no_constant)
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise BadRequest(f"the request body is not valid JSON: {exc}") from None


def _no_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not a JSON value")


def validation_error(exc: ValidationError) -> NoReturn:
    """flask-openapi3's hook for Pydantic errors: raise them as the app's 422 error shape."""
    raise ValidationFailed.from_pydantic(exc)


def respond(model: BaseModel, status: int = 200, headers: dict | None = None) -> Response:
    """A Pydantic model as the JSON response."""
    return current_app.response_class(model.model_dump_json(), status=status, headers=headers, mimetype=JSON)


def stream(chunks: Iterator[bytes], mimetype: str, filename: str) -> Response:
    """A download streamed as it is produced, inside the request context (the database session stays open)."""
    headers = {"Content-Disposition": f'attachment; filename="{filename}"'}
    return current_app.response_class(stream_with_context(chunks), mimetype=mimetype, headers=headers)
