"""Injected faults: refused calls, lost answers, dropped connections, path patterns, rates, and their checks."""

from __future__ import annotations

import io
import json

import openai
import pytest

from tests.simulator.helpers import (
    CHAT,
    add_fault,
    assert_openai_error,
    chat_line,
    raw,
    read_lines,
    run,
    sim_client_for,
    start,
    upload,
)


def test_injected_faults_answer_the_next_matching_calls(sim_url, sim_client):
    batch = start(sim_client, [chat_line("a", "x")])
    add_fault(sim_url, status=429, count=1, method="GET", path_prefix="/batches")

    sim_client.files.retrieve(batch.input_file_id)  # does not match the fault
    status, headers, body = raw(f"{sim_url}/batches/{batch.id}")
    assert status == 429 and headers["Retry-After"] == "0"
    assert assert_openai_error(body)["code"] == "rate_limit_exceeded"
    assert sim_client.batches.retrieve(batch.id).id == batch.id  # used up

    add_fault(sim_url, status=500, count=2)
    with pytest.raises(openai.InternalServerError):
        sim_client.batches.list()
    _, _, state = raw(f"{sim_url}/_control/state")
    assert state["faults"][0]["count"] == 1 and state["batches"] == 1 and state["files"] == 1
    status, _, _ = raw(f"{sim_url}/_control/faults", "DELETE")
    assert status == 200
    assert sim_client.batches.list().data


def test_sdk_retries_through_one_injected_failure(sim_url):
    add_fault(sim_url, status=500, count=1, path_prefix="/files")
    client = sim_client_for(sim_url, max_retries=2)
    assert client.files.create(file=("in.jsonl", io.BytesIO(b"{}\n"), "application/jsonl"), purpose="batch").bytes == 3

    add_fault(sim_url, status=503, count=1)
    with pytest.raises(openai.InternalServerError) as info:
        sim_client_for(sim_url).batches.list()
    assert info.value.status_code == 503


def test_a_lost_answer_does_the_work_and_then_fails(sim_url, sim_client):
    add_fault(sim_url, status=500, after=True, method="POST", path="/files")
    with pytest.raises(openai.InternalServerError):
        upload(sim_client, [chat_line("a", "x")], name="lost.jsonl")
    assert [f.filename for f in sim_client.files.list()] == ["lost.jsonl"]  # stored all the same

    file_id = upload(sim_client, [chat_line("a", "x")])
    add_fault(sim_url, reset=True, after=True, method="POST", path="/batches")
    with pytest.raises(openai.APIConnectionError):  # no answer at all
        sim_client.batches.create(input_file_id=file_id, endpoint=CHAT, completion_window="24h")
    assert len(sim_client.batches.list().data) == 1


def test_a_reset_before_the_work_does_nothing(sim_url, sim_client):
    add_fault(sim_url, reset=True, method="POST", path="/files")
    with pytest.raises(openai.APIConnectionError):
        upload(sim_client, [chat_line("a", "x")])
    assert sim_client.files.list().data == []


def test_faults_match_a_path_pattern_and_fire_at_a_rate(sim_url, sim_client):
    batch = run(sim_client, [chat_line("a", "x")])
    add_fault(sim_url, status=404, method="GET", path="/files/*/content", count=1)
    assert sim_client.files.retrieve(batch.output_file_id).id == batch.output_file_id  # not the content
    with pytest.raises(openai.NotFoundError):
        sim_client.files.content(batch.output_file_id)
    assert read_lines(sim_client, batch.output_file_id)[0]["custom_id"] == "a"  # used up

    add_fault(sim_url, status=503, rate=0.5, count=10_000, path="/batches/*")
    failed = 0
    for _ in range(200):
        try:
            sim_client.batches.retrieve(batch.id)
        except openai.InternalServerError:
            failed += 1
    assert 50 < failed < 150  # about half (binomial: a miss is over seven standard deviations away)


@pytest.mark.parametrize(
    "fault, field",
    [
        ({"status": 200}, "status"),
        ({"status": 500, "rate": 0}, "rate"),
        ({"status": 500, "rate": 1.5}, "rate"),
        ({"status": 500, "after": "yes"}, "after"),
        ({"status": 500, "path": "files"}, "path"),
        ({"after": True}, "status"),
        ({"status": 500, "count": 0}, "count"),
    ],
)
def test_control_names_the_bad_field_of_a_fault(sim_url, fault, field):
    status, _, body = raw(f"{sim_url}/_control/faults", "POST", json.dumps(fault).encode())
    assert status == 400 and assert_openai_error(body)["param"] == field


def test_control_rejects_bad_faults(sim_url):
    status, _, body = raw(f"{sim_url}/_control/faults", "POST", json.dumps({"status": 200}).encode())
    assert status == 400 and assert_openai_error(body)["param"] == "status"
