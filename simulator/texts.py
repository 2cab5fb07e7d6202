"""What a request says: its prompt text, its estimated tokens and the simulated reply text."""

from __future__ import annotations

import hashlib
import json

CHARS_PER_TOKEN = 4


def canonical_json(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def body_hash(body: dict) -> str:
    """Return the sha256 hex digest of the body's canonical JSON: the seed of everything simulated."""
    return hashlib.sha256(canonical_json(body).encode("utf-8")).hexdigest()


def content_text(content: object) -> str:
    """Return the text of a message ``content``: a string, or the text parts of a list of parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            part if isinstance(part, str) else str(part.get("text", ""))
            for part in content
            if isinstance(part, (str, dict))
        )
    return ""


def _item_text(item: object) -> str:
    if isinstance(item, str):
        return item
    if not isinstance(item, dict):
        return ""
    if "content" in item:
        return content_text(item["content"])
    return output if isinstance(output := item.get("output"), str) else str(item.get("text", ""))


def prompt_texts(body: dict) -> list[str]:
    """Return every piece of prompt text in a request body, whatever the endpoint."""
    texts = [_item_text(message) for message in body.get("messages") or []]
    if isinstance(body.get("instructions"), str):
        texts.append(body["instructions"])
    for key in ("input", "prompt"):
        value = body.get(key)
        items = value if isinstance(value, list) else [value]
        texts.extend(_item_text(item) for item in items if isinstance(item, (str, dict)))
    return texts


def token_ids_count(value: object) -> int:
    """Count pre-tokenised input (lists of ints), which embeddings and completions accept."""
    if isinstance(value, list):
        return sum(1 if isinstance(v, int) else token_ids_count(v) for v in value)
    return 0


def prompt_tokens(body: dict) -> int:
    """Estimate prompt tokens as characters / 4, at least 1."""
    chars = sum(len(text) for text in prompt_texts(body))
    ids = token_ids_count(body.get("input")) + token_ids_count(body.get("prompt"))
    return max(1, chars // CHARS_PER_TOKEN + ids)


def text_tokens(text: str) -> int:
    return -(-len(text) // CHARS_PER_TOKEN)


def last_user_text(body: dict) -> str:
    """Return the text of the request's last user turn (or its prompt/input when it has no turns)."""
    for message in reversed(body.get("messages") or []):
        if isinstance(message, dict) and message.get("role") == "user":
            return content_text(message.get("content"))
    for key in ("input", "prompt"):
        value = body.get(key)
        if isinstance(value, str):
            return value
        if isinstance(value, list):
            for item in reversed(value):
                if isinstance(item, str) or (isinstance(item, dict) and item.get("role", "user") == "user"):
                    return _item_text(item)
    return ""


def simulated_text(body: dict) -> str:
    """Return the reply the simulator gives to ``body``: pure, so tests can check replies match requests."""
    return f"Simulated reply {body_hash(body)[:8]}: {last_user_text(body)[:60]}"


def is_reasoning_model(model: object) -> bool:
    return isinstance(model, str) and (model.startswith("o") or model.startswith("gpt-5"))
