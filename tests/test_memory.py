"""Memory that does not grow with the job: each bulk step run at two sizes, three times apart, must peak at
about the same Python memory (``tracemalloc``). The benchmarks (``bench/``) take the same steps to a million
requests and report the process's peak RSS; these sizes keep CI fast.
"""

from __future__ import annotations

import io
import json
import tracemalloc
from functools import partial
from pathlib import Path

import pytest
from sqlalchemy import text

from simulator import simulated_output
from tests.conftest import api_token
from tests.factories import set_states
from webapp import bulk
from webapp.extensions import db
from webapp.intake import imports
from webapp.models import JobStatus, RequestStatus, request_states
from webapp.services import exports, ingest, jobs, planning

pytestmark = pytest.mark.slow

SMALL = bulk.COPY_CHUNK  # one full write chunk: both sizes hold as many rows at a time
LARGE = 3 * SMALL
# Allowed growth from SMALL to LARGE, for what must grow: the set of custom_ids an upload checks for repeats
# (about 100 bytes each) and allocator noise.
SLACK = 4 * 1024 * 1024


def request_file(count: int) -> bytes:
    review = "the battery lasts long but the screen is dim " * 6
    return b"".join(
        json.dumps(
            {
                "custom_id": f"review-{i}",
                "method": "POST",
                "url": "/v1/chat/completions",
                "body": {
                    "model": "gpt-4o-mini",
                    "max_tokens": 20,
                    "messages": [{"role": "user", "content": f"Label review {i}: {review}"}],
                },
            }
        ).encode()
        + b"\n"
        for i in range(count)
    )


def peak_bytes(step) -> tuple[int, object]:
    tracemalloc.start()
    try:
        result = step()
        return tracemalloc.get_traced_memory()[1], result
    finally:
        tracemalloc.stop()


def uploaded_job(count: int):
    job = jobs.create_job({"name": f"memory {count}", "model": "gpt-4o-mini"})
    data = request_file(count)
    peak, report = peak_bytes(lambda: imports.import_jsonl(job, io.BytesIO(data)))
    assert report.added == count
    return job, peak


def steps_after_upload(job, workdir: Path) -> dict[str, int]:
    """Peak memory of writing the input files, ingesting their results and exporting them as CSV."""
    jobs.submit_job(job)
    batches = planning.plan_batches(job)
    db.session.commit()
    peaks = {"input files": 0, "result ingest": 0}
    for batch in batches:
        path = workdir / f"input-{batch.id}.jsonl"
        peak, (lines, _) = peak_bytes(partial(planning.write_input_file, batch, path))
        assert lines == batch.request_count
        peaks["input files"] = max(peaks["input files"], peak)
        output = workdir / f"output-{batch.id}.jsonl"
        with open(path, "rb") as src, open(output, "w") as out:
            for line in src:
                out.write(json.dumps(simulated_output(json.loads(line), batch_id=f"batch_{batch.id}")) + "\n")
        set_states(request_states.c.provider_batch_id == batch.id, status=RequestStatus.IN_FLIGHT)
        job.status = JobStatus.RUNNING
        peak, summary = peak_bytes(partial(ingest.ingest_files, batch, job, [output], cancelled=False))
        assert summary.succeeded == batch.request_count
        peaks["result ingest"] = max(peaks["result ingest"], peak)
    db.session.commit()
    if db.engine.dialect.name == "postgresql":
        # The app analyzes after its commits on a connection of its own, which cannot see this test's
        # rolled-back transaction: without statistics the export's join was planned for empty tables (minutes).
        db.session.execute(text("ANALYZE batch_requests, request_states, batch_responses"))
    peak, rows = peak_bytes(lambda: sum(chunk.count(b"\n") for chunk in exports.csv_chunks(job)))
    assert rows == job.total_requests + 1
    peaks["CSV export"] = peak
    return peaks


def test_upload_memory_does_not_grow_with_the_file(app_ctx):
    _, small = uploaded_job(SMALL)
    _, large = uploaded_job(LARGE)
    assert large < small + SLACK, f"{SMALL:,} lines peaked at {small:,} bytes, {LARGE:,} at {large:,}"


def test_input_files_result_ingest_and_export_memory_do_not_grow_with_the_job(app_ctx, tmp_path, monkeypatch):
    # A batch holds at most the provider's 50,000 requests, and ingest keeps the requests of one batch: with
    # batches of SMALL, the large job is three batches like the small one, not one batch three times larger.
    monkeypatch.setitem(app_ctx.config, "BATCH_MAX_REQUESTS", SMALL)
    small = steps_after_upload(uploaded_job(SMALL)[0], tmp_path)
    large = steps_after_upload(uploaded_job(LARGE)[0], tmp_path)
    for step in small:
        assert large[step] < small[step] + SLACK, f"{step}: {small[step]:,} bytes, then {large[step]:,}"


def request_array(count: int) -> bytes:
    """The body of ``POST /jobs/{id}/requests``: the same requests as ``request_file``, as one JSON array."""
    return b"[" + b",".join(line.removesuffix(b"\n") for line in request_file(count).splitlines(keepends=True)) + b"]"


def test_adding_requests_through_the_api_does_not_grow_with_the_body(app_ctx, client, admin_user):
    """The array was read whole, parsed whole and validated whole: 1,000,000 items took 1.1 GB."""
    headers = {"Authorization": f"Bearer {api_token(admin_user)}"}
    peaks = {}
    for count in (SMALL, LARGE):
        job = jobs.create_job({"name": f"api memory {count}", "model": "gpt-4o-mini"})
        body = request_array(count)
        stream = io.BytesIO(body)  # made before measuring: the server's copies are what counts
        peak, response = peak_bytes(
            partial(
                client.post,
                f"/api/v1/jobs/{job.id}/requests",
                input_stream=stream,
                content_length=len(body),
                content_type="application/json",
                headers=headers,
            )
        )
        assert response.status_code == 201, response.get_data(as_text=True)[:500]
        assert response.get_json()["added"] == count
        peaks[count] = peak
    assert peaks[LARGE] < peaks[SMALL] + SLACK, (
        f"{SMALL:,} items peaked at {peaks[SMALL]:,} bytes, {LARGE:,} at {peaks[LARGE]:,}"
    )
