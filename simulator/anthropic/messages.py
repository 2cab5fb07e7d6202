"""One request's result, derived from its params alone: a simulated Message, or the error the API would give."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from ..markers import drawn_to_fail, find_markers, requested_status
from ..schema import instance_for
from ..texts import CHARS_PER_TOKEN, body_hash, content_text, simulated_text, text_tokens
from .errors import error_object, error_type

CACHE_MINIMUM = 1024  # prompt tokens below which nothing is cached
CACHE_BLOCK = 128
# Models that refuse a forced tool choice (``tool_choice`` of type ``tool`` or ``any``) with a 400, per their
# migration guides (platform.claude.com, Claude Sonnet 5.5 and Opus 5.5, 2026): structured output goes through
# ``output_config.format`` there.
NO_FORCED_TOOLS = ("claude-sonnet-5-5", "claude-opus-5-5", "claude-fable-5-1")


@dataclass(frozen=True)
class Failure:
    """How a request fails: the API's error type and message."""

    type: str
    message: str


def prompt_texts(params: dict) -> list[str]:
    """The prompt's text: the top-level system and every message."""
    texts = [content_text(params.get("system"))]
    for message in params.get("messages") or []:
        if isinstance(message, dict):
            texts.append(content_text(message.get("content")))
    return texts


def prompt_tokens(params: dict) -> int:
    return max(1, sum(len(text) for text in prompt_texts(params)) // CHARS_PER_TOKEN)


def planned_failure(params: object, custom_id: str, batch_id: str, failure_rate: float) -> Failure | None:
    """Why the request fails (checked when it runs, as the real API checks a batch's params), or None."""
    if not isinstance(params, dict):
        return Failure("invalid_request_error", "params: Input should be a valid dictionary")
    for name, ok in (
        ("model", isinstance(params.get("model"), str) and params.get("model")),
        ("max_tokens", type(params.get("max_tokens")) is int),
        ("messages", isinstance(params.get("messages"), list) and params.get("messages")),
    ):
        if not ok:
            return Failure("invalid_request_error", f"{name}: Field required")
    if params["max_tokens"] < 1:
        return Failure("invalid_request_error", "max_tokens: Input should be greater than or equal to 1")
    if params["model"] in NO_FORCED_TOOLS and (params.get("tool_choice") or {}).get("type") in ("tool", "any"):
        return Failure("invalid_request_error", f"Forced tool use is not supported on {params['model']}.")
    return _marked_failure(params, custom_id, batch_id, failure_rate)


def _marked_failure(params: dict, custom_id: str, batch_id: str, failure_rate: float) -> Failure | None:
    markers = find_markers("\n".join(prompt_texts(params)))
    status = requested_status(markers)
    if status is not None:
        return Failure(error_type(status), f"Simulated failure: HTTP {status}.")
    if code := markers.get("error"):
        return Failure(code, f"Simulated failure: {code}.")
    if drawn_to_fail(batch_id, custom_id, failure_rate):
        return Failure("api_error", "Internal server error (simulated).")
    return None


def errored_result(failure: Failure, key: str) -> dict:
    return {"type": "errored", "error": error_object(failure.type, failure.message, "req_sim" + key[:24])}


def simulated_message(params: dict, key: str) -> dict:
    """The Message the model would answer ``params`` with: a forced tool's input, JSON of the requested format,
    or text; cut at ``max_tokens``. ``key`` seeds the ids."""
    tool = forced_tool(params)
    if tool is not None:
        value = instance_for(tool.get("input_schema") or {}, body_hash(params))
        block = {"type": "tool_use", "id": f"toolu_{key[:24]}", "name": tool.get("name"), "input": value}
        content, stop, output = [block], "tool_use", text_tokens(json.dumps(value))
    else:
        text, stop = _fitted(reply_text(params), params["max_tokens"])
        content, output = [{"type": "text", "text": text}], text_tokens(text)
    return {
        "id": f"msg_{key[:24]}",
        "type": "message",
        "role": "assistant",
        "model": params["model"],
        "content": content,
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": usage(params, output),
    }


def forced_tool(params: dict) -> dict | None:
    """The tool a ``tool_choice`` of type ``tool`` (by name) or ``any`` (the first) makes the model call."""
    choice = params.get("tool_choice") or {}
    tools = [t for t in params.get("tools") or [] if isinstance(t, dict)]
    if choice.get("type") == "tool":
        return next((t for t in tools if t.get("name") == choice.get("name")), None)
    if choice.get("type") == "any" and tools:
        return tools[0]
    return None


def reply_text(params: dict) -> str:
    """JSON satisfying ``output_config.format``'s schema when one is given, else the simulated reply."""
    output_format = (params.get("output_config") or {}).get("format") or {}
    if output_format.get("type") == "json_schema":
        return json.dumps(instance_for(output_format.get("schema") or {}, body_hash(params)))
    return simulated_text(params)


def _fitted(text: str, limit: int) -> tuple[str, str]:
    if text_tokens(text) <= limit:
        return text, "end_turn"
    return text[: limit * CHARS_PER_TOKEN], "max_tokens"


def usage(params: dict, output_tokens: int) -> dict:
    """Token counts as the API gives them: ``input_tokens`` excludes the cached part, which is read from the cache
    or written to it (decided by the prompt's hash) when the request marks a ``cache_control`` breakpoint."""
    prompt = prompt_tokens(params)
    cached = (prompt // 2) // CACHE_BLOCK * CACHE_BLOCK if prompt >= CACHE_MINIMUM and _caches(params) else 0
    read = cached if int(body_hash(params)[0], 16) % 2 else 0
    return {
        "input_tokens": prompt - cached,
        "output_tokens": output_tokens,
        "cache_creation_input_tokens": cached - read,
        "cache_read_input_tokens": read,
        "service_tier": "batch",
    }


def _caches(value: object) -> bool:
    """Whether a ``cache_control`` breakpoint is set anywhere in the request."""
    if isinstance(value, dict):
        return "cache_control" in value or any(_caches(v) for v in value.values())
    return isinstance(value, list) and any(_caches(v) for v in value)


def result_key(batch_id: str, custom_id: str) -> str:
    """A seed for one request's ids, stable across processes."""
    return hashlib.sha256(f"{batch_id}\x00{custom_id}".encode()).hexdigest()
