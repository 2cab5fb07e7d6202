"""Excel workbooks (.xlsx) read a row at a time (openpyxl's read-only mode streams the sheet's XML), with each
cell as a person reads it and as the value it holds."""

from __future__ import annotations

import math
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

import openpyxl

from webapp.errors import ValidationFailed
from webapp.intake import requests as request_lines
from webapp.intake.csv_files import fail

# The shared strings of a workbook are read whole (every text cell points into them): past this many bytes of
# XML a workbook is refused rather than filling the web process's memory (a zip bomb compresses 1,000 to 1).
MAX_SHARED_STRINGS = 512 * 1024 * 1024
# Integers up to 2**53 are exact in a double: past it a whole number is shown as Python writes a float.
EXACT = 2**53


@contextmanager
def sheet_rows(path: Path, sheet: str | None) -> Iterator[tuple[list[str], str, Iterator[list[Any]]]]:
    """(the workbook's sheet names, the sheet read, its rows): each row a list of cell values, without the empty
    cells at its end. ``sheet`` None or "" reads the first. Raises ValidationFailed for a workbook that cannot be
    read (damaged, encrypted, too large inside) or an unknown sheet."""
    _check_archive(path)
    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True, keep_links=False)
    except Exception as exc:  # a damaged workbook fails in zipfile, the XML parser or openpyxl, each its own way
        raise _unreadable(exc) from None
    try:
        names = list(book.sheetnames)
        chosen = sheet or (names[0] if names else "")
        if chosen not in names:
            raise fail("sheet", f"the workbook has no sheet named {chosen!r}; its sheets are {', '.join(names)}")
        sheet_read = book[chosen]
        # The sheet's stated size is not trusted: openpyxl would pad every row to it (a stated XFD1048576 makes
        # each row 16,384 cells). Without it each row is as long as its last cell.
        sheet_read.reset_dimensions()
        yield names, chosen, _rows(sheet_read, request_lines.max_request_bytes())
    finally:
        book.close()


def _check_archive(path: Path) -> None:
    try:
        with zipfile.ZipFile(path) as archive:
            sizes = {info.filename: info.file_size for info in archive.infolist()}
    except (zipfile.BadZipFile, OSError) as exc:
        raise _unreadable(exc) from None
    if sizes.get("xl/sharedStrings.xml", 0) > MAX_SHARED_STRINGS:
        raise fail("file", "the workbook's text is too large to read here; save the sheet as CSV and upload that")


def _rows(sheet: Any, limit: int) -> Iterator[list[Any]]:
    try:
        for number, values in enumerate(sheet.iter_rows(values_only=True), 1):
            row = list(values)
            while row and (row[-1] is None or row[-1] == ""):
                row.pop()
            if sum(len(as_text(value)) for value in row) > limit:
                raise fail(
                    "file",
                    f"row {number:,} of the sheet is longer than {limit:,} characters, the most one request may be "
                    "(MAX_REQUEST_MB)",
                )
            yield row
    except ValidationFailed:
        raise
    except Exception as exc:  # damage found half way through the sheet
        raise _unreadable(exc) from None


def _unreadable(exc: Exception) -> ValidationFailed:
    return fail(
        "file",
        f"the workbook cannot be read ({type(exc).__name__}): it may be damaged; open it in Excel and save it again",
    )


def as_text(value: Any) -> str:
    """A cell as a person reads it in the sheet: 3 (not 3.0), 0.1, 2024-03-01, 2024-03-01 09:30:00, TRUE."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float) and math.isfinite(value) and value.is_integer() and abs(value) < EXACT:
        return str(int(value))
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == time() else value.isoformat(sep=" ")
    if isinstance(value, date | time):
        return value.isoformat()
    return str(value)


def as_stored(value: Any) -> Any:
    """A cell as kept with its request (JSON): numbers and booleans as they are, dates as their text."""
    if isinstance(value, bool | int) or (isinstance(value, float) and math.isfinite(value)):
        return value
    return as_text(value)
