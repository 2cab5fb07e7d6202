"""Tables from users: one format detection, CSV and Excel workbooks read into the same columns and rows."""

from __future__ import annotations

import io
import time
import zipfile
from datetime import date, datetime

import pytest
from sqlalchemy import select

from tests.factories import new_job
from tests.workbooks import xlsx_bytes
from webapp.errors import ValidationFailed
from webapp.extensions import db
from webapp.intake import formats, imports, tables, workbooks
from webapp.intake.mapping import Mapping
from webapp.models import BatchRequest

REVIEWS = {
    "Reviews": [
        ["id", "amount", "when", "text"],
        ["r1", -12.5, datetime(2024, 3, 1), "Great"],
        [None, None, None, None],
        ["r2", 3, datetime(2024, 3, 2, 9, 30), "Bad"],
        ["r3", 0.1, None],  # a short row
    ],
    "Notes": [["note"], ["hello"]],
}


def detect(content: bytes, filename: str | None = None, content_type: str | None = None, declared=None) -> str:
    return formats.detect(filename, content_type, io.BytesIO(content), declared)


def stored(tmp_path, content: bytes, suffix: str = ".xlsx"):
    path = tmp_path / f"upload{suffix}"
    path.write_bytes(content)
    return path


@pytest.mark.parametrize(
    "content, filename, content_type, declared, expected",
    [
        (b'{"custom_id": "a"}\n', "r.jsonl", None, None, "jsonl"),
        (b"a,b\n1,2\n", "r.csv", None, None, "csv"),
        (b"a,b\n1,2\n", "data", "text/csv", None, "csv"),
        (b'{"custom_id": "a"}\n', "data", None, None, "jsonl"),  # neither name nor type: the first byte
        (b"a\n1\n", "data", None, None, "csv"),
        (b'{"x": 1}\n', "r.jsonl", None, "csv", "csv"),  # declared beats the name
        (xlsx_bytes(REVIEWS), "r.xlsx", None, None, "xlsx"),
        (xlsx_bytes(REVIEWS), "renamed.csv", "text/csv", None, "xlsx"),  # a workbook by its bytes, whatever its name
        (xlsx_bytes(REVIEWS), "r.jsonl", None, "csv", "xlsx"),
    ],
)
def test_one_format_detection_from_declared_name_type_and_bytes(content, filename, content_type, declared, expected):
    assert detect(content, filename, content_type, declared) == expected


def zipped(names: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in names.items():
            archive.writestr(name, data)
    return out.getvalue()


@pytest.mark.parametrize(
    "content, filename, message",
    [
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100, "r.xlsx", "password-protected"),
        (b"a,b\n", "old.xls", "old Excel .xls"),
        (zipped({"mimetype": b"application/vnd.oasis.opendocument.spreadsheet"}), "r.ods", ".ods"),
        (zipped({"word/document.xml": b"<w/>"}), "r.csv", "not an Excel workbook"),
        (b"PK\x03\x04 not really a zip", "r.xlsx", "may be damaged"),
        (b"a,b\n1,2\n", "r.xlsx", "not an Excel workbook"),
    ],
)
def test_files_that_are_not_readable_tables_are_refused_clearly(content, filename, message):
    with pytest.raises(ValidationFailed, match=message) as caught:
        detect(content, filename)
    assert caught.value.status == 422 and caught.value.details[0]["field"] == "file"


def test_a_binary_file_named_csv_is_refused_as_binary(tmp_path):
    kind = detect(b"\x89PNG\r\n\x1a\n\x00\x00", "photo.csv")
    assert kind == "csv"
    with pytest.raises(ValidationFailed, match="not a text file"):
        tables.inspect(stored(tmp_path, b"\x89PNG\r\n\x1a\n\x00\x00", ".csv"))


def test_detection_leaves_the_stream_where_it_was():
    stream = io.BytesIO(xlsx_bytes(REVIEWS))
    formats.detect("r.xlsx", None, stream)
    assert stream.tell() == 0


def test_a_workbook_is_read_from_its_first_sheet_with_cells_as_a_person_reads_them(app_ctx, tmp_path):
    info = tables.inspect(stored(tmp_path, xlsx_bytes(REVIEWS)))
    assert (info.format, info.sheet, info.sheets) == ("xlsx", "Reviews", ["Reviews", "Notes"])
    assert info.columns == ["id", "amount", "when", "text"]
    assert info.row_count == 3  # the empty row is passed over, as in a CSV
    assert info.preview == [
        ["r1", "-12.5", "2024-03-01", "Great"],
        ["r2", "3", "2024-03-02 09:30:00", "Bad"],
        ["r3", "0.1"],
    ]


def test_a_chosen_sheet_is_read_and_an_unknown_one_refused(app_ctx, tmp_path):
    path = stored(tmp_path, xlsx_bytes(REVIEWS))
    info = tables.inspect(path, "Notes")
    assert (info.sheet, info.columns, info.preview) == ("Notes", ["note"], [["hello"]])
    with pytest.raises(ValidationFailed, match="no sheet named 'Nope'; its sheets are Reviews, Notes") as caught:
        tables.inspect(path, "Nope")
    assert caught.value.details[0]["field"] == "sheet"


def test_workbook_rows_become_requests_with_their_values_kept(app_ctx, tmp_path):
    job = new_job([])
    path = stored(tmp_path, xlsx_bytes(REVIEWS))
    mapping = Mapping("{{ text }} cost {{ amount }} on {{ when }}", id_column="id")
    report = imports.import_table(job, path, mapping, filename="reviews.xlsx")
    assert report.added == 3
    rows = db.session.scalars(select(BatchRequest).where(BatchRequest.job_id == job.id).order_by(BatchRequest.id))
    first, second, third = rows.all()
    assert first.body["messages"][-1]["content"] == "Great cost -12.5 on 2024-03-01"
    assert second.body["messages"][-1]["content"] == "Bad cost 3 on 2024-03-02 09:30:00"
    assert (first.source_row, second.source_row, third.source_row) == (
        ["r1", -12.5, "2024-03-01", "Great"],
        ["r2", 3, "2024-03-02 09:30:00", "Bad"],
        ["r3", 0.1, "", ""],
    )
    assert job.source["format"] == "xlsx" and job.source["sheet"] == "Reviews"
    assert "encoding" not in job.source


@pytest.mark.parametrize(
    "value, text",
    [
        (3.0, "3"),
        (-12.5, "-12.5"),
        (0.1, "0.1"),
        (1e20, "1e+20"),
        (True, "TRUE"),
        (date(2024, 1, 31), "2024-01-31"),
        (datetime(2024, 1, 31, 0, 0), "2024-01-31"),
        (datetime(2024, 1, 31, 8, 5, 1), "2024-01-31 08:05:01"),
        (None, ""),
        ("007", "007"),
    ],
)
def test_cells_read_as_a_person_reads_them(value, text):
    assert workbooks.as_text(value) == text


def test_a_workbook_wider_than_the_column_limit_is_refused(app_ctx, tmp_path):
    header = [f"c{i}" for i in range(1001)]
    with pytest.raises(ValidationFailed, match="names 1,001 columns; at most 1,000"):
        tables.inspect(stored(tmp_path, xlsx_bytes({"S": [header, ["x"]]})))


def test_a_workbook_row_longer_than_one_request_is_refused(app_ctx, tmp_path, request_limit):
    request_limit(1000)
    rows = [["Id", "Text"], ["1", "z" * 600], ["2", "y" * 600, "w" * 600]]
    with pytest.raises(ValidationFailed, match="row 3 of the sheet is longer than"):
        tables.inspect(stored(tmp_path, xlsx_bytes({"S": rows})))


def test_a_workbook_with_a_header_and_no_rows_or_no_header_is_refused(app_ctx, tmp_path):
    with pytest.raises(ValidationFailed, match="no rows"):
        tables.inspect(stored(tmp_path, xlsx_bytes({"S": [["a", "b"]]})))
    with pytest.raises(ValidationFailed, match="no header row"):
        tables.inspect(stored(tmp_path, xlsx_bytes({"S": []})))


def test_a_damaged_workbook_is_refused_not_crashed_on(app_ctx, tmp_path):
    good = xlsx_bytes(REVIEWS)
    cut = good[: len(good) // 2]
    with pytest.raises(ValidationFailed, match="cannot be read"):
        tables.inspect(stored(tmp_path, cut))
    broken = zipped({"xl/workbook.xml": b"<not xml", "[Content_Types].xml": b"<x/>"})
    with pytest.raises(ValidationFailed, match="cannot be read"):
        tables.inspect(stored(tmp_path, broken))


def test_a_sheet_that_claims_to_be_huge_is_read_by_its_cells(app_ctx, tmp_path):
    import re as regex

    path = stored(tmp_path, xlsx_bytes({"S": [["a", "b"], [1, 2]]}))
    source = zipfile.ZipFile(path)
    parts = {name: source.read(name) for name in source.namelist()}
    source.close()
    sheet = parts["xl/worksheets/sheet1.xml"].decode()
    parts["xl/worksheets/sheet1.xml"] = regex.sub(
        r'<dimension ref="[^"]*"/>', '<dimension ref="A1:XFD1048576"/>', sheet
    ).encode()
    path.write_bytes(zipped(parts))
    started = time.monotonic()
    info = tables.inspect(path)
    assert (info.columns, info.row_count, info.preview) == (["a", "b"], 1, [["1", "2"]])
    assert time.monotonic() - started < 5  # padded to the stated size, a million rows of 16,384 cells each
