"""Errors in an analyst's words: what a request's error code means and what to do, and JSON Schema mistakes.

The provider's codes (``server_error``, ``batch_expired``, ``context_length_exceeded``) and a validator's
messages (``'string' is not of type 'object', 'boolean'``) are kept as the technical detail, shown one click away.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from jsonschema import SchemaError

from webapp.services.results import is_retryable


class Worded(str):
    """A message for people that keeps the technical text it was made from in ``detail``."""

    detail: str

    def __new__(cls, words: str, detail: str) -> Worded:
        message = super().__new__(cls, words)
        message.detail = detail
        return message


@dataclass(frozen=True)
class ErrorWords:
    """One error code explained: what happened, whether sending the request again may help, and what to do."""

    code: str
    summary: str
    temporary: bool
    advice: str


TEMPORARY_ADVICE = "This is usually temporary: press “Retry failed” to send it again."
PERMANENT_ADVICE = (
    "Sending it again unchanged will fail the same way: correct the request (see the technical detail) "
    "and run it in a new job."
)
# code -> (what happened, what to do; None: the advice that suits a temporary or a permanent error)
CODES: dict[str, tuple[str, str | None]] = {
    "server_error": ("The provider's servers had an internal error.", None),
    "internal_error": ("The provider's servers had an internal error.", None),
    "service_unavailable": ("The provider was overloaded or down for a moment.", None),
    "engine_overloaded": ("The model was overloaded.", None),
    "rate_limit_exceeded": ("The provider's rate limit was reached.", None),
    "timeout": ("The provider took too long to answer.", None),
    "batch_expired": ("The provider did not get to this request within its 24-hour window.", None),
    "missing_result": ("The provider returned no result for this request.", None),
    "insufficient_quota": (
        "The provider account has run out of credit.",
        "Add credit to the provider account, then press “Retry failed”.",
    ),
    "cancelled": (
        "The job was cancelled before this request ran.",
        "Nothing is wrong with the request: “Send the cancelled requests again” runs it.",
    ),
    "batch_cancelled": (
        "The job was cancelled before this request ran.",
        "Nothing is wrong with the request: “Send the cancelled requests again” runs it.",
    ),
    "context_length_exceeded": (
        "The request is longer than the model can read.",
        "Shorten the text or the prompt template, or choose a model that reads more, and run it in a new job.",
    ),
    "content_policy_violation": (
        "The provider's content filter refused the request.",
        "Change the text; unchanged, it is refused again.",
    ),
    "content_filter": (
        "The provider's content filter refused the request.",
        "Change the text; unchanged, it is refused again.",
    ),
    "model_not_found": (
        "The provider does not offer this model, or not to this API key.",
        "Check the model's name, then run the requests in a new job.",
    ),
    "invalid_api_key": (
        "The provider refused the API key.",
        "Ask the administrator to check the key (OPENAI_API_KEY).",
    ),
    "provider_rejected": ("The provider refused the batch this request was in.", None),
    "batch_failed": ("The provider refused the batch this request was in.", None),
    "token_limit_exceeded": (
        "The model's limit of queued tokens at the provider was full.",
        "Nothing to do: the batch is sent again once capacity frees up.",
    ),
    "invalid_request": ("The provider found the request malformed.", None),
    "invalid_request_error": ("The provider found the request malformed.", None),
    "invalid_value": ("The provider found a value in the request it does not accept.", None),
    "missing_required_parameter": ("The request lacks a field the provider requires.", None),
}
HTTP_WORDS = {
    400: "The provider found the request malformed.",
    401: "The provider refused the API key.",
    403: "The provider does not allow this request for the API key.",
    404: "The provider does not know what the request asks for (often the model).",
    408: "The provider took too long to answer.",
    409: "The provider was busy with a conflicting request.",
    429: "The provider's rate limit was reached.",
}


def explain(code: str | None, status_code: int | None = None) -> ErrorWords:
    """The words for a request's error ``code`` (and HTTP status, when there was a response)."""
    code = code or "error"
    if status_code is None and code.startswith("http_") and code[5:].isdigit():
        status_code = int(code[5:])
    temporary = is_retryable(status_code, code)
    summary, advice = CODES.get(code, (None, None))
    if summary is None:
        summary = _http_summary(status_code) or f"The provider reported the error “{code}”."
    return ErrorWords(code, summary, temporary, advice or (TEMPORARY_ADVICE if temporary else PERMANENT_ADVICE))


def _http_summary(status_code: int | None) -> str | None:
    if status_code is None:
        return None
    if status_code >= 500:
        return "The provider's servers had an internal error."
    return HTTP_WORDS.get(status_code)


# --- JSON Schema ---------------------------------------------------------------------------------------

TYPE_WORDS = {
    "object": "an object in braces { }",
    "array": "a list in brackets [ ]",
    "string": "text in quotes",
    "number": "a number",
    "integer": "a whole number",
    "boolean": "true or false",
    "null": "null",
}
SCHEMA_TYPES = ("string", "number", "integer", "boolean", "object", "array", "null")
A_SCHEMA = 'a schema in braces, such as {"type": "string"}'


def schema_error(exc: SchemaError) -> Worded:
    """A JSON Schema mistake in words (where it is, what is expected there); the validator's message as detail."""
    path = list(exc.absolute_path)
    where = "the schema" if not path else "“" + " → ".join(str(part) for part in path) + "”"
    technical = f"{exc.message} (at {'/'.join(map(str, path)) or 'the top'}, rule {exc.validator})"
    return Worded(f"The JSON schema is not valid: {_expected(exc, path, where)}", technical)


def _expected(exc: SchemaError, path: list, where: str) -> str:
    if path and path[-1] == "type" and exc.validator in ("anyOf", "enum", "type"):
        return f"{where} names {_shown(exc.instance)}; a type is one of {', '.join(SCHEMA_TYPES)}."
    if exc.validator == "type":
        wanted = exc.validator_value if isinstance(exc.validator_value, list) else [exc.validator_value]
        expected = " or ".join(TYPE_WORDS.get(kind) or str(kind) for kind in wanted)
        if set(wanted) == {"object", "boolean"}:  # where the rules expect a (sub)schema
            expected = A_SCHEMA
        return f"{where} should be {expected}, not {_shown(exc.instance)}."
    if exc.validator == "enum":
        choices = ", ".join(json.dumps(value) for value in exc.validator_value)
        return f"{where} is {_shown(exc.instance)}, which is not one of {choices}."
    if exc.validator in ("minimum", "exclusiveMinimum"):
        return f"{where} is {_shown(exc.instance)}, which is too small here."
    if exc.validator == "uniqueItems":
        return f"{where} lists the same item twice."
    if exc.validator == "minItems":
        return f"{where} is an empty list; it needs at least one item."
    return f"{where} does not follow the JSON Schema rules (see the technical detail)."


def _shown(value: Any) -> str:
    """A value from the user's schema as they would recognise it."""
    if isinstance(value, str):
        return f"the text {json.dumps(value, ensure_ascii=False)}"
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, int | float):
        return f"the number {value}"
    text = json.dumps(value, ensure_ascii=False)
    kind = "an object" if isinstance(value, dict) else "a list"
    return f"{kind} {text if len(text) <= 60 else text[:57] + '…'}"
