"""Results as an Excel workbook: the CSV export's columns, with numbers as numbers, written in constant memory.

XlsxWriter's constant_memory mode writes each row out as it comes, so memory stays flat whatever the job's size;
the workbook is then a temporary file, streamed to the client and deleted.

Every text is written with ``write_string``: Excel stores it as a string and never runs it, so the CSV export's
formula rule (``formulas``, a leading ``'``) is not needed here and the text stays exactly as it was. A text
past Excel's limit of 32,767 characters in a cell is cut there, ending in a note that says so (the CSV and
JSONL downloads hold it whole).
"""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
from collections.abc import Iterator
from typing import Any

import xlsxwriter

from webapp.intake.formats import CSV
from webapp.models import BatchJob, BatchRequest, BatchResponse
from webapp.services import exports

MIMETYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
MAX_CELL = 32_767
CUT = "… [cut here: Excel holds at most 32,767 characters in a cell; the CSV and JSONL downloads have it all]"
MAX_ROWS = 1_048_576  # a sheet's rows, the header included: more results go on to the next sheet
READ_SIZE = 256 * 1024
# A CSV cell written as a number: a plain decimal, without leading zeros (007 stays text, as an id or a code
# would) and within the 15 digits a spreadsheet keeps exactly.
PLAIN_NUMBER = re.compile(r"\A[-+]?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?\Z")
EXACT_DIGITS = 15


def xlsx_chunks(job: BatchJob, failed_only: bool = False) -> Iterator[bytes]:
    """The workbook's bytes: written whole to a temporary file first (a ZIP is finished at its end), then read
    out in chunks; the file is removed when the download ends or stops."""
    handle, name = tempfile.mkstemp(prefix="results-", suffix=".xlsx")
    os.close(handle)
    try:
        write_workbook(job, failed_only, name)
        with open(name, "rb") as fh:
            while chunk := fh.read(READ_SIZE):
                yield chunk
    finally:
        os.unlink(name)


def write_workbook(job: BatchJob, failed_only: bool, path: str) -> None:
    """The results of the job (its failed requests only, with ``failed_only``) as an .xlsx file at ``path``."""
    book = xlsxwriter.Workbook(path, {"constant_memory": True, "strings_to_formulas": False})
    try:
        _Sheets(book, job).write(_rows(job, failed_only))
    finally:
        book.close()


def _rows(job: BatchJob, failed_only: bool) -> Iterator[list[Any]]:
    """Each result as the values of its cells, in the header's order."""
    fields = exports.schema_fields(job)
    width = len(exports.source_columns(job))
    columns = [
        BatchRequest.source_row,
        BatchRequest.custom_id,
        BatchRequest.status,
        BatchResponse.output_text,
        exports.error_expression(),
        BatchResponse.prompt_tokens,
        BatchResponse.completion_tokens,
        BatchResponse.total_tokens,
    ]
    from_csv = (job.source or {}).get("format") == CSV
    for rows in exports.row_chunks(job, failed_only, columns):
        for source_row, custom_id, status, output, error, *tokens in rows:
            originals = list(source_row or [])[:width]
            originals += [None] * (width - len(originals))
            if from_csv:
                originals = [_csv_value(value) for value in originals]
            structured = exports.structured_values(output, fields)
            yield [*originals, custom_id, status, output, *structured, error, *tokens]


def _csv_value(value: Any) -> Any:
    """A CSV cell as the spreadsheet would take it: a plain decimal number becomes that number."""
    if isinstance(value, str) and PLAIN_NUMBER.match(value) and sum(c.isdigit() for c in value) <= EXACT_DIGITS:
        number = float(value)
        return int(number) if "." not in value else number
    return value


class _Sheets:
    """Writes rows under the header, going on to a new sheet when one is full."""

    def __init__(self, book: Any, job: BatchJob) -> None:
        self.book = book
        self.header = [*exports.source_columns(job), *exports.result_columns(job)]
        self.sheet: Any = None
        self.row = MAX_ROWS
        self.count = 0

    def write(self, rows: Iterator[list[Any]]) -> None:
        self._next_sheet()
        for values in rows:
            if self.row == MAX_ROWS:
                self._next_sheet()
            for column, value in enumerate(values):
                _write_cell(self.sheet, self.row, column, value)
            self.row += 1

    def _next_sheet(self) -> None:
        self.count += 1
        self.sheet = self.book.add_worksheet("Results" if self.count == 1 else f"Results {self.count}")
        for column, name in enumerate(self.header):
            self.sheet.write_string(0, column, _fitted(name))
        self.sheet.freeze_panes(1, 0)
        self.row = 1


def _write_cell(sheet: Any, row: int, column: int, value: Any) -> None:
    if value is None or value == "":
        return
    if isinstance(value, bool):
        sheet.write_boolean(row, column, value)
    elif isinstance(value, int | float):
        if math.isfinite(value):
            sheet.write_number(row, column, value)
    elif isinstance(value, str):
        sheet.write_string(row, column, _fitted(value))
    else:  # a list or an object in a structured output
        sheet.write_string(row, column, _fitted(json.dumps(value, ensure_ascii=False)))


def _fitted(text: str) -> str:
    """The text, or its start and a note when it is longer than a cell holds."""
    return text if len(text) <= MAX_CELL else text[: MAX_CELL - len(CUT)] + CUT
