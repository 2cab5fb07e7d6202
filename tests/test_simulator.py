"""The OpenAI Batch API simulator, driven over HTTP through the official openai SDK only."""

from __future__ import annotations

import hashlib
import http.client
import io
import json
import sys
import threading
import time
import tracemalloc
import urllib.error
import urllib.request
from pathlib import Path

import openai
import pytest
from openai.types import Completion, CreateEmbeddingResponse, ModerationCreateResponse
from openai.types.chat import ChatCompletion
from openai.types.responses import Response
from werkzeug.serving import make_server

# Self-contained on purpose: works whether or not the project's pytest config puts the root on sys.path.
ROOT = str(Path(__file__).resolve().parents[1])
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from webapp.providers.simulator import create_simulator_app, simulated_output, simulated_text  # noqa: E402

FAST = {
    "SIMULATOR_API_KEY": "sim",
    "SIMULATOR_CONTROL": True,
    "SIMULATOR_VALIDATING_SECONDS": 0.05,
    "SIMULATOR_IN_PROGRESS_SECONDS": 0.3,
    "SIMULATOR_FINALIZING_SECONDS": 0.05,
    "SIMULATOR_CANCELLING_SECONDS": 0.05,
}
CHAT = "/v1/chat/completions"
TERMINAL = ("completed", "failed", "expired", "cancelled")


# -- fixtures and helpers --------------------------------------------------------------------------------
@pytest.fixture
def sim_serve(tmp_path):
    """Start a simulator server with FAST timings plus overrides; return its base URL."""
    servers = []

    def serve(**overrides) -> str:
        config = {**FAST, "SIMULATOR_DIR": str(tmp_path / f"sim{len(servers)}"), **overrides}
        server = make_server("127.0.0.1", 0, create_simulator_app(config), threaded=True)
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_port}/simulator/v1"

    yield serve
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def sim_url(sim_serve) -> str:
    return sim_serve()


@pytest.fixture
def sim_client(sim_url) -> openai.OpenAI:
    return sim_client_for(sim_url)


def sim_client_for(url: str, max_retries: int = 0) -> openai.OpenAI:
    return openai.OpenAI(base_url=url, api_key="sim", max_retries=max_retries)


def chat_line(custom_id: str, text: str, model: str = "gpt-4o-mini", **body) -> dict:
    return {"custom_id": custom_id, "method": "POST", "url": CHAT,
            "body": {"model": model, "messages": [{"role": "user", "content": text}], **body}}


def upload(client: openai.OpenAI, lines: list, name: str = "input.jsonl") -> str:
    text = "".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines)
    return client.files.create(file=(name, io.BytesIO(text.encode()), "application/jsonl"), purpose="batch").id


def start(client: openai.OpenAI, lines: list, endpoint: str = CHAT, **kwargs):
    return client.batches.create(input_file_id=upload(client, lines), endpoint=endpoint,
                                 completion_window="24h", **kwargs)


def wait(client: openai.OpenAI, batch_id: str, until=TERMINAL, timeout: float = 5.0, seen: list | None = None):
    """Poll until the batch reaches a status in ``until``; record every status and count seen."""
    deadline = time.monotonic() + timeout
    while True:
        batch = client.batches.retrieve(batch_id)
        if seen is not None:
            seen.append(batch)
        if batch.status in until:
            return batch
        assert time.monotonic() < deadline, f"batch stuck in {batch.status}"
        time.sleep(0.01)


def run(client: openai.OpenAI, lines: list, endpoint: str = CHAT, **kwargs):
    return wait(client, start(client, lines, endpoint, **kwargs).id)


def read_lines(client: openai.OpenAI, file_id: str | None) -> list[dict]:
    if not file_id:
        return []
    return [json.loads(line) for line in client.files.content(file_id).text.splitlines()]


def raw(url: str, method: str = "GET", body: bytes | None = None, headers: dict | None = None):
    """Return (status, headers, parsed JSON) of a plain HTTP call, errors included."""
    headers = {"Authorization": "Bearer sim", "Content-Type": "application/json", **(headers or {})}
    request = urllib.request.Request(url, data=body, method=method,
                                     headers={k: v for k, v in headers.items() if v is not None})
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, response.headers, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, json.loads(exc.read())


def add_fault(url: str, **fault) -> None:
    status, _, _ = raw(f"{url}/_control/faults", "POST", json.dumps(fault).encode())
    assert status == 200


def assert_openai_error(body: dict) -> dict:
    assert set(body) == {"error"}
    assert set(body["error"]) == {"message", "type", "param", "code"}
    return body["error"]


# -- happy path ------------------------------------------------------------------------------------------
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
        "validating", "in_progress", "finalizing", "completed"]
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


# -- validation ------------------------------------------------------------------------------------------
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
    other_model = wait(client, start(client, [chat_line("c", words, model="gpt-4o")]).id,
                       until=("in_progress", "failed"))

    assert second.status == "failed"
    [error] = second.errors.data
    assert error.code == "token_limit_exceeded"
    assert error.message == (
        "Enqueued token limit reached for gpt-4o-mini in organization org-sim. Limit: 100 enqueued tokens. "
        "Please try again once some in_progress batches have been completed.")
    assert other_model.status == "in_progress"
    client.batches.cancel(first.id)
    client.batches.cancel(other_model.id)


# -- per-request outcomes --------------------------------------------------------------------------------
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


def test_failure_rate_fails_the_same_requests_every_time(sim_serve):
    client = sim_client_for(sim_serve(SIMULATOR_FAILURE_RATE=0.5))
    lines = [chat_line(f"r{i}", f"q{i}") for i in range(20)]
    batch = run(client, lines)

    failed = {line["custom_id"] for line in read_lines(client, batch.error_file_id)}
    expected = {request["custom_id"] for request in lines
                if simulated_output(request, batch_id=batch.id, failure_rate=0.5)["response"]["status_code"] == 500}
    assert failed == expected and 0 < len(failed) < 20
    assert batch.request_counts.failed == len(failed)


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


# -- batch-level outcomes --------------------------------------------------------------------------------
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
    client = sim_client_for(sim_serve(SIMULATOR_IN_PROGRESS_SECONDS=1.0, SIMULATOR_CANCELLING_SECONDS=0.2))
    lines = [chat_line(f"r{i}", f"q{i}") for i in range(10)]
    created = start(client, lines)
    wait(client, created.id, until=("in_progress",))
    time.sleep(0.35)

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


# -- the API surface -------------------------------------------------------------------------------------
def test_list_batches_pages_newest_first(sim_client):
    ids = [start(sim_client, [chat_line("a", f"x{i}")]).id for i in range(5)]

    page = sim_client.batches.list(limit=2)
    assert [b.id for b in page.data] == ids[::-1][:2]
    assert page.has_more is True and page.first_id == ids[4] and page.last_id == ids[3]
    second = sim_client.batches.list(limit=2, after=page.last_id)
    assert [b.id for b in second.data] == ids[::-1][2:4]
    last = sim_client.batches.list(limit=2, after=second.last_id)
    assert [b.id for b in last.data] == [ids[0]] and last.has_more is False
    assert [b.id for b in sim_client.batches.list(limit=2)] == ids[::-1]  # the SDK's auto-pagination


def test_deleted_file_is_gone(sim_client, sim_url):
    file_id = upload(sim_client, [chat_line("a", "x")])
    deleted = sim_client.files.delete(file_id)
    assert deleted.deleted is True and deleted.id == file_id

    with pytest.raises(openai.NotFoundError):
        sim_client.files.retrieve(file_id)
    with pytest.raises(openai.NotFoundError):
        sim_client.files.content(file_id)
    with pytest.raises(openai.NotFoundError):
        sim_client.files.delete(file_id)
    status, _, body = raw(f"{sim_url}/files/{file_id}")
    assert status == 404 and assert_openai_error(body)["type"] == "invalid_request_error"


def test_batch_survives_deletion_of_its_input_file(sim_client):
    created = start(sim_client, [chat_line("a", "x")])
    sim_client.files.delete(created.input_file_id)
    assert wait(sim_client, created.id).status == "completed"


def test_large_upload_is_streamed_to_disk(sim_url, sim_client):
    line = (json.dumps(chat_line("0" * 12, "y" * 4000)) + "\n").encode()
    count = 12_000  # ~49 MB
    boundary = "simboundary"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nbatch\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.jsonl\"\r\n"
            "Content-Type: application/jsonl\r\n\r\n").encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    host, port = sim_url.split("//")[1].split("/")[0].split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=60)

    tracemalloc.start()
    try:
        connection.request("POST", "/simulator/v1/files", body=iter([head, *([line] * count), tail]), headers={
            "Authorization": "Bearer sim", "Content-Type": f"multipart/form-data; boundary={boundary}",
            "Content-Length": str(len(head) + len(line) * count + len(tail))})
        response = connection.getresponse()
        meta = json.loads(response.read())
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        connection.close()

    assert response.status == 200 and meta["bytes"] == len(line) * count
    # Werkzeug's dev server drains each socket with one 10 MB read; anything near the upload's size is a leak.
    assert peak < 20 * 1024 * 1024, f"upload used {peak} bytes of memory"
    content = sim_client.files.content(meta["id"]).content
    assert hashlib.sha256(content).hexdigest() == hashlib.sha256(line * count).hexdigest()


def test_create_rejects_what_the_real_api_rejects_synchronously(sim_client):
    file_id = upload(sim_client, [chat_line("a", "x")])

    def create(**kwargs):
        params = {"input_file_id": file_id, "endpoint": CHAT, "completion_window": "24h", **kwargs}
        return sim_client.batches.create(**params)

    with pytest.raises(openai.NotFoundError):
        create(input_file_id="file-doesnotexist")
    for bad in ({"endpoint": "/v1/nope"}, {"completion_window": "48h"},
                {"metadata": {f"k{i}": "v" for i in range(17)}},
                {"metadata": {"k" * 65: "v"}}, {"metadata": {"k": "v" * 513}}):
        with pytest.raises(openai.BadRequestError) as info:
            create(**bad)
        assert info.value.body["param"] and info.value.body["type"] == "invalid_request_error"
    assert create(metadata={"k" * 64: "v" * 512, **{f"k{i}": "v" for i in range(15)}}).status == "validating"
    with pytest.raises(openai.NotFoundError):
        sim_client.batches.retrieve("batch_doesnotexist")


def test_malformed_calls_get_openai_shaped_errors(sim_url):
    status, _, body = raw(f"{sim_url}/batches", "POST", b"{not json")
    assert status == 400 and assert_openai_error(body)
    status, _, body = raw(f"{sim_url}/batches", "POST", b"{}")
    assert status == 400 and assert_openai_error(body)["code"] == "missing_required_parameter"
    status, _, body = raw(f"{sim_url}/files", "POST", b"", {"Content-Type": "multipart/form-data; boundary=x"})
    assert status == 400 and assert_openai_error(body)["param"] == "file"
    status, _, body = raw(f"{sim_url}/batches?limit=1000")
    assert status == 400 and assert_openai_error(body)["param"] == "limit"
    status, _, body = raw(f"{sim_url}/no/such/thing", "PUT")
    assert status == 404 and "Invalid URL" in assert_openai_error(body)["message"]
    status, _, body = raw(f"{sim_url}/batches", headers={"Authorization": None})
    assert status == 401 and assert_openai_error(body)


def test_upload_for_batch_must_be_jsonl(sim_client):
    with pytest.raises(openai.BadRequestError):
        sim_client.files.create(file=("input.csv", io.BytesIO(b"a,b\n"), "text/csv"), purpose="batch")


# -- injected faults -------------------------------------------------------------------------------------
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
    assert client.files.create(file=("in.jsonl", io.BytesIO(b"{}\n"), "application/jsonl"),
                               purpose="batch").bytes == 3

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


@pytest.mark.parametrize("fault, field", [
    ({"status": 200}, "status"), ({"status": 500, "rate": 0}, "rate"), ({"status": 500, "rate": 1.5}, "rate"),
    ({"status": 500, "after": "yes"}, "after"), ({"status": 500, "path": "files"}, "path"),
    ({"after": True}, "status"), ({"status": 500, "count": 0}, "count"),
])
def test_control_names_the_bad_field_of_a_fault(sim_url, fault, field):
    status, _, body = raw(f"{sim_url}/_control/faults", "POST", json.dumps(fault).encode())
    assert status == 400 and assert_openai_error(body)["param"] == field


def test_control_rejects_bad_faults(sim_url):
    status, _, body = raw(f"{sim_url}/_control/faults", "POST", json.dumps({"status": 200}).encode())
    assert status == 400 and assert_openai_error(body)["param"] == "status"


# -- endpoints and response bodies -----------------------------------------------------------------------
def test_structured_output_satisfies_its_schema(sim_client):
    schema = {
        "type": "object", "additionalProperties": False,
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
        "$defs": {"person": {"type": "object", "properties": {"name": {"type": "string"},
                                                              "verified": {"type": "boolean"}}}},
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
    line = {"custom_id": "r", "method": "POST", "url": "/v1/responses",
            "body": {"model": "gpt-5-mini", "instructions": "Be brief.",
                     "input": [{"role": "user", "content": [{"type": "input_text", "text": "Name a colour"}]}]}}
    batch = run(sim_client, [line], endpoint="/v1/responses")

    [output] = read_lines(sim_client, batch.output_file_id)
    response = Response.model_validate(output["response"]["body"])
    assert response.output_text == simulated_text(line["body"])
    assert response.usage.output_tokens_details.reasoning_tokens > 0  # gpt-5 is a reasoning model
    assert batch.usage.output_tokens == response.usage.output_tokens
    assert batch.usage.output_tokens_details.reasoning_tokens == response.usage.output_tokens_details.reasoning_tokens


def test_embeddings_endpoint(sim_client):
    lines = [{"custom_id": "one", "method": "POST", "url": "/v1/embeddings",
              "body": {"model": "text-embedding-3-small", "input": "hello", "dimensions": 16}},
             {"custom_id": "two", "method": "POST", "url": "/v1/embeddings",
              "body": {"model": "text-embedding-3-small", "input": ["a", "b", "hello"]}}]
    batch = run(sim_client, lines, endpoint="/v1/embeddings")

    outputs = {line["custom_id"]: CreateEmbeddingResponse.model_validate(line["response"]["body"])
               for line in read_lines(sim_client, batch.output_file_id)}
    assert [len(e.embedding) for e in outputs["one"].data] == [16]
    assert [len(e.embedding) for e in outputs["two"].data] == [8, 8, 8]
    assert outputs["two"].data[0].embedding != outputs["two"].data[1].embedding
    assert abs(sum(v * v for v in outputs["two"].data[0].embedding) - 1) < 1e-3
    assert batch.usage.output_tokens == 0 and batch.usage.input_tokens > 0


def test_completions_and_moderations_endpoints(sim_client):
    completion = run(sim_client, [{"custom_id": "c", "method": "POST", "url": "/v1/completions",
                                   "body": {"model": "gpt-3.5-turbo-instruct", "prompt": "Say hi",
                                            "max_tokens": 50}}], endpoint="/v1/completions")
    [line] = read_lines(sim_client, completion.output_file_id)
    assert Completion.model_validate(line["response"]["body"]).choices[0].text.startswith("Simulated reply")

    moderation = run(sim_client, [{"custom_id": "m", "method": "POST", "url": "/v1/moderations",
                                   "body": {"input": ["one", "two"]}}], endpoint="/v1/moderations")
    [line] = read_lines(sim_client, moderation.output_file_id)
    assert len(ModerationCreateResponse.model_validate(line["response"]["body"]).results) == 2
    assert moderation.model == "omni-moderation-latest"


def test_token_limits_truncate_and_reasoning_and_cache_are_reported(sim_client):
    long_prompt = "word " * 1000  # 1250 tokens: long enough to be cached
    lines = [chat_line("short", "Tell me everything", max_tokens=3),
             chat_line("cached", long_prompt),
             chat_line("reasoning", "Think", model="o4-mini", max_completion_tokens=500)]
    batches = [start(sim_client, [request]) for request in lines]  # one model per batch, run side by side
    by_id = {}
    for request, created in zip(lines, batches):
        [line] = read_lines(sim_client, wait(sim_client, created.id).output_file_id)
        by_id[request["custom_id"]] = line["response"]["body"]

    short = by_id["short"]
    assert short["choices"][0]["finish_reason"] == "length" and short["usage"]["completion_tokens"] == 3
    assert short["choices"][0]["message"]["content"] == simulated_text(lines[0]["body"])[:12]
    cached = by_id["cached"]["usage"]
    assert cached["prompt_tokens"] == 1250 and cached["prompt_tokens_details"]["cached_tokens"] == 512
    reasoning = by_id["reasoning"]["usage"]
    assert 0 < reasoning["completion_tokens_details"]["reasoning_tokens"] < reasoning["completion_tokens"] <= 500
