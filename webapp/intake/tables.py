"""Tables from users (CSV files) read as named columns and numbered rows, with what was found in them."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
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
    notes: list[str] = field(default_factory=list)  # what was made of the header (a name it lacked or repeated)

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
        columns, notes = column_names(next(rows, None))
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
    return TableInfo(encoding, delimiter, columns, count, preview, notes)


def inspect_stored(path: Path) -> TableInfo:
    """``inspect`` of a stored upload, done once: what it finds is kept beside the file for the later steps
    (each would read the whole file again, and a live preview asks at every keystroke)."""
    kept = kept_beside(path, "table.json")
    if kept.exists():
        return TableInfo(**json.loads(kept.read_text()))
    info = inspect(path)
    kept.write_text(json.dumps(info.as_dict()))
    return info


def column_names(header: list[str] | None) -> tuple[list[str], list[str]]:
    """The columns a header row names, and a note for each name made here.

    A column without a name (the index column every pandas ``to_csv()`` writes) is called ``column_N`` after
    its position, and a repeated name gets ``_2``, ``_3``, ... (never a name the header has already). Raises
    ValidationFailed for no header, too many columns, or a first row that looks like data.
    """
    if not header or not any(cell.strip() for cell in header):
        raise fail("file", "the file has no header row; the first row must name the columns")
    if len(header) > MAX_COLUMNS:
        raise fail(
            "file",
            f"the header row names {len(header):,} columns; at most {MAX_COLUMNS:,} are supported "
            "(remove the columns the prompt does not use)",
        )
    named = [cell.strip() for cell in header]
    if _looks_like_data([name for name in named if name]):
        raise fail("file", "the first row looks like data, not column names; add a header row")
    taken = set(named)
    columns, notes = [], []
    seen: Counter[str] = Counter()
    for position, name in enumerate(named, 1):
        seen[name] += 1
        if name and seen[name] == 1:
            columns.append(name)
            continue
        made = _unused(name or f"column_{position}", taken, first=2 if name else 1)
        taken.add(made)
        columns.append(made)
        why = f"repeats the name {name!r}" if name else "has no name in the header"
        notes.append(f"Column {position} {why}; it is called {made} here")
    return columns, notes


def _unused(base: str, taken: set[str], first: int) -> str:
    """``base`` (from ``first`` = 1) or ``base_2``, ``base_3``, ...: the first that no column has."""
    number = first
    while (name := base if number == 1 else f"{base}_{number}") in taken:
        number += 1
    return name


def _looks_like_data(columns: list[str]) -> bool:
    """A header of numbers only (or one very long cell) is a data row, not column names."""
    if not columns:
        return False
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
