"""Response bodies per endpoint: chat, structured output, responses, embeddings, completions, moderations."""

from __future__ import annotations

import json

from openai.types import Completion, CreateEmbeddingResponse, ModerationCreateResponse
from openai.types.responses import Response

from simulator import simulated_text
from tests.simulator.helpers import chat_line, read_lines, run, start, wait


def test_structured_output_satisfies_its_schema(sim_client):
    schema = {
        "type": "object",
        "additionalProperties": False,
        "required": ["title", "score", "label", "tags", "author", "note", "ratio"],
        "properties": {
            "title": {"type": "string", "maxLength": 12},
            "score": {"type": "integer", "minimum": 1, "maximum": 5},
            "ratio": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
            "label": {"type": "string", "enum": ["spam", "ham", "unsure"]},
            "tags": {"type": "array", "items": {"type": "string"}, "minItems": 2},
            "author": {"$ref": "#/$defs/person"},
            "note": {"anyOf": [{"type": "null"}, {"type": "string"}]},
        },
        "$defs": {
            "person": {"type": "object", "properties": {"name": {"type": "string"}, "verified": {"type": "boolean"}}}
        },
    }
    response_format = {"type": "json_schema", "json_schema": {"name": "review", "strict": True, "schema": schema}}
    lines = [chat_line(f"r{i}", f"Review {i}", response_format=response_format) for i in range(6)]
    batch = run(sim_client, lines)

    labels = set()
    for line in read_lines(sim_client, batch.output_file_id):
        value = json.loads(line["response"]["body"]["choices"][0]["message"]["content"])
        assert set(value) == set(schema["properties"])
        assert isinstance(value["title"], str) and len(value["title"]) <= 12
        assert isinstance(value["score"], int) and 1 <= value["score"] <= 5
        assert 0 < value["ratio"] < 1
        assert len(value["tags"]) >= 2 and all(isinstance(tag, str) for tag in value["tags"])
        assert isinstance(value["author"]["name"], str) and isinstance(value["author"]["verified"], bool)
        assert isinstance(value["note"], str)
        labels.add(value["label"])
    assert labels <= {"spam", "ham", "unsure"} and len(labels) > 1


def test_responses_endpoint(sim_client):
    line = {
        "custom_id": "r",
        "method": "POST",
        "url": "/v1/responses",
        "body": {
            "model": "gpt-5-mini",
            "instructions": "Be brief.",
            "input": [{"role": "user", "content": [{"type": "input_text", "text": "Name a colour"}]}],
        },
    }
    batch = run(sim_client, [line], endpoint="/v1/responses")

    [output] = read_lines(sim_client, batch.output_file_id)
    response = Response.model_validate(output["response"]["body"])
    assert response.output_text == simulated_text(line["body"])
    assert response.usage.output_tokens_details.reasoning_tokens > 0  # gpt-5 is a reasoning model
    assert batch.usage.output_tokens == response.usage.output_tokens
    assert batch.usage.output_tokens_details.reasoning_tokens == response.usage.output_tokens_details.reasoning_tokens


def test_embeddings_endpoint(sim_client):
    lines = [
        {
            "custom_id": "one",
            "method": "POST",
            "url": "/v1/embeddings",
            "body": {"model": "text-embedding-3-small", "input": "hello", "dimensions": 16},
        },
        {
            "custom_id": "two",
            "method": "POST",
            "url": "/v1/embeddings",
            "body": {"model": "text-embedding-3-small", "input": ["a", "b", "hello"]},
        },
    ]
    batch = run(sim_client, lines, endpoint="/v1/embeddings")

    outputs = {
        line["custom_id"]: CreateEmbeddingResponse.model_validate(line["response"]["body"])
        for line in read_lines(sim_client, batch.output_file_id)
    }
    assert [len(e.embedding) for e in outputs["one"].data] == [16]
    assert [len(e.embedding) for e in outputs["two"].data] == [8, 8, 8]
    assert outputs["two"].data[0].embedding != outputs["two"].data[1].embedding
    assert abs(sum(v * v for v in outputs["two"].data[0].embedding) - 1) < 1e-3
    assert batch.usage.output_tokens == 0 and batch.usage.input_tokens > 0


def test_completions_and_moderations_endpoints(sim_client):
    completion = run(
        sim_client,
        [
            {
                "custom_id": "c",
                "method": "POST",
                "url": "/v1/completions",
                "body": {"model": "gpt-3.5-turbo-instruct", "prompt": "Say hi", "max_tokens": 50},
            }
        ],
        endpoint="/v1/completions",
    )
    [line] = read_lines(sim_client, completion.output_file_id)
    assert Completion.model_validate(line["response"]["body"]).choices[0].text.startswith("Simulated reply")

    moderation = run(
        sim_client,
        [{"custom_id": "m", "method": "POST", "url": "/v1/moderations", "body": {"input": ["one", "two"]}}],
        endpoint="/v1/moderations",
    )
    [line] = read_lines(sim_client, moderation.output_file_id)
    assert len(ModerationCreateResponse.model_validate(line["response"]["body"]).results) == 2
    assert moderation.model == "omni-moderation-latest"


def test_token_limits_truncate_and_reasoning_and_cache_are_reported(sim_client):
    long_prompt = "word " * 1000  # 1250 tokens: long enough to be cached
    lines = [
        chat_line("short", "Tell me everything", max_tokens=3),
        chat_line("cached", long_prompt),
        chat_line("reasoning", "Think", model="o4-mini", max_completion_tokens=500),
    ]
    batches = [start(sim_client, [request]) for request in lines]  # one model per batch, run side by side
    by_id = {}
    for request, created in zip(lines, batches, strict=True):
        [line] = read_lines(sim_client, wait(sim_client, created.id).output_file_id)
        by_id[request["custom_id"]] = line["response"]["body"]

    short = by_id["short"]
    assert short["choices"][0]["finish_reason"] == "length" and short["usage"]["completion_tokens"] == 3
    assert short["choices"][0]["message"]["content"] == simulated_text(lines[0]["body"])[:12]
    cached = by_id["cached"]["usage"]
    assert cached["prompt_tokens"] == 1250 and cached["prompt_tokens_details"]["cached_tokens"] == 512
    reasoning = by_id["reasoning"]["usage"]
    assert 0 < reasoning["completion_tokens_details"]["reasoning_tokens"] < reasoning["completion_tokens"] <= 500
