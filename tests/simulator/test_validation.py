"""Validation as the real API does it: after create, as a failed batch with line numbers; synchronous checks."""

from __future__ import annotations

from tests.simulator.helpers import CHAT, chat_line, run, sim_client_for, start, wait


def test_validation_failures_are_reported_on_a_failed_batch_with_line_numbers(sim_client):
    lines = [
        chat_line("ok-1", "fine"),
        "{not json",
        {"method": "POST", "url": CHAT, "body": {"model": "gpt-4o-mini", "messages": []}},
        chat_line("ok-1", "duplicate"),
        {**chat_line("url", "x"), "url": "/v1/embeddings"},
        chat_line("model", "x", model="gpt-4o"),
        chat_line("stream", "x", stream=True),
        {"custom_id": "nobody", "method": "POST", "url": CHAT},
        {"custom_id": "no-method-no-url", "body": {"model": "gpt-4o-mini", "messages": []}},
    ]
    created = start(sim_client, lines)
    assert created.status == "validating"  # bad content never fails the create call itself

    batch = wait(sim_client, created.id)

    assert batch.status == "failed" and batch.failed_at is not None
    assert batch.output_file_id is None and batch.error_file_id is None
    assert batch.request_counts.total == 0
    errors = [(e.code, e.line, e.param) for e in batch.errors.data]
    assert errors == [
        ("invalid_json_line", 2, None),
        ("missing_required_parameter", 3, "custom_id"),
        ("duplicate_custom_id", 4, "custom_id"),
        ("url_mismatch", 5, "url"),
        ("model_mismatch", 6, "body.model"),
        ("unsupported_value", 7, "body.stream"),
        ("missing_required_parameter", 8, "body"),
        ("missing_required_parameter", 9, "method"),
        ("missing_required_parameter", 9, "url"),
    ]
    assert all(e.message for e in batch.errors.data)


def test_empty_file_fails_validation(sim_client):
    batch = run(sim_client, [])
    assert batch.status == "failed"
    assert [(e.code, e.line) for e in batch.errors.data] == [("empty_file", None)]


def test_too_many_tasks_fails_validation(sim_serve):
    client = sim_client_for(sim_serve(SIMULATOR_MAX_REQUESTS=3))
    batch = run(client, [chat_line(f"r{i}", "x") for i in range(4)])
    assert batch.status == "failed"
    assert [e.code for e in batch.errors.data] == ["too_many_tasks"]


def test_token_limit_counts_running_batches_of_the_same_model(sim_serve):
    client = sim_client_for(sim_serve(SIMULATOR_ENQUEUED_TOKEN_LIMIT=100, SIMULATOR_IN_PROGRESS_SECONDS=3.0))
    words = "x" * 240  # 60 tokens at 4 characters a token
    first = start(client, [chat_line("a", words)])
    assert wait(client, first.id, until=("in_progress", "failed")).status == "in_progress"

    second = wait(client, start(client, [chat_line("b", words)]).id, until=("in_progress", "failed"))
    other_model = wait(
        client, start(client, [chat_line("c", words, model="gpt-4o")]).id, until=("in_progress", "failed")
    )

    assert second.status == "failed"
    [error] = second.errors.data
    assert error.code == "token_limit_exceeded"
    assert error.message == (
        "Enqueued token limit reached for gpt-4o-mini in organization org-sim. Limit: 100 enqueued tokens. "
        "Please try again once some in_progress batches have been completed."
    )
    assert other_model.status == "in_progress"
    client.batches.cancel(first.id)
    client.batches.cancel(other_model.id)
