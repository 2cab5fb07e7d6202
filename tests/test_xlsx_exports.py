"""Results as an Excel workbook: the CSV export's columns, numbers as numbers, long text, constant memory."""

from __future__ import annotations

import io
from pathlib import Path

import openpyxl
import pytest

from tests.factories import new_job, run_until_done
from tests.workbooks import xlsx_bytes
from webapp.intake import imports
from webapp.intake.mapping import Mapping
from webapp.services import exports, jobs, xlsx_exports

CELLS = "Id,Amount,Code,Text\n1,-12.50,007,=SUM(A1)\n2,3,1e5,plain\n3,+4.25,12345678901234567890,\n"


def workbook(job, failed_only: bool = False) -> list[list]:
    data = b"".join(xlsx_exports.xlsx_chunks(job, failed_only))
    book = openpyxl.load_workbook(io.BytesIO(data), read_only=True)
    rows = [list(row) for row in book.worksheets[0].iter_rows(values_only=True)]
    book.close()
    return rows


def run(job):
    jobs.submit_job(job)
    return run_until_done(job.id)


def csv_job(tmp_path: Path, text: str = CELLS, template: str = "Echo: {{ Text }}", **mapping):
    path = tmp_path / "cells.csv"
    path.write_text(text)
    job = new_job([])
    imports.import_table(job, path, Mapping(template, **mapping), filename="cells.csv")
    return job


def test_the_workbook_has_the_csv_exports_columns_and_numbers_as_numbers(app_ctx, simulator, tmp_path):
    job = run(csv_job(tmp_path))
    rows = workbook(job)
    assert rows[0] == [*exports.source_columns(job), *exports.result_columns(job)]
    assert rows[0][:4] == ["Id", "Amount", "Code", "Text"]
    assert [row[:4] for row in rows[1:]] == [
        [1, -12.5, "007", "=SUM(A1)"],  # leading zeros stay text; a formula stays text, never run
        [2, 3, "1e5", "plain"],  # only plain decimals become numbers
        [3, 4.25, "12345678901234567890", None],  # past 15 digits a number would change: text
    ]
    assert all(row[5] == "succeeded" and isinstance(row[-1], int) and row[-1] > 0 for row in rows[1:])
    assert sum(row[1] for row in rows[1:]) == pytest.approx(-12.5 + 3 + 4.25)


def test_a_workbook_job_writes_its_cells_back_as_they_were(app_ctx, simulator, tmp_path):
    book = {"S": [["Id", "Amount", "Note"], ["a", -12.5, "007"], ["b", 3, True]]}
    path = tmp_path / "in.xlsx"
    path.write_bytes(xlsx_bytes(book))
    job = new_job([])
    imports.import_table(job, path, Mapping("{{ Amount }} {{ Note }}", id_column="Id"), filename="in.xlsx")
    rows = workbook(run(job))
    assert [row[:4] for row in rows[1:]] == [["a", -12.5, "007", "a"], ["b", 3, True, "b"]]


def test_long_text_is_kept_to_excels_cell_limit_with_a_note(app_ctx, tmp_path):
    long = "x" * 40_000
    job = csv_job(tmp_path, f"Id,Text\n1,{long}\n2,{'y' * 32_767}\n", template="{{ Id }}")
    rows = workbook(job)
    assert len(rows[1][1]) == 32_767 and rows[1][1].endswith(xlsx_exports.CUT)
    assert rows[1][1].startswith("x" * 32_000)
    assert rows[2][1] == "y" * 32_767  # at the limit: whole
    assert rows[1][3] == "pending"


def test_structured_fields_and_a_jsonl_job(app_ctx, simulator, tmp_path):
    schema = {"type": "object", "properties": {"sentiment": {"type": "string"}, "score": {"type": "integer"}}}
    job = run(csv_job(tmp_path, json_schema=schema))
    rows = workbook(job)
    at = rows[0].index("output.score")
    assert all(isinstance(row[at], int) for row in rows[1:])
    jsonl_job = run(new_job(["a", "b"]))
    rows = workbook(jsonl_job)
    assert rows[0] == exports.result_columns(jsonl_job) and [r[0] for r in rows[1:]] == ["req-0", "req-1"]


def test_failed_only_and_the_temporary_file_is_removed(app_ctx, tmp_path, monkeypatch):
    made = []
    mkstemp = xlsx_exports.tempfile.mkstemp
    monkeypatch.setattr(xlsx_exports.tempfile, "mkstemp", lambda **kw: made.append(mkstemp(**kw)) or made[-1])
    job = csv_job(tmp_path)
    assert len(workbook(job, failed_only=True)) == 1  # the header: nothing failed
    chunks = xlsx_exports.xlsx_chunks(job)
    next(chunks)
    chunks.close()  # a download stopped half way
    assert made and not any(Path(name).exists() for _, name in made)


def test_a_full_sheet_goes_on_in_the_next(app_ctx, tmp_path, monkeypatch):
    monkeypatch.setattr(xlsx_exports, "MAX_ROWS", 3)
    job = csv_job(tmp_path)
    data = b"".join(xlsx_exports.xlsx_chunks(job))
    book = openpyxl.load_workbook(io.BytesIO(data), read_only=True)
    assert book.sheetnames == ["Results", "Results 2"]
    second = [list(row) for row in book["Results 2"].iter_rows(values_only=True)]
    assert second[0][0] == "Id" and second[1][0] == 3
    book.close()
