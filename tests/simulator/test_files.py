"""The Files API and the shape of every error: deletion, streaming, formats, malformed calls."""

from __future__ import annotations

import hashlib
import http.client
import io
import json
import tracemalloc

import openai
import pytest

from tests.simulator.helpers import CHAT, assert_openai_error, chat_line, raw, start, upload, wait


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
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nbatch\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.jsonl"\r\n'
        "Content-Type: application/jsonl\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    host, port = sim_url.split("//")[1].split("/")[0].split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=60)

    tracemalloc.start()
    try:
        connection.request(
            "POST",
            "/simulator/v1/files",
            body=iter([head, *([line] * count), tail]),
            headers={
                "Authorization": "Bearer sim",
                "Content-Type": f"multipart/form-data; boundary={boundary}",
                "Content-Length": str(len(head) + len(line) * count + len(tail)),
            },
        )
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
    for bad in (
        {"endpoint": "/v1/nope"},
        {"completion_window": "48h"},
        {"metadata": {f"k{i}": "v" for i in range(17)}},
        {"metadata": {"k" * 65: "v"}},
        {"metadata": {"k": "v" * 513}},
    ):
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
