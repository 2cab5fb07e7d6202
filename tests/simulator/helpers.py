"""Driving the simulator over HTTP in its tests: the official SDK, or plain HTTP for what the SDK hides."""

from __future__ import annotations

import io
import json
import time
import urllib.error
import urllib.request

import openai

LINE = b'{"custom_id": "a", "method": "POST", "url": "/v1/chat/completions", "body": {"model": "m", "messages": []}}\n'
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


def sim_client_for(url: str, max_retries: int = 0) -> openai.OpenAI:
    return openai.OpenAI(base_url=url, api_key="sim", max_retries=max_retries)


def chat_line(custom_id: str, text: str, model: str = "gpt-4o-mini", **body) -> dict:
    return {
        "custom_id": custom_id,
        "method": "POST",
        "url": CHAT,
        "body": {"model": model, "messages": [{"role": "user", "content": text}], **body},
    }


def upload(client: openai.OpenAI, lines: list, name: str = "input.jsonl") -> str:
    text = "".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines)
    return client.files.create(file=(name, io.BytesIO(text.encode()), "application/jsonl"), purpose="batch").id


def start(client: openai.OpenAI, lines: list, endpoint: str = CHAT, **kwargs):
    return client.batches.create(
        input_file_id=upload(client, lines), endpoint=endpoint, completion_window="24h", **kwargs
    )


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
    request = urllib.request.Request(
        url, data=body, method=method, headers={k: v for k, v in headers.items() if v is not None}
    )
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


def bearer(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


def upload_with(test_client, key: str) -> str:
    """Upload a one-line batch input file through a Flask test client; return its id."""
    response = test_client.post(
        "/simulator/v1/files", headers=bearer(key), data={"purpose": "batch", "file": (io.BytesIO(LINE), "in.jsonl")}
    )
    assert response.status_code == 200, response.json
    return response.json["id"]
