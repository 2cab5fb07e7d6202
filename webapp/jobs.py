"""RQ job functions: module-level, take ids, call services, safe to run twice; failures propagate to RQ."""

from __future__ import annotations

from webapp.logs import log_context
from webapp.services import sync


def sync_all() -> dict:
    """The periodic pass: advance every job and provider batch that needs attention."""
    return sync.sync_all()


def process_job(job_id: int) -> None:
    """Advance one job now (after submit, cancel or retry) instead of waiting for the next periodic pass."""
    with log_context(job_id=job_id):
        sync.sync_job(job_id)
