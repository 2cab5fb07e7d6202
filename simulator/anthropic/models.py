"""Models API views: the Claude models the simulator offers by name, listed and retrieved as Anthropic does."""

from __future__ import annotations

from flask import jsonify, request

from .blueprint import bp
from .errors import APIError

# The simulator answers any model a request names; these are the ones it lists (the shipped price table's).
MODELS = {
    "claude-fable-5-1": "Claude Fable 5.1",
    "claude-opus-5-5": "Claude Opus 5.5",
    "claude-opus-5": "Claude Opus 5",
    "claude-opus-4-8": "Claude Opus 4.8",
    "claude-sonnet-5-5": "Claude Sonnet 5.5",
    "claude-sonnet-5": "Claude Sonnet 5",
    "claude-sonnet-4-6": "Claude Sonnet 4.6",
    "claude-haiku-5-5": "Claude Haiku 5.5",
    "claude-haiku-4-5": "Claude Haiku 4.5",
    "claude-haiku-4-5-20251001": "Claude Haiku 4.5",
}
CREATED = "2026-01-01T00:00:00Z"  # the simulator has no release dates: one time for every model


def model_object(model: str) -> dict:
    return {"type": "model", "id": model, "display_name": MODELS[model], "created_at": CREATED, "lifecycle": "active"}


@bp.get("/models")
def list_models():
    ids = list(MODELS)
    after = request.args.get("after_id")
    start = ids.index(after) + 1 if after in ids else 0
    limit = int(request.args.get("limit", "20")) if request.args.get("limit", "20").isdigit() else 20
    page = ids[start : start + limit]
    return jsonify(
        {
            "data": [model_object(model) for model in page],
            "has_more": start + limit < len(ids),
            "first_id": page[0] if page else None,
            "last_id": page[-1] if page else None,
        }
    )


@bp.get("/models/<path:model>")
def retrieve_model(model: str):
    if model not in MODELS:
        raise APIError(404, f"model: {model}")
    return jsonify(model_object(model))
