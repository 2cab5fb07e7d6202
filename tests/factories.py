"""Test data builders and a driver that runs the engine until a job ends."""

from __future__ import annotations

import time

from sqlalchemy import select, update

from webapp.extensions import db
from webapp.intake import imports
from webapp.models import BatchJob, request_rows, request_states
from webapp.services import jobs, sync


def chat_body(text: str, model: str = "gpt-4o-mini") -> dict:
    return {"model": model, "messages": [{"role": "user", "content": text}]}


def new_job(
    texts: list[str] | None = None, count: int = 5, submit: bool = False, owner_id: int | None = None, **settings
) -> BatchJob:
    """A draft job (or a submitted one) whose requests say ``texts`` (default: ``count`` distinct prompts)."""
    texts = texts if texts is not None else [f"Classify review number {i}: great product" for i in range(count)]
    job = jobs.create_job({"name": "test job", "model": "gpt-4o-mini", **settings}, owner_id=owner_id)
    if texts:
        imports.add_requests(
            job, [{"custom_id": f"req-{i}", "body": chat_body(t, job.model)} for i, t in enumerate(texts)]
        )
    if submit:
        jobs.submit_job(job)
    return job


def run_until_done(job_id: int, timeout: float = 30, pause: float = 0.05) -> BatchJob:
    """Run sync passes (as the periodic job would) until the job is terminal; fail on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sync.sync_all()
        db.session.expire_all()
        job = db.session.get(BatchJob, job_id)
        if job.is_terminal:
            return job
        time.sleep(pause)
    raise AssertionError(f"job {job_id} still {job.status} after {timeout}s")


def set_states(*where, custom_ids: tuple[str, ...] = (), job_id: int | None = None, **values) -> int:
    """Set request state columns set-wise, as the engine does: ``where`` on ``request_states`` columns, or the
    requests of ``job_id`` with these ``custom_ids``; return how many changed."""
    if custom_ids:
        where += (
            request_states.c.request_id.in_(
                select(request_rows.c.id).where(
                    request_rows.c.job_id == job_id, request_rows.c.custom_id.in_(custom_ids)
                )
            ),
        )
    return db.session.execute(update(request_states).where(*where).values(**values)).rowcount
