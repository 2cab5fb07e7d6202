"""The provider boundary: the batch service interface the engine uses, and its value types."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol


class ProviderError(Exception):
    """A provider call failed. ``retryable`` says whether trying again later may succeed (429, 5xx, network)."""

    def __init__(self, message: str, *, retryable: bool, status_code: int | None = None, code: str | None = None):
        super().__init__(message)
        self.retryable = retryable
        self.status_code = status_code
        self.code = code

    @property
    def refused(self) -> bool:
        """The provider answered with a 4xx: it did nothing (unlike a lost answer or a 5xx, whose work may be done)."""
        return self.status_code is not None and 400 <= self.status_code < 500 and self.status_code != 408


@dataclass(frozen=True)
class BatchInfo:
    """The provider's view of one batch, normalised (``""`` file ids become None, times are aware UTC)."""

    id: str
    status: str
    endpoint: str
    input_file_id: str | None
    output_file_id: str | None
    error_file_id: str | None
    counts_total: int = 0
    counts_completed: int = 0
    counts_failed: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    usage: dict[str, Any] | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    timestamps: dict[str, datetime | None] = field(default_factory=dict)

    @property
    def created_at(self) -> datetime | None:
        return self.timestamps.get("created_at")


@dataclass(frozen=True)
class FileInfo:
    """A file stored at the provider."""

    id: str
    filename: str
    bytes: int
    purpose: str
    created_at: datetime | None = None


class Provider(Protocol):
    """What the engine needs from a batch service; every method raises ProviderError on failure."""

    name: str

    def upload_input(self, path: Path, filename: str) -> str:
        """Upload a JSONL input file (streamed from ``path``); return its file id.

        Never retried blindly: after an answer that was lost, the file may exist (see ``list_files``).
        """

    def list_files(self, purpose: str = "batch") -> Iterator[FileInfo]:
        """The account's files of ``purpose``, newest first, fetched page by page."""

    def create_batch(self, input_file_id: str, endpoint: str, metadata: dict[str, str]) -> BatchInfo:
        """Create a batch. Never retried blindly: after a lost answer, look for it by metadata in ``list_batches``."""

    def get_batch(self, batch_id: str) -> BatchInfo: ...

    def list_batches(self, limit: int = 100) -> Iterator[BatchInfo]:
        """Every batch the account can see, newest first, fetched page by page."""

    def cancel_batch(self, batch_id: str) -> BatchInfo: ...

    def download_file(self, file_id: str, dest: Path) -> int:
        """Stream a file's content to ``dest``; return the number of bytes written."""

    def delete_file(self, file_id: str) -> None:
        """Delete a file; a file that no longer exists is not an error."""

    def list_models(self) -> list[str]:
        """The ids of the models the provider offers; ProviderError when it has no such list or cannot give it."""
