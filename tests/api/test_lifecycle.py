"""State actions through the API (submit, cancel, retry) and their 409s; jobs run to completion on the simulator."""

from __future__ import annotations

import csv
import io
import json

import openpyxl

from tests.api.helpers import API, error_of
from tests.factories import run_until_done


def run(api, job_id: int) -> dict:
    run_until_done(job_id)
    return api.get(f"/jobs/{job_id}").get_json()


def test_submit_runs_the_job_and_results_can_be_read(api, simulator):
    job = api.job_with_requests(texts=["good", "bad [[sim:status=400]]", "fine"], max_retries=0)
    submitted = api.post(f"/jobs/{job['id']}/submit", 200).get_json()
    assert submitted["status"] == "queued" and submitted["submitted_at"]
    assert submitted["cost"]["estimated"] is not None
    done = run(api, job["id"])
    assert done["status"] == "completed_with_errors" and done["phase"] == "Completed with errors"
    assert done["counts"] == {
        "total": 3,
        "pending": 0,
        "in_flight": 0,
        "succeeded": 2,
        "failed": 1,
        "cancelled": 0,
        "finished": 3,
        "answered_at_provider": 0,
    }
    assert done["progress"] == 1 and done["tokens"]["prompt"] > 0
    assert done["completed_at"] and float(done["cost"]["actual"]) > 0
    batch = done["batches"][0]
    assert batch["status"] == "completed" and batch["provider_batch_id"]
    assert batch["counts"] == {"total": 3, "completed": 2, "failed": 1}
    assert batch["created_at"] and batch["completed_at"] and batch["ingested_at"]

    requests = api.get(f"/jobs/{job['id']}/requests").get_json()["data"]
    assert [r["status"] for r in requests] == ["succeeded", "failed", "succeeded"]
    assert requests[0]["response"]["output_text"] and requests[0]["response"]["usage"]["total_tokens"] > 0
    failures = api.get(f"/jobs/{job['id']}/responses?succeeded=false").get_json()["data"]
    assert [(r["custom_id"], r["status_code"]) for r in failures] == [("req-1", 400)]
    successes = api.get(f"/jobs/{job['id']}/responses?succeeded=true&limit=1").get_json()
    assert successes["data"][0]["custom_id"] in ("req-0", "req-2") and "succeeded=true" in successes["next"]

    stats = api.get("/jobs/stats/overview").get_json()
    assert stats["requests"]["success_rate"] == round(2 / 3, 4)


def test_results_stream_as_jsonl_and_csv_with_a_filename(api, simulator):
    job = api.job_with_requests(texts=["good", "bad [[sim:status=400]]"], max_retries=0)
    api.post(f"/jobs/{job['id']}/submit", 200)
    run(api, job["id"])
    response = api.get(f"/jobs/{job['id']}/results")
    assert response.mimetype == "application/x-ndjson"
    assert response.headers["Content-Disposition"] == f'attachment; filename="job-{job["id"]}-results.jsonl"'
    lines = [json.loads(line) for line in response.get_data(as_text=True).splitlines()]
    assert [(line["custom_id"], line["response"]["status_code"]) for line in lines] == [("req-0", 200), ("req-1", 400)]
    failed = api.get(f"/jobs/{job['id']}/results?format=csv&failed_only=true")
    assert failed.mimetype == "text/csv"
    assert failed.headers["Content-Disposition"].endswith('-results-failed.csv"')
    rows = list(csv.DictReader(io.StringIO(failed.get_data(as_text=True))))
    assert [(r["custom_id"], r["status"]) for r in rows] == [("req-1", "failed")]
    assert error_of(api.get(f"/jobs/{job['id']}/results?format=xml", 422))["details"][0]["field"] == "format"
    book = api.get(f"/jobs/{job['id']}/results?format=xlsx")
    assert book.mimetype == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    assert book.headers["Content-Disposition"] == f'attachment; filename="job-{job["id"]}-results.xlsx"'
    sheet = openpyxl.load_workbook(io.BytesIO(book.data), read_only=True).worksheets[0]
    rows = [list(row) for row in sheet.iter_rows(values_only=True)]
    assert [(row[0], row[1]) for row in rows[1:]] == [("req-0", "succeeded"), ("req-1", "failed")]
    assert isinstance(rows[1][-1], int)  # tokens as numbers


def test_submit_needs_a_draft_with_requests(api):
    empty = api.create_job()
    assert error_of(api.post(f"/jobs/{empty['id']}/submit", 409))["message"] == (
        "the job has no requests; add some before submitting"
    )
    job = api.job_with_requests(1)
    api.post(f"/jobs/{job['id']}/submit", 200)
    assert "only drafts can" in error_of(api.post(f"/jobs/{job['id']}/submit", 409))["message"]
    api.post("/jobs/123456/submit", 404)


def test_cancel_a_queued_job_and_not_twice(api, simulator):
    job = api.job_with_requests(2)
    assert error_of(api.post(f"/jobs/{job['id']}/cancel", 409))["message"] == "a draft job cannot be cancelled"
    api.post(f"/jobs/{job['id']}/submit", 200)
    cancelling = api.post(f"/jobs/{job['id']}/cancel", 200).get_json()
    assert cancelling["status"] == "cancelling"
    assert api.post(f"/jobs/{job['id']}/cancel", 409)
    assert run(api, job["id"])["status"] == "cancelled"
    kinds = [e["kind"] for e in api.get(f"/jobs/{job['id']}/events").get_json()["data"]]
    assert "cancel_requested" in kinds and "cancelled" in kinds
    api.delete(f"/jobs/{job['id']}", 204)


def test_retry_sends_failed_requests_again(api, simulator):
    job = api.job_with_requests(texts=["ok", "no [[sim:status=400]]"], max_retries=0)
    assert "only a finished job" in error_of(api.post(f"/jobs/{job['id']}/retry", 409))["message"]
    api.post(f"/jobs/{job['id']}/submit", 200)
    run(api, job["id"])
    retried = api.post(f"/jobs/{job['id']}/retry", 200).get_json()
    assert retried["retried"] == 1 and retried["job"]["status"] == "queued"
    done = run(api, job["id"])
    assert done["status"] == "completed_with_errors"
    assert api.get(f"/jobs/{job['id']}/requests?status=failed").get_json()["data"][0]["retry_count"] == 1
    events = api.get(f"/jobs/{job['id']}/events?limit=500").get_json()["data"]
    assert ("retried", "admin@example.com (api)") in [(e["kind"], e["actor"]) for e in events]


def test_retry_without_failures_is_409(api, simulator):
    job = api.job_with_requests(1)
    api.post(f"/jobs/{job['id']}/submit", 200)
    assert run(api, job["id"])["status"] == "completed"
    assert (
        error_of(api.post(f"/jobs/{job['id']}/retry", 409))["message"] == "the job has no failed requests to send again"
    )
    assert api.get(f"/jobs/{job['id']}").get_json()["links"]["results"] == f"{API}/jobs/{job['id']}/results"


def test_a_cancelled_job_says_cancelled_and_sends_them_again_on_its_own_endpoint(api, simulator):
    job = api.job_with_requests(2)
    api.post(f"/jobs/{job['id']}/submit", 200)
    api.post(f"/jobs/{job['id']}/cancel", 200)
    done = run(api, job["id"])
    assert done["status"] == "cancelled" and done["last_error"] is None
    assert (done["counts"]["cancelled"], done["counts"]["failed"], done["counts"]["finished"]) == (2, 0, 0)
    requests = api.get(f"/jobs/{job['id']}/requests?status=cancelled").get_json()["data"]
    assert [(r["status"], r["error_code"]) for r in requests] == [("cancelled", "cancelled")] * 2
    assert (
        error_of(api.post(f"/jobs/{job['id']}/retry", 409))["message"] == "the job has no failed requests to send again"
    )

    resent = api.post(f"/jobs/{job['id']}/resend-cancelled", 200).get_json()
    assert resent["resent"] == 2 and resent["job"]["status"] == "queued"
    assert resent["job"]["counts"]["pending"] == 2 and resent["job"]["counts"]["cancelled"] == 0
    assert run(api, job["id"])["status"] == "completed"
    assert "no cancelled requests" in error_of(api.post(f"/jobs/{job['id']}/resend-cancelled", 409))["message"]
    events = api.get(f"/jobs/{job['id']}/events?limit=500").get_json()["data"]
    assert ("resent", "Sending 2 cancelled requests again") in [(e["kind"], e["message"]) for e in events]
    api.post("/jobs/123456/resend-cancelled", 404)


def test_the_job_object_shows_what_was_asked(api):
    job = api.job_with_requests(1, max_tokens=64, temperature=0.5)
    recipe = api.get(f"/jobs/{job['id']}").get_json()["recipe"]
    assert recipe == {
        "model": "gpt-4o-mini",
        "endpoint": "/v1/chat/completions",
        "max_tokens": 64,
        "temperature": 0.5,
        "max_retries": 3,
        "source_format": "api",
        "filename": None,
        "sheet": None,
        "prompt_template": None,
        "system_prompt": None,
        "id_column": None,
        "json_schema": None,
    }
    csv_job = api.create_job(name="csv")
    schema = '{"type": "object", "properties": {"b": {"type": "string"}, "a": {"type": "integer"}}}'
    api.post(
        f"/jobs/{csv_job['id']}/files",
        201,
        data={
            "file": (io.BytesIO(b"review_id,review\n1,great\n"), "reviews.csv"),
            "template": "Rate: {{ review }}",
            "system_prompt": "Be brief.",
            "id_column": "review_id",
            "json_schema": schema,
        },
        content_type="multipart/form-data",
    )
    shown = api.get(f"/jobs/{csv_job['id']}").get_json()["recipe"]
    assert (shown["source_format"], shown["filename"], shown["id_column"]) == ("csv", "reviews.csv", "review_id")
    assert (shown["prompt_template"], shown["system_prompt"]) == ("Rate: {{ review }}", "Be brief.")
    assert list(shown["json_schema"]["properties"]) == ["b", "a"]  # in the user's order
