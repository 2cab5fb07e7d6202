"""Input no view has to check: ids in URLs fit their columns, and no query or form value holds a NUL."""

from __future__ import annotations

from flask import Flask, request
from werkzeug.exceptions import NotFound
from werkzeug.routing import IntegerConverter, ValidationError

from webapp.errors import ValidationFailed
from webapp.models.base import MAX_BIG_ID, MAX_ID

FORM_TYPES = ("multipart/form-data", "application/x-www-form-urlencoded")


class IdConverter(IntegerConverter):
    """``<int:...>``: an id of an Integer key; a larger number is not found (404) instead of failing in SQL."""

    largest = MAX_ID

    def __init__(self, map, **arguments) -> None:
        arguments.setdefault("max", self.largest)
        super().__init__(map, **arguments)

    def to_python(self, value: str) -> int:
        # Werkzeug skips a rule whose converter refuses the value, and then answers 405 when a rule for another
        # method matched the path (DELETE /api/v1/jobs/<too large> said "use GET or PUT"): no id, no resource.
        try:
            return super().to_python(value)
        except ValidationError:
            raise NotFound(f"no such id: ids here go up to {self.max:,}") from None


class BigIdConverter(IdConverter):
    """``<bigint:...>``: an id of a BigIntPK key (requests, responses)."""

    largest = MAX_BIG_ID


def refuse_nul() -> None:
    """422 for a NUL in any query or form value, field name or file name: no text column can store one
    (PostgreSQL refuses it), so it would otherwise fail deep in a view."""
    values: list[tuple[str, str | None]] = list(request.args.items(multi=True))
    if request.mimetype in FORM_TYPES:  # other bodies are the views' to read (the API streams some)
        values += [*request.form.items(multi=True), *((n, f.filename) for n, f in request.files.items(multi=True))]
    for name, value in values:
        if "\x00" in (name or "") or "\x00" in (value or ""):
            field = (name or "").replace("\x00", "")
            raise ValidationFailed(
                f"the field {field!r} contains a NUL character, which cannot be stored",
                details=[{"field": field, "message": "contains a NUL character"}],
            )


def init_app(app: Flask) -> None:
    """Install the converters before any route is added (a rule binds its converter when it is added)."""
    app.url_map.converters["int"] = IdConverter
    app.url_map.converters["bigint"] = BigIdConverter
    app.before_request(refuse_nul)
