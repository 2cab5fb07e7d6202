"""Deterministic, realistic response bodies for each batch endpoint, derived from the request."""

from __future__ import annotations

import base64
import hashlib
import json
import math
import struct
from dataclasses import dataclass

from ..schema import instance_for
from ..texts import (
    body_hash,
    canonical_json,
    is_reasoning_model,
    prompt_tokens,
    simulated_text,
    text_tokens,
    token_ids_count,
)

DEFAULT_EMBEDDING_DIMENSIONS = 8
MODERATION_CATEGORIES = (
    "harassment",
    "harassment/threatening",
    "hate",
    "hate/threatening",
    "illicit",
    "illicit/violent",
    "self-harm",
    "self-harm/instructions",
    "self-harm/intent",
    "sexual",
    "sexual/minors",
    "violence",
    "violence/graphic",
)


@dataclass(frozen=True)
class Completion:
    """Reply text after the token budget, and the token counts that go with it."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    reasoning_tokens: int
    cached_tokens: int
    truncated: bool


def cached_tokens(prompt: int) -> int:
    """Half the prompt, in 128-token blocks, once the prompt is long enough to be cached (1024 tokens)."""
    return (prompt // 2) // 128 * 128 if prompt >= 1024 else 0


def _reasoning_tokens(body: dict, digest: str) -> int:
    return 64 * (1 + int(digest[8:10], 16) % 4) if is_reasoning_model(body.get("model")) else 0


def complete(body: dict, text: str, limit: int | None) -> Completion:
    """Fit ``text`` in ``limit`` completion tokens (reasoning tokens count against the limit too)."""
    reasoning = _reasoning_tokens(body, body_hash(body))
    visible = text_tokens(text)
    truncated = False
    if limit is not None:
        reasoning = min(reasoning, max(limit, 0))
        room = max(limit - reasoning, 0)
        if visible > room:
            text, visible, truncated = text[: room * 4], room, True
    prompt = prompt_tokens(body)
    return Completion(text, prompt, visible + reasoning, reasoning, cached_tokens(prompt), truncated)


def structured_text(body: dict, text_format: dict | None) -> str:
    """Return the reply content: JSON satisfying the requested schema, a JSON object, or plain text."""
    text_format = text_format or {}
    kind = text_format.get("type")
    if kind == "json_schema":
        # Chat nests the schema under "json_schema"; Responses puts it beside "type".
        schema = (text_format.get("json_schema") or text_format).get("schema") or {}
        return json.dumps(instance_for(schema, body_hash(body)))
    if kind == "json_object":
        return json.dumps({"reply": simulated_text(body)})
    return simulated_text(body)


def chat_completion(body: dict, key: str, created: int) -> dict:
    limit = body.get("max_completion_tokens", body.get("max_tokens"))
    result = complete(body, structured_text(body, body.get("response_format")), limit)
    choices = max(int(body.get("n") or 1), 1)
    completion_tokens = result.completion_tokens * choices
    return {
        "id": f"chatcmpl-{key[:29]}",
        "object": "chat.completion",
        "created": created,
        "model": body.get("model"),
        "choices": [
            {
                "index": index,
                "logprobs": None,
                "finish_reason": "length" if result.truncated else "stop",
                "message": {"role": "assistant", "content": result.text, "refusal": None, "annotations": []},
            }
            for index in range(choices)
        ],
        "usage": {
            "prompt_tokens": result.prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": result.prompt_tokens + completion_tokens,
            "prompt_tokens_details": {
                "cached_tokens": result.cached_tokens,
                "audio_tokens": 0,
                "cache_write_tokens": 0,
            },
            "completion_tokens_details": {
                "reasoning_tokens": result.reasoning_tokens * choices,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        },
        "service_tier": "default",
        "system_fingerprint": "fp_simulated",
    }


def response(body: dict, key: str, created: int) -> dict:
    text_format = (body.get("text") or {}).get("format")
    result = complete(body, structured_text(body, text_format), body.get("max_output_tokens"))
    return {
        "id": f"resp_{key[:48]}",
        "object": "response",
        "created_at": created,
        "status": "incomplete" if result.truncated else "completed",
        "incomplete_details": {"reason": "max_output_tokens"} if result.truncated else None,
        "error": None,
        "model": body.get("model"),
        "instructions": body.get("instructions"),
        "metadata": body.get("metadata") or {},
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
        "temperature": body.get("temperature", 1.0),
        "top_p": body.get("top_p", 1.0),
        "text": {"format": text_format or {"type": "text"}},
        "reasoning": {"effort": None, "summary": None},
        "output": [
            {
                "type": "message",
                "id": f"msg_{key[:48]}",
                "status": "completed",
                "role": "assistant",
                "content": [{"type": "output_text", "text": result.text, "annotations": []}],
            }
        ],
        "usage": {
            "input_tokens": result.prompt_tokens,
            "output_tokens": result.completion_tokens,
            "total_tokens": result.prompt_tokens + result.completion_tokens,
            "input_tokens_details": {"cached_tokens": result.cached_tokens, "cache_write_tokens": 0},
            "output_tokens_details": {"reasoning_tokens": result.reasoning_tokens},
        },
    }


def text_completion(body: dict, key: str, created: int) -> dict:
    # The legacy endpoint's max_tokens defaults to 16, which surprises people exactly as the real one does.
    result = complete(body, simulated_text(body), body.get("max_tokens", 16))
    return {
        "id": f"cmpl-{key[:29]}",
        "object": "text_completion",
        "created": created,
        "model": body.get("model"),
        "system_fingerprint": "fp_simulated",
        "choices": [
            {
                "text": result.text,
                "index": 0,
                "logprobs": None,
                "finish_reason": "length" if result.truncated else "stop",
            }
        ],
        "usage": {
            "prompt_tokens": result.prompt_tokens,
            "completion_tokens": result.completion_tokens,
            "total_tokens": result.prompt_tokens + result.completion_tokens,
        },
    }


def _inputs(value: object) -> list:
    """Split an embeddings/moderations ``input`` into its items (a string, token list, or list of them)."""
    if isinstance(value, list) and value and not all(isinstance(v, int) for v in value):
        return value
    return [value]


def embedding_vector(item: object, dimensions: int) -> list[float]:
    """Return a unit vector that depends only on ``item``."""
    seed = canonical_json(item).encode("utf-8")
    raw: list[float] = []
    for block in range(math.ceil(dimensions / 8)):
        digest = hashlib.sha256(seed + block.to_bytes(4, "big")).digest()
        raw.extend(int.from_bytes(digest[i : i + 4], "big") / 2**31 - 1.0 for i in range(0, 32, 4))
    raw = raw[:dimensions]
    norm = math.sqrt(sum(v * v for v in raw)) or 1.0
    return [round(v / norm, 6) for v in raw]


def _item_tokens(item: object) -> int:
    return max(1, len(item) // 4) if isinstance(item, str) else max(1, token_ids_count(item))


def embedding_list(body: dict, key: str, created: int) -> dict:
    dimensions = int(body.get("dimensions") or DEFAULT_EMBEDDING_DIMENSIONS)
    items = _inputs(body.get("input"))
    data = []
    for index, item in enumerate(items):
        vector: list[float] | str = embedding_vector(item, dimensions)
        if body.get("encoding_format") == "base64":
            vector = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")
        data.append({"object": "embedding", "index": index, "embedding": vector})
    tokens = sum(_item_tokens(item) for item in items)
    return {
        "object": "list",
        "data": data,
        "model": body.get("model"),
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


def moderation(body: dict, key: str, created: int) -> dict:
    items = _inputs(body.get("input"))
    if items and isinstance(items[0], dict):
        items = [items]  # one multimodal input given as a list of parts
    results = []
    for item in items:
        digest = hashlib.sha256(canonical_json(item).encode("utf-8")).digest()
        scores = {name: round(digest[i] / 255 / 1000, 6) for i, name in enumerate(MODERATION_CATEGORIES)}
        results.append(
            {
                "flagged": False,
                "categories": {name: False for name in MODERATION_CATEGORIES},
                "category_scores": scores,
                "category_applied_input_types": {name: ["text"] for name in MODERATION_CATEGORIES},
            }
        )
    return {"id": f"modr-{key[:29]}", "model": body.get("model") or "omni-moderation-latest", "results": results}


BUILDERS = {
    "/v1/chat/completions": chat_completion,
    "/v1/responses": response,
    "/v1/completions": text_completion,
    "/v1/embeddings": embedding_list,
    "/v1/moderations": moderation,
}
ENDPOINTS = tuple(BUILDERS)


def simulated_response(url: str, body: dict, *, key: str | None = None, created: int = 0) -> dict:
    """Return the body the real endpoint ``url`` would answer ``body`` with (200 case).

    ``key`` seeds the object ids (default: the body's hash); ``created`` is the Unix timestamp to report.
    """
    return BUILDERS[url](body, key or body_hash(body), created)


def response_usage(url: str, payload: dict) -> dict:
    """Return one response's usage in the batch object's vocabulary (input/output/cached/reasoning)."""
    usage = payload.get("usage") or {}
    if url == "/v1/responses":
        return {
            "input": usage.get("input_tokens", 0),
            "output": usage.get("output_tokens", 0),
            "cached": usage.get("input_tokens_details", {}).get("cached_tokens", 0),
            "reasoning": usage.get("output_tokens_details", {}).get("reasoning_tokens", 0),
        }
    return {
        "input": usage.get("prompt_tokens", 0),
        "output": usage.get("completion_tokens", 0),
        "cached": (usage.get("prompt_tokens_details") or {}).get("cached_tokens", 0),
        "reasoning": (usage.get("completion_tokens_details") or {}).get("reasoning_tokens", 0),
    }
