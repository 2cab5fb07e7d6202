"""Reading result lines (services/results), splitting jobs into batches (services/planning), and pricing."""

from __future__ import annotations

import json
import os
from decimal import Decimal
from itertools import pairwise

import pytest
from sqlalchemy import select

from simulator import simulated_output, simulated_text
from tests.factories import chat_body, new_job, set_states
from webapp.extensions import db
from webapp.intake import imports
from webapp.models import BatchRequest, ProviderBatch, RequestStatus
from webapp.services import jobs, planning
from webapp.services.pricing import PriceTableError, load_price_table, price_table
from webapp.services.results import BadResultLine, is_retryable, output_text, parse_result_line, usage


def line(**fields) -> str:
    return json.dumps({"id": "batch_req_1", "custom_id": "req-1", **fields})


def ok(body: dict) -> str:
    return line(response={"status_code": 200, "request_id": "req_abc", "body": body}, error=None)


CHAT = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "Positive", "refusal": None}, "finish_reason": "stop"}
    ],
    "usage": {
        "prompt_tokens": 2048,
        "completion_tokens": 300,
        "total_tokens": 2348,
        "prompt_tokens_details": {"cached_tokens": 1024},
        "completion_tokens_details": {"reasoning_tokens": 256},
    },
}
RESPONSES = {
    "id": "resp_1",
    "object": "response",
    "status": "completed",
    "output": [
        {"type": "reasoning", "id": "rs_1", "summary": []},
        {
            "type": "message",
            "role": "assistant",
            "content": [
                {"type": "output_text", "text": "Hello, ", "annotations": []},
                {"type": "refusal", "refusal": "no"},
                {"type": "output_text", "text": "world", "annotations": []},
            ],
        },
    ],
    "usage": {
        "input_tokens": 1500,
        "output_tokens": 400,
        "total_tokens": 1900,
        "input_tokens_details": {"cached_tokens": 1280},
        "output_tokens_details": {"reasoning_tokens": 128},
    },
}


# --- results: success and failure ------------------------------------------------------------------------


def test_a_200_without_error_is_a_success_with_its_text_and_usage():
    result = parse_result_line(ok(CHAT))
    assert result.succeeded and result.status_code == 200
    assert (result.error_code, result.error) == (None, None)
    assert result.custom_id == "req-1" and result.provider_request_id == "req_abc"
    assert result.output_text == "Positive"
    assert (result.prompt_tokens, result.completion_tokens, result.total_tokens) == (2048, 300, 2348)
    assert (result.cached_tokens, result.reasoning_tokens) == (1024, 256)
    assert result.body == CHAT and not result.retryable


def test_a_200_that_also_carries_an_error_is_a_failure():
    result = parse_result_line(
        line(response={"status_code": 200, "body": CHAT}, error={"code": "server_error", "message": "partial"})
    )
    assert not result.succeeded
    assert (result.error_code, result.error) == ("server_error", "partial")
    assert result.output_text is None
    assert result.retryable


def test_an_http_failure_takes_its_error_from_the_response_body():
    body = {
        "error": {
            "message": "Invalid 'messages': empty array.",
            "type": "invalid_request_error",
            "param": "messages",
            "code": "empty_array",
        }
    }
    result = parse_result_line(line(response={"status_code": 400, "request_id": "req_x", "body": body}, error=None))
    assert not result.succeeded and result.status_code == 400
    assert (result.error_code, result.error) == ("empty_array", "Invalid 'messages': empty array.")
    assert result.output_text is None and result.prompt_tokens == 0
    assert not result.retryable


@pytest.mark.parametrize(
    "error, code, message",
    [
        ({"message": "Overloaded", "type": "server_error", "code": None}, "server_error", "Overloaded"),
        ({"type": "invalid_request_error"}, "invalid_request_error", "HTTP 503"),
        ({}, "http_503", "HTTP 503"),
    ],
)
def test_an_http_failure_without_a_code_falls_back_to_its_type_then_its_status(error, code, message):
    result = parse_result_line(line(response={"status_code": 503, "body": {"error": error}}, error=None))
    assert (result.error_code, result.error) == (code, message)
    assert result.retryable  # by its status


def test_a_non_http_failure_has_no_response_and_an_error_object():
    result = parse_result_line(line(response=None, error={"code": "batch_expired", "message": "window ran out"}))
    assert not result.succeeded
    assert (result.status_code, result.body, result.provider_request_id) == (None, None, None)
    assert (result.error_code, result.error) == ("batch_expired", "window ran out")
    assert result.retryable


@pytest.mark.parametrize(
    "status, code, retryable",
    [
        (408, None, True),
        (409, None, True),
        (429, "rate_limit_exceeded", True),
        (500, None, True),
        (502, None, True),
        (503, None, True),
        (400, "invalid_request_error", False),
        (401, None, False),
        (404, None, False),
        (422, None, False),
        (None, "server_error", True),
        (None, "batch_expired", True),
        (None, "rate_limit_exceeded", True),
        (None, "timeout", True),
        (None, "missing_result", True),
        (None, "engine_overloaded", True),
        (None, "invalid_request", False),
        (None, "cancelled", False),
        (None, "content_policy_violation", False),
    ],
)
def test_retryable_failures_are_transient_ones(status, code, retryable):
    assert is_retryable(status, code) is retryable


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        '["a", "list"]',
        '"a string"',
        '{"response": null}',
        '{"custom_id": 7, "error": null}',
    ],
)
def test_a_line_that_is_not_a_result_object_is_a_bad_line(text):
    with pytest.raises(BadResultLine):
        parse_result_line(text)


# --- results: usage and output text ------------------------------------------------------------------------


def test_usage_of_the_chat_and_responses_shapes():
    assert usage(CHAT) == {
        "prompt_tokens": 2048,
        "completion_tokens": 300,
        "total_tokens": 2348,
        "cached_tokens": 1024,
        "reasoning_tokens": 256,
    }
    assert usage(RESPONSES) == {
        "prompt_tokens": 1500,
        "completion_tokens": 400,
        "total_tokens": 1900,
        "cached_tokens": 1280,
        "reasoning_tokens": 128,
    }


def test_usage_without_details_or_total_is_filled_in():
    bare = {"usage": {"prompt_tokens": 10, "completion_tokens": 5, "prompt_tokens_details": None}}
    assert usage(bare) == {
        "prompt_tokens": 10,
        "completion_tokens": 5,
        "total_tokens": 15,
        "cached_tokens": 0,
        "reasoning_tokens": 0,
    }
    embeddings = {"object": "list", "data": [], "usage": {"prompt_tokens": 8, "total_tokens": 8}}
    assert usage(embeddings)["prompt_tokens"] == 8 and usage(embeddings)["completion_tokens"] == 0
    assert usage({"usage": {"prompt_tokens": "12", "completion_tokens": None}})["total_tokens"] == 0
    assert usage({"usage": ["nonsense"]}) == {}
    assert usage(None)["total_tokens"] == 0


@pytest.mark.parametrize(
    "body, text",
    [
        (CHAT, "Positive"),
        (RESPONSES, "Hello, world"),
        ({"object": "text_completion", "choices": [{"text": "once upon", "index": 0}]}, "once upon"),
        (
            {"choices": [{"message": {"role": "assistant", "content": None, "refusal": "I can't help with that"}}]},
            "I can't help with that",
        ),
        ({"choices": [{"message": {"role": "assistant", "content": ""}}]}, ""),
        ({"results": [{"flagged": True, "categories": {}}]}, "flagged"),
        ({"results": [{"flagged": False, "categories": {}}]}, "not flagged"),
        ({"object": "list", "data": [{"object": "embedding", "embedding": [0.1]}]}, None),
        ({"output": [{"type": "reasoning", "summary": []}]}, None),
        ({"choices": []}, None),
        ({}, None),
        (None, None),
    ],
)
def test_output_text_by_endpoint(body, text):
    assert output_text(body) == text


def test_output_text_of_tool_calls_is_their_json():
    calls = [{"id": "call_1", "type": "function", "function": {"name": "rate", "arguments": '{"stars": 4}'}}]
    body = {"choices": [{"message": {"role": "assistant", "content": None, "tool_calls": calls}}]}
    assert json.loads(output_text(body)) == calls


@pytest.mark.parametrize(
    "url, body",
    [
        ("/v1/chat/completions", {"model": "o3-mini", "messages": [{"role": "user", "content": "long " * 1200}]}),
        ("/v1/responses", {"model": "gpt-5-mini", "input": "Summarise: " + "text " * 1000}),
        ("/v1/completions", {"model": "gpt-3.5-turbo-instruct", "prompt": "Say hi", "max_tokens": 50}),
    ],
)
def test_simulated_results_read_back_as_the_simulator_wrote_them(url, body):
    written = simulated_output({"custom_id": "c-1", "method": "POST", "url": url, "body": body}, batch_id="batch_1")
    result = parse_result_line(json.dumps(written))
    assert result.succeeded
    assert result.output_text == simulated_text(body)
    assert result.prompt_tokens > 0 and result.completion_tokens > 0
    assert result.total_tokens == result.prompt_tokens + result.completion_tokens
    if url != "/v1/completions":  # long prompts are cached; o-series and gpt-5 models reason
        assert result.cached_tokens > 0 and result.reasoning_tokens > 0


# --- planning ----------------------------------------------------------------------------------------------


def requests_of(batch: ProviderBatch) -> list[BatchRequest]:
    return list(
        db.session.scalars(
            select(BatchRequest).where(BatchRequest.provider_batch_id == batch.id).order_by(BatchRequest.id)
        )
    )


def assert_planned_bytes_are_written(batches: list[ProviderBatch], tmp_path) -> None:
    """Each batch's file holds its requests line for line in id order, and the batch records the file's size."""
    for batch in batches:
        path = tmp_path / f"batch-{batch.id}.jsonl"
        assert planning.write_input_file(batch, path) == (batch.request_count, batch.input_bytes)
        assert path.stat().st_size == batch.input_bytes
        lines = [json.loads(text) for text in path.read_bytes().splitlines()]  # bytes: only \n, \r end a line
        rows = requests_of(batch)
        assert [(x["custom_id"], x["method"], x["url"], x["body"]) for x in lines] == [
            (r.custom_id, "POST", batch.endpoint, r.body) for r in rows
        ]
        assert planning.request_ids_in_file_order(batch) == [r.id for r in rows]


def test_chunks_by_request_count_in_id_order(app_ctx, monkeypatch, tmp_path):
    monkeypatch.setitem(app_ctx.config, "BATCH_MAX_REQUESTS", 3)
    job = new_job(count=10)
    batches = planning.plan_batches(job)
    assert [b.request_count for b in batches] == [3, 3, 3, 1]
    assert [b.chunk_index for b in batches] == [0, 1, 2, 3] and {b.attempt for b in batches} == {0}
    assert [r.custom_id for b in batches for r in requests_of(b)] == [f"req-{i}" for i in range(10)]
    for batch in batches:
        assert batch.estimated_tokens == sum(r.estimated_tokens for r in requests_of(batch))
        assert (batch.model, batch.endpoint, batch.status) == (job.model, job.endpoint, "pending")
    assert_planned_bytes_are_written(batches, tmp_path)
    assert planning.plan_batches(job) == []  # every request has its batch now


def line_sizes(texts: list[str], monkeypatch, app, tmp_path) -> list[int]:
    """Each request's input-file line size, measured by writing a job of one-request batches."""
    previous = app.config["BATCH_MAX_REQUESTS"]
    monkeypatch.setitem(app.config, "BATCH_MAX_REQUESTS", 1)
    sizes = [planning.write_input_file(b, tmp_path / "sizes.jsonl")[1] for b in planning.plan_batches(new_job(texts))]
    monkeypatch.setitem(app.config, "BATCH_MAX_REQUESTS", previous)
    return sizes


def test_input_files_are_cut_at_the_byte_limit_and_the_rest_planned_again(app_ctx, monkeypatch, tmp_path):
    texts = ["short", "a somewhat longer prompt " * 4, "mid length text, çà et là", "x", "y" * 80, "z"]
    sizes = line_sizes(texts, monkeypatch, app_ctx, tmp_path)
    limit = max(a + b for a, b in pairwise(sizes))  # some neighbours fit together, not all
    monkeypatch.setitem(app_ctx.config, "BATCH_MAX_BYTES", limit)
    job = new_job(texts)
    written = []
    while batches := planning.plan_batches(job):  # as sync's passes do: plan, write, plan what was handed back
        assert len(batches) == 1  # planning alone does not know the sizes
        assert planning.write_input_file(batches[0], tmp_path / "input.jsonl") == (
            batches[0].request_count,
            batches[0].input_bytes,
        )
        written.append(batches[0])
        assert_planned_bytes_are_written(batches, tmp_path)  # what is left in the batch is what was written
    assert 1 < len(written) < len(texts)
    assert all(0 < b.input_bytes <= limit for b in written)
    assert [b.attempt for b in written] == [0] * len(written)  # no retry round: the same first try, split
    assert [b.chunk_index for b in written] == list(range(len(written)))
    assert [r.custom_id for b in written for r in requests_of(b)] == [f"req-{i}" for i in range(len(texts))]
    for batch in written:
        assert batch.estimated_tokens == sum(r.estimated_tokens for r in requests_of(batch))
    # Greedy: a file is cut only when the next line would not fit.
    for batch, following in pairwise(written):
        first_of_next = int(requests_of(following)[0].custom_id.removeprefix("req-"))
        assert batch.input_bytes + sizes[first_of_next] > limit


def test_input_files_carry_any_custom_id_and_body_text_unchanged(app_ctx, tmp_path):
    job = jobs.create_job({"name": "odd text", "model": "gpt-4o-mini"})
    odd = [
        'quote " and back\\slash',
        "tab\tline\nbreak",
        "é ü 日本 😀",
        "\u2028 separator",
        "\x01\x02 low bytes",
        "\\.",
        "emoji 😀 and \\u0041 literal",
    ]
    imports.add_requests(
        job,
        [
            {
                "custom_id": text,
                "body": {
                    **chat_body(text),
                    "temperature": 0.5,
                    "n": 1,
                    "metadata": {"nested": [1, 2.5, None, True, text]},
                },
            }
            for text in odd
        ],
    )
    (batch,) = planning.plan_batches(job)
    assert_planned_bytes_are_written([batch], tmp_path)
    raw = (tmp_path / f"batch-{batch.id}.jsonl").read_bytes()
    assert raw.count(b"\n") == len(odd) and b"\r" not in raw  # one line per request whatever the text holds


def test_a_request_over_the_byte_limit_still_gets_its_own_file(app_ctx, monkeypatch, tmp_path):
    job = new_job(["one", "two"])  # stored first: a request over the limit is refused when it is added
    monkeypatch.setitem(app_ctx.config, "BATCH_MAX_BYTES", 10)
    (first,) = planning.plan_batches(job)
    assert planning.write_input_file(first, tmp_path / "a.jsonl")[0] == 1
    (second,) = planning.plan_batches(job)
    assert planning.write_input_file(second, tmp_path / "b.jsonl")[0] == 1
    assert planning.plan_batches(job) == []


def test_chunks_by_the_models_enqueued_token_limit(app_ctx, monkeypatch):
    job = new_job([f"{'word ' * 40}{i}" for i in range(5)])
    tokens = db.session.scalars(select(BatchRequest.estimated_tokens).where(BatchRequest.job_id == job.id)).all()
    assert len(set(tokens)) == 1 and tokens[0] > 1
    monkeypatch.setitem(app_ctx.config, "ENQUEUED_TOKEN_LIMITS", {job.model: 2 * tokens[0] + 1})
    assert planning.token_limit(job.model) == 2 * tokens[0] + 1
    assert planning.token_limit("another-model") == app_ctx.config["ENQUEUED_TOKEN_LIMIT"]
    batches = planning.plan_batches(job)
    assert [b.request_count for b in batches] == [2, 2, 1]
    assert [b.estimated_tokens for b in batches] == [2 * tokens[0], 2 * tokens[0], tokens[0]]


def test_a_request_over_the_token_limit_goes_alone(app_ctx, monkeypatch):
    job = new_job(["tiny", "huge " * 200, "tiny too"])
    monkeypatch.setitem(app_ctx.config, "ENQUEUED_TOKEN_LIMIT", 100)
    batches = planning.plan_batches(job)
    assert [[r.custom_id for r in requests_of(b)] for b in batches] == [["req-0"], ["req-1"], ["req-2"]]


def test_only_unassigned_pending_requests_are_planned_again_as_a_new_attempt(app_ctx, monkeypatch):
    monkeypatch.setitem(app_ctx.config, "BATCH_MAX_REQUESTS", 2)
    job = new_job(count=4)
    first = planning.plan_batches(job)
    # As ingestion leaves them: req-1 goes to a retry, req-2 has failed for good.
    set_states(custom_ids=("req-1",), job_id=job.id, provider_batch_id=None, retry_count=1)
    set_states(custom_ids=("req-2",), job_id=job.id, provider_batch_id=None, status=RequestStatus.FAILED)
    db.session.commit()  # as the engine does between passes
    (retry,) = planning.plan_batches(job)
    assert [r.custom_id for r in requests_of(retry)] == ["req-1"]
    assert retry.attempt == 1 and {b.attempt for b in first} == {0}  # the round is the requests' try count
    assert retry.chunk_index == 0


# --- pricing -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "model, entry",
    [
        ("gpt-4o-mini", "gpt-4o-mini"),
        ("gpt-4o-mini-2024-07-18", "gpt-4o-mini"),  # the longest prefix wins over "gpt-4o"
        ("gpt-4o-2024-08-06", "gpt-4o"),
        ("gpt-5-nano-2025-08-07", "gpt-5-nano"),
    ],
)
def test_models_match_exactly_or_by_longest_prefix(app_ctx, model, entry):
    table = price_table()
    assert table.price_for(model) == table.models[entry]


def test_unknown_model_has_no_price(app_ctx):
    assert price_table().price_for("llama-3-70b") is None
    assert price_table().cost("llama-3-70b", 1000, 1000) is None
    assert price_table().price_for("gpt") is None  # an entry may prefix the model, not the other way round


def test_batch_cost_is_discounted_and_cached_tokens_use_the_cached_rate(app_ctx):
    table = price_table()
    mini = table.models["gpt-4o-mini"]
    assert table.batch_discount == Decimal("0.5")
    assert table.cost("gpt-4o-mini", 1_000_000, 0) == mini.input / 2
    assert table.cost("gpt-4o-mini", 0, 1_000_000) == mini.output / 2
    cost = table.cost("gpt-4o-mini", prompt=1_000_000, completion=200_000, cached=400_000)
    assert cost == (Decimal("0.6") * mini.input + Decimal("0.4") * mini.cached_input + Decimal("0.2") * mini.output) / 2
    assert mini.cached_input < mini.input
    small = table.cost("gpt-4o-mini", 3, 7)
    assert small.as_tuple().exponent == -8 and abs(small - Decimal("0.000002325")) <= Decimal("0.000000005")


def write_prices(path, models: dict, **extra) -> str:
    path.write_text(json.dumps({"models": models, **extra}))
    return str(path)


def test_prices_file_overrides_the_shipped_table_and_is_reread_when_it_changes(app_ctx, monkeypatch, tmp_path):
    path = tmp_path / "prices.json"
    write_prices(path, {"house-model": {"input": 2, "cached_input": 1, "output": 4}}, batch_discount=1)
    monkeypatch.setitem(app_ctx.config, "PRICES_FILE", str(path))
    assert price_table().cost("house-model-v2", 1_000_000, 1_000_000) == Decimal(6)
    assert price_table().price_for("gpt-4o-mini") is None  # the operator's table replaces the shipped one

    write_prices(path, {"house-model": {"input": 3, "cached_input": 1, "output": 4}}, batch_discount=0.5)
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))  # a visibly newer file
    assert price_table().cost("house-model", 1_000_000, 1_000_000) == Decimal("3.5")


@pytest.mark.parametrize(
    "content",
    [
        "{not json",
        "[]",
        '{"batch_discount": 0.5}',
        '{"models": {"m": {"input": 1, "cached_input": 1}}}',
        '{"models": {"m": 5}}',
        '{"models": {"m": {"input": "free", "cached_input": 0, "output": 1}}}',
        '{"models": {}, "batch_discount": "half"}',
        '{"models": []}',
    ],
)
def test_a_malformed_price_file_raises_price_table_error(tmp_path, content):
    path = tmp_path / "prices.json"
    path.write_text(content)
    with pytest.raises(PriceTableError, match="prices.json"):
        load_price_table(path)


def test_a_missing_price_file_raises_price_table_error(tmp_path):
    with pytest.raises(PriceTableError, match="missing.json"):
        load_price_table(tmp_path / "missing.json")
