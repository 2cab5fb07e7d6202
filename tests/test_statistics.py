"""Statistics after a bulk write (PostgreSQL): a large upload or result ingest is analyzed once it commits, by
autoanalyze's rule (rows written > 50 + 0.1 x the table's rows); a small one is left to autovacuum.

The writes commit for real (``committed_db``): ANALYZE runs on a connection of its own after the commit.
"""

from __future__ import annotations

import io
import json

import pytest
from sqlalchemy import create_engine, text

from tests.conftest import TEST_DATABASE_URL
from tests.factories import chat_body, new_job, set_states
from webapp import bulk
from webapp.config import database_url
from webapp.extensions import db
from webapp.intake import imports
from webapp.intake.store import UploadRejected
from webapp.models import JobStatus, RequestStatus, request_states
from webapp.services import ingest, jobs, planning

pytestmark = pytest.mark.skipif(not TEST_DATABASE_URL, reason="statistics are PostgreSQL's (TEST_DATABASE_URL)")
TABLES = ("batch_requests", "request_states", "batch_responses")


def statistics(tmp_path) -> dict[str, tuple]:
    """(last analyze, row count estimate) of each table, read on a connection of its own: a fresh snapshot of
    the statistics views, which a session caches for the length of its transaction."""
    engine = create_engine(database_url(TEST_DATABASE_URL, str(tmp_path)))
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT c.relname, s.last_analyze, c.reltuples FROM pg_class c "
                "JOIN pg_stat_user_tables s ON s.relid = c.oid WHERE c.relname = ANY(:tables)"
            ),
            {"tables": list(TABLES)},
        )
        found = {name: (analyzed, reltuples) for name, analyzed, reltuples in rows}
    engine.dispose()
    return found


def large(table: str, tmp_path) -> int:
    """More rows than autoanalyze's threshold for ``table`` as it is now (its estimate may be -1: never analyzed)."""
    return int(50 + 0.1 * max(statistics(tmp_path)[table][1], 0)) + 200


def jsonl(count: int, prefix: str = "r") -> io.BytesIO:
    lines = (json.dumps({"custom_id": f"{prefix}{i}", "body": chat_body(f"text {i}")}) for i in range(count))
    return io.BytesIO("\n".join(lines).encode())


def test_a_large_upload_is_analyzed_after_its_commit(app_ctx, committed_db, tmp_path):
    count = max(large("batch_requests", tmp_path), large("request_states", tmp_path))
    before = statistics(tmp_path)
    imports.import_jsonl(new_job([]), jsonl(count))
    after = statistics(tmp_path)
    for table in ("batch_requests", "request_states"):
        assert after[table][0] is not None and after[table][0] != before[table][0], table
        assert after[table][1] >= count, table  # the estimate now counts the new rows
    assert after["batch_responses"] == before["batch_responses"]  # not written: not analyzed


def test_a_small_upload_or_append_is_left_to_autovacuum(app_ctx, committed_db, tmp_path):
    before = statistics(tmp_path)
    job = new_job([])
    imports.import_jsonl(job, jsonl(10))
    imports.add_requests(job, [{"custom_id": "api-1", "body": chat_body("one more")}])
    assert statistics(tmp_path) == before


def test_a_rolled_back_upload_counts_for_nothing(app_ctx, committed_db, tmp_path):
    before = statistics(tmp_path)
    job = new_job([])
    refused = jsonl(large("batch_requests", tmp_path)).getvalue() + b"\nnot json"
    with pytest.raises(UploadRejected):
        imports.import_jsonl(job, io.BytesIO(refused))
    imports.add_requests(job, [{"custom_id": "api-1", "body": chat_body("one")}])  # the next commit: small
    assert statistics(tmp_path) == before


def test_a_large_result_ingest_is_analyzed_after_its_commit(app_ctx, committed_db, tmp_path):
    count = large("batch_responses", tmp_path)
    job = new_job([])
    imports.import_jsonl(job, jsonl(count))
    jobs.submit_job(job)
    [batch] = planning.plan_batches(job)
    set_states(request_states.c.provider_batch_id == batch.id, status=RequestStatus.IN_FLIGHT)
    job.status = JobStatus.RUNNING
    db.session.commit()
    before = statistics(tmp_path)
    path = tmp_path / "output.jsonl"
    path.write_text(
        "\n".join(
            json.dumps({"custom_id": f"r{i}", "response": {"status_code": 200, "body": {"choices": []}}})
            for i in range(count)
        )
    )
    ingest.ingest_files(batch, job, [path], cancelled=False)
    db.session.commit()
    after = statistics(tmp_path)
    assert after["batch_responses"][0] != before["batch_responses"][0]
    assert after["batch_responses"][1] >= count


def test_analyze_failing_is_logged_not_raised(app_ctx, committed_db, caplog):
    with caplog.at_level("WARNING", logger="webapp.bulk"):
        assert bulk.analyze_written(db.session(), {"not a table name!": 10**9}) == []
    assert "could not analyze" in caplog.text


def test_columns_nothing_filters_on_have_no_statistics_to_gather(app_ctx):
    targets = set(
        db.session.execute(
            text(
                "SELECT attrelid::regclass::text, attname FROM pg_attribute WHERE attstattarget = 0 AND attnum > 0 "
                "AND attrelid = ANY(CAST(:tables AS regclass[]))"
            ),
            {"tables": list(TABLES)},
        ).all()
    )
    assert targets == {
        ("batch_requests", "body"),
        ("batch_requests", "source_row"),
        ("request_states", "error"),
        ("batch_responses", "body"),
        ("batch_responses", "output_text"),
        ("batch_responses", "error"),
        ("batch_responses", "provider_request_id"),
    }
