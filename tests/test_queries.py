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
    assert queries.job_timing(job).time_left().total_seconds() > 23 * 3600
    batch = db.session.get(ProviderBatch, job.batches[0].id)
    batch.status = BatchStatus.WAITING
    assert queries.job_phase(job).startswith("Waiting for capacity")
    db.session.rollback()
    assert queries.job_phase(run_until_done(job.id)) == "Completed"


def running_job(*batches: dict, count: int = 10):
    """A submitted job whose requests are in flight in provider batches made of ``batches``' columns."""
    from datetime import UTC, datetime, timedelta

    job = new_job(count=count, submit=True)
    now = datetime.now(UTC)
    for values in batches:
        started = values.pop("started_ago", None)
        db.session.add(
            ProviderBatch(
                job_id=job.id,
                model=job.model,
                endpoint=job.endpoint,
                in_progress_at=now - timedelta(seconds=started) if started is not None else None,
                expires_at=now + timedelta(hours=23),
                **values,
            )
        )
    db.session.flush()
    set_states(request_states.c.job_id == job.id, status="in_flight")
    from webapp.services.ledger import recount

    recount(job)
    db.session.commit()
    return job, now


def test_the_provider_reported_answers_move_the_progress_before_any_result_is_stored(app_ctx):
    job, _ = running_job(
        {"status": BatchStatus.IN_PROGRESS, "counts_total": 6, "counts_completed": 4, "counts_failed": 1},
        {"status": BatchStatus.VALIDATING, "counts_total": 4},
    )
    other, _ = running_job({"status": BatchStatus.IN_PROGRESS, "counts_total": 10, "counts_completed": 7})
    assert queries.answered_at_provider([job.id, other.id]) == {job.id: 5, other.id: 7}
    assert (job.finished_requests, job.answered(5), job.answered_share(5)) == (0, 5, 0.5)
    assert job.answered(500) == job.in_flight_requests == 10  # never more than is in flight
    assert queries.answered_at_provider([]) == {}


def test_expected_finish_follows_the_pace_so_far_and_never_passes_the_deadline(app_ctx):
    job, now = running_job(
        {"status": BatchStatus.IN_PROGRESS, "counts_total": 8, "counts_completed": 2, "started_ago": 60},
        {"status": BatchStatus.IN_PROGRESS, "counts_total": 2, "counts_completed": 1, "started_ago": 30},
    )
    timing = queries.job_timing(job, now=now)
    assert (timing.expected - now).total_seconds() == 180  # 2 of 8 in 60 s: 6 more take 180 s
    assert timing.deadline == max(b.expires_at for b in job.batches)
    slow, now = running_job(
        {"status": BatchStatus.IN_PROGRESS, "counts_total": 1000, "counts_completed": 1, "started_ago": 3600}
    )
    assert queries.job_timing(slow, now=now).expected == queries.job_timing(slow, now=now).deadline


def test_expected_finish_is_unknown_until_every_batch_has_answered_some(app_ctx):
    job, now = running_job(
        {"status": BatchStatus.IN_PROGRESS, "counts_total": 8, "counts_completed": 2, "started_ago": 60},
        {"status": BatchStatus.IN_PROGRESS, "counts_total": 2, "started_ago": 30},
    )
    assert queries.job_timing(job, now=now).expected is None and queries.job_timing(job, now=now).deadline
    waiting, now = running_job(
        {"status": BatchStatus.IN_PROGRESS, "counts_total": 8, "counts_completed": 2, "started_ago": 60},
        {"status": BatchStatus.WAITING},
    )
    assert queries.job_timing(waiting, now=now).expected is None  # a batch not sent yet: no pace for it
    assert queries.job_timing(new_job(count=1)) == queries.Timing(None, None)


def test_why_requests_failed_is_kept_with_the_event_that_ended_the_job(app_ctx, simulator, monkeypatch):
    texts = ["ok", "gone [[sim:error=server_error]]", "bad [[sim:status=400]]", "worse [[sim:status=400]]"]
    job = run_until_done(new_job(texts, submit=True, max_retries=0).id)
    ended = job.events[-1]
    assert ended.data == {"errors": [["invalid_request_error", 2], ["server_error", 1]]}
    assert job.last_error == "errors: invalid_request_error ×2, server_error ×1"

    def counted_again(*_, **__):
        raise AssertionError("the breakdown was counted again")

    with monkeypatch.context() as patched:
        patched.setattr(queries, "error_counts", counted_again)
        assert queries.failure_breakdown(job) == [("invalid_request_error", 2), ("server_error", 1)]
    ended.data = None  # a job that ended before the events kept it
    db.session.flush()
    assert queries.failure_breakdown(job) == [("invalid_request_error", 2), ("server_error", 1)]
