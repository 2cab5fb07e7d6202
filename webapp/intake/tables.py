"""Tables from users (CSV files, Excel workbooks) read as named columns and numbered rows, with what was found."""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from webapp.intake import csv_files, formats, workbooks
from webapp.intake.csv_files import fail
from webapp.intake.files import kept_beside

PREVIEW_ROWS = 5
# A prompt template rarely names more than a few columns; this many still covers any export of a database
# table, and keeps the header, the preview and the column choices of the form small.
MAX_COLUMNS = 1000


@dataclass(frozen=True)
class TableInfo:
    """What was found in a table: how its text is read (a CSV file) or which sheet (a workbook), its columns,
    its number of rows and the first ones."""

    encoding: str
    delimiter: str
    columns: list[str]
    row_count: int
    preview: list[list[str]]
    notes: list[str] = field(default_factory=list)  # what was made of the header (a name it lacked or repeated)
    format: str = formats.CSV
    sheet: str | None = None  # the sheet read, of a workbook's ``sheets``
    sheets: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Row:
    """One data row: its number (1 = the first after the header), its cells as text, and as kept (a workbook's
    numbers stay numbers)."""

    number: int
    texts: list[str]
    values: list[Any]


def inspect(path: Path, sheet: str | None = None) -> TableInfo:
    """Read the header and count the rows of a CSV file or a workbook's sheet (the first unless ``sheet``).
    Raises ValidationFailed for unusable files."""
    with _raw_rows(path, sheet) as (found, rows):
        columns, notes = column_names(next(rows, (None, None))[0])
        preview: list[list[str]] = []
        count = 0
        for texts, _ in rows:
            if not any(cell.strip() for cell in texts):
                continue
            count += 1
            if len(preview) < PREVIEW_ROWS:
                preview.append(texts)
    if not count:
        raise fail("file", "the file has a header but no rows")
    return TableInfo(**found, columns=columns, row_count=count, preview=preview, notes=notes)


def inspect_stored(path: Path, sheet: str | None = None) -> TableInfo:
    """``inspect`` of a stored upload, done once per sheet: what it finds is kept beside the file for the later
    steps (each would read the whole file again, and a live preview asks at every keystroke)."""
    kept = kept_beside(path, f"table-{hashlib.sha256((sheet or '').encode()).hexdigest()[:16]}.json")
    if kept.exists():
        return TableInfo(**json.loads(kept.read_text()))
    info = inspect(path, sheet)
    kept.write_text(json.dumps(info.as_dict()))
    return info


def data_rows(path: Path, info: TableInfo) -> Iterator[Row]:
    """Each data row that has a value; blank rows are passed over, unnumbered."""
    with _raw_rows(path, info.sheet, info) as (_, rows):
        next(rows, None)
        number = 0
        for texts, values in rows:
            if not any(cell.strip() for cell in texts):
                continue
            number += 1
            yield Row(number, texts, values)


@contextmanager
def _raw_rows(path: Path, sheet: str | None, info: TableInfo | None = None):
    """(how the file is read, its rows as (texts, values)), whichever kind of table it is."""
    if formats.of_path(path) == formats.XLSX:
        with workbooks.sheet_rows(path, sheet) as (names, chosen, rows):
            found = {"encoding": "", "delimiter": "", "format": formats.XLSX, "sheet": chosen, "sheets": names}
            yield found, (([workbooks.as_text(v) for v in row], [workbooks.as_stored(v) for v in row]) for row in rows)
        return
    if info is None:
        with open(path, "rb") as fh:
            sample = fh.read(formats.SNIFF_BYTES)
        formats.check_text(sample)
        encoding = csv_files.detect_encoding(sample)
        delimiter = csv_files.detect_delimiter(sample.decode(encoding, errors="ignore"))
    else:
        encoding, delimiter = info.encoding, info.delimiter
    with csv_files.reader(path, encoding, delimiter) as rows:
        yield {"encoding": encoding, "delimiter": delimiter}, ((row, row) for row in rows)


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
