"""Uploaded files kept on disk: between the steps of the dashboard's form, or while one API call reads them."""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from flask import current_app

from webapp.errors import ValidationFailed

UPLOAD_TTL_SECONDS = 24 * 3600
TOKEN_RE = re.compile(r"^[a-f0-9]{32}$")
READ_SIZE = 1024 * 1024


def uploads_dir() -> Path:
    path = Path(current_app.instance_path) / "uploads"
    path.mkdir(parents=True, exist_ok=True)
    return path


def save_upload(stream: IO[bytes], suffix: str) -> str:
    """Store an uploaded file for a later step; return its token. Old uploads are removed on the way."""
    _remove_stale_uploads()
    token = secrets.token_hex(16)
    path = uploads_dir() / f"{token}{suffix}"
    try:
        with open(path, "wb") as out:
            while chunk := stream.read(READ_SIZE):
                out.write(chunk)
    except BaseException:  # a client gone or a full disk: nothing half-written stays
        path.unlink(missing_ok=True)
        raise
    return token


def upload_path(token: str) -> Path:
    """The stored file for ``token``; raises ValidationFailed when it is unknown or has expired."""
    if TOKEN_RE.match(token or ""):
        for path in uploads_dir().glob(f"{token}.*"):
            return path
    raise ValidationFailed(
        "the uploaded file has expired; please upload it again",
        details=[{"field": "upload", "message": "unknown or expired upload"}],
    )


def discard_upload(token: str) -> None:
    """Remove a stored upload and what was kept beside it (``kept_beside``)."""
    if TOKEN_RE.match(token or ""):
        for path in uploads_dir().glob(f"{token}*"):
            path.unlink(missing_ok=True)


def kept_beside(path: Path, name: str) -> Path:
    """Where a later step keeps what it found in the upload at ``path`` (removed with it, never taken for it)."""
    return path.with_name(f"{path.stem}-{name}")


@contextmanager
def stored_for_now(stream: IO[bytes], suffix: str) -> Iterator[Path]:
    """The stream saved as a file for as long as the block runs (readers of tables need a file)."""
    token = save_upload(stream, suffix)
    try:
        yield upload_path(token)
    finally:
        discard_upload(token)


def _remove_stale_uploads() -> None:
    cutoff = time.time() - UPLOAD_TTL_SECONDS
    for path in uploads_dir().iterdir():
        if path.is_file() and path.stat().st_mtime < cutoff:
            path.unlink(missing_ok=True)
