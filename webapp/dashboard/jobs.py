"""Job pages: the list with its live rows, one job's live status, and the actions that change a job."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from flask import flash, redirect, request, url_for
from flask_login import current_user

from webapp.access import actor, load_job, owner_scope
from webapp.dashboard.blueprint import bp
from webapp.dashboard.forms import ActionForm, JobFilterForm
from webapp.dashboard.htmx import fragment_response, page_or_fragment, wants_fragment
from webapp.errors import AppError
from webapp.models import JobStatus
from webapp.services import jobs, queries
from webapp.words import count_of

# Estimating a draft's cost reads every request body; past this many the page says "on submit" instead.
DRAFT_ESTIMATE_LIMIT = 10_000


@bp.get("/jobs")
def list_jobs():
    form = JobFilterForm(formdata=request.args).checked()
    pagination = queries.list_jobs(
        page=form.page_number(), per_page=20, owner_id=owner_scope(current_user), **form.filters()
    )
    at_provider = queries.answered_at_provider(job.id for job in pagination.items if job.is_active)
    return page_or_fragment(
        "dashboard/jobs.html", "dashboard/_jobs_table.html", form=form, pagination=pagination, at_provider=at_provider
    )


@bp.get("/jobs/<int:job_id>/row")
def job_row(job_id: int):
    """One row of the jobs list, polled while its job runs."""
    job = load_job(job_id, current_user)
    if not wants_fragment():  # a row is no page of its own: a browser gets the job
        return redirect(url_for(".show_job", job_id=job.id))
    at_provider = queries.answered_at_provider([job.id])
    return fragment_response("dashboard/_job_row.html", job=job, at_provider=at_provider, done=not job.is_active)


@bp.get("/jobs/<int:job_id>")
def show_job(job_id: int):
    job = load_job(job_id, current_user)
    return page_or_fragment(
        "dashboard/job.html", "dashboard/_job_status.html", done=not job.is_active, **job_context(job)
    )


def job_context(job) -> dict:
    estimate = job.estimated_cost
    if job.status == JobStatus.DRAFT and 0 < job.total_requests <= DRAFT_ESTIMATE_LIMIT:
        estimate = jobs.estimate_cost(job)
    return {
        "job": job,
        "phase": queries.job_phase(job),
        "at_provider": queries.answered_at_provider([job.id]) if job.is_active else {},
        "timing": queries.job_timing(job),
        "errors": queries.failure_breakdown(job) if job.failed_requests and job.is_terminal else [],
        "recipe": queries.job_recipe(job),
        "events": queries.list_events(job.id),
        "estimate": estimate,
        "action_form": ActionForm(),
    }


class Action(NamedTuple):
    """A button that changes a job: the service it calls, what it does in words, and the flash message made from
    what the service returned (the job, or how many requests)."""

    service: Callable[..., Any]
    what: str
    done: Callable[[Any], str]


ACTIONS = {
    "submit": Action(
        jobs.submit_job, "submit the job", lambda job: "Submitted: the requests are on their way to the provider."
    ),
    "cancel": Action(
        jobs.cancel_job,
        "cancel the job",
        lambda job: "Cancelling: running batches are being stopped. Requests they have not run yet will be "
        "counted as cancelled; results already in are kept.",
    ),
    "retry": Action(
        jobs.retry_failed,
        "send the failed requests again",
        lambda count: f"Sending {count_of(count, 'failed request')} again.",
    ),
    "resend": Action(
        jobs.resend_cancelled,
        "send the cancelled requests again",
        lambda count: f"Sending {count_of(count, 'cancelled request')} again.",
    ),
}


@bp.post("/jobs/<int:job_id>/<any(submit, cancel, retry, resend):action>")
def change_job(job_id: int, action: str):
    job = load_job(job_id, current_user)  # CSRFProtect has already refused a request without a valid token
    chosen = ACTIONS[action]
    try:
        result = chosen.service(job, actor=actor(current_user))
    except AppError as exc:
        flash(f"Could not {chosen.what}: {exc.message}", "error")
    else:
        flash(chosen.done(result), "success")
    return redirect(url_for(".show_job", job_id=job.id))


@bp.post("/jobs/<int:job_id>/delete")
def delete_job(job_id: int):
    job = load_job(job_id, current_user)
    name = job.name
    try:
        jobs.delete_job(job, actor=actor(current_user))
    except AppError as exc:
        flash(f"Could not delete the job: {exc.message}", "error")
        return redirect(url_for(".show_job", job_id=job_id))
    flash(f"Deleted the job “{name}” and all its requests and results.", "success")
    return redirect(url_for(".list_jobs"))
