"""The simulator's state on disk: JSON metadata and content files, atomic writes, cross-process locks."""

from __future__ import annotations

import fcntl
import json
import os
import re
import secrets
import shutil
import string
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

SAFE_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
ID_ALPHABET = string.ascii_letters + string.digits
DEFAULT_RETENTION_SECONDS = 7 * 86400
PURGE_EVERY_SECONDS = 60
OPENAI = "openai"  # a batch record without a "dialect" is the OpenAI dialect's


def random_token(length: int) -> str:
    return "".join(secrets.choice(ID_ALPHABET) for _ in range(length))


class Store:
    """One directory shared by every process serving the simulator.

    Readers never lock: each JSON document is replaced atomically. Writers that read-modify-write
    a batch hold its ``fcntl`` lock, so gunicorn workers cannot interleave. Files expire ``retention``
    seconds after they were stored, batches as long after their creation (``purge_expired``).
    """

    def __init__(self, root: str, retention: float = DEFAULT_RETENTION_SECONDS):
        self.root = root
        self.retention = retention
        self._purged_at = 0.0
        for sub in ("files", "batches", "locks", "tmp"):
            os.makedirs(os.path.join(root, sub), exist_ok=True)

    # -- low level -------------------------------------------------------------------------------
    def _path(self, *parts: str) -> str:
        return os.path.join(self.root, *parts)

    def temp_path(self) -> str:
        """Return a fresh path on the store's filesystem, so ``os.replace`` from it is atomic."""
        fd, path = tempfile.mkstemp(dir=self._path("tmp"))
        os.close(fd)
        return path

    def write_json(self, path: str, document: dict) -> None:
        tmp = self.temp_path()
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(document, fh)
        os.replace(tmp, path)

    @staticmethod
    def read_json(path: str) -> dict | None:
        try:
            with open(path, encoding="utf-8") as fh:
                return json.load(fh)
        except FileNotFoundError:
            return None

    @contextmanager
    def lock(self, name: str) -> Iterator[None]:
        """Hold an exclusive lock named ``name`` across threads and processes."""
        with open(self._path("locks", f"{name}.lock"), "a+") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    # -- files -----------------------------------------------------------------------------------
    def add_file(self, filename: str, purpose: str, write: Callable[[str], None], file_id: str | None = None) -> dict:
        """Store a file whose content ``write(path)`` produces; return its OpenAI file object.

        The metadata is written last, so a half-written upload is never visible.
        """
        file_id = file_id or f"file-{random_token(22)}"
        tmp = self.temp_path()
        try:
            write(tmp)
            size = os.path.getsize(tmp)
            os.replace(tmp, self._path("files", f"{file_id}.data"))
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
        now = int(time.time())
        meta = {
            "id": file_id,
            "object": "file",
            "bytes": size,
            "created_at": now,
            "filename": filename,
            "purpose": purpose,
            "status": "processed",
            "status_details": None,
            "expires_at": now + int(self.retention),
        }
        self.write_json(self._path("files", f"{file_id}.json"), meta)
        return meta

    def file_meta(self, file_id: str) -> dict | None:
        """The file's metadata; None for an unknown or expired file."""
        if not SAFE_ID.match(file_id):
            return None
        meta = self.read_json(self._path("files", f"{file_id}.json"))
        return meta if meta and not _expired(meta, time.time()) else None

    def file_path(self, file_id: str) -> str:
        return self._path("files", f"{file_id}.data")

    def list_files(self) -> list[dict]:
        now = time.time()
        return [meta for meta in self._all("files") if not _expired(meta, now)]

    def delete_file(self, file_id: str) -> bool:
        """Delete a file (expired or not); return False when it did not exist. Batches keep their own input
        snapshot."""
        if not SAFE_ID.match(file_id) or not os.path.exists(self._path("files", f"{file_id}.json")):
            return False
        for suffix in (".json", ".data"):
            try:
                os.remove(self._path("files", file_id + suffix))
            except FileNotFoundError:
                pass  # another process deleted it first: the outcome is the same
        return True

    # -- batches ---------------------------------------------------------------------------------
    def batch_lock(self, batch_id: str):
        return self.lock(f"batch-{batch_id}")

    def load_batch(self, batch_id: str, dialect: str = OPENAI) -> dict | None:
        """The batch's record; None for an unknown id or a batch of another dialect (each API sees its own)."""
        if not SAFE_ID.match(batch_id):
            return None
        record = self.read_json(self._path("batches", f"{batch_id}.json"))
        return record if record is not None and record.get("dialect", OPENAI) == dialect else None

    def save_batch(self, record: dict) -> None:
        self.write_json(self._path("batches", f"{record['id']}.json"), record)

    def list_batches(self, dialect: str | None = OPENAI) -> list[dict]:
        """The batches of one dialect (every dialect's with None)."""
        return [r for r in self._all("batches") if dialect is None or r.get("dialect", OPENAI) == dialect]

    def batch_input_path(self, batch_id: str) -> str:
        return self._path("batches", f"{batch_id}.input.jsonl")

    def batch_results_path(self, batch_id: str) -> str:
        """Where a dialect that keeps results with the batch (not as files) writes them."""
        return self._path("batches", f"{batch_id}.results.jsonl")

    def snapshot_input(self, batch_id: str, file_id: str) -> None:
        """Pin the batch's input as the real API does: deleting the file later must not break the batch."""
        target = self.batch_input_path(batch_id)
        try:
            os.link(self.file_path(file_id), target)
        except OSError:
            # Hard links are unavailable on some filesystems; a copy costs time, not correctness.
            shutil.copyfile(self.file_path(file_id), target)

    def delete_batch(self, batch_id: str) -> None:
        for path in (
            self._path("batches", f"{batch_id}.json"),
            self.batch_input_path(batch_id),
            self.batch_results_path(batch_id),
        ):
            try:
                os.remove(path)
            except FileNotFoundError:
                pass  # another process purged it first

    # -- expiry ----------------------------------------------------------------------------------
    def purge_expired(self, now: float) -> int:
        """Delete expired files, and batches older than the retention; at most once a minute per process.
        Returns how many were deleted."""
        if now - self._purged_at < min(PURGE_EVERY_SECONDS, self.retention):
            return 0
        self._purged_at = now
        files = [m["id"] for m in self._all("files") if _expired(m, now)]
        batches = [r["id"] for r in self.list_batches(None) if r["created"] + self.retention < now]
        for file_id in files:
            self.delete_file(file_id)
        for batch_id in batches:
            self.delete_batch(batch_id)
        return len(files) + len(batches)

    def _all(self, kind: str) -> list[dict]:
        documents = (
            self.read_json(self._path(kind, name)) for name in os.listdir(self._path(kind)) if name.endswith(".json")
        )
        return [document for document in documents if document is not None]

    # -- misc documents --------------------------------------------------------------------------
    def document_path(self, name: str) -> str:
        return self._path(f"{name}.json")


def _expired(meta: dict, now: float) -> bool:
    return meta.get("expires_at") is not None and meta["expires_at"] <= now
