"""Downloads: JSONL in OpenAI's output format and CSV in the user's columns, with formulas neutralised."""

from __future__ import annotations

import csv
import io
import json

import pytest
from sqlalchemy import String, literal, select

from simulator import simulated_text
from tests.factories import new_job, run_until_done
from tests.test_uploads import csv_file
from webapp.extensions import db
from webapp.intake import imports
from webapp.intake.mapping import Mapping
from webapp.services import exports, formulas


def test_jsonl_export_has_one_output_line_per_request(app_ctx, simulator):
    job = run_until_done(
        new_job(["fine", "no [[sim:status=400]]", "dead [[sim:error=invalid_thing]]"], submit=True, max_retries=0).id
    )
    lines = [json.loads(line) for line in b"".join(exports.jsonl_lines(job)).splitlines()]
    assert [line["custom_id"] for line in lines] == ["req-0", "req-1", "req-2"]
    ok, http_error, other_error = lines
    assert ok["response"]["status_code"] == 200 and ok["error"] is None
    assert ok["response"]["body"]["choices"][0]["message"]["content"].startswith("Simulated reply")
    assert http_error["response"]["status_code"] == 400 and http_error["error"] is None
    assert other_error["response"] is None and other_error["error"]["code"] == "invalid_thing"
    failed = [json.loads(line) for line in b"".join(exports.jsonl_lines(job, failed_only=True)).splitlines()]
    assert [line["custom_id"] for line in failed] == ["req-1", "req-2"]


def test_jsonl_export_of_unfinished_requests_says_so(app_ctx):
    job = new_job(count=2)
    lines = [json.loads(line) for line in b"".join(exports.jsonl_lines(job)).splitlines()]
    assert lines[0]["error"] == {"code": "pending", "message": "no result yet"}


def test_csv_export_keeps_the_original_columns_and_adds_results(app_ctx, simulator, tmp_path):
    job = new_job([])
    schema = {
        "type": "object",
        "properties": {"sentiment": {"type": "string", "enum": ["pos", "neg"]}, "score": {"type": "integer"}},
    }
    imports.import_table(
        job, csv_file(tmp_path), Mapping("Classify: {{ Text }}", json_schema=schema), filename="reviews.csv"
    )
    from webapp.services import jobs

    jobs.submit_job(job)
    job = run_until_done(job.id)
    rows = list(csv.reader(io.StringIO(b"".join(exports.csv_chunks(job)).decode())))
    header = rows[0]
    assert header == [
        "Id",
        "Text",
        "Stars",
        "custom_id",
        "status",
        "output_text",
        "output.sentiment",
        "output.score",
        "error",
        "prompt_tokens",
        "completion_tokens",
        "total_tokens",
    ]
    assert [r[:3] for r in rows[1:]] == [
        ["1", "Great, really great", "5"],
        ["2", "Zürich café: ok\nsecond line", "3"],
        ["3", "'=cmd|' /C calc'!A0", "1"],
    ]  # the formula is neutralised
    for row in rows[1:]:
        assert row[4] == "succeeded"
        structured = json.loads(row[5])
        assert row[6] == structured["sentiment"] and row[6] in ("pos", "neg")
        assert int(row[7]) == structured["score"]
        assert int(row[9]) > 0


def test_csv_export_of_a_jsonl_job(app_ctx, simulator):
    job = run_until_done(new_job(["hello there"], submit=True).id)
    rows = list(csv.reader(io.StringIO(b"".join(exports.csv_chunks(job)).decode())))
    assert rows[0][:3] == ["custom_id", "status", "output_text"]
    assert rows[1][:3] == ["req-0", "succeeded", simulated_text(_body(job))]


def _body(job):
    from sqlalchemy import select

    from webapp.extensions import db
    from webapp.models import BatchRequest

    return db.session.scalars(select(BatchRequest.body).where(BatchRequest.job_id == job.id)).one()


# (cell, as a spreadsheet must get it): numbers and dates stay as they are, formulas get a quote in front.
CELLS = [
    ("-12.50", "-12.50"),
    ("+3", "+3"),
    ("1e5", "1e5"),
    ("-0.5", "-0.5"),
    ("-.5", "-.5"),
    ("5.", "5."),
    ("+1.5E-3", "+1.5E-3"),
    ("-0", "-0"),
    ("2024-01-05", "2024-01-05"),
    ("2024-01-05T10:00:00Z", "2024-01-05T10:00:00Z"),
    ("plain", "plain"),
    ("a=b", "a=b"),
    ("1+1", "1+1"),
    ("\thello", "\thello"),
    ("", ""),
    ("'=quoted", "'=quoted"),
    ("=1+1", "'=1+1"),
    ("+A1", "'+A1"),
    ("-2+3", "'-2+3"),
    ("@SUM(A1:A2)", "'@SUM(A1:A2)"),
    ("=cmd|' /C calc'!A0", "'=cmd|' /C calc'!A0"),
    ("\t=cmd", "'\t=cmd"),
    (" =x", "' =x"),
    ("\n=x", "'\n=x"),
    ("\r=x", "'\r=x"),
    ("\r\n  -x", "'\r\n  -x"),
    ("\v\f@x", "'\v\f@x"),
    ("-", "'-"),
    ("+", "'+"),
    ("-x", "'-x"),
    ("+33 6", "'+33 6"),
    ("-12.50 ", "'-12.50 "),
    (" -5", "' -5"),
    ("-5\n", "'-5\n"),
    ("-1,5", "'-1,5"),
    ("-5%", "'-5%"),
    ("-1e5x", "'-1e5x"),
    ("--5", "'--5"),
    ("-1e", "'-1e"),
    ("-.", "'-."),
    ("-\u0663", "'-\u0663"),
]


@pytest.mark.parametrize("cell, expected", CELLS, ids=[repr(cell) for cell, _ in CELLS])
def test_formulas_are_neutralised_and_numbers_left_alone(app_ctx, cell, expected):
    """The rule in Python and as the SQL expression the database applies when it writes the CSV itself."""
    assert formulas.neutralise(cell) == expected
    in_sql = db.session.scalar(select(formulas.neutralised(literal(cell, String()))))
    assert (in_sql or "") == expected


def test_non_text_cells_pass_unchanged():
    assert formulas.neutralise(-5) == -5 and formulas.neutralise(None) is None


def test_both_writers_neutralise_header_names_and_cells_alike(app_ctx, tmp_path, monkeypatch):
    """A formula as a column name is quoted too; every cell of CELLS comes out as the table says, whether
    PostgreSQL writes the CSV (COPY) or Python's csv module does."""
    from webapp import bulk

    rows = [[str(i), "hello", cell] for i, (cell, _) in enumerate(CELLS)]
    source = io.StringIO()
    csv.writer(source).writerows([["Id", "Text", "=cmd|' /C calc'!A0"], *rows])
    job = new_job([])
    imports.import_table(job, csv_file(tmp_path, source.getvalue()), Mapping("Echo: {{ Text }}"), filename="cells.csv")
    by_database = b"".join(exports.csv_chunks(job))
    monkeypatch.setattr(bulk, "is_postgresql", lambda: False)
    by_python = b"".join(exports.csv_chunks(job))
    for data in (by_database, by_python):
        header, *exported = csv.reader(io.StringIO(data.decode(), newline=""))
        assert header[:3] == ["Id", "Text", "'=cmd|' /C calc'!A0"]
        assert [row[2] for row in exported] == [expected for _, expected in CELLS]


TRICKY = (
    "Id,Text,Note\n"
    '1,"plain, with a comma",\n'
    '2,"say ""hi""\non two lines",=SUM(A1)\n'
    '3,"Zürich café 🙂 tab\there",\\.\n'
    '4,"fails [[sim:status=400]]",-5\n'
    '5,"  spaces kept  ",@user\n'
)


def test_database_written_csv_reads_as_the_python_written_csv(app_ctx, simulator, tmp_path, monkeypatch):
    """PostgreSQL writes the CSV of a job without structured fields itself: parsed, it must hold what Python's
    csv module writes from the same rows (quotes, line breaks, formulas, empty and missing cells)."""
    from webapp import bulk

    job = new_job([])
    imports.import_table(job, csv_file(tmp_path, TRICKY), Mapping("Echo: {{ Text }}"), filename="t.csv")
    from webapp.services import jobs

    jobs.submit_job(job)
    job = run_until_done(job.id)
    exported = {failed: b"".join(exports.csv_chunks(job, failed_only=failed)) for failed in (False, True)}
    monkeypatch.setattr(bulk, "is_postgresql", lambda: False)  # Python's writer, from plain rows
    for failed, data in exported.items():
        by_python = b"".join(exports.csv_chunks(job, failed_only=failed))
        rows = list(csv.reader(io.StringIO(data.decode())))
        assert rows == list(csv.reader(io.StringIO(by_python.decode())))
        assert b"\r" not in data and data.endswith(b"\n")
    header, *rows = csv.reader(io.StringIO(exported[False].decode()))
    assert header[:5] == ["Id", "Text", "Note", "custom_id", "status"]
    assert [row[:3] for row in rows] == [
        ["1", "plain, with a comma", ""],
        ["2", 'say "hi"\non two lines', "'=SUM(A1)"],
        ["3", "Zürich café 🙂 tab\there", "\\."],
        ["4", "fails [[sim:status=400]]", "-5"],
        ["5", "  spaces kept  ", "'@user"],
    ]
    assert [row[4] for row in rows] == ["succeeded"] * 3 + ["failed", "succeeded"]
    assert rows[3][5:] == ["", "invalid_request_error: Invalid request (simulated).", "0", "0", "0"]
    assert all(int(row[7]) > 0 for row in rows if row[4] == "succeeded")
    failed_rows = list(csv.reader(io.StringIO(exported[True].decode())))[1:]
    assert [row[0] for row in failed_rows] == ["4"]
