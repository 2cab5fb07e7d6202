"""A batch's life: statuses in order, results written once, expiry, cancels, slow finalizing, listing."""

from __future__ import annotations

import time

import openai
import pytest
from openai.types.chat import ChatCompletion

from simulator import simulated_output, simulated_text
from tests.simulator.helpers import TERMINAL, chat_line, read_lines, run, sim_client_for, start, wait


def test_batch_runs_through_every_status_to_completed(sim_serve):
    sim_client = sim_client_for(sim_serve(SIMULATOR_FINALIZING_SECONDS=0.15))  # long enough to be seen
    lines = [chat_line(f"req-{i}", f"Question number {i}?") for i in range(8)]
    created = start(sim_client, lines, metadata={"job": "42"})
    assert created.status == "validating" and created.request_counts.total == 0

    seen: list = []
    batch = wait(sim_client, created.id, seen=seen)

    statuses = [b.status for b in seen]
    assert statuses[-1] == "completed"
    assert [s for i, s in enumerate(statuses) if i == 0 or statuses[i - 1] != s] == [
        "validating",
        "in_progress",
        "finalizing",
        "completed",
    ]
    progress = [b.request_counts.completed for b in seen if b.status == "in_progress"]
    assert progress == sorted(progress) and 0 < max(progress) < 8
    assert batch.request_counts.model_dump() == {"total": 8, "completed": 8, "failed": 0}
    assert batch.model == "gpt-4o-mini" and batch.metadata == {"job": "42"}
    assert batch.error_file_id is None and batch.errors is None
    assert batch.created_at <= batch.in_progress_at <= batch.finalizing_at <= batch.completed_at
    assert batch.expires_at == batch.created_at + 24 * 3600

    output = read_lines(sim_client, batch.output_file_id)
    assert [line["custom_id"] for line in output] != [line["custom_id"] for line in lines]
    by_id = {line["custom_id"]: line for line in output}
    assert set(by_id) == {line["custom_id"] for line in lines}
    for request in lines:
        line = by_id[request["custom_id"]]
        assert line["id"].startswith("batch_req_") and line["error"] is None
        assert line["response"]["status_code"] == 200
        completion = ChatCompletion.model_validate(line["response"]["body"])
        assert completion.choices[0].message.content == simulated_text(request["body"])
        assert line == simulated_output(request, batch_id=batch.id, created=completion.created)

    usage = [line["response"]["body"]["usage"] for line in output]
    assert batch.usage.input_tokens == sum(u["prompt_tokens"] for u in usage)
    assert batch.usage.output_tokens == sum(u["completion_tokens"] for u in usage)
    assert batch.usage.total_tokens == batch.usage.input_tokens + batch.usage.output_tokens

    output_file = sim_client.files.retrieve(batch.output_file_id)
    assert output_file.purpose == "batch_output" and output_file.filename == f"{batch.id}_output.jsonl"


def test_results_are_written_once_and_are_stable(sim_client):
    batch = run(sim_client, [chat_line(f"r{i}", "same") for i in range(3)])
    first = sim_client.files.content(batch.output_file_id).text
    again = sim_client.batches.retrieve(batch.id)
    assert again.output_file_id == batch.output_file_id
    assert sim_client.files.content(again.output_file_id).text == first


def test_expire_marker_ends_expired_with_partial_results(sim_client):
    lines = [chat_line(f"r{i}", "[[sim:expire]]" if i == 0 else f"q{i}") for i in range(6)]
    batch = run(sim_client, lines)

    assert batch.status == "expired" and batch.expired_at is not None and batch.completed_at is None
    done = read_lines(sim_client, batch.output_file_id)
    expired = read_lines(sim_client, batch.error_file_id)
    assert sorted(line["custom_id"] for line in done) == ["r0", "r1", "r2"]
    assert sorted(line["custom_id"] for line in expired) == ["r3", "r4", "r5"]
    assert all(line["response"] is None and line["error"]["code"] == "batch_expired" for line in expired)
    assert batch.request_counts.model_dump() == {"total": 6, "completed": 3, "failed": 3}
    assert batch.usage.input_tokens == sum(line["response"]["body"]["usage"]["prompt_tokens"] for line in done)


def test_cancel_in_progress_keeps_partial_results(sim_serve):
    # Long enough in progress that the cancel lands inside it on a loaded machine; some requests ran by then.
    client = sim_client_for(sim_serve(SIMULATOR_IN_PROGRESS_SECONDS=4.0, SIMULATOR_CANCELLING_SECONDS=0.2))
    lines = [chat_line(f"r{i}", f"q{i}") for i in range(10)]
    created = start(client, lines)
    wait(client, created.id, until=("in_progress",))
    time.sleep(0.5)

    cancelling = client.batches.cancel(created.id)
    assert cancelling.status == "cancelling" and cancelling.cancelling_at is not None
    assert client.batches.cancel(created.id).status == "cancelling"  # idempotent
    batch = wait(client, created.id)

    assert batch.status == "cancelled" and batch.cancelled_at is not None
    done = read_lines(client, batch.output_file_id)
    assert 0 < len(done) < 10 and batch.error_file_id is None
    assert batch.request_counts.completed == len(done) == cancelling.request_counts.completed
    assert batch.request_counts.total == 10
    # Requests run in input order, so the processed ones are a prefix and the rest appear nowhere.
    assert sorted(line["custom_id"] for line in done) == sorted(f"r{i}" for i in range(len(done)))


def test_cancel_while_validating_runs_nothing(sim_serve):
    client = sim_client_for(sim_serve(SIMULATOR_VALIDATING_SECONDS=0.5))
    created = start(client, [chat_line("a", "x")])
    assert client.batches.cancel(created.id).status == "cancelling"
    batch = wait(client, created.id)
    assert batch.status == "cancelled" and batch.output_file_id is None and batch.error_file_id is None
    assert batch.in_progress_at is None and batch.request_counts.total == 0


def test_cancelling_a_completed_batch_is_refused(sim_client):
    batch = run(sim_client, [chat_line("a", "x")])
    with pytest.raises(openai.BadRequestError) as info:
        sim_client.batches.cancel(batch.id)
    assert "completed" in info.value.message


def test_slow_finalize_marker_holds_the_batch_in_finalizing(sim_client):
    created = start(sim_client, [chat_line("a", "[[sim:slow_finalize]]")])
    batch = wait(sim_client, created.id, until=("finalizing",) + TERMINAL)
    assert batch.status == "finalizing" and batch.request_counts.completed == 1
    time.sleep(0.3)  # six times the normal finalizing time
    assert sim_client.batches.retrieve(created.id).status == "finalizing"
