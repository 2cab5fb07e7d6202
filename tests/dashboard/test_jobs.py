"""The jobs list, the job page with its polling status, and the actions that change a job."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select, update

from tests.factories import new_job, run_until_done
from webapp.extensions import db
from webapp.models import BatchJob, BatchRequest, JobStatus, request_states
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
    assert 'gpt-4o-mini<br><small class="muted">Simulator</small>' in row
    assert re.search(r'<td class="nowrap"><time datetime="[^"]+" title="[^"]+ UTC">\d+ \w{3} \d\d:\d\d</time>', row)
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
    assert "Submit 2 requests" in page.text and "Delete this job" in page.text
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
    assert "Retry 1 failed request<" in text and "Cancel job" not in text
    assert "Estimated cost" in text and "Cost at list prices" in text and "Took" in text
    assert "the simulator charges nothing" in text
    assert "Provider batches" in text and job.batches[0].provider_batch_id in text
    assert "Timeline" in text and "Submitted 2 requests" in text
    for href in (
        f"/jobs/{job.id}/results.csv",
        f"/jobs/{job.id}/results.jsonl",
        f"/jobs/{job.id}/results.csv?only=failed",
        f"/jobs/{job.id}/results.jsonl?only=failed",
        f"/jobs/{job.id}/results.xlsx",
        f"/jobs/{job.id}/results.xlsx?only=failed",
    ):
        assert f'href="{href}"' in text
    download = browser.get(f"/jobs/{job.id}/results.xlsx")
    assert download.mimetype == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    assert download.headers["Content-Disposition"] == f'attachment; filename="job-{job.id}-results.xlsx"'
    assert download.data.startswith(b"PK\x03\x04")


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
    assert "Cancelling: running batches are being stopped" in browser.get(f"/jobs/{job.id}").text


def test_retry_sends_the_failed_requests_again(browser, app_ctx, simulator):
    job = run_until_done(new_job(["fine", "broken [[sim:status=400]]"], submit=True).id)
    browser.post(f"/jobs/{job.id}/retry")
    db.session.expire_all()
    assert job.status == JobStatus.QUEUED and job.pending_requests == 1
    assert "Sending 1 failed request again." in browser.get(f"/jobs/{job.id}").text


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
        ("retry", False, "Could not send the failed requests again: only a finished job&#39;s requests can be sent"),
        ("resend", False, "Could not send the cancelled requests again: only a finished job&#39;s requests can be"),
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
    assert (
        '<span class="provider-prefix">Provider: </span>Simulator'
        '<span class="provider-note"> (built-in, no real model calls)</span>' in page
    )
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


def test_a_cancelled_job_counts_cancelled_requests_and_offers_to_send_them_again(browser, app_ctx, simulator):
    job = new_job(count=3, submit=True, name="Stopped")
    jobs.cancel_job(job)
    job = run_until_done(job.id)
    text = browser.get(f"/jobs/{job.id}").text

    assert re.search(r'stat-label">Cancelled</span>\s*<span class="stat-value">3</span>', text)
    assert re.search(r'stat-label">Failed</span>\s*<span class="stat-value">0</span>', text)
    assert "Send the 3 cancelled requests again" in text and "Retry" not in text
    assert "0 of 3 requests answered, 3 cancelled before they ran." in text
    assert "Why" not in text  # a cancel is no failure to explain

    browser.post(f"/jobs/{job.id}/resend")
    db.session.expire_all()
    assert (job.status, job.pending_requests, job.cancelled_requests) == (JobStatus.QUEUED, 3, 0)
    page = browser.get(f"/jobs/{job.id}").text
    assert "Sending 3 cancelled requests again." in page
    assert "Sending 3 cancelled requests again" in re.search(r'<ol class="timeline">.*?</ol>', page, re.S).group(0)


def test_cancelling_asks_first_and_says_what_happens_to_the_requests(browser, app_ctx):
    job = new_job(count=4, submit=True, name="Long one")
    form = re.search(
        r'<form method="post" action="/jobs/\d+/cancel"\s+data-confirm="([^"]+)">', browser.get(f"/jobs/{job.id}").text
    )
    question = form.group(1).replace("&#34;", '"')
    assert question.startswith("Cancel the job “Long one”?")
    assert "up to 4 requests) will be cancelled" in question and "Results already in are kept" in question


def test_failures_are_explained_with_what_to_do_and_the_code_one_click_away(browser, app_ctx, simulator):
    texts = ["fine", "gone [[sim:error=server_error]]", "again [[sim:error=server_error]]", "bad [[sim:status=400]]"]
    job = run_until_done(new_job(texts, submit=True, max_retries=0).id)
    text = browser.get(f"/jobs/{job.id}").text
    failures = re.search(r'<section class="failures".*?</section>', text, re.S).group(0)

    assert "Why 3 requests failed" in failures
    temporary, permanent = failures.split("<li>")[1:3]
    assert "2 requests" in temporary and "The provider&#39;s servers had an internal error." in temporary
    assert '<span class="tag">temporary</span>' in temporary and "press “Retry failed”" in temporary
    assert "<summary>Technical detail</summary>" in temporary and "<code>server_error</code>" in temporary
    assert "1 request" in permanent and "The provider found the request malformed." in permanent
    assert '<span class="tag">permanent</span>' in permanent
    assert "server_error ×" not in text  # the summary in code words is the API's, not the page's


def test_the_request_page_explains_its_error_and_shows_the_json_on_many_lines(browser, app_ctx, simulator):
    job = run_until_done(new_job(["gone [[sim:error=server_error]]"], submit=True, max_retries=0).id)
    request_id = db.session.scalar(select(BatchRequest.id).where(BatchRequest.job_id == job.id))
    text = browser.get(f"/jobs/{job.id}/requests/{request_id}").text

    assert "Why it failed" in text and "The provider&#39;s servers had an internal error." in text
    assert "temporary" in text and "<code>server_error</code>" in text
    assert '<pre class="json"><code>{\n  &#34;model&#34;' in text  # indented, one key a line
    listed = browser.get(f"/jobs/{job.id}/requests").text
    assert "The provider&#39;s servers had an internal error." in listed


def test_the_job_page_shows_what_was_asked(browser, app_ctx, tmp_path):
    from tests.test_uploads import csv_file
    from webapp.intake import imports
    from webapp.intake.mapping import Mapping

    job = new_job([], name="Recipe", max_tokens=50, temperature=0.2)
    schema = {"type": "object", "properties": {"sentiment": {"type": "string"}, "reason": {"type": "string"}}}
    mapping = Mapping("Classify: {{ Text }}", "You are terse.", "Id", schema)
    imports.import_table(job, csv_file(tmp_path), mapping, filename="reviews.csv")
    text = browser.get(f"/jobs/{job.id}").text
    recipe = re.search(r'<section class="recipe".*?</section>', text, re.S).group(0)

    assert "What was asked" in recipe and "<code>gpt-4o-mini</code>" in recipe
    assert "<dd>50</dd>" in recipe and "<dd>0.2</dd>" in recipe
    assert "one per row of reviews.csv (UTF-8), named by the column Id" in recipe
    assert '<pre class="output">Classify: {{ Text }}</pre>' in recipe
    assert '<pre class="output">You are terse.</pre>' in recipe
    assert recipe.index("&#34;sentiment&#34;") < recipe.index("&#34;reason&#34;")  # the user's order


def test_the_last_poll_of_a_job_clears_the_flash_of_the_action_that_started_it(browser, app_ctx, simulator):
    job = new_job(count=1)
    browser.post(f"/jobs/{job.id}/submit")
    page = browser.get(f"/jobs/{job.id}").text
    assert '<div id="flashes" class="flashes">' in page and "Submitted:" in page

    running = browser.get(f"/jobs/{job.id}", htmx=True).text
    assert 'hx-swap-oob="true"></div>' not in running  # still running: the message still holds
    assert '<section id="job-activity" class="job-activity" hx-swap-oob="true">' in running
    run_until_done(job.id)
    ended = browser.get(f"/jobs/{job.id}", htmx=True).text
    assert '<div id="flashes" class="flashes" hx-swap-oob="true"></div>' in ended
    assert "hx-swap-oob" not in browser.get(f"/jobs/{job.id}").text  # a whole page has nothing out of band


def test_a_running_job_shows_the_providers_progress_and_its_expected_finish(browser, app_ctx):
    from datetime import UTC, datetime, timedelta

    from webapp.models import BatchStatus, ProviderBatch
    from webapp.services.ledger import recount

    job = new_job(count=10, submit=True, name="Counting")
    now = datetime.now(UTC)
    batch = ProviderBatch(
        job_id=job.id,
        model=job.model,
        endpoint=job.endpoint,
        status=BatchStatus.IN_PROGRESS,
        counts_total=10,
        counts_completed=6,
        counts_failed=2,
        in_progress_at=now - timedelta(minutes=8),
        expires_at=now + timedelta(hours=23, minutes=52),
    )
    db.session.add(batch)
    db.session.flush()
    db.session.execute(
        update(request_states)
        .where(request_states.c.job_id == job.id)
        .values(status="in_flight", provider_batch_id=batch.id)
    )
    recount(job)
    db.session.commit()

    text = browser.get(f"/jobs/{job.id}").text
    assert '<progress value="8" max="10"' in text and "<small>80%</small>" in text
    assert "8 of 10 requests answered (8 reported done by the provider" in text
    assert "2 being run by the provider" in text
    assert "The simulator answers with made-up text: each batch spends about 0.3 s there" in text
    expected = text.index("Expected finish")
    assert expected < text.index("Deadline") and "at the pace so far" in text
    row = browser.get(f"/jobs/{job.id}/row", htmx=True).text
    assert '<progress value="8" max="10"' in row
