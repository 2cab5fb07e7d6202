"""Reading provider output and error lines: success, error, usage and the output text of each result."""

from __future__ import annotations

import json
from typing import Any, NamedTuple

import orjson

# Failures worth sending again in a follow-up batch; anything else (4xx, invalid input) is permanent.
RETRYABLE_CODES = frozenset(
    {
        "server_error",
        "internal_error",
        "batch_expired",
        "rate_limit_exceeded",
        "timeout",
        "service_unavailable",
        "missing_result",
        "engine_overloaded",
    }
)
MISSING_RESULT = "missing_result"
MAX_INT = 10**9  # token counts and status codes beyond this are not believable: read as absent
CANCELLED = "cancelled"  # the code a request stopped by the job's cancel keeps beside its status
CANCELLED_UNSENT = "the job was cancelled before this request was sent"
CANCELLED_AT_PROVIDER = "the job was cancelled before the provider ran this request"
PROVIDER_CANCELLED = "batch_cancelled"  # OpenAI's code for a request its batch's cancel stopped


class Result(NamedTuple):
    """One result line, parsed. A named tuple: made a million times by an ingest, it costs less than half of a
    frozen dataclass (which sets each field through ``object.__setattr__``)."""

    custom_id: str
    succeeded: bool
    status_code: int | None
    body: dict | None
    error_code: str | None
    error: str | None
    provider_request_id: str | None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    output_text: str | None = None

    @property
    def retryable(self) -> bool:
        return not self.succeeded and is_retryable(self.status_code, self.error_code)


def is_retryable(status_code: int | None, error_code: str | None) -> bool:
    if status_code is not None and (status_code in (408, 409, 429) or status_code >= 500):
        return True
    return error_code in RETRYABLE_CODES


class BadResultLine(ValueError):
    """A line of a result file that is not a result object."""


def parse_result_line(text: str | bytes) -> Result:
    """Parse one output/error file line; success means ``status_code == 200`` and no error."""
    try:
        obj = orjson.loads(text)
    except ValueError as exc:
        raise BadResultLine(f"not JSON: {exc}") from None
    if not isinstance(obj, dict) or not isinstance(obj.get("custom_id"), str):
        raise BadResultLine("no custom_id")
    response = found if isinstance(found := obj.get("response"), dict) else {}
    error = found if isinstance(found := obj.get("error"), dict) else None
    status = found if type(found := response.get("status_code")) is int and 0 <= found < MAX_INT else None
    body = found if isinstance(found := response.get("body"), dict) else None
    succeeded = status == 200 and not error
    error_code, message = (None, None) if succeeded else _error(status, body, error)
    request_id = response.get("request_id")
    return Result(
        custom_id=obj["custom_id"],
        succeeded=succeeded,
        status_code=status,
        body=body,
        error_code=error_code[:64] if error_code else None,
        error=message,
        provider_request_id=str(request_id)[:100] if request_id is not None else None,
        output_text=output_text(body) if succeeded else None,
        **usage(body),
    )


def _error(status: int | None, body: dict | None, error: dict | None) -> tuple[str, str]:
    if error:
        return str(error.get("code") or "error"), str(error.get("message") or "")
    detail = found if isinstance(found := (body or {}).get("error"), dict) else {}
    code = detail.get("code") or detail.get("type") or (f"http_{status}" if status else "error")
    return str(code), str(detail.get("message") or (f"HTTP {status}" if status else "no response"))


def usage(body: dict | None) -> dict[str, int]:
    """Token usage of a response body, for chat/completions/embeddings and responses alike."""
    data = (body.get("usage") if body else None) or {}
    if not isinstance(data, dict):
        return {}
    get = data.get  # looked up once: this runs for every result of an ingest
    prompt = _int(get("prompt_tokens", get("input_tokens")))
    completion = _int(get("completion_tokens", get("output_tokens")))
    prompt_details = get("prompt_tokens_details") or get("input_tokens_details")
    completion_details = get("completion_tokens_details") or get("output_tokens_details")
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": _int(get("total_tokens")) or prompt + completion,
        "cached_tokens": _int(prompt_details.get("cached_tokens")) if isinstance(prompt_details, dict) else 0,
        "reasoning_tokens": (
            _int(completion_details.get("reasoning_tokens")) if isinstance(completion_details, dict) else 0
        ),
    }


def output_text(body: dict | None) -> str | None:
    """The text a person wants from a response: message content, output text, completion text."""
    if not body:
        return None
    if isinstance(choices := body.get("choices"), list) and choices:
        choice = choices[0] if isinstance(choices[0], dict) else {}
        message = found if isinstance(found := choice.get("message"), dict) else {}
        content = message.get("content")
        if content is not None:
            return content if isinstance(content, str) else json.dumps(content, ensure_ascii=False)
        if message.get("tool_calls"):
            return json.dumps(message["tool_calls"], ensure_ascii=False)
        return message.get("refusal") or choice.get("text")
    if isinstance(body.get("output"), list):
        return (
            "".join(
                part.get("text", "")
                for item in body["output"]
                if isinstance(item, dict)
                for part in item.get("content") or []
                if isinstance(part, dict) and part.get("type") == "output_text"
            )
            or None
        )
    if isinstance(body.get("results"), list) and body["results"]:  # moderations
        first = body["results"][0]
        return "flagged" if isinstance(first, dict) and first.get("flagged") is True else "not flagged"
    return None


def _int(value: Any) -> int:
    """A JSON integer that fits an ``integer`` column (not a boolean, not a float), else 0."""
    return value if type(value) is int and -MAX_INT < value < MAX_INT else 0
