"""Per-request outcomes: failures in the error file, the failure rate, all-failed and empty error file ids."""

from __future__ import annotations

from simulator import simulated_output
from tests.simulator.helpers import assert_openai_error, chat_line, read_lines, run, sim_client_for


def test_request_failures_land_in_the_error_file(sim_client):
    lines = [
        chat_line("ok", "hello"),
        chat_line("http-500", "please fail [[sim:status=500]]"),
        chat_line("http-429", "[[sim:status=429]] rate limited"),
        chat_line("http-400", "bad [[sim:status=400]]"),
        chat_line("non-http", "[[sim:error=server_error]]"),
        {**chat_line("no-messages", ""), "body": {"model": "gpt-4o-mini"}},
    ]
    batch = run(sim_client, lines)

    assert batch.status == "completed"
    assert batch.request_counts.model_dump() == {"total": 6, "completed": 1, "failed": 5}
    assert [line["custom_id"] for line in read_lines(sim_client, batch.output_file_id)] == ["ok"]
    errors = {line["custom_id"]: line for line in read_lines(sim_client, batch.error_file_id)}
    assert set(errors) == {"http-500", "http-429", "http-400", "non-http", "no-messages"}
    for custom_id, status in (("http-500", 500), ("http-429", 429), ("http-400", 400), ("no-messages", 400)):
        line = errors[custom_id]
        assert line["error"] is None and line["response"]["status_code"] == status
        assert_openai_error(line["response"]["body"])
    assert errors["no-messages"]["response"]["body"]["error"]["param"] == "messages"
    assert errors["non-http"]["response"] is None
    assert errors["non-http"]["error"]["code"] == "server_error" and errors["non-http"]["error"]["message"]


def test_failure_rate_fails_a_predictable_share_of_each_batch(sim_serve):
    client = sim_client_for(sim_serve(SIMULATOR_FAILURE_RATE=0.5))
    lines = [chat_line(f"r{i}", f"q{i}") for i in range(20)]
    batch = run(client, lines)

    failed = {line["custom_id"] for line in read_lines(client, batch.error_file_id)}
    expected = {
        request["custom_id"]
        for request in lines
        if simulated_output(request, batch_id=batch.id, failure_rate=0.5)["response"]["status_code"] == 500
    }
    assert failed == expected and 0 < len(failed) < 20
    assert batch.request_counts.failed == len(failed)


def test_a_request_that_failed_by_the_rate_usually_succeeds_when_sent_again(sim_serve):
    """The draw is per batch: sending the failed requests again in a new batch is a fresh draw, as a passing
    provider error would be, so "retry failed" does not end "0 succeeded" every time."""
    client = sim_client_for(sim_serve(SIMULATOR_FAILURE_RATE=0.3))
    lines = [chat_line(f"r{i}", f"q{i}") for i in range(100)]
    first = run(client, lines)
    failed = {line["custom_id"] for line in read_lines(client, first.error_file_id)}
    again = run(client, [line for line in lines if line["custom_id"] in failed])

    still_failing = {line["custom_id"] for line in read_lines(client, again.error_file_id)}
    assert len(failed) >= 4
    assert len(still_failing) < len(failed)
    assert {line["custom_id"] for line in read_lines(client, again.output_file_id)} == failed - still_failing


def test_batch_where_every_request_failed_completes_without_output_file(sim_client):
    batch = run(sim_client, [chat_line(f"r{i}", "[[sim:status=500]]") for i in range(3)])
    assert batch.status == "completed"
    assert batch.output_file_id is None and batch.error_file_id
    assert batch.request_counts.model_dump() == {"total": 3, "completed": 0, "failed": 3}
    assert batch.usage.total_tokens == 0


def test_empty_error_file_id_marker_reports_empty_string(sim_client):
    batch = run(sim_client, [chat_line("a", "[[sim:empty_error_file_id]] hi"), chat_line("b", "yo")])
    assert batch.status == "completed" and batch.error_file_id == ""
    assert len(read_lines(sim_client, batch.output_file_id)) == 2
