"""CSV files turned into requests: header, delimiter and encoding detection, the prompt template, previews."""

from __future__ import annotations

import csv
import json
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from decimal import Decimal
from pathlib import Path

import charset_normalizer
from jsonschema import SchemaError
from jsonschema.validators import validator_for

from webapp import error_words, json_input
from webapp.errors import ValidationFailed
from webapp.models import BatchJob
from webapp.services import jobs as job_service
from webapp.services import requests as request_lines
from webapp.services.pricing import price_table
from webapp.services.uploads import SNIFF_BYTES, UploadReport, check_text_file, kept_beside, store_file_rows

PLACEHOLDER = re.compile(r"\{\{\s*(.*?)\s*\}\}")
DELIMITERS = ",;\t|"
PREVIEW_ROWS = 5
# A prompt template rarely names more than a few columns; this many still covers any export of a database
# table, and keeps the header, the preview and the column choices of the form small.
MAX_COLUMNS = 1000
# A cell is bounded by its row, whose length ``_reader`` checks as the lines are read.
csv.field_size_limit(2**31 - 1)


@dataclass(frozen=True)
class CsvInfo:
    """What was detected in a CSV file."""

    encoding: str
    delimiter: str
    columns: list[str]
    row_count: int
    preview: list[list[str]]

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class CsvMapping:
    """How rows become requests: ``Classify this review: {{ Text }}``, optional system prompt, id column, schema."""

    template: str
    system_prompt: str = ""
    id_column: str = ""
    json_schema: dict | None = None


def _fail(field: str, message: str) -> ValidationFailed:
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
        raise _fail("file", "the file's text encoding could not be recognised; save it as UTF-8")
    return matches[0].encoding


def _decodes(sample: bytes, encoding: str) -> bool:
    try:
        sample.decode(encoding)
    except UnicodeDecodeError:
        return False
    return True


def _mostly_ascii(sample: bytes) -> bool:
    return sum(byte > 0x7F for byte in sample) < 0.1 * len(sample)


def inspect_csv(path: Path) -> CsvInfo:
    """Detect encoding, delimiter and header; count rows. Raises ValidationFailed for unusable files."""
    with open(path, "rb") as fh:
        sample = fh.read(SNIFF_BYTES)
    check_text_file(sample)
    encoding = detect_encoding(sample)
    text = sample.decode(encoding, errors="ignore")
    delimiter = _delimiter(text)
    with _reader(path, encoding, delimiter) as rows:
        header = next(rows, None)
        columns = _columns(header)
        preview, count = [], 0
        for row in rows:
            if not any(cell.strip() for cell in row):
                continue
            count += 1
            if len(preview) < PREVIEW_ROWS:
                preview.append(row)
    if not count:
        raise _fail("file", "the CSV file has a header but no rows")
    return CsvInfo(encoding, delimiter, columns, count, preview)


def inspect_stored(path: Path) -> CsvInfo:
    """``inspect_csv`` of a stored upload, done once: what it finds is kept beside the file for the later steps
    (each would read the whole file again, and a live preview asks at every keystroke)."""
    kept = kept_beside(path, "csv.json")
    if kept.exists():
        return CsvInfo(**json.loads(kept.read_text()))
    info = inspect_csv(path)
    kept.write_text(json.dumps(info.as_dict()))
    return info


def _delimiter(text: str) -> str:
    try:
        return csv.Sniffer().sniff(text[:16_384], delimiters=DELIMITERS).delimiter
    except csv.Error:
        return ","


def _columns(header: list[str] | None) -> list[str]:
    if not header or not any(cell.strip() for cell in header):
        raise _fail("file", "the CSV file has no header row; the first row must name the columns")
    if len(header) > MAX_COLUMNS:
        raise _fail(
            "file",
            f"the header row names {len(header):,} columns; at most {MAX_COLUMNS:,} are supported "
            "(remove the columns the prompt does not use)",
        )
    columns = [cell.strip() for cell in header]
    if any(not name for name in columns):
        raise _fail("file", "a column in the header row has no name; every column needs one")
    duplicates = sorted(name for name, count in Counter(columns).items() if count > 1)
    if duplicates:
        raise _fail("file", f"the header names these columns twice: {', '.join(duplicates)}")
    if _looks_like_data(columns):
        raise _fail("file", "the first row looks like data, not column names; add a header row")
    return columns


def _looks_like_data(columns: list[str]) -> bool:
    """A header of numbers only (or one very long cell) is a data row, not column names."""
    numeric = sum(1 for name in columns if re.fullmatch(r"[-+]?\d+([.,]\d+)?", name))
    return numeric == len(columns) or any(len(name) > 200 for name in columns)


class _reader:
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
        return _fail("file", f"the CSV file cannot be read at line {line:,}: {reason}")


def check_mapping(mapping: CsvMapping, columns: list[str]) -> list[dict]:
    """Field errors in a mapping: unknown columns in the template, bad id column, bad JSON schema."""
    problems = []
    if not mapping.template.strip():
        problems.append({"field": "template", "message": "the prompt template is empty"})
    known = set(columns)
    for field, text in (("template", mapping.template), ("system_prompt", mapping.system_prompt)):
        unknown = [name for name in PLACEHOLDER.findall(text) if name not in known]
        if unknown:
            problems.append(
                {
                    "field": field,
                    "message": f"no column named {', '.join(map(repr, unknown))}; the columns are {', '.join(columns)}",
                }
            )
    if mapping.id_column and mapping.id_column not in known:
        problems.append({"field": "id_column", "message": f"no column named {mapping.id_column!r}"})
    if mapping.json_schema is not None:
        problems += _schema_problems(mapping.json_schema)
    return problems


def parse_schema(text: str) -> dict | None:
    """The JSON schema typed in a form; None when blank. Raises ValidationFailed on bad JSON, or JSON nested
    deeper than json_input.MAX_DEPTH (which jsonschema would recurse into)."""
    if not text.strip():
        return None
    try:
        schema = json_input.loads(text)
    except json_input.JsonRefused as exc:
        raise _fail("json_schema", f"the JSON schema is refused: {exc.reason}") from None
    if not isinstance(schema, dict):
        raise _fail("json_schema", "the JSON schema must be a JSON object")
    return schema


def _schema_problems(schema: dict) -> list[dict]:
    try:
        validator_for(schema).check_schema(schema)
    except SchemaError as exc:
        return [{"field": "json_schema", "message": error_words.schema_error(exc)}]
    if schema.get("type") != "object" or not isinstance(schema.get("properties"), dict):
        return [{"field": "json_schema", "message": "the schema must describe an object with properties"}]
    return []


def render(template: str, row: dict[str, str]) -> str:
    return PLACEHOLDER.sub(lambda m: row.get(m.group(1), ""), template)


def request_body(job: BatchJob, mapping: CsvMapping, row: dict[str, str]) -> dict:
    """The request body for one row, in the shape of the job's endpoint."""
    prompt = render(mapping.template, row)
    system = render(mapping.system_prompt, row).strip()
    if job.endpoint == "/v1/chat/completions":
        messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]
        body = {"model": job.model, "messages": messages}
        if mapping.json_schema:
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "output", "schema": mapping.json_schema, "strict": False},
            }
        return body
    if job.endpoint == "/v1/responses":
        body = {"model": job.model, "input": prompt, **({"instructions": system} if system else {})}
        if mapping.json_schema:
            body["text"] = {"format": {"type": "json_schema", "name": "output", "schema": mapping.json_schema}}
        return body
    if job.endpoint == "/v1/completions":
        return {"model": job.model, "prompt": f"{system}\n\n{prompt}" if system else prompt}
    return {"model": job.model, "input": prompt}


def _rows(path: Path, info: CsvInfo) -> Iterator[tuple[int, list[str]]]:
    """(row number, cells) for each data row; row 1 is the first row after the header."""
    with _reader(path, info.encoding, info.delimiter) as rows:
        next(rows, None)
        number = 0
        for cells in rows:
            if not any(cell.strip() for cell in cells):
                continue
            number += 1
            yield number, cells


def _request_rows(
    job: BatchJob, path: Path, info: CsvInfo, mapping: CsvMapping, report: UploadReport
) -> Iterator[dict]:
    validator = request_lines.RequestValidator(job, request_lines.max_request_bytes())
    for number, cells in _rows(path, info):
        # A short row is padded; cells past the header are dropped.
        row = dict(zip(info.columns, cells + [""] * (len(info.columns) - len(cells)), strict=False))
        custom_id = row.get(mapping.id_column, "").strip() if mapping.id_column else f"row-{number}"
        try:
            if len(cells) > len(info.columns):
                raise request_lines.InvalidLine(
                    "extra_cells", f"the row has {len(cells)} cells but the header names {len(info.columns)}"
                )
            checked = validator.check({"custom_id": custom_id, "body": request_body(job, mapping, row)}, number)
        except request_lines.InvalidLine as exc:
            report.note(request_lines.LineProblem(number, exc.code, exc.message, exc.custom_id or custom_id or None))
            continue
        checked["source_row"] = [row[name] for name in info.columns]
        yield checked


def preview(job: BatchJob, path: Path, info: CsvInfo, mapping: CsvMapping, limit: int = 3) -> dict:
    """The first rendered requests and the token and cost estimate for the whole file."""
    problems = check_mapping(mapping, info.columns)
    if problems:
        raise ValidationFailed("the mapping has problems", details=problems)
    report = UploadReport()
    requests, tokens, output, count = [], 0, 0, 0
    for row in _request_rows(job, path, info, mapping, report):
        count += 1
        tokens += row["estimated_tokens"]
        output += request_lines.estimate_output_tokens(row["body"], job.endpoint)
        if len(requests) < limit:
            requests.append({"custom_id": row["custom_id"], "body": row["body"]})
    cost = price_table().cost(job.model, tokens, output)
    return {
        "requests": requests,
        "request_count": count,
        "estimated_prompt_tokens": tokens,
        "estimated_output_tokens": output,
        "estimated_cost": None if cost is None else Decimal(cost),
        "report": report.as_dict(),
    }


def import_csv(
    job: BatchJob,
    path: Path,
    mapping: CsvMapping,
    *,
    filename: str,
    skip_invalid: bool = False,
    actor: str = "system",
    info: CsvInfo | None = None,
) -> UploadReport:
    """Render every row through the mapping and store the requests in the draft job (all or nothing).

    ``info``: what ``inspect_csv`` found in the file, when a previous step has inspected it already."""
    job_service.require_draft(job, "add requests to")
    info = info or inspect_csv(path)
    problems = check_mapping(mapping, info.columns)
    if problems:
        raise ValidationFailed("the mapping has problems", details=problems)
    report = UploadReport()
    source = {
        "format": "csv",
        "filename": filename,
        "columns": info.columns,
        "encoding": info.encoding,
        "delimiter": info.delimiter,
        "template": mapping.template,
        "system_prompt": mapping.system_prompt,
        "id_column": mapping.id_column,
        "json_schema": mapping.json_schema,
        # JSONB does not keep an object's key order: the schema's fields are kept in order as a list.
        "output_fields": list((mapping.json_schema or {}).get("properties") or {}),
    }
    return store_file_rows(
        job,
        _request_rows(job, path, info, mapping, report),
        report,
        source=source,
        skip_invalid=skip_invalid,
        actor=actor,
        nothing="no row of the file could become a request",
    )
