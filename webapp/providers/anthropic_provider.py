"""The Anthropic provider, on the official SDK: Message Batches with the requests sent inline, results as JSONL.

A batch's requests go with the create call (``send_batch``), translated from the stored chat bodies
(``anthropic_format``). Anthropic's custom_id allows 1-64 characters of ``[a-zA-Z0-9_-]``, which a user's id need
not fit, and a batch carries no metadata: so each request is sent as ``<label>-<n>``, its place in the batch under
a label the engine chose for this send (its installation, local batch and time). The results are translated back
to OpenAI output lines under the user's custom_ids (the engine hands over the batch's ids in the order they were
sent), and the label recognises a batch whose create answer was lost, by its results, once it has ended.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import anthropic
import orjson
from anthropic.types.messages import MessageBatch

from webapp.providers.anthropic_format import to_output_line, to_params
from webapp.providers.base import BatchInfo, Provider, ProviderError, TranslatedErrors

log = logging.getLogger(__name__)
CHAT = "/v1/chat/completions"
LIST_PAGE = 100
MODEL_LIST_TIMEOUT = 5.0  # seconds: the model list is read while a page renders, never worth a long wait
TIMESTAMPS = {"completed": "completed_at", "expired": "expired_at", "cancelled": "cancelled_at"}
CREATE_PATH = "/v1/messages/batches"  # the SDK's batches.create, with a body streamed from a file
JSON_BODY: Any = {"headers": {"Content-Type": "application/json"}}


class AnthropicProvider(Provider):
    """Provider over an ``anthropic.Anthropic`` client; SDK errors become ProviderError.

    As for OpenAI, the SDK resends reads and cancels itself (``http_retries``), but a create goes through ``once``,
    a client that never resends: a batch whose answer was lost may exist, and is looked for before sending again.
    """

    inline = True

    def __init__(self, name: str, *, api_key: str, base_url: str, http_retries: int = 2, timeout: float = 600):
        self.name = name
        self.client = anthropic.Anthropic(api_key=api_key, base_url=base_url, max_retries=http_retries, timeout=timeout)
        self.once = self.client.with_options(max_retries=0)

    def list_models(self) -> list[str]:
        with _translated("list models"):
            models = self.once.with_options(timeout=MODEL_LIST_TIMEOUT).models.list(limit=1000)
            return [model.id for model in models]

    def send_batch(self, path: Path, endpoint: str, label: str) -> BatchInfo:
        if endpoint != CHAT:
            raise ProviderError(f"{self.name} runs only {CHAT} requests, not {endpoint}", retryable=False)
        with tempfile.TemporaryFile() as body:
            _write_create_body(path, label, body)
            body.seek(0)
            with _translated("create batch"):
                batch = self.once.post(CREATE_PATH, cast_to=MessageBatch, content=body, options=JSON_BODY)
        return to_batch_info(batch)

    def get_batch(self, batch_id: str) -> BatchInfo:
        with _translated("retrieve batch"):
            return to_batch_info(self.client.messages.batches.retrieve(batch_id))

    def list_batches(self, limit: int = LIST_PAGE) -> Iterator[BatchInfo]:
        with _translated("list batches"):
            for batch in self.client.messages.batches.list(limit=limit):
                yield to_batch_info(batch)

    def cancel_batch(self, batch_id: str) -> BatchInfo:
        with _translated("cancel batch"):
            return to_batch_info(self.client.messages.batches.cancel(batch_id))

    def batch_label(self, batch_id: str) -> str | None:
        """The label of the first result's id (every request of a batch sent here carries the same one)."""
        with _translated("read batch label"):
            if self.client.messages.batches.retrieve(batch_id).processing_status != "ended":
                return None
            with _result_lines(self.client, batch_id) as lines:
                first = next(lines, None)
        return wire_label(str(orjson.loads(first).get("custom_id", ""))) if first else None

    def download_results(self, batch_id: str, custom_ids: Sequence[str], dest: Path) -> int:
        written = 0
        with _translated("download results"):
            ended = self.client.messages.batches.retrieve(batch_id).ended_at
            created = int(ended.timestamp()) if ended else 0
            with open(dest, "wb") as out, _result_lines(self.client, batch_id) as lines:
                for raw in lines:
                    line = orjson.loads(raw)
                    custom_id = _user_id(str(line.get("custom_id", "")), custom_ids)
                    out.write(orjson.dumps(to_output_line(custom_id, line.get("result") or {}, created)) + b"\n")
                    written += 1
        return written

    def delete_file(self, file_id: str) -> None:
        """Delete an ended batch with its results (its id is where the engine reads them)."""
        try:
            with _translated("delete batch"):
                self.client.messages.batches.delete(file_id)
        except ProviderError as exc:
            if exc.status_code != 404:
                raise


def _write_create_body(path: Path, label: str, out: IO[bytes]) -> None:
    """The create call's JSON body (``{"requests": [...]}``), one request a line, translated from the input file.

    It is written to a file and streamed from there, as an upload is, rather than built in memory by
    ``batches.create``: a batch of up to 200 MB would take several times that while serialised. The lines become
    the HTTP body's chunks, and the file's size its Content-Length.
    """
    out.write(b'{"requests":[\n')
    with open(path, "rb") as lines:
        for index, line in enumerate(lines):
            request = {"custom_id": f"{label}-{index}", "params": to_params(orjson.loads(line)["body"])}
            out.write((b",\n" if index else b"") + orjson.dumps(request))
    out.write(b"\n]}")


def wire_label(wire_id: str) -> str:
    """The label part of an id sent as ``<label>-<n>``."""
    return wire_id.rpartition("-")[0]


def _user_id(wire_id: str, custom_ids: Sequence[str]) -> str:
    """The user's custom_id for a result sent as ``<label>-<n>``; an id that is not ours stays as it is (ingest
    then counts it as a line that answers no request)."""
    _, _, index = wire_id.rpartition("-")
    return custom_ids[int(index)] if index.isdigit() and int(index) < len(custom_ids) else wire_id


@contextmanager
def _result_lines(client: anthropic.Anthropic, batch_id: str) -> Iterator[Iterator[str]]:
    """The JSONL lines of an ended batch's results, streamed as they come (the SDK's own decoder would build a
    model object of each line); the connection is closed on leaving."""
    stream = client.messages.batches.results(batch_id)
    try:
        yield (line for line in stream.http_response.iter_lines() if line.strip())
    finally:
        stream.close()


def to_batch_info(batch: Any) -> BatchInfo:
    """Normalise an SDK MessageBatch to the engine's statuses: ``ended`` is cancelled when a cancel was asked,
    expired when requests expired, else completed; its results are read by the batch's own id."""
    counts = batch.request_counts
    status = _status(batch)
    ended = batch.processing_status == "ended"
    timestamps: dict[str, datetime | None] = {
        "created_at": batch.created_at,
        "in_progress_at": batch.created_at,
        "expires_at": batch.expires_at,
        "cancelling_at": batch.cancel_initiated_at,
    }
    if status in TIMESTAMPS:
        timestamps[TIMESTAMPS[status]] = batch.ended_at
    return BatchInfo(
        id=batch.id,
        status=status,
        endpoint=CHAT,
        input_file_id=None,
        output_file_id=batch.id if ended else None,
        error_file_id=None,
        counts_total=counts.processing + counts.succeeded + counts.errored + counts.canceled + counts.expired,
        counts_completed=counts.succeeded,
        counts_failed=counts.errored + counts.canceled + counts.expired,
        timestamps=timestamps,
    )


def _status(batch: Any) -> str:
    if batch.processing_status == "in_progress":
        return "in_progress"
    if batch.processing_status == "canceling":
        return "cancelling"
    if batch.cancel_initiated_at is not None:
        return "cancelled"
    return "expired" if batch.request_counts.expired else "completed"


def _translated(action: str) -> TranslatedErrors:
    """The SDK's exceptions turned into ProviderError, marking what is worth retrying later."""
    return TranslatedErrors(action, anthropic.AnthropicError, _provider_error)


def _provider_error(action: str, exc: anthropic.AnthropicError) -> ProviderError:
    if isinstance(exc, anthropic.APIConnectionError):  # includes APITimeoutError
        return ProviderError(f"{action}: cannot reach the provider ({exc.__class__.__name__})", retryable=True)
    if isinstance(exc, anthropic.APIStatusError):
        status = exc.status_code
        body = exc.body if isinstance(exc.body, dict) else {}
        error = found if isinstance(found := body.get("error"), dict) else {}
        message = str(error.get("message") or exc.message)[:500]
        retryable = status in (408, 409, 429) or status >= 500
        code = str(error["type"]) if error.get("type") else None
        return ProviderError(f"{action}: HTTP {status}: {message}", retryable=retryable, status_code=status, code=code)
    return ProviderError(f"{action}: {exc.__class__.__name__}: {exc}", retryable=False)
