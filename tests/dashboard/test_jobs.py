"""The jobs list, the job page with its polling status, and the actions that change a job."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from tests.factories import new_job, run_until_done
from webapp.extensions import db
from webapp.models import BatchJob, JobStatus
from webapp.services import jobs


def badge(text: str) -> list[str]:
    return re.findall(r'<span class="badge status-[a-z_]+">([^<]+)</span>', text)


def test_root_sends_browsers_to_the_jobs_and_scripts_get_json(client):
    browser = client.get("/", headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
    assert browser.status_code == 302 and browser.headers["Location"] == "/jobs"
    for accept in ("application/json", "*/*", None):
        script = client.get("/", headers={"Accept": accept} if accept else {})
        assert script.status_code == 200 and script.json["service"] == "ai-batch-processor"
        assert "Accept" in script.headers["Vary"]


def test_empty_jobs_list_invites_the_first_job(browser):
    page = browser.get("/jobs")
    assert page.status_code == 200
    assert "No jobs yet" in page.text and 'href="/jobs/new"' in page.text


def test_jobs_list_shows_each_job_with_its_numbers(browser, app_ctx, simulator):
    done = run_until_done(new_job(["fine", "broken [[sim:status=400]]"], name="Review sentiment", submit=True).id)
    page = browser.get("/jobs")

    assert page.status_code == 200
    row = re.search(rf'<tr class="job-row" id="job-row-{done.id}".*?</tr>', page.text, re.S).group(0)
    assert "Review sentiment" in row and "completed with errors" in row
    assert '<progress value="2" max="2"' in row
    assert "1 / 1" in row  # succeeded / failed
    assert f"{done.prompt_tokens + done.completion_tokens:,}" in row
    assert "Simulator · gpt-4o-mini" in row
    assert "hx-trigger" not in row  # a finished row does not poll


def test_jobs_list_filters_by_status_and_searches_by_name(browser, app_ctx):
    new_job(name="Alpha reviews", count=1, submit=True)
    new_job(name="Beta tickets", count=1)
    new_job(name="100% _odd_ name", count=1)

    assert names(browser.get("/jobs?q=alpha")) == ["Alpha reviews"]
    assert names(browser.get("/jobs?status=queued")) == ["Alpha reviews"]
    assert names(browser.get("/jobs?status=draft&q=ticket")) == ["Beta tickets"]
    assert names(browser.get("/jobs?q=100%25")) == ["100% _odd_ name"]  # LIKE wildcards are literal
    assert sorted(names(browser.get("/jobs?status=nonsense"))) == ["100% _odd_ name", "Alpha reviews", "Beta tickets"]
    assert "No job matches this search" in browser.get("/jobs?q=zzz").text


def names(response) -> list[str]:
    return re.findall(r'<th scope="row"><a href="/jobs/\d+">([^<]+)</a></th>', response.text.replace("&amp;", "&"))


def test_active_search_gets_the_table_fragment_only(browser, app_ctx):
    new_job(name="Alpha reviews", count=1)
    page = browser.get("/jobs?q=alpha")
    fragment = browser.get("/jobs?q=alpha", htmx=True)

    assert 'hx-trigger="search, keyup delay:200ms changed"' in page.text
    assert "<html" in page.text and "<html" not in fragment.text
    assert "Alpha reviews" in fragment.text and "<table" in fragment.text
    for response in (page, fragment):
        assert "HX-Request" in response.headers["Vary"]
    boosted = browser.client.get("/jobs", headers={"HX-Request": "true", "HX-Boosted": "true"})
    restore = browser.client.get("/jobs", headers={"HX-Request": "true", "HX-History-Restore-Request": "true"})
    assert "<html" in boosted.text and "<html" in restore.text


def test_jobs_list_is_paginated(browser, app_ctx):
    for i in range(23):
        jobs.create_job({"name": f"job {i:02d}", "model": "gpt-4o-mini"})
    first, second = browser.get("/jobs"), browser.get("/jobs?page=2")

    assert len(names(first)) == 20 and len(names(second)) == 3
    assert "Page 1 of 2 (23 jobs)" in first.text and 'href="/jobs?page=2"' in first.text
    assert names(second) == ["job 02", "job 01", "job 00"]  # newest first
    assert browser.get("/jobs?page=abc").status_code == 422  # not a page number: said, not guessed
    assert 'href="/jobs?page=2&amp;q=job"' in browser.get("/jobs?q=job").text  # paging keeps the filters


def test_running_rows_refresh_themselves_until_the_job_ends(browser, app_ctx, simulator):
    job = new_job(count=1, submit=True)
    row = browser.get(f"/jobs/{job.id}/row", htmx=True)
    assert row.status_code == 200 and row.text.lstrip().startswith("<tr")
    assert f'hx-get="/jobs/{job.id}/row" hx-trigger="every 3s"' in row.text
    assert f'hx-get="/jobs/{job.id}/row"' in browser.get("/jobs").text

    run_until_done(job.id)
    ended = browser.get(f"/jobs/{job.id}/row", htmx=True)
    assert ended.status_code == 286 and "hx-trigger" not in ended.text and "completed" in ended.text
    assert "HX-Request" in ended.headers["Vary"]
    assert browser.get(f"/jobs/{job.id}/row").headers["Location"] == f"/jobs/{job.id}"


def test_draft_page_offers_submit_and_delete_only(browser, app_ctx):
    job = new_job(count=2, name="Draft one", max_tokens=50)
    page = browser.get(f"/jobs/{job.id}")

    assert page.status_code == 200
    assert "Draft: ready to submit" in page.text
    assert "Submit 2 request(s)" in page.text and "Delete this job" in page.text
    assert "Cancel job" not in page.text and "Retry" not in page.text
    assert "hx-trigger" not in page.text  # nothing to watch yet
    assert "Estimated cost" in page.text and "$0.0000" in page.text
    assert "Requests and results" in page.text


def test_status_block_polls_while_the_job_runs_and_stops_with_286(browser, app_ctx, simulator):
    job = new_job(count=2, submit=True)
    page = browser.get(f"/jobs/{job.id}")
    assert f'hx-get="/jobs/{job.id}" hx-trigger="every 2s" hx-swap="outerHTML"' in page.text
    assert "Cancel job" in page.text and "Delete this job" not in page.text

    running = browser.get(f"/jobs/{job.id}", htmx=True)
    assert running.status_code == 200
    assert running.text.lstrip().startswith('<section id="job-status"') and "<html" not in running.text
    assert "HX-Request" in running.headers["Vary"]

    run_until_done(job.id)
    ended = browser.get(f"/jobs/{job.id}", htmx=True)
    assert ended.status_code == 286
    assert "hx-trigger" not in ended.text
    assert "completed" in badge(ended.text)
    assert "Delete this job" in ended.text  # the actions of a finished job arrive with the last poll


def test_finished_job_page_shows_costs_batches_timeline_and_downloads(browser, app_ctx, simulator):
    job = run_until_done(new_job(["fine", "broken [[sim:status=400]]"], submit=True).id)
    page = browser.get(f"/jobs/{job.id}")
    text = page.text

    assert "Completed with errors" in text
    assert "Retry 1 failed request(s)" in text and "Cancel job" not in text
    assert "Estimated cost" in text and "Actual cost" in text and "Took" in text
    assert "Provider batches" in text and job.batches[0].provider_batch_id in text
    assert "Timeline" in text and "Submitted 2 request(s)" in text
    for href in (
        f"/jobs/{job.id}/results.csv",
        f"/jobs/{job.id}/results.jsonl",
        f"/jobs/{job.id}/results.csv?only=failed",
        f"/jobs/{job.id}/results.jsonl?only=failed",
    ):
        assert f'href="{href}"' in text


def test_submit_stores_nothing_new_and_queues_the_job(browser, app_ctx):
    job = new_job(count=2)
    response = browser.post(f"/jobs/{job.id}/submit")
    assert response.status_code == 302 and response.headers["Location"] == f"/jobs/{job.id}"
    db.session.expire_all()
    assert job.status == JobStatus.QUEUED
    assert "Submitted: the requests are on their way" in browser.get(f"/jobs/{job.id}").text


def test_cancel_asks_the_engine_to_stop_the_job(browser, app_ctx):
    job = new_job(count=2, submit=True)
    browser.post(f"/jobs/{job.id}/cancel")
    db.session.expire_all()
    assert job.status == JobStatus.CANCELLING
    assert "Cancellation requested" in browser.get(f"/jobs/{job.id}").text


def test_retry_sends_the_failed_requests_again(browser, app_ctx, simulator):
    job = run_until_done(new_job(["fine", "broken [[sim:status=400]]"], submit=True).id)
    browser.post(f"/jobs/{job.id}/retry")
    db.session.expire_all()
    assert job.status == JobStatus.QUEUED and job.pending_requests == 1
    assert "The failed requests are being sent again" in browser.get(f"/jobs/{job.id}").text


def test_delete_removes_the_job_and_returns_to_the_list(browser, app_ctx):
    job = new_job(count=2, name="Old job")
    response = browser.post(f"/jobs/{job.id}/delete")
    assert response.status_code == 302 and response.headers["Location"] == "/jobs"
    db.session.expire_all()
    deleted = db.session.get(BatchJob, job.id)
    assert deleted.deleted_at is not None and deleted.events[-1].kind == "deleted"  # kept for the audit trail
    assert deleted.events[-1].actor == "admin@example.com"
    page = browser.get("/jobs").text
    assert "Deleted the job “Old job”" in page and f'/jobs/{job.id}"' not in page
    assert browser.get(f"/jobs/{job.id}").status_code == 404


@pytest.mark.parametrize(
    "action, submit, message",
    [
        ("cancel", False, "Could not cancel the job: a draft job cannot be cancelled"),
        ("submit", True, "Could not submit the job: cannot submit a job that is queued"),
        ("retry", False, "Could not retry the job: only a finished job can be retried"),
        ("delete", True, "Could not delete the job: a queued job cannot be deleted; cancel it first"),
    ],
)
def test_an_action_that_does_not_apply_is_refused_with_a_message(browser, app_ctx, action, submit, message):
    job = new_job(count=1, submit=submit)
    status = job.status
    response = browser.post(f"/jobs/{job.id}/{action}")
    assert response.status_code == 302 and response.headers["Location"] == f"/jobs/{job.id}"
    assert message in browser.get(f"/jobs/{job.id}").text
    db.session.expire_all()
    assert db.session.scalar(select(BatchJob.status).where(BatchJob.id == job.id)) == status


def test_unknown_job_is_a_404_page_in_the_layout(browser):
    page = browser.get("/jobs/999999")
    assert page.status_code == 404
    assert "Page not found" in page.text and "AI Batch Processor" in page.text and 'href="/jobs/new"' in page.text
    assert browser.post("/jobs/999999/submit").status_code == 404
    assert browser.get("/jobs/999999/requests").status_code == 404


def test_unexpected_error_is_a_500_page_in_the_layout(browser, monkeypatch):
    from webapp.services import queries

    def broken(**_):
        raise RuntimeError("database on fire")

    monkeypatch.setattr(queries, "overview", broken)
    page = browser.get("/overview")
    assert page.status_code == 500
    assert "Something went wrong" in page.text and "database on fire" not in page.text
    assert 'href="/jobs"' in page.text


def test_a_post_without_the_csrf_token_is_refused(csrf_on, client, app_ctx):
    job = new_job(count=1)
    response = client.post(f"/jobs/{job.id}/submit")
    assert response.status_code == 400
    assert "This form has expired or did not come from this site" in response.text
    db.session.expire_all()
    assert job.status == JobStatus.DRAFT


def test_htmx_requests_carry_the_csrf_token_in_a_header(csrf_on, browser, app_ctx):
    page = browser.get("/jobs")
    token = re.search(r'<body hx-headers=\'\{"X-CSRFToken": "([^"]+)"\}\'>', page.text).group(1)
    without = browser.client.post("/jobs/new/preview", data={"upload": "0" * 32}, headers={"HX-Request": "true"})
    with_header = browser.client.post(
        "/jobs/new/preview", data={"upload": "0" * 32}, headers={"HX-Request": "true", "X-CSRFToken": token}
    )
    assert without.status_code == 400
    assert with_header.status_code == 200 and "expired" in with_header.text


def test_layout_shows_the_provider_and_loads_no_inline_script(browser):
    page = browser.get("/jobs").text
    assert "Provider: Simulator (built-in, no real model calls)" in page
    assert "provider-simulator" in page
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", page, re.S)
    assert scripts and all('src="/static/' in attrs and not body.strip() for attrs, body in scripts)
    assert not re.search(r"\son[a-z]+=|hx-on|javascript:", page)
    assert "/static/vendor/htmx-2.0.11/htmx.min.js" in page and "/static/vendor/pico-2.1.1/pico.min.css" in page
    for asset in (
        "vendor/htmx-2.0.11/htmx.min.js",
        "vendor/pico-2.1.1/pico.min.css",
        "css/dashboard.css",
        "js/dashboard.js",
    ):
        assert browser.get(f"/static/{asset}").status_code == 200


def test_overview_draws_the_statistics_with_their_numbers(browser, app_ctx, simulator):
    run_until_done(new_job(["fine", "broken [[sim:status=400]]"], submit=True).id)
    new_job(count=1, model="gpt-4o", name="draft")
    page = browser.get("/overview")

    assert page.status_code == 200
    text = page.text
    assert "Jobs by status" in text and "<svg" in text
    assert "50.0%" in text  # one of the two finished requests succeeded
    assert "gpt-4o-mini" in text and "gpt-4o" in text
    assert "Tokens per day" in text and "Cost per day" in text
    assert re.search(r'<th scope="row">completed with errors</th>.*?<td class="num">1</td>', text, re.S)
