"""What a file is (OpenAI batch JSONL or a CSV table), told one way for the dashboard and the API alike."""

from __future__ import annotations

from pathlib import PurePath
from typing import IO

from webapp.errors import ValidationFailed

JSONL, CSV = "jsonl", "csv"
FORMATS = (JSONL, CSV)
SUFFIXES = {
    ".jsonl": JSONL,
    ".ndjson": JSONL,
    ".json": JSONL,
    ".csv": CSV,
    ".tsv": CSV,
    ".txt": CSV,
}
CONTENT_TYPES = {
    "application/jsonl": JSONL,
    "application/x-ndjson": JSONL,
    "application/json": JSONL,
    "text/csv": CSV,
    "text/tab-separated-values": CSV,
}
SNIFF_BYTES = 64 * 1024
BOM_AND_SPACE = b"\xef\xbb\xbf \t\r\n"


def detect(filename: str | None, content_type: str | None, head: bytes, declared: str | None = None) -> str:
    """The file's format: as declared, else from its name, else its content type, else its first bytes
    (a JSON line starts with ``{``; any other text is read as a table)."""
    if declared:
        return declared
    found = SUFFIXES.get(PurePath(filename or "").suffix.lower()) or CONTENT_TYPES.get(content_type or "")
    if found:
        return found
    return JSONL if head.lstrip(BOM_AND_SPACE).startswith(b"{") else CSV


def peek(stream: IO[bytes]) -> bytes:
    """The stream's first bytes, read without moving it on."""
    start = stream.tell()
    head = stream.read(SNIFF_BYTES)
    stream.seek(start)
    return head


def check_text(head: bytes) -> None:
    """Refuse empty and binary files before parsing them as text."""
    if not head.strip():
        raise ValidationFailed("the file is empty", details=[{"field": "file", "message": "the file is empty"}])
    if b"\x00" in head:
        raise ValidationFailed(
            "this is not a text file (it contains binary data)",
            details=[{"field": "file", "message": "binary files cannot be read"}],
        )


def suffix(kind: str) -> str:
    """The suffix a stored upload of this format gets, from which ``of_path`` reads its format back."""
    return f".{kind}"


def of_path(path: PurePath) -> str:
    return path.suffix.lstrip(".")
