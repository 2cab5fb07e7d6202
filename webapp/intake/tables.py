"""Tables from users (CSV files) read as named columns and numbered rows, with what was found in them."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from webapp.intake import csv_files, formats
from webapp.intake.csv_files import fail
from webapp.intake.files import kept_beside

PREVIEW_ROWS = 5
# A prompt template rarely names more than a few columns; this many still covers any export of a database
# table, and keeps the header, the preview and the column choices of the form small.
MAX_COLUMNS = 1000


@dataclass(frozen=True)
class TableInfo:
    """What was found in a table: how its text is read, its columns, its number of rows and the first ones."""

    encoding: str
    delimiter: str
    columns: list[str]
    row_count: int
    preview: list[list[str]]

    def as_dict(self) -> dict:
        return asdict(self)


def inspect(path: Path) -> TableInfo:
    """Detect encoding, delimiter and header; count rows. Raises ValidationFailed for unusable files."""
    with open(path, "rb") as fh:
        sample = fh.read(formats.SNIFF_BYTES)
    formats.check_text(sample)
    encoding = csv_files.detect_encoding(sample)
    delimiter = csv_files.detect_delimiter(sample.decode(encoding, errors="ignore"))
    with csv_files.reader(path, encoding, delimiter) as rows:
        columns = _columns(next(rows, None))
        preview: list[list[str]] = []
        count = 0
        for row in rows:
            if not any(cell.strip() for cell in row):
                continue
            count += 1
            if len(preview) < PREVIEW_ROWS:
                preview.append(row)
    if not count:
        raise fail("file", "the CSV file has a header but no rows")
    return TableInfo(encoding, delimiter, columns, count, preview)


def inspect_stored(path: Path) -> TableInfo:
    """``inspect`` of a stored upload, done once: what it finds is kept beside the file for the later steps
    (each would read the whole file again, and a live preview asks at every keystroke)."""
    kept = kept_beside(path, "table.json")
    if kept.exists():
        return TableInfo(**json.loads(kept.read_text()))
    info = inspect(path)
    kept.write_text(json.dumps(info.as_dict()))
    return info


def _columns(header: list[str] | None) -> list[str]:
    if not header or not any(cell.strip() for cell in header):
        raise fail("file", "the CSV file has no header row; the first row must name the columns")
    if len(header) > MAX_COLUMNS:
        raise fail(
            "file",
            f"the header row names {len(header):,} columns; at most {MAX_COLUMNS:,} are supported "
            "(remove the columns the prompt does not use)",
        )
    columns = [cell.strip() for cell in header]
    if any(not name for name in columns):
        raise fail("file", "a column in the header row has no name; every column needs one")
    duplicates = sorted(name for name, count in Counter(columns).items() if count > 1)
    if duplicates:
        raise fail("file", f"the header names these columns twice: {', '.join(duplicates)}")
    if _looks_like_data(columns):
        raise fail("file", "the first row looks like data, not column names; add a header row")
    return columns


def _looks_like_data(columns: list[str]) -> bool:
    """A header of numbers only (or one very long cell) is a data row, not column names."""
    numeric = sum(1 for name in columns if re.fullmatch(r"[-+]?\d+([.,]\d+)?", name))
    return numeric == len(columns) or any(len(name) > 200 for name in columns)


def data_rows(path: Path, info: TableInfo) -> Iterator[tuple[int, list[str]]]:
    """(row number, cells) for each data row; row 1 is the first row after the header."""
    with csv_files.reader(path, info.encoding, info.delimiter) as rows:
        next(rows, None)
        number = 0
        for cells in rows:
            if not any(cell.strip() for cell in cells):
                continue
            number += 1
            yield number, cells
