"""The provider boundary: the batch service interface the engine uses, and its value types."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
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


class TranslatedErrors:
    """A context that turns an SDK's exceptions (instances of ``kind``) into ProviderError with ``convert``."""

    def __init__(self, action: str, kind: type[Exception], convert: Callable[[str, Any], ProviderError]):
        self.action = action
        self.kind = kind
        self.convert = convert

    def __enter__(self) -> TranslatedErrors:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc is not None and isinstance(exc, self.kind):
            raise self.convert(self.action, exc) from exc


@dataclass(frozen=True)
class BatchInfo:
    """The provider's view of one batch, normalised (``""`` file ids become None, times are aware UTC).

    ``output_file_id`` is where the results are read: a file, or for a provider that keeps results with the batch
    (one taking its requests inline), the batch's own id once it has ended.
    """

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
    """What the engine needs from a batch service; every method raises ProviderError on failure.

    A provider takes its requests in one of two ways. From an uploaded input file (``inline`` False):
    ``upload_input`` then ``create_batch``, results in output and error files (``download_file``), found again by
    name and metadata after a lost answer. Or inline with the create call (``inline`` True): ``send_batch``, results
    read with ``download_results``; such a batch carries no metadata, so each request's id carries a label that
    recognises the batch by its results (``batch_label``). A provider subclasses this protocol and implements its
    way; the other way's calls keep the defaults here, which refuse.
    """

    name: str
    inline: bool = False

    def upload_input(self, path: Path, filename: str) -> str:
        """Upload a JSONL input file (streamed from ``path``); return its file id.

        Never retried blindly: after an answer that was lost, the file may exist (see ``list_files``).
        """
        raise self._takes_requests_inline("upload an input file")

    def list_files(self, purpose: str = "batch") -> Iterator[FileInfo]:
        """The account's files of ``purpose``, newest first, fetched page by page."""
        return iter(())  # a provider without files has none

    def create_batch(self, input_file_id: str, endpoint: str, metadata: dict[str, str]) -> BatchInfo:
        """Create a batch. Never retried blindly: after a lost answer, look for it by metadata in ``list_batches``."""
        raise self._takes_requests_inline("create a batch from a file")

    def send_batch(self, path: Path, endpoint: str, label: str) -> BatchInfo:
        """Create a batch of the requests of the input file at ``path`` (OpenAI's JSONL lines), sent inline; each
        request carries ``label`` in the id the provider sees. Never retried blindly: after a lost answer, the batch
        is recognised by ``batch_label`` once it has ended."""
        raise self._takes_an_input_file("send requests inline")

    def batch_label(self, batch_id: str) -> str | None:
        """The label the requests of a batch made by ``send_batch`` carry, read from its results (None while it
        runs, or when its requests carry none)."""
        raise self._takes_an_input_file("read a batch's label")

    def download_results(self, batch_id: str, custom_ids: Sequence[str], dest: Path) -> int:
        """Write the results of an ended batch made by ``send_batch`` to ``dest`` as OpenAI output lines, each under
        the custom_id of the request it answers (``custom_ids``: the requests in the order they were sent); return
        the number of lines."""
        raise self._takes_an_input_file("read results inline")

    def get_batch(self, batch_id: str) -> BatchInfo: ...

    def list_batches(self, limit: int = 100) -> Iterator[BatchInfo]:
        """Every batch the account can see, newest first, fetched page by page."""

    def cancel_batch(self, batch_id: str) -> BatchInfo: ...

    def download_file(self, file_id: str, dest: Path) -> int:
        """Stream a file's content to ``dest``; return the number of bytes written."""
        raise self._takes_requests_inline("download a file")

    def delete_file(self, file_id: str) -> None:
        """Delete a file (for a provider without files: an ended batch's results, by the batch's id); one that no
        longer exists is not an error."""

    def list_models(self) -> list[str]:
        """The ids of the models the provider offers; ProviderError when it has no such list or cannot give it."""

    def _takes_requests_inline(self, action: str) -> ProviderError:
        return ProviderError(f"cannot {action}: {self.name} takes its requests inline", retryable=False)

    def _takes_an_input_file(self, action: str) -> ProviderError:
        return ProviderError(f"cannot {action}: {self.name} takes its requests in an input file", retryable=False)
