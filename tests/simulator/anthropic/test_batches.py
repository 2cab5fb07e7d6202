"""A message batch's life through the official SDK: inline requests, in_progress to ended, results as JSONL,
cancels, expiry, listing, deletion, and what the API refuses at once."""

from __future__ import annotations

import json
import time

import anthropic
import jsonschema
import pytest
from anthropic.types import Message

from simulator import simulated_text
from simulator.anthropic import simulated_message
from simulator.anthropic.messages import result_key
from tests.simulator.anthropic.helpers import MODEL, client_for, params, request, run, wait_ended
from tests.simulator.helpers import chat_line, sim_client_for, start


def test_a_batch_runs_from_in_progress_to_ended_with_one_result_per_request(claude):
    requests = [request(f"req-{i}", f"Question number {i}?") for i in range(8)]
    created = claude.messages.batches.create(requests=requests)
    assert created.id.startswith("msgbatch_") and created.processing_status == "in_progress"
    assert created.request_counts.processing == 8 and created.results_url is None and created.ended_at is None
    assert (created.expires_at - created.created_at).total_seconds() == 24 * 3600

    seen: list = []
    batch = wait_ended(claude, created.id, seen=seen)
    # Counts move only once the whole batch has ended, as the API documents.
    assert all(b.request_counts.processing == 8 and b.request_counts.succeeded == 0 for b in seen[:-1])
    assert batch.request_counts.model_dump() == {
        "processing": 0,
        "succeeded": 8,
        "errored": 0,
        "canceled": 0,
        "expired": 0,
    }
    assert batch.results_url.endswith(f"/messages/batches/{batch.id}/results")
    assert batch.created_at < batch.ended_at and batch.cancel_initiated_at is None

    lines = list(claude.messages.batches.results(batch.id))
    assert [line.custom_id for line in lines] != [r["custom_id"] for r in requests]  # no order is promised
    by_id = {line.custom_id: line.result for line in lines}
    assert set(by_id) == {r["custom_id"] for r in requests}
    for sent in requests:
        result = by_id[sent["custom_id"]]
        assert result.type == "succeeded"
        message = Message.model_validate(result.message.model_dump())
        assert message.content[0].text == simulated_text(sent["params"]) and message.stop_reason == "end_turn"
        assert message.model == MODEL and message.usage.input_tokens > 0 and message.usage.output_tokens > 0
        expected = simulated_message(sent["params"], result_key(batch.id, sent["custom_id"]))
        assert message.id == expected["id"] and message.usage.model_dump(exclude_none=True) == expected["usage"]


SCHEMA = {
    "type": "object",
    "properties": {"sentiment": {"enum": ["positive", "negative"]}, "score": {"type": "integer"}},
    "required": ["sentiment", "score"],
    "additionalProperties": False,
}


def test_a_forced_tool_is_answered_with_tool_use_and_a_json_format_with_json_text(claude):
    tool = {"name": "record", "description": "Record the answer", "input_schema": SCHEMA}
    _, results = run(
        claude,
        [
            request("tool", "Rate this", tools=[tool], tool_choice={"type": "tool", "name": "record"}),
            request("any", "Rate this", tools=[tool], tool_choice={"type": "any"}),
            request("format", "Rate this", output_config={"format": {"type": "json_schema", "schema": SCHEMA}}),
        ],
    )
    for custom_id in ("tool", "any"):
        message = results[custom_id].message
        (block,) = message.content
        assert block.type == "tool_use" and block.name == "record" and message.stop_reason == "tool_use"
        jsonschema.validate(block.input, SCHEMA)
    jsonschema.validate(json.loads(results["format"].message.content[0].text), SCHEMA)


def test_a_reply_longer_than_max_tokens_stops_at_it(claude):
    _, results = run(claude, [request("short", "Tell me a long story " * 5, max_tokens=3)])
    message = results["short"].message
    assert message.stop_reason == "max_tokens" and message.usage.output_tokens == 3


def test_prompt_caching_reports_cache_reads_and_writes(claude):
    long_system = [{"type": "text", "text": "Context. " * 800, "cache_control": {"type": "ephemeral"}}]
    _, results = run(claude, [request(f"c{i}", f"Question {i}", system=long_system) for i in range(6)])
    usages = [result.message.usage for result in results.values()]
    assert all((u.cache_read_input_tokens or 0) + (u.cache_creation_input_tokens or 0) > 0 for u in usages)
    assert any(u.cache_read_input_tokens for u in usages) and any(u.cache_creation_input_tokens for u in usages)
    _, plain = run(claude, [request("plain", "Context. " * 800)])
    assert plain["plain"].message.usage.cache_read_input_tokens == 0


@pytest.mark.parametrize(
    ("sent", "error_type"),
    [
        ({"custom_id": "no-max", "params": {"model": MODEL, "messages": [{"role": "user", "content": "x"}]}}, None),
        (request("overloaded", "x [[sim:status=529]]"), "overloaded_error"),
        (request("limited", "x [[sim:status=429]]"), "rate_limit_error"),
        (request("server", "x [[sim:status=500]]"), "api_error"),
        (request("refused", "x [[sim:status=400]]"), "invalid_request_error"),
        (
            request(
                "forced",
                "x",
                model="claude-sonnet-5-5",
                tools=[{"name": "t", "input_schema": {"type": "object"}}],
                tool_choice={"type": "tool", "name": "t"},
            ),
            "invalid_request_error",
        ),
    ],
    ids=["no max_tokens", "529", "429", "500", "400", "forced tool on sonnet 5.5"],
)
def test_a_request_that_fails_is_errored_with_the_api_error_type(claude, sent, error_type):
    batch, results = run(claude, [sent, request("fine", "y")])
    assert (batch.request_counts.errored, batch.request_counts.succeeded) == (1, 1)
    failed = results[sent["custom_id"]]
    assert failed.type == "errored" and failed.error.type == "error"
    assert failed.error.error.type == (error_type or "invalid_request_error")
    if error_type is None:
        assert failed.error.error.message == "max_tokens: Field required"


def test_a_failure_rate_errors_that_share_of_requests_transiently(sim_serve):
    claude = client_for(sim_serve(SIMULATOR_FAILURE_RATE=0.5))
    batch, results = run(claude, [request(f"r{i}", f"q{i}") for i in range(40)])
    assert 5 < batch.request_counts.errored < 35
    assert {r.error.error.type for r in results.values() if r.type == "errored"} == {"api_error"}


def test_a_cancelled_batch_keeps_what_ran_and_cancels_the_rest(sim_serve):
    claude = client_for(sim_serve(SIMULATOR_IN_PROGRESS_SECONDS=30))
    batch = claude.messages.batches.create(requests=[request(f"r{i}", f"q{i}") for i in range(4)])
    cancelling = claude.messages.batches.cancel(batch.id)
    assert cancelling.processing_status == "canceling" and cancelling.cancel_initiated_at is not None
    assert claude.messages.batches.cancel(batch.id).processing_status in ("canceling", "ended")  # harmless twice
    ended = wait_ended(claude, batch.id)
    assert ended.request_counts.canceled == 4 and ended.request_counts.processing == 0
    assert {line.result.type for line in claude.messages.batches.results(batch.id)} == {"canceled"}
    with pytest.raises(anthropic.BadRequestError, match="already ended"):
        claude.messages.batches.cancel(batch.id)


def test_a_held_batch_cancelled_late_keeps_every_result(claude):
    batch = claude.messages.batches.create(requests=[request("held", "q [[sim:hold]]"), request("b", "q")])
    time.sleep(0.4)  # past the in_progress window: every request has run, the batch is still held
    assert claude.messages.batches.retrieve(batch.id).processing_status == "in_progress"
    claude.messages.batches.cancel(batch.id)
    ended = wait_ended(claude, batch.id)
    assert (ended.request_counts.succeeded, ended.request_counts.canceled) == (2, 0)


def test_an_expiring_batch_ends_with_the_rest_expired(claude):
    batch, results = run(claude, [request(f"r{i}", f"q{i} [[sim:expire]]") for i in range(6)])
    assert (batch.request_counts.succeeded, batch.request_counts.expired) == (3, 3)
    assert sorted(r.type for r in results.values()) == ["expired"] * 3 + ["succeeded"] * 3


def test_batches_are_listed_newest_first_page_by_page(claude):
    ids = [claude.messages.batches.create(requests=[request("a", f"q{i}")]).id for i in range(5)]
    assert [b.id for b in claude.messages.batches.list(limit=2)] == ids[::-1]  # the SDK follows after_id
    first = claude.messages.batches.list(limit=2)
    assert first.has_more and [b.id for b in first.data] == ids[:2:-1]
    newer = claude.messages.batches.list(limit=2, before_id=ids[1])
    assert [b.id for b in newer.data] == [ids[3], ids[2]]


def test_an_ended_batch_is_deleted_with_its_results_and_a_running_one_is_not(sim_serve):
    claude = client_for(sim_serve(SIMULATOR_IN_PROGRESS_SECONDS=30))
    running = claude.messages.batches.create(requests=[request("a", "q")])
    with pytest.raises(anthropic.BadRequestError, match="cancel it first"):
        claude.messages.batches.delete(running.id)
    claude.messages.batches.cancel(running.id)
    wait_ended(claude, running.id)
    assert claude.messages.batches.delete(running.id).type == "message_batch_deleted"
    with pytest.raises(anthropic.NotFoundError):
        claude.messages.batches.retrieve(running.id)


@pytest.mark.parametrize(
    ("requests", "message"),
    [
        ([], "at least one"),
        ([{"custom_id": "a" * 65, "params": params("x")}], "custom_id"),
        ([{"custom_id": "row 1", "params": params("x")}], "custom_id"),
        ([{"custom_id": "a", "params": params("x")}, {"custom_id": "a", "params": params("y")}], "duplicate"),
        ([{"custom_id": "a"}], "params"),
    ],
    ids=["empty", "too long", "space in id", "duplicate", "no params"],
)
def test_a_malformed_batch_is_refused_at_once(claude, requests, message):
    with pytest.raises(anthropic.BadRequestError, match=message) as caught:
        claude.messages.batches.create(requests=requests)
    assert caught.value.body["error"]["type"] == "invalid_request_error"
    assert list(claude.messages.batches.list()) == []


def test_each_dialect_sees_only_its_own_batches(sim_url, claude):
    openai_batch = start(sim_client_for(sim_url), [chat_line("a", "x")])
    anthropic_batch = claude.messages.batches.create(requests=[request("a", "x")])
    assert [b.id for b in claude.messages.batches.list()] == [anthropic_batch.id]
    assert [b.id for b in sim_client_for(sim_url).batches.list()] == [openai_batch.id]
    with pytest.raises(anthropic.NotFoundError):
        claude.messages.batches.retrieve(openai_batch.id)


def test_the_models_it_offers_are_listed(claude):
    models = [model.id for model in claude.models.list()]
    assert MODEL in models and "claude-sonnet-5-5" in models
    assert claude.models.retrieve(MODEL).display_name == "Claude Haiku 4.5"
    with pytest.raises(anthropic.NotFoundError):
        claude.models.retrieve("gpt-4o")
