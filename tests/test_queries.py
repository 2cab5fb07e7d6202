"""Read models: job lists, key-paged requests, statistics and the phase shown to people."""

from __future__ import annotations

from tests.factories import new_job, run_until_done, set_states
from webapp.extensions import db
from webapp.models import BatchStatus, JobStatus, ProviderBatch, request_states
from webapp.services import queries, sync


def test_jobs_are_listed_newest_first_with_filters(app_ctx):
    first = new_job([], name="Alpha reviews")
    second = new_job([], name="Beta tickets")
    third = new_job([], name="alpha 100% done")
    page = queries.list_jobs(per_page=2)
    assert [j.id for j in page.items] == [third.id, second.id] and page.has_next
    assert {j.id for j in queries.list_jobs(search="ALPHA").items} == {first.id, third.id}
    assert [j.id for j in queries.list_jobs(search="100%").items] == [third.id]
    assert queries.list_jobs(status=JobStatus.RUNNING).items == []


def test_requests_are_paged_by_key(app_ctx):
    job = new_job(count=7)
    first = queries.list_requests(job.id, limit=3)
    assert [r.custom_id for r, _ in first.items] == ["req-0", "req-1", "req-2"]
    second = queries.list_requests(job.id, limit=3, after=first.next_after)
    third = queries.list_requests(job.id, limit=3, after=second.next_after)
    assert [r.custom_id for r, _ in third.items] == ["req-6"] and third.next_after is None
    assert [r.custom_id for r, _ in queries.list_requests(job.id, search="req-5").items] == ["req-5"]
    assert queries.list_requests(job.id, status="succeeded").items == []


def test_request_pages_hold_only_the_jobs_rows_of_the_asked_status(app_ctx):
    """The key range is written as row comparisons: neighbouring jobs and statuses must stay out of it."""
    before, job, after = new_job(count=4), new_job(count=9), new_job(count=4)
    ids = [r.id for r, _ in queries.list_requests(job.id, limit=50).items]
    set_states(request_states.c.request_id.in_(ids[::3]), status="failed")
    set_states(request_states.c.job_id.in_([before.id, after.id]), status="failed")
    seen, cursor = [], None
    while True:
        page = queries.list_requests(job.id, status="failed", limit=2, after=cursor)
        seen += [r.id for r, _ in page.items]
        if page.next_after is None:
            break
        cursor = page.next_after
    assert seen == ids[::3]
    pending = [r.id for r, _ in queries.list_requests(job.id, status="pending", limit=50).items]
    assert pending == [i for i in ids if i not in ids[::3]]
    assert [r.id for r, _ in queries.list_requests(job.id, limit=50, after=ids[-2]).items] == ids[-1:]


def test_responses_filter_by_success(app_ctx, simulator):
    job = run_until_done(new_job(["ok", "bad [[sim:status=400]]"], submit=True).id)
    good = queries.list_responses(job.id, succeeded=True)
    bad = queries.list_responses(job.id, succeeded=False)
    assert [cid for _, cid in good.items] == ["req-0"]
    assert [cid for _, cid in bad.items] == ["req-1"]
    assert queries.list_events(job.id).items[0].kind == "created"


def test_overview_counts_jobs_requests_tokens_and_cost(app_ctx, simulator):
    run_until_done(new_job(["ok", "bad [[sim:status=400]]"], submit=True).id)
    new_job([])
    stats = queries.overview()
    assert stats["jobs_by_status"]["completed_with_errors"] >= 1 and stats["jobs_by_status"]["draft"] >= 1
    assert stats["requests"]["succeeded"] >= 1 and 0 < stats["requests"]["success_rate"] < 1
    model = next(row for row in stats["by_model"] if row["key"] == "gpt-4o-mini")
    assert model["prompt_tokens"] > 0 and model["cost"] > 0
    assert len(stats["by_day"]) >= 1


def test_phase_in_words_follows_the_batches(app_ctx, simulator):
    job = new_job(count=2)
    assert queries.job_phase(job) == "Draft: ready to submit"
    from webapp.services import jobs

    jobs.submit_job(job)
    assert queries.job_phase(job) == "Preparing provider batches"
    sync.sync_all()
    db.session.expire_all()
    assert queries.job_phase(job).startswith(("Validating", "Running", "Finalizing", "Downloading"))
    assert queries.time_left(job).total_seconds() > 23 * 3600
    batch = db.session.get(ProviderBatch, job.batches[0].id)
    batch.status = BatchStatus.WAITING
    assert queries.job_phase(job).startswith("Waiting for capacity")
    db.session.rollback()
    assert queries.job_phase(run_until_done(job.id)) == "Completed"
