"""Driving the simulator's Anthropic dialect in its tests, through the official ``anthropic`` SDK."""

from __future__ import annotations

import time

import anthropic

MODEL = "claude-haiku-4-5"


def base_url(sim_url: str) -> str:
    """The SDK's base URL for the dialect beside the OpenAI one at ``sim_url`` (``.../simulator/v1``)."""
    return sim_url.removesuffix("/v1") + "/anthropic"


def client_for(sim_url: str, key: str = "sim", max_retries: int = 0) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=base_url(sim_url), api_key=key, max_retries=max_retries)


def params(text: str, model: str = MODEL, **extra) -> dict:
    return {"model": model, "max_tokens": 256, "messages": [{"role": "user", "content": text}], **extra}


def request(custom_id: str, text: str, **extra) -> dict:
    return {"custom_id": custom_id, "params": params(text, **extra)}


def wait_ended(client: anthropic.Anthropic, batch_id: str, timeout: float = 5.0, seen: list | None = None):
    deadline = time.monotonic() + timeout
    while True:
        batch = client.messages.batches.retrieve(batch_id)
        if seen is not None:
            seen.append(batch)
        if batch.processing_status == "ended":
            return batch
        assert time.monotonic() < deadline, f"batch stuck in {batch.processing_status}"
        time.sleep(0.01)


def run(client: anthropic.Anthropic, requests: list[dict]):
    """Create a batch, wait for it to end; return it and its results by custom_id."""
    batch = wait_ended(client, client.messages.batches.create(requests=requests).id)
    return batch, {line.custom_id: line.result for line in client.messages.batches.results(batch.id)}
