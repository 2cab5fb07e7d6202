"""OpenAI's chat format and Anthropic's Messages format, each way: a stored chat body as Messages params, and a
message batch result as an OpenAI output line, so that ingest, exports, retries and costs read it as any other.

Requests: system and developer messages become the top-level ``system``; ``max_tokens`` (required by Anthropic)
is the body's limit or DEFAULT_MAX_TOKENS; ``temperature`` is capped at Anthropic's 1.0; ``stop`` becomes
``stop_sequences``; function tools, tool calls and tool results take Anthropic's shapes; a ``json_schema`` response
format becomes structured output (``output_config.format``), or on a model older than Claude 4.5, which has no
structured output, a forced tool whose input is the answer. What has no Anthropic counterpart (``n``, ``seed``,
penalties, ``logprobs``) is left out; what cannot be translated is passed on as it is, for the API to refuse that
one request.

Results: text (or the structured tool's input, as JSON) becomes ``choices[0].message.content``; usage counts the
prompt as OpenAI does (uncached input, cache reads and cache writes together in ``prompt_tokens``, reads in
``cached_tokens``, writes in ``cache_write_tokens``); an error keeps Anthropic's type as its code, under the HTTP
status the API gives that type, so 429, 5xx and 529 are sent again and the others are not.
"""

from __future__ import annotations

import json
from typing import Any

DEFAULT_MAX_TOKENS = 4096  # a body with no limit of its own (and a job without max_tokens) gets this
MAX_TEMPERATURE = 1.0
STRUCTURED_TOOL = "structured_output"
# Models without structured output (before Claude 4.5): a JSON schema is a forced tool there. Newer models have
# it, and the newest refuse a forced tool (Claude Sonnet 5.5 and Opus 5.5 migration guides, platform.claude.com).
WITHOUT_OUTPUT_FORMAT = (
    "claude-2",
    "claude-instant",
    "claude-3",
    "claude-sonnet-4-0",
    "claude-sonnet-4-2025",
    "claude-opus-4-0",
    "claude-opus-4-1",
    "claude-opus-4-2025",
)
JSON_OBJECT_INSTRUCTION = "Answer with a single JSON object and nothing else."
FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "refusal": "content_filter",
    "tool_use": "tool_calls",
}
# The HTTP status the Messages API answers each error type with; an unknown type counts as a server error.
ERROR_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "conflict_error": 409,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}
UNFINISHED = {
    "canceled": ("batch_cancelled", "This request was not run: its batch was cancelled."),
    "expired": ("batch_expired", "This request could not be run before the batch expired."),
}
EFFORTS = {"minimal": "low", "low": "low", "medium": "medium", "high": "high"}


# --- requests -------------------------------------------------------------------------------------------------


def to_params(body: dict[str, Any]) -> dict[str, Any]:
    """The Messages API params for a chat-completions ``body``."""
    system, messages = _split_system(body.get("messages") or [])
    params: dict[str, Any] = {
        "model": body.get("model"),
        "max_tokens": _max_tokens(body),
        "messages": _merged([_message(m) for m in messages]),
    }
    if isinstance(body.get("temperature"), int | float):
        params["temperature"] = min(float(body["temperature"]), MAX_TEMPERATURE)
    if isinstance(body.get("top_p"), int | float):
        params["top_p"] = body["top_p"]
    if stop := body.get("stop"):
        params["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    if isinstance(body.get("user"), str):
        params["metadata"] = {"user_id": body["user"]}
    if effort := EFFORTS.get(str(body.get("reasoning_effort"))):
        params.setdefault("output_config", {})["effort"] = effort
    _add_tools(params, body)
    system = _add_response_format(params, body.get("response_format"), system)
    if system:
        params["system"] = "\n\n".join(system)
    return params


def _max_tokens(body: dict[str, Any]) -> int:
    for key in ("max_completion_tokens", "max_tokens"):
        if type(body.get(key)) is int:
            return body[key]
    return DEFAULT_MAX_TOKENS


def _split_system(messages: list) -> tuple[list[str], list[dict]]:
    system = [
        _text(m.get("content")) for m in messages if isinstance(m, dict) and m.get("role") in ("system", "developer")
    ]
    rest = [m for m in messages if not (isinstance(m, dict) and m.get("role") in ("system", "developer"))]
    return [text for text in system if text], rest


def _text(content: object) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(str(p.get("text", "")) for p in content if isinstance(p, dict) and p.get("type") == "text")
    return ""


def _message(message: object) -> dict[str, Any]:
    if not isinstance(message, dict):
        return {"role": "user", "content": str(message)}
    role = message.get("role")
    if role == "tool":
        result = {"type": "tool_result", "tool_use_id": message.get("tool_call_id")}
        return {"role": "user", "content": [{**result, "content": _text(message.get("content"))}]}
    blocks = _blocks(message.get("content"))
    if role == "assistant":
        blocks += [_tool_use(call) for call in message.get("tool_calls") or [] if isinstance(call, dict)]
    return {"role": "assistant" if role == "assistant" else "user", "content": blocks}


def _blocks(content: object) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    if not isinstance(content, list):
        return []
    return [_block(part) for part in content if not _empty_text(part)]


def _empty_text(part: object) -> bool:
    """An empty text part, which Anthropic refuses (OpenAI lets it pass)."""
    return part == "" or (isinstance(part, dict) and part.get("type") == "text" and not part.get("text"))


def _block(part: object) -> dict[str, Any]:
    if isinstance(part, str):
        return {"type": "text", "text": part}
    if not isinstance(part, dict):
        return {"type": "text", "text": str(part)}
    if part.get("type") == "text":
        return {"type": "text", "text": part.get("text")}
    if part.get("type") == "image_url":
        url = str((part.get("image_url") or {}).get("url", ""))
        if url.startswith("data:") and ";base64," in url:
            media_type, _, data = url[len("data:") :].partition(";base64,")
            return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}
        return {"type": "image", "source": {"type": "url", "url": url}}
    return part  # no counterpart: passed on for the API to judge


def _tool_use(call: dict[str, Any]) -> dict[str, Any]:
    function = call.get("function") or {}
    try:
        arguments = json.loads(function.get("arguments") or "{}")
    except ValueError:
        arguments = {}
    return {"type": "tool_use", "id": call.get("id"), "name": function.get("name"), "input": arguments}


def _merged(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Consecutive messages of one role become one (tool results after a tool call must share a turn)."""
    merged: list[dict[str, Any]] = []
    for message in messages:
        if merged and merged[-1]["role"] == message["role"]:
            merged[-1] = {"role": message["role"], "content": merged[-1]["content"] + message["content"]}
        else:
            merged.append(message)
    return merged


def _add_tools(params: dict[str, Any], body: dict[str, Any]) -> None:
    tools = [t.get("function") or {} for t in body.get("tools") or [] if isinstance(t, dict)]
    if tools:
        params["tools"] = [
            {
                "name": tool.get("name"),
                **({"description": tool["description"]} if tool.get("description") else {}),
                "input_schema": tool.get("parameters") or {"type": "object", "properties": {}},
            }
            for tool in tools
        ]
    choice = _tool_choice(body.get("tool_choice"))
    if choice and body.get("parallel_tool_calls") is False and choice["type"] != "none":
        choice["disable_parallel_tool_use"] = True
    if choice:
        params["tool_choice"] = choice


def _tool_choice(choice: object) -> dict[str, Any] | None:
    if choice in ("auto", "none"):
        return {"type": choice}
    if choice == "required":
        return {"type": "any"}
    if isinstance(choice, dict) and choice.get("type") == "function":
        return {"type": "tool", "name": (choice.get("function") or {}).get("name")}
    return None


def _add_response_format(params: dict[str, Any], response_format: object, system: list[str]) -> list[str]:
    """Structured output for a ``json_schema`` format, an instruction for ``json_object``; returns the system."""
    if not isinstance(response_format, dict):
        return system
    if response_format.get("type") == "json_object":
        return [*system, JSON_OBJECT_INSTRUCTION]
    if response_format.get("type") != "json_schema":
        return system
    spec = response_format.get("json_schema") or {}
    schema = spec.get("schema") or {"type": "object"}
    if has_output_format(str(params.get("model"))):
        params.setdefault("output_config", {})["format"] = {"type": "json_schema", "schema": schema}
        return system
    description = spec.get("description") or "Give the answer in this structure."
    tool = {"name": STRUCTURED_TOOL, "description": description, "input_schema": schema}
    params["tools"] = [*params.get("tools", []), tool]
    params["tool_choice"] = {"type": "tool", "name": STRUCTURED_TOOL}
    return system


def has_output_format(model: str) -> bool:
    """Whether ``model`` has structured output (``output_config.format``): Claude 4.5 and later."""
    return not model.startswith(WITHOUT_OUTPUT_FORMAT)


# --- results --------------------------------------------------------------------------------------------------


def to_output_line(custom_id: str, result: dict[str, Any], created: int = 0) -> dict[str, Any]:
    """An OpenAI output line for a message batch ``result`` (its ``{"type": ...}`` object)."""
    kind = result.get("type")
    if kind == "succeeded":
        message = result.get("message") or {}
        return _line(custom_id, 200, message.get("id"), chat_completion(message, created))
    if kind == "errored":
        response = result.get("error") or {}
        error = response.get("error") or {}
        error_type = str(error.get("type") or "api_error")
        body = {"error": {"message": error.get("message") or error_type, "type": error_type, "code": error_type}}
        return _line(custom_id, ERROR_STATUS.get(error_type, 500), response.get("request_id"), body)
    code, message = UNFINISHED.get(str(kind), ("unknown_result", f"The provider gave a result of type {kind!r}."))
    return {"custom_id": custom_id, "response": None, "error": {"code": code, "message": message}}


def _line(custom_id: str, status: int, request_id: object, body: dict[str, Any]) -> dict[str, Any]:
    return {
        "custom_id": custom_id,
        "response": {"status_code": status, "request_id": request_id, "body": body},
        "error": None,
    }


def chat_completion(message: dict[str, Any], created: int = 0) -> dict[str, Any]:
    """A chat.completion body for an Anthropic Message."""
    blocks = [b for b in message.get("content") or [] if isinstance(b, dict)]
    text = "".join(str(b.get("text", "")) for b in blocks if b.get("type") == "text")
    calls = [b for b in blocks if b.get("type") == "tool_use"]
    structured = next((b for b in calls if b.get("name") == STRUCTURED_TOOL), None)
    reply: dict[str, Any] = {"role": "assistant", "content": text or None, "refusal": None}
    finish = FINISH_REASONS.get(str(message.get("stop_reason")), "stop")
    if structured is not None:
        reply["content"], finish = json.dumps(structured.get("input"), ensure_ascii=False), "stop"
    elif calls:
        reply["tool_calls"] = [_tool_call(call) for call in calls]
    return {
        "id": message.get("id"),
        "object": "chat.completion",
        "created": created,
        "model": message.get("model"),
        "choices": [{"index": 0, "message": reply, "finish_reason": finish, "logprobs": None}],
        "usage": usage(message.get("usage") or {}),
    }


def _tool_call(block: dict[str, Any]) -> dict[str, Any]:
    arguments = json.dumps(block.get("input"), ensure_ascii=False)
    return {"id": block.get("id"), "type": "function", "function": {"name": block.get("name"), "arguments": arguments}}


def usage(data: dict[str, Any]) -> dict[str, Any]:
    """OpenAI's usage for Anthropic's: the prompt counts every input token, cached or not."""
    uncached, output = _count(data.get("input_tokens")), _count(data.get("output_tokens"))
    read, written = _count(data.get("cache_read_input_tokens")), _count(data.get("cache_creation_input_tokens"))
    thinking = _count((data.get("output_tokens_details") or {}).get("thinking_tokens"))
    prompt = uncached + read + written
    return {
        "prompt_tokens": prompt,
        "completion_tokens": output,
        "total_tokens": prompt + output,
        "prompt_tokens_details": {"cached_tokens": read, "cache_write_tokens": written},
        "completion_tokens_details": {"reasoning_tokens": thinking},
    }


def _count(value: object) -> int:
    return value if type(value) is int and value > 0 else 0
