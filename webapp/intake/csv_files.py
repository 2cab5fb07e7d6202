"""CSV text as rows of cells: its encoding and delimiter told from a sample, then read as a stream."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

import charset_normalizer

from webapp.errors import ValidationFailed
from webapp.intake import requests as request_lines

DELIMITERS = ",;\t|"
# A cell is bounded by its row, whose length ``reader`` checks as the lines are read.
csv.field_size_limit(2**31 - 1)


def fail(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(message, details=[{"field": field, "message": message}])


def detect_encoding(sample: bytes) -> str:
    """UTF-8 (with or without BOM) when it decodes; else Windows-1252 for Western text; else charset-normalizer."""
    if sample.startswith(b"\xef\xbb\xbf"):
        return "utf-8-sig"
    try:
        sample.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError as exc:
        if exc.start >= len(sample) - 4:  # a character cut at the end of the sample
            return "utf-8"
    matches = list(charset_normalizer.from_bytes(sample))
    western = _decodes(sample, "cp1252") and (
        any(m.encoding == "cp1252" and m.chaos <= matches[0].chaos for m in matches) or _mostly_ascii(sample)
    )
    if western:  # spreadsheets saved on Western-locale Windows; short samples fool the detector
        return "cp1252"
    if not matches:
        raise fail("file", "the file's text encoding could not be recognised; save it as UTF-8")
    return matches[0].encoding


def _decodes(sample: bytes, encoding: str) -> bool:
    try:
        sample.decode(encoding)
    except UnicodeDecodeError:
        return False
    return True


def _mostly_ascii(sample: bytes) -> bool:
    return sum(byte > 0x7F for byte in sample) < 0.1 * len(sample)


def detect_delimiter(text: str) -> str:
    try:
        return csv.Sniffer().sniff(text[:16_384], delimiters=DELIMITERS).delimiter
    except csv.Error:
        return ","


class reader:
    """A csv.reader over the file, decoded as it is read, so a large CSV is never loaded whole.

    A row longer than the largest request is refused as its lines are read (csv would hold all of it, with a
    cell for each delimiter), and any other reason csv gives not to read on is a ValidationFailed too.
    """

    def __init__(self, path: Path, encoding: str, delimiter: str):
        self.limit = request_lines.max_request_bytes()
        self.size = 0  # of the row being read
        self.fh = open(path, encoding=encoding, newline="", errors="replace")
        self.rows = csv.reader(self._lines(), delimiter=delimiter)

    def __enter__(self) -> Iterator[list[str]]:
        return self._checked_rows()

    def __exit__(self, *exc) -> None:
        self.fh.close()

    def _lines(self) -> Iterator[str]:
        while line := self.fh.readline(self.limit + 1):
            self.size += len(line)
            if self.size > self.limit:
                raise self._unreadable(
                    self.rows.line_num + 1,
                    f"a row is longer than {self.limit:,} characters, the most one request may be (MAX_REQUEST_MB)",
                )
            yield line

    def _checked_rows(self) -> Iterator[list[str]]:
        while True:
            try:
                row = next(self.rows, None)
            except csv.Error as exc:
                raise self._unreadable(self.rows.line_num, str(exc)) from None
            if row is None:
                return
            self.size = 0
            yield row

    @staticmethod
    def _unreadable(line: int, reason: str) -> ValidationFailed:
        return fail("file", f"the CSV file cannot be read at line {line:,}: {reason}")
