"""Models API views: the models the simulator answers as, listed and retrieved as OpenAI lists its own."""

from __future__ import annotations

from flask import jsonify

from .blueprint import bp
from .errors import APIError

# The simulator answers any model a request names; these are the ones it offers by name: OpenAI's batch models
# (chat, reasoning, responses, completions, embeddings, moderation), two with a dated version as OpenAI lists them.
MODELS = (
    "gpt-5",
    "gpt-5-mini",
    "gpt-5-nano",
    "gpt-4.1",
    "gpt-4.1-mini",
    "gpt-4.1-nano",
    "gpt-4o",
    "gpt-4o-2024-08-06",
    "gpt-4o-mini",
    "gpt-4o-mini-2024-07-18",
    "o3",
    "o3-mini",
    "o4-mini",
    "gpt-3.5-turbo",
    "gpt-3.5-turbo-instruct",
    "text-embedding-3-small",
    "text-embedding-3-large",
    "omni-moderation-latest",
)
CREATED = 1_700_000_000  # the simulator has no release dates: one time for every model


def model_object(model: str) -> dict:
    return {"id": model, "object": "model", "created": CREATED, "owned_by": "system"}


@bp.get("/models")
def list_models():
    return jsonify({"object": "list", "data": [model_object(model) for model in MODELS]})


@bp.get("/models/<path:model>")
def retrieve_model(model: str):
    if model not in MODELS:
        raise APIError(404, f"The model '{model}' does not exist", param="model", code="model_not_found")
    return jsonify(model_object(model))
