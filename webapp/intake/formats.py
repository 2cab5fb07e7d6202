"""What a file is (OpenAI batch JSONL, a CSV table or an Excel workbook), told one way for the dashboard and the
API alike: a workbook by its bytes whatever its name, else the format declared, the name, the content type, and
last the first bytes."""

from __future__ import annotations

import zipfile
from pathlib import PurePath
from typing import IO

from webapp.errors import ValidationFailed

JSONL, CSV, XLSX = "jsonl", "csv", "xlsx"
FORMATS = (JSONL, CSV, XLSX)
TABLES = (CSV, XLSX)
SUFFIXES = {
    ".jsonl": JSONL,
    ".ndjson": JSONL,
    ".json": JSONL,
    ".csv": CSV,
    ".tsv": CSV,
    ".txt": CSV,
    ".xlsx": XLSX,
    ".xlsm": XLSX,
}
CONTENT_TYPES = {
    "application/jsonl": JSONL,
    "application/x-ndjson": JSONL,
    "application/json": JSONL,
    "text/csv": CSV,
    "text/tab-separated-values": CSV,
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": XLSX,
}
SNIFF_BYTES = 64 * 1024
BOM_AND_SPACE = b"\xef\xbb\xbf \t\r\n"
ZIP = b"PK\x03\x04"
OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # old binary Office files, and any Office file with a password
SAVE_AS = "save it as .xlsx (Excel Workbook) or CSV and upload that"
OLD_FORMATS = {
    ".xls": f"old Excel .xls files cannot be read here; {SAVE_AS}",
    ".ods": f"OpenDocument spreadsheets (.ods) cannot be read here; {SAVE_AS}",
}


def detect(filename: str | None, content_type: str | None, stream: IO[bytes], declared: str | None = None) -> str:
    """The format of the file in ``stream`` (seekable; left where it was). Raises ValidationFailed for a kind of
    file that cannot be read here (an .xls or .ods, a password-protected workbook, another ZIP archive)."""
    head = peek(stream)
    if head.startswith(ZIP):
        return _archive_format(stream)
    if head.startswith(OLE):
        raise refused(
            f"this is an old Excel .xls file or a password-protected workbook; remove the password or {SAVE_AS}"
        )
    suffix = PurePath(filename or "").suffix.lower()
    found = declared or SUFFIXES.get(suffix) or CONTENT_TYPES.get(content_type or "")
    if suffix in OLD_FORMATS and not declared:
        raise refused(OLD_FORMATS[suffix])
    if found == XLSX:
        raise refused("this is not an Excel workbook (an .xlsx file is a ZIP archive); check the file")
    if found:
        return found
    return JSONL if head.lstrip(BOM_AND_SPACE).startswith(b"{") else CSV


def _archive_format(stream: IO[bytes]) -> str:
    start = stream.tell()
    try:
        with zipfile.ZipFile(stream) as archive:
            names = set(archive.namelist())
            kind = archive.read("mimetype")[:100] if "mimetype" in names else b""
    except (zipfile.BadZipFile, OSError, KeyError):
        raise refused(
            "the file starts like an Excel workbook (a ZIP archive) but cannot be opened: it may be damaged"
        ) from None
    finally:
        stream.seek(start)
    if "xl/workbook.xml" in names:
        return XLSX
    if kind.startswith(b"application/vnd.oasis.opendocument"):
        raise refused(OLD_FORMATS[".ods"])
    raise refused("this is a ZIP archive, not an Excel workbook or a text file")


def refused(message: str) -> ValidationFailed:
    return ValidationFailed(message, details=[{"field": "file", "message": message}])


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
