"""Job endpoints: create, list, show, change, delete, the state actions and the statistics."""

from typing import Any

from flask import url_for

from webapp.api.auth import creator_id, current_actor, load_job, owner_id
from webapp.api.blueprint import JOBS, bp
from webapp.api.http import respond
from webapp.api.schemas import JobCreate, JobPath, JobsQuery, JobUpdate, OverviewQuery
from webapp.api.serialisers import (
    JobDetail,
    JobList,
    OverviewOut,
    ResendOut,
    RetryOut,
    error_responses,
    job_detail,
    job_list,
)
from webapp.services import jobs, queries

BODY_ERRORS = error_responses(400, 413, 415)


@bp.post("/jobs/", tags=[JOBS], responses={201: JobDetail, **BODY_ERRORS})
def create_job(body: JobCreate):
    """Create a draft job.

    Add requests to it, then submit it. The response's `Location` header is the job's URL.
    """
    job = jobs.create_job(
        body.fields(), actor=current_actor(), owner_id=creator_id(), allow_unknown_model=body.allow_unknown_model
    )
    return respond(job_detail(job), 201, headers={"Location": url_for("api.get_job", job_id=job.id)})


@bp.get("/jobs/", tags=[JOBS], responses={200: JobList})
def list_jobs(query: JobsQuery):
    """List jobs, newest first, filtered by status and a name search; paged by `page` and `per_page`."""
    filters = {"status": query.status, "search": query.search}
    page = queries.list_jobs(page=query.page, per_page=query.per_page, owner_id=owner_id(), **filters)

    def link(number: int) -> str:
        given: dict[str, Any] = {name: value for name, value in filters.items() if value}
        return url_for("api.list_jobs", page=number, per_page=query.per_page, **given)

    return respond(job_list(page, link))


@bp.get("/jobs/<int:job_id>", tags=[JOBS], responses={200: JobDetail, **error_responses(404)})
def get_job(path: JobPath):
    """Show a job: counters, tokens, costs, phase, time left and its provider batches."""
    return respond(job_detail(load_job(path.job_id)))


@bp.put("/jobs/<int:job_id>", tags=[JOBS], responses={200: JobDetail, **error_responses(404, 409), **BODY_ERRORS})
def update_job(path: JobPath, body: JobUpdate):
    """Change a job's name, description or metadata at any time, its settings while it is a draft (else 409)."""
    job = jobs.update_job(
        load_job(path.job_id), body.fields(), actor=current_actor(), allow_unknown_model=body.allow_unknown_model
    )
    return respond(job_detail(job))


@bp.delete("/jobs/<int:job_id>", tags=[JOBS], responses={204: None, **error_responses(404, 409)})
def delete_job(path: JobPath):
    """Delete a job with its requests and results; a queued or running job must be cancelled first (409)."""
    jobs.delete_job(load_job(path.job_id), actor=current_actor())
    return "", 204


@bp.post("/jobs/<int:job_id>/submit", tags=[JOBS], responses={200: JobDetail, **error_responses(404, 409)})
def submit_job(path: JobPath):
    """Submit a draft job that has requests; it is split into provider batches and sent."""
    return respond(job_detail(jobs.submit_job(load_job(path.job_id), actor=current_actor())))


@bp.post("/jobs/<int:job_id>/cancel", tags=[JOBS], responses={200: JobDetail, **error_responses(404, 409)})
def cancel_job(path: JobPath):
    """Cancel a queued or running job; running provider batches are cancelled too.

    Requests the cancel stops before they run end `cancelled` (counted in `counts.cancelled`, not as failed);
    results already in are kept. `POST .../resend-cancelled` sends the cancelled ones later.
    """
    return respond(job_detail(jobs.cancel_job(load_job(path.job_id), actor=current_actor())))


@bp.post("/jobs/<int:job_id>/retry", tags=[JOBS], responses={200: RetryOut, **error_responses(404, 409)})
def retry_job(path: JobPath):
    """Send the failed requests of a finished job again (409 when it has none; cancelled ones are not sent)."""
    job = load_job(path.job_id)
    retried = jobs.retry_failed(job, actor=current_actor())
    return respond(RetryOut(retried=retried, job=job_detail(job)))


@bp.post("/jobs/<int:job_id>/resend-cancelled", tags=[JOBS], responses={200: ResendOut, **error_responses(404, 409)})
def resend_cancelled(path: JobPath):
    """Send the requests a cancel stopped before they ran, of a finished job (409 when it has none)."""
    job = load_job(path.job_id)
    resent = jobs.resend_cancelled(job, actor=current_actor())
    return respond(ResendOut(resent=resent, job=job_detail(job)))


@bp.get("/jobs/stats/overview", tags=[JOBS], responses={200: OverviewOut})
def job_statistics(query: OverviewQuery):
    """Processing statistics: jobs by status, success rate, tokens and cost by model and by day."""
    return respond(OverviewOut.model_validate(queries.overview(owner_id=owner_id(), days=query.days)))
