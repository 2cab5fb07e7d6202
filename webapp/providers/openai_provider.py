"""The OpenAI provider, on the official SDK: serves OpenAI, Azure OpenAI, compatible services and the simulator."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, cast

import openai

from webapp.providers.base import BatchInfo, FileInfo, Provider, ProviderError, TranslatedErrors

log = logging.getLogger(__name__)
COMPLETION_WINDOW: Literal["24h"] = "24h"
TIMESTAMP_FIELDS = (
    "created_at",
    "in_progress_at",
    "expires_at",
    "finalizing_at",
    "completed_at",
    "failed_at",
    "expired_at",
    "cancelling_at",
    "cancelled_at",
)
DOWNLOAD_CHUNK = 1024 * 1024
FILES_PAGE = 10_000  # the Files API's largest page


MODEL_LIST_TIMEOUT = 5.0  # seconds: the model list is read while a page renders, never worth a long wait


class OpenAIProvider(Provider):
    """Provider over an ``openai.OpenAI`` client; SDK errors become ProviderError.

    The SDK resends reads, cancels and deletes itself, up to ``http_retries`` times after a lost connection, 408,
    409, 429 or 5xx (the SDK calls it ``max_retries``; it has nothing to do with a job's ``max_retries``, which
    counts batches a failed request is sent in again): doing them twice changes nothing. Uploads and creates go
    through ``once``, a client that never resends: when an answer is lost the file or batch may exist, and sending
    the call again would make a second one. The engine reconciles with the provider's lists instead.
    """

    def __init__(self, name: str, *, api_key: str, base_url: str | None, http_retries: int = 2, timeout: float = 600):
        self.name = name
        self.client = openai.OpenAI(api_key=api_key, base_url=base_url, max_retries=http_retries, timeout=timeout)
        self.once = self.client.with_options(max_retries=0)

    def list_models(self) -> list[str]:
        """The ids of the models the provider offers (``GET /models``), asked once with a short timeout."""
        with _translated("list models"):
            return [model.id for model in self.once.with_options(timeout=MODEL_LIST_TIMEOUT).models.list()]

    def upload_input(self, path: Path, filename: str) -> str:
        with _translated("upload input file"), open(path, "rb") as fh:
            return self.once.files.create(file=(filename, fh, "application/jsonl"), purpose="batch").id

    def list_files(self, purpose: str = "batch") -> Iterator[FileInfo]:
        with _translated("list files"):
            for item in self.client.files.list(purpose=purpose, order="desc", limit=FILES_PAGE):
                yield FileInfo(
                    id=item.id,
                    filename=item.filename or "",
                    bytes=item.bytes or 0,
                    purpose=item.purpose,
                    created_at=_from_unix(item.created_at),
                )

    def create_batch(self, input_file_id: str, endpoint: str, metadata: dict[str, str]) -> BatchInfo:
        with _translated("create batch"):
            batch = self.once.batches.create(
                input_file_id=input_file_id,
                endpoint=cast(Any, endpoint),  # one of the SDK's endpoints: jobs are checked for it when made
                completion_window=COMPLETION_WINDOW,
                metadata=metadata,
            )
        return to_batch_info(batch)

    def get_batch(self, batch_id: str) -> BatchInfo:
        with _translated("retrieve batch"):
            return to_batch_info(self.client.batches.retrieve(batch_id))

    def list_batches(self, limit: int = 100) -> Iterator[BatchInfo]:
        with _translated("list batches"):
            for batch in self.client.batches.list(limit=limit):
                yield to_batch_info(batch)

    def cancel_batch(self, batch_id: str) -> BatchInfo:
        with _translated("cancel batch"):
            return to_batch_info(self.client.batches.cancel(batch_id))

    def download_file(self, file_id: str, dest: Path) -> int:
        written = 0
        with _translated("download file"), self.client.files.with_streaming_response.content(file_id) as response:
            with open(dest, "wb") as out:
                for chunk in response.iter_bytes(DOWNLOAD_CHUNK):
                    out.write(chunk)
                    written += len(chunk)
        return written

    def delete_file(self, file_id: str) -> None:
        try:
            with _translated("delete file"):
                self.client.files.delete(file_id)
        except ProviderError as exc:
            if exc.status_code != 404:
                raise


def to_batch_info(batch: Any) -> BatchInfo:
    """Normalise an SDK Batch object."""
    counts = batch.request_counts
    errors = [e.model_dump() for e in (batch.errors.data or [])] if batch.errors and batch.errors.data else []
    return BatchInfo(
        id=batch.id,
        status=batch.status,
        endpoint=batch.endpoint,
        input_file_id=batch.input_file_id or None,
        output_file_id=batch.output_file_id or None,
        error_file_id=batch.error_file_id or None,
        counts_total=counts.total if counts else 0,
        counts_completed=counts.completed if counts else 0,
        counts_failed=counts.failed if counts else 0,
        errors=errors,
        usage=batch.usage.model_dump() if getattr(batch, "usage", None) else None,
        metadata=dict(batch.metadata or {}),
        timestamps={name: _from_unix(getattr(batch, name, None)) for name in TIMESTAMP_FIELDS},
    )


def _from_unix(value: int | None) -> datetime | None:
    return datetime.fromtimestamp(value, tz=UTC) if value else None


def _translated(action: str) -> TranslatedErrors:
    """The SDK's exceptions turned into ProviderError, marking what is worth retrying later."""
    return TranslatedErrors(action, openai.OpenAIError, _provider_error)


def _provider_error(action: str, exc: openai.OpenAIError) -> ProviderError:
    if isinstance(exc, (openai.APIConnectionError,)):  # includes APITimeoutError
        return ProviderError(f"{action}: cannot reach the provider ({exc.__class__.__name__})", retryable=True)
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        code = getattr(exc, "code", None)
        retryable = status in (408, 409, 429) or status >= 500
        return ProviderError(
            f"{action}: HTTP {status}: {_message(exc)}", retryable=retryable, status_code=status, code=code
        )
    return ProviderError(f"{action}: {exc.__class__.__name__}: {exc}", retryable=False)


def _message(exc: openai.APIStatusError) -> str:
    body = exc.body if isinstance(exc.body, dict) else {}
    error = body.get("error", body) if isinstance(body, dict) else {}
    return str(error.get("message") if isinstance(error, dict) and error.get("message") else exc.message)[:500]
