"""Requests and results: the key-paged table, one request in full (escaped), and the streamed downloads."""

from __future__ import annotations

import csv
import io
import json
import re

from sqlalchemy import select

from tests.dashboard.conftest import REVIEWS, SETTINGS, csv_file, hidden
from tests.factories import new_job, run_until_done
from webapp.extensions import db
from webapp.models import BatchJob, BatchRequest, BatchResponse, RequestStatus

HOSTILE = "<script>alert('owned')</script><img src=x onerror=alert(1)>"


def custom_ids(text: str) -> list[str]:
    return re.findall(r'<span class="custom-id">([^<]+)</span>', text)


def test_requests_are_listed_with_status_and_output(browser, app_ctx, simulator):
    job = run_until_done(new_job(["fine", "broken [[sim:status=400]]"], submit=True).id)
    page = browser.get(f"/jobs/{job.id}/requests")

    assert page.status_code == 200
    assert custom_ids(page.text) == ["req-0", "req-1"]
    assert "succeeded" in page.text and "failed" in page.text
    assert "Simulated reply" in page.text  # the output text of req-0
    assert f'hx-get="/jobs/{job.id}/requests/' in page.text and 'hx-trigger="toggle once"' in page.text


def test_requests_filter_by_status_and_custom_id(browser, app_ctx, simulator):
    job = run_until_done(new_job(["a", "b [[sim:status=400]]", "c"], submit=True).id)
    assert custom_ids(browser.get(f"/jobs/{job.id}/requests?status=failed").text) == ["req-1"]
    assert custom_ids(browser.get(f"/jobs/{job.id}/requests?q=req-2").text) == ["req-2"]
    assert "No request matches" in browser.get(f"/jobs/{job.id}/requests?q=zzz").text
    fragment = browser.get(f"/jobs/{job.id}/requests?status=succeeded", htmx=True)
    assert "<html" not in fragment.text and custom_ids(fragment.text) == ["req-0", "req-2"]
    assert "HX-Request" in fragment.headers["Vary"]


def test_requests_are_key_paged(browser, app_ctx):
    job = new_job(count=55)
    first = browser.get(f"/jobs/{job.id}/requests")
    assert len(custom_ids(first.text)) == 50
    next_href = re.search(r'href="(/jobs/\d+/requests\?after=\d+)" rel="next"', first.text).group(1)
    second = browser.get(next_href)
    assert custom_ids(second.text) == [f"req-{i}" for i in range(50, 55)]
    assert 'rel="next"' not in second.text and "First page" in second.text


def test_request_detail_shows_request_response_tokens(browser, app_ctx, simulator):
    job = run_until_done(new_job(["How is the weather?"], submit=True).id)
    req, response = db.session.execute(
        select(BatchRequest, BatchResponse).join(BatchRequest.response).where(BatchRequest.job_id == job.id)
    ).one()
    url = f"/jobs/{job.id}/requests/{req.id}"

    fragment = browser.get(url, htmx=True)
    assert fragment.status_code == 200 and "<html" not in fragment.text
    assert "How is the weather?" in fragment.text  # the request, as pretty JSON
    assert "&#34;messages&#34;: [" in fragment.text
    assert response.output_text.replace("'", "&#39;") in fragment.text
    assert f"{response.prompt_tokens} in · {response.completion_tokens} out" in fragment.text

    page = browser.get(url)
    assert "<html" in page.text and "Request <code>req-0</code>" in page.text
    assert browser.get(f"/jobs/{job.id}/requests/{req.id + 999}").status_code == 404


def test_hostile_model_output_is_escaped_everywhere(browser, app_ctx):
    job = new_job([HOSTILE], submit=True)
    req = db.session.scalars(select(BatchRequest).where(BatchRequest.job_id == job.id)).one()
    req.status = RequestStatus.SUCCEEDED
    db.session.add(
        BatchResponse(
            request_id=req.id,
            job_id=job.id,
            succeeded=True,
            status_code=200,
            output_text=HOSTILE,
            body={"choices": [{"message": {"content": HOSTILE}}]},
        )
    )
    db.session.commit()

    for url in (f"/jobs/{job.id}/requests", f"/jobs/{job.id}/requests/{req.id}"):
        text = browser.get(url).text
        assert "<script>alert" not in text and "<img src=x" not in text
        assert "&lt;script&gt;alert(&#39;owned&#39;)&lt;/script&gt;" in text


def make_csv_job(browser, rows, **fields) -> BatchJob:
    page = browser.new_job((csv_file(rows), "reviews.csv"))
    data = {
        **SETTINGS,
        "upload": hidden(page.text, "upload"),
        "filename": "reviews.csv",
        "template": "Classify this review: {{ Text }}",
        **fields,
    }
    assert browser.post("/jobs/new", data).status_code == 302
    return db.session.scalars(select(BatchJob).order_by(BatchJob.id.desc())).first()


def read_csv(response) -> list[list[str]]:
    text = response.get_data(as_text=True)
    assert text.startswith("\ufeff")  # so that Excel reads the file as UTF-8
    return list(csv.reader(io.StringIO(text[1:])))


def test_csv_download_has_the_original_columns_then_the_results(browser, app_ctx, simulator):
    rows = [*REVIEWS, ["r4", '=HYPERLINK("http://evil")', "2"], ["r5", "bad one [[sim:status=400]]", "1"]]
    schema = {"type": "object", "properties": {"sentiment": {"type": "string"}, "score": {"type": "integer"}}}
    job = make_csv_job(browser, rows, id_column="Id", json_schema=json.dumps(schema))
    browser.post(f"/jobs/{job.id}/submit")
    run_until_done(job.id)

    response = browser.get(f"/jobs/{job.id}/results.csv")
    assert response.status_code == 200 and response.is_streamed
    assert response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"] == f'attachment; filename="job-{job.id}-results.csv"'
    header, *data = read_csv(response)
    assert header[:5] == ["Id", "Text", "Stars", "custom_id", "status"]
    assert header[5:] == [
        "output_text",
        "output.sentiment",
        "output.score",
        "error",
        "prompt_tokens",
        "completion_tokens",
        "total_tokens",
    ]
    assert [row[:3] for row in data[:3]] == REVIEWS  # quoted commas, newlines and accents come back intact
    assert data[3][1] == '\'=HYPERLINK("http://evil")'  # a formula is neutralised
    assert [row[4] for row in data] == ["succeeded"] * 4 + ["failed"]
    assert all(json.loads(row[5]) and row[6] for row in data[:4])

    failed = read_csv(browser.get(f"/jobs/{job.id}/results.csv?only=failed"))
    assert [row[0] for row in failed[1:]] == ["r5"]


def test_jsonl_download_is_in_openai_output_format(browser, app_ctx, simulator):
    job = run_until_done(new_job(["fine", "broken [[sim:status=400]]"], submit=True).id)
    response = browser.get(f"/jobs/{job.id}/results.jsonl")
    assert response.status_code == 200 and response.is_streamed
    assert response.headers["Content-Disposition"] == f'attachment; filename="job-{job.id}-results.jsonl"'
    lines = [json.loads(line) for line in response.get_data(as_text=True).splitlines()]
    assert [line["custom_id"] for line in lines] == ["req-0", "req-1"]
    assert lines[0]["response"]["status_code"] == 200 and lines[0]["error"] is None
    assert lines[1]["response"]["status_code"] == 400

    failed = browser.get(f"/jobs/{job.id}/results.jsonl?only=failed").get_data(as_text=True).splitlines()
    assert [json.loads(line)["custom_id"] for line in failed] == ["req-1"]
    assert browser.get(f"/jobs/{job.id}/results.xml").status_code == 404
