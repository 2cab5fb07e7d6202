"""HTTP plumbing of the API: body checks before every view, Pydantic errors, JSON and streamed responses."""

from collections.abc import Callable, Iterator
from functools import cache
from typing import NoReturn, TypeVar, get_type_hints

from flask import Response, current_app, request, stream_with_context
from pydantic import BaseModel, ValidationError
from werkzeug.exceptions import BadRequest, HTTPException, UnsupportedMediaType

from webapp import json_input
from webapp.errors import ValidationFailed

JSON = "application/json"
MULTIPART = "multipart/form-data"
METHODS_WITH_BODY = {"POST", "PUT", "PATCH"}
M = TypeVar("M", bound=BaseModel)
# A body parsed whole (a job's fields: metadata is at most 16 KB) is small; larger is 413 before it is read.
JSON_BODY_BYTES = 1024 * 1024


def check_body() -> None:
    """Refuse a body the view cannot read before it is parsed: 415 for another media type, 413 for a JSON body
    over JSON_BODY_BYTES, 400 for bad JSON, 422 for JSON past the app's limits (json_input), in a JSON body or a
    form field (which flask-openapi3 tries to parse as JSON, recursively)."""
    kind = _body_kind(request.endpoint)
    if kind is None or request.method not in METHODS_WITH_BODY:
        return
    expected = MULTIPART if kind == "form" else JSON
    if expected == JSON and not request.is_json or expected == MULTIPART and request.mimetype != MULTIPART:
        raise UnsupportedMediaType(f"send the request body as {expected} (got {request.mimetype or 'no type'})")
    if kind == "body":
        request.max_content_length = min(request.max_content_length or JSON_BODY_BYTES, JSON_BODY_BYTES)
        try:
            json_input.loads(request.get_data(cache=True))
        except json_input.JsonRefused as exc:
            raise refused(exc) from None
    elif kind == "form":
        _check_form_fields()


def streams_json(view: Callable) -> Callable:
    """Mark a view that reads its JSON body itself, as it streams in: ``check_body`` checks only its media type."""
    view.streams_json = True  # type: ignore[attr-defined]
    return view


@cache  # by endpoint name: views and their annotations are fixed once the app is built
def _body_kind(endpoint: str | None) -> str | None:
    """How the view reads its body: ``body`` (JSON, parsed for it by flask-openapi3), ``form`` (multipart) or
    ``stream`` (JSON it reads itself), from its annotations and ``streams_json``."""
    view = current_app.view_functions.get(endpoint) if endpoint else None
    if getattr(view, "streams_json", False):
        return "stream"
    hints = get_type_hints(view) if view else {}
    return "body" if "body" in hints else "form" if "form" in hints else None


def _check_form_fields() -> None:
    for name, value in request.form.items(multi=True):
        if value.lstrip()[:1] not in ("[", "{"):
            continue  # Python's json module recurses only into a text that opens an array or an object
        try:
            json_input.check_depth(value)
        except json_input.JsonRefused as exc:
            raise ValidationFailed(
                f"the form field {name!r} is refused: {exc.reason}", details=[{"field": name, "message": exc.reason}]
            ) from None


def refused(exc: json_input.JsonRefused) -> HTTPException | ValidationFailed:
    """The error for a refused JSON body, or one of its items: 400 when it is not JSON, else 422."""
    where = "the request body" if exc.index is None else f"item [{exc.index}] of the request body"
    if exc.code == "invalid_json":
        return BadRequest(f"{where} is not valid JSON: {exc.message}")
    field = "" if exc.index is None else f"[{exc.index}]"
    return ValidationFailed(f"{where} is refused: {exc.message}", details=[{"field": field, "message": exc.message}])


def streamed_items(model: type[M], *, max_items: int, max_item_bytes: int) -> Iterator[M]:
    """The items of the JSON array in the request body, each parsed (``json_input``) and validated by ``model``
    as the body streams in: only one item is held at a time. The first item refused raises, naming its index."""
    texts = json_input.array_items(request.stream, max_items=max_items, max_item_bytes=max_item_bytes)
    try:
        for index, text in enumerate(texts):
            yield _item(model, index, text)
    except json_input.JsonRefused as exc:
        raise refused(exc) from None


def _item(model: type[M], index: int, text: bytes) -> M:
    try:
        return model.model_validate(json_input.loads(text))
    except json_input.JsonRefused as exc:
        exc.index = index
        raise
    except ValidationError as exc:
        raise ValidationFailed.from_pydantic(exc, at=(index,)) from None


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
